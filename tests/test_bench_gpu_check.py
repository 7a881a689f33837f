"""bench/gpu_check.sh and bench/captured_steps.py, the GPU check of captured solver steps, on the CPU:
every group runs (nothing is captured there) on a bare image without the library's optional modules,
and the step code the graphs would hold gives the library's results."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
GROUPS = ("dip", "metadip", "metadip_batch", "maml1", "maml2")


def bench_env(tmp_path: Path, blocked: tuple[str, ...] = ()) -> dict[str, str]:
    """The environment of a bench run: this checkout's library first, and ``blocked`` packages made
    unimportable (as on a GPU image that has torch and numpy only)."""
    for name in blocked:
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(f"raise ImportError('{name} is blocked by the test')\n")
    return os.environ | {"PYTHONPATH": f"{tmp_path}:{ROOT / 'src'}", "PYTHON": sys.executable}


def check_tables(out: str) -> None:
    assert "failed" not in out and "skipped" not in out, out
    for group in GROUPS:
        assert f"## {group}: CPU" in out, out
    assert out.count("| measurement | eager | captured | ratio | peak GiB (eager / captured) |") == len(GROUPS)
    deltas = [float(d) for d in re.findall(r"Δ (\d+\.\d+) dB", out)]
    assert len(deltas) == 3 and max(deltas) < 0.01, out  # DIP, MetaDIP one image, MetaDIP batch
    assert out.count("n/a (CPU)") >= 2 * len(GROUPS)


def test_quick_cpu_run_without_the_optional_modules(tmp_path):
    blocked = ("skimage", "tqdm", "safetensors")
    proc = subprocess.run(
        [sys.executable, "bench/captured_steps.py", "--device", "cpu", "--quick"],
        cwd=ROOT,
        env=bench_env(tmp_path, blocked),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    check_tables(proc.stdout)
    assert "replaced by stand-ins the measurements never call: skimage.metrics, tqdm.auto, safetensors" in proc.stderr


@pytest.mark.slow
def test_gpu_check_script_on_the_cpu_writes_its_log(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run(
        ["bash", "bench/gpu_check.sh", "--device", "cpu", "--quick", "--budget", "240"],
        cwd=ROOT,
        env=bench_env(tmp_path) | {"OUT": str(out)},
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    log = (out / "gpu_check.log").read_text()
    assert log == proc.stdout
    check_tables(log)
    assert "torch" in log.splitlines()[2] and "exit status 0" in log.splitlines()[-1]


def test_bad_arguments_are_refused_before_any_run(tmp_path):
    env = bench_env(tmp_path)
    for args, message in (
        (["--devcie", "cpu"], "gpu_check.sh: unknown argument '--devcie' (options: --device cuda or cpu"),
        (["--budget", "5m"], "gpu_check.sh: --budget must be a whole number of seconds, got '5m'"),
    ):
        proc = subprocess.run(
            ["bash", "bench/gpu_check.sh", *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False
        )
        assert proc.returncode == 2 and proc.stderr.startswith(message) and not proc.stdout


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_cuda_without_a_gpu_is_one_clear_line(tmp_path):
    proc = subprocess.run(
        [sys.executable, "bench/captured_steps.py", "--device", "cuda", "--quick"],
        cwd=ROOT,
        env=bench_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 1 and not proc.stdout
    assert proc.stderr.strip().splitlines()[-1] == (
        "captured_steps.py: --device cuda, but torch sees no GPU; run with --device cpu"
    )
