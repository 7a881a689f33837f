"""bench/job_seconds.py: a run's job-seconds per step, summed from Snakemake's benchmark files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def write(path: Path, *rows: tuple[float, float]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + "".join(f"{s}\t0:00:00\t1\t1\t1\t1\t0\t0\t50\t{cpu}\n" for s, cpu in rows))


def run(benchmarks: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, str(ROOT / "bench" / "job_seconds.py"), str(benchmarks)]
    return subprocess.run(command, check=False, capture_output=True, text=True)


def test_job_seconds_are_summed_per_rule_and_per_evaluated_method(tmp_path):
    b = tmp_path / "benchmarks"
    write(b / "meta_train" / "metadip.tsv", (300.5, 250.0))
    write(b / "meta_train" / "metasiren.tsv", (99.5, 90.0))
    write(b / "evaluate" / "den_15" / "wallpapers" / "dip" / "shard-0.tsv", (10.0, 9.0), (80.0, 70.0))  # a retry
    write(b / "evaluate" / "cs_4" / "skimage" / "dip" / "shard-0.tsv", (20.0, 19.0))
    write(b / "train_denoiser.tsv", (5.0, 4.0))
    out = run(b)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert "| meta_train | 2 | 400 | 340 |" in lines
    assert "| evaluate dip | 2 | 100 | 89 |" in lines  # a job's last attempt counts
    assert "| train_denoiser | 1 | 5 | 4 |" in lines
    assert lines[-1] == "| all | 5 | 505 | 433 |"


def test_a_folder_without_benchmark_files_is_one_clear_line(tmp_path):
    out = run(tmp_path)
    assert out.returncode != 0 and "no benchmark files under" in out.stderr and "Traceback" not in out.stderr
