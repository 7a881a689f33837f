"""What the input checks cost a job, measured side by side in one process after a warm-up: loading
the workflow's config snapshot with its hash check against without it, and opening a curated split
with its shards hashed against with the hashes cached (what every later open in a process costs);
the evaluation's test split is checked the same way.

Run (after a run of the workflow):
    .venv/bin/python bench/input_checks.py [--config results/config.yaml] [--data data/curated/wallpapers]
The last line is ``checked/unchecked: config X, split Y``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from metadip.core.hashing import content_sha
from metadip.datasets import store
from metadip.pipeline.stage import load_stage_config


def paired_ms(a: Callable[[], object], b: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Median milliseconds of ``a`` and of ``b``, run in turn (a b a b ...) so that drift in the
    machine's speed falls on both alike."""
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for run, out in ((a, times[0]), (b, times[1])):
            t = time.perf_counter()
            run()
            out.append(time.perf_counter() - t)
    return 1000 * statistics.median(times[0]), 1000 * statistics.median(times[1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="results/config.yaml", help="a config snapshot (default: the latest run's)")
    p.add_argument("--data", default="data/curated/wallpapers", help="a curated dataset folder")
    p.add_argument("--split", default="val", help="train or val (the test split is for evaluation only)")
    p.add_argument("--repeats", type=int, default=7)
    a = p.parse_args()
    sha = content_sha(Path(a.config).read_bytes())
    crop = load_stage_config(argparse.Namespace(config=a.config, config_sha=None))["curate"]["crop_size"]

    def config(check: bool) -> Callable[[], object]:
        return lambda: load_stage_config(argparse.Namespace(config=a.config, config_sha=sha if check else None))

    def split(hashing: bool) -> Callable[[], object]:
        def run() -> object:
            if hashing:
                store._SHA256.clear()
            return store.training_split(a.data, a.split, key="bench/input_checks.py --split", crop_size=crop)

        return run

    for run in (config(True), config(False), split(True), split(False)):  # warm-up: imports, schema
        run()
    config_ms = paired_ms(config(True), config(False), a.repeats)
    split_ms = paired_ms(split(True), split(False), a.repeats)
    rows = {
        "config, hash checked": config_ms[0],
        "config, unchecked": config_ms[1],
        f"{a.split} split, shards hashed": split_ms[0],
        f"{a.split} split, hashes cached": split_ms[1],
    }
    size = sum(f.stat().st_size for f in Path(a.data).glob(f"{a.split}-*.npy"))
    print(f"{a.config} (sha {sha}); {a.data} {a.split} split, {size / 2**20:.1f} MiB of shards")
    print(f"medians of {a.repeats}, each pair run in turn")
    print("| measurement | ms |\n|---|---|")
    for name, ms in rows.items():
        print(f"| {name} | {ms:.1f} |")
    values = list(rows.values())
    print(f"checked/unchecked: config {values[0] / values[1]:.2f}, split {values[2] / values[3]:.2f}")


if __name__ == "__main__":
    main()
