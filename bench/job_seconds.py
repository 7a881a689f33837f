"""Job-seconds of a pipeline run by step, from the benchmark files Snakemake wrote for its jobs.

Every rule writes ``<results>/benchmarks/<rule>/...tsv`` (wall seconds ``s`` and ``cpu_time`` of
the job). This sums them per rule, and the evaluation jobs per method, so that a run's time can be
read by what it spent it on. On a machine running N jobs at once, the pipeline's wall time is at
least the sum over N.

Run:  .venv/bin/python bench/job_seconds.py [results/benchmarks]
"""

from __future__ import annotations

import argparse
import csv
from collections import defaultdict
from pathlib import Path


def seconds(tsv: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one benchmark file (its last row: the job's last attempt)."""
    with tsv.open() as f:
        row = list(csv.DictReader(f, delimiter="\t"))[-1]
    return float(row["s"]), float(row["cpu_time"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("benchmarks", nargs="?", default="results/benchmarks", type=Path)
    a = p.parse_args()
    files = sorted(a.benchmarks.rglob("*.tsv"))
    if not files:
        raise SystemExit(f"job_seconds.py: no benchmark files under {a.benchmarks}; give a run's results/benchmarks")
    totals: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])
    for tsv in files:
        parts = tsv.relative_to(a.benchmarks).parts
        key = parts[0].removesuffix(".tsv") if parts[0] != "evaluate" else f"evaluate {parts[3]}"
        wall, cpu = seconds(tsv)
        totals[key][0] += 1
        totals[key][1] += wall
        totals[key][2] += cpu
    print("| step | jobs | job-seconds (wall) | CPU seconds |\n|---|---|---|---|")
    for key, (n, wall, cpu) in sorted(totals.items(), key=lambda kv: -kv[1][1]):
        print(f"| {key} | {n} | {wall:.0f} | {cpu:.0f} |")
    n, wall, cpu = (sum(t[i] for t in totals.values()) for i in range(3))
    print(f"| all | {n} | {wall:.0f} | {cpu:.0f} |")


if __name__ == "__main__":
    main()
