"""Every job reads the config it was planned with: the workflow writes the merged config to a
snapshot named by the hash of its content, and a second `snakemake` call with another config in the
same folder (even a dry run) writes another file, never one a running job reads. A dry run needs no
writable results folder; a run that cannot write the snapshot stops with one line."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from workflow_helpers import BIN, ENV, ROOT, sh

from metadip.core.hashing import content_sha
from metadip.pipeline.config import load_config
from metadip.pipeline.settings import shard_config_hash

SHARDS = [f"results/eval/den_25/skimage/bm3d/shard-{i}.parquet" for i in (0, 1)]
SIGMA_50 = "evaluate={tasks: {den_25: {kind: denoising, sigma: 50}}}"


def small_config(folder: Path) -> Path:
    """The tiny config cut to one dataset, one task (den_25) and BM3D in two shards."""
    cfg = yaml.safe_load((ROOT / ".test" / "config.yaml").read_text())
    cfg["curate"]["datasets"] = {"skimage": cfg["curate"]["datasets"]["skimage"]}
    cfg["meta"]["methods"] = {}
    cfg.pop("baselines")
    cfg["evaluate"].update(
        roles={"faces": "skimage", "natural": "skimage"},
        tasks={"den_25": {"kind": "denoising", "sigma": 25}},
        methods={"bm3d": {"kind": "denoiser", "denoiser": "bm3d", "label": "BM3D"}},
        shards=2,
    )
    cfg["claims"] = {"enabled": False}
    (folder / "a.yaml").write_text(yaml.safe_dump(cfg))
    return folder / "a.yaml"


def snakemake(folder: Path, *args) -> list[str]:
    return [
        BIN / "snakemake",
        *SHARDS,
        "-d",
        folder,
        "--configfile",
        folder / "a.yaml",
        "--replace-workflow-config",
        *args,
    ]


def wait_for(condition, what: str, proc: subprocess.Popen, timeout: float = 300) -> None:
    end = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, f"snakemake ended before {what}: {proc.communicate()}"
        assert time.monotonic() < end, f"no {what} after {timeout} s"
        time.sleep(0.2)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_dry_run_with_another_config_changes_nothing_a_running_workflow_reads(tmp_path):
    """Process A runs the evaluation at sigma 25; once it has started a job it is paused, B (a dry run
    at sigma 50) runs in the same folder, then A resumes: every shard A writes was computed at sigma 25
    under A's config (before, B rewrote results/config.yaml and A's next shard ran at sigma 50)."""
    small_config(tmp_path)
    a = subprocess.Popen(
        [str(x) for x in snakemake(tmp_path, "--cores", "1")],
        cwd=ROOT,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        started = tmp_path / "results" / "logs" / "curate" / "skimage.log"
        wait_for(started.exists, "job started", a)
        os.kill(a.pid, signal.SIGSTOP)  # A's scheduler waits; its curate job runs on
        try:
            b = sh(*snakemake(tmp_path, "-n", "--config", SIGMA_50), cwd=ROOT)
        finally:
            os.kill(a.pid, signal.SIGCONT)
        out = a.communicate(timeout=600)[0].decode()
    finally:
        if a.poll() is None:
            a.kill()
            a.wait()
    assert a.returncode == 0, out[-3000:]
    rows = {shard: pq.read_table(tmp_path / shard, columns=["sigma", "config_hash"]).to_pylist() for shard in SHARDS}
    assert all(r and {x["sigma"] for x in r} == {25.0} for r in rows.values()), rows
    snapshots = {p.stem: p for p in (tmp_path / "results" / "configs").iterdir()}
    planned = set(re.findall(r"--config-sha (\w+)", out))
    b_planned = set(re.findall(r"--config-sha (\w+)", b.stdout))
    assert len(planned) == len(b_planned) == 1 and planned != b_planned and set(snapshots) == planned | b_planned
    assert all(content_sha(p.read_bytes()) == sha for sha, p in snapshots.items())  # none rewritten
    config = load_config(snapshots[planned.pop()])
    assert config["evaluate"]["tasks"]["den_25"]["sigma"] == 25
    assert {x["config_hash"] for r in rows.values() for x in r} == {
        shard_config_hash(config, "den_25", "skimage", "bm3d")
    }
    # what A recorded: its own config is up to date; sigma 50 reruns the shards and nothing upstream
    assert "Nothing to be done" in sh(*snakemake(tmp_path, "-n"), cwd=ROOT).stdout
    plan = sh(*snakemake(tmp_path, "-n", "--config", SIGMA_50), cwd=ROOT).stdout
    assert re.findall(r"^(?:local)?rule (\w+):", plan, re.MULTILINE) == ["evaluate", "evaluate"], plan[-3000:]


@pytest.fixture
def read_only_results(tmp_path):
    """tmp_path/results made read-only: by its mode, or for root (whom modes do not stop) immutable
    (chattr +i); skipped where neither stops a write."""
    results = tmp_path / "results"
    results.mkdir()
    results.chmod(0o555)
    immutable = False
    try:
        if os.access(results, os.W_OK) and os.geteuid() == 0:
            immutable = subprocess.run(["chattr", "+i", results], capture_output=True, check=False).returncode == 0
        try:
            (results / "probe").touch()
        except OSError:
            yield results
        else:
            pytest.skip("cannot make a folder read-only here")
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", results], check=True)
        results.chmod(0o755)


def test_a_dry_run_needs_no_writable_results_folder_and_a_run_says_it_in_one_line(tmp_path, read_only_results):
    small_config(tmp_path)
    dry = sh(*snakemake(tmp_path, "-n"), cwd=ROOT, check=False)
    assert dry.returncode == 0 and "Traceback" not in dry.stdout + dry.stderr, dry.stdout[-3000:] + dry.stderr[-3000:]
    assert re.search(r"--config results/configs/(\w+)\.yaml --config-sha \1 ", dry.stdout)
    run = sh(*snakemake(tmp_path, "--cores", "1"), cwd=ROOT, check=False)
    out = run.stdout + run.stderr
    assert run.returncode == 1 and "Traceback" not in out, out[-3000:]
    line = re.search(
        r"^results/configs/\w+\.yaml: cannot write the merged config \((.+)\); make paths\.results .*$", out, re.M
    )
    assert line and line[1] in ("Permission denied", "Operation not permitted"), out[-3000:]
    assert not list(read_only_results.iterdir())
