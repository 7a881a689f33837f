"""Per-step cost of the MetaDIP inner step against one vanilla-DIP (Adam) step, side by side.

Both solvers run on the same network (the default config's MetaDIP network, random init), the same
image and the same operator, for one denoising, one CS and one PR setting of the default config.
A step's cost is measured from outside the solver: (wall(n₂ steps) − wall(n₁ steps)) / (n₂ − n₁),
so set-up, the final read-out and any trace bookkeeping a solver does per step all count. MetaDIP
and DIP runs alternate within each round so that both see the machine's load of the same moment;
the ratio is the median over rounds.

Run:  .venv/bin/python bench/solve_speed.py [--quick] [--threads N] [--config config/config.yaml]
The last line is ``metadip/dip per-step ratio: X`` (the largest over the three settings).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable

import torch
from timing import default_metadip

from metadip.meta.inner_loop import build_model, solve
from metadip.physics.tasks import TaskSpec
from metadip.pipeline.config import load_config
from metadip.solvers.dip import DIPSettings, fit_dip


def per_step(run: Callable[[int], object], short: int, long: int) -> float:
    """Seconds per step from the wall time of a ``short`` and a ``long`` run."""
    t = time.perf_counter()
    run(short)
    t_short = time.perf_counter() - t
    t = time.perf_counter()
    run(long)
    return (time.perf_counter() - t - t_short) / (long - short)


def first_of_each_kind(tasks: dict) -> dict[str, dict]:
    """One setting per task family (denoising, CS, PR), the first listed in the config."""
    chosen: dict[str, dict] = {}
    for name, task in tasks.items():
        family = task["kind"].removesuffix("_fast")
        chosen.setdefault(family, {"name": name, **task})
    return chosen


def compare(
    task: dict, arch: dict, inner: dict, x: torch.Tensor, rounds: int, short: int, long: int
) -> tuple[float, float, float]:
    """Median seconds per MetaDIP inner step, per DIP step and median of their per-round ratios."""
    op = TaskSpec.from_setting(task).operator(tuple(x.shape), 0)
    y = op.measure(x.unsqueeze(0), torch.Generator().manual_seed(1))[0]
    model = build_model(arch, inner)

    def meta(n: int) -> None:
        solve(model, op, y, n, device="cpu", show_progress=False)

    def dip(n: int) -> None:
        prior = build_model(arch, inner).prior
        fit_dip(prior, op, y, DIPSettings(steps=n), torch.Generator().manual_seed(2), device="cpu", show_progress=False)

    meta(2), dip(2)  # warm-up: first calls of the functional transforms, allocator
    m_times, d_times, ratios = [], [], []
    for _ in range(rounds):
        m, d = per_step(meta, short, long), per_step(dip, short, long)
        m_times.append(m), d_times.append(d), ratios.append(m / d)
    return statistics.median(m_times), statistics.median(d_times), statistics.median(ratios)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="fewer rounds and shorter runs (under a minute on 2 cores)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (the workflow's evaluation uses 1)")
    p.add_argument("--config", default="config/config.yaml")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    config = load_config(a.config)
    method, shape, arch = default_metadip(a.config)
    size = shape[1]
    rounds, short, long = (5, 4, 12) if a.quick else (15, 5, 30)
    print(
        f"# metadip solve speed — torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{platform.machine()}, CPU; {size} px RGB, width {method['network']['width']}, "
        f"{rounds} rounds of {long - short} steps each"
    )
    print("\n| setting | MetaDIP inner step (ms) | DIP Adam step (ms) | MetaDIP / DIP |")
    print("|---|---|---|---|")
    x = torch.rand(shape, generator=torch.Generator().manual_seed(0))
    worst = 0.0
    for task in first_of_each_kind(config["evaluate"]["tasks"]).values():
        meta_s, dip_s, ratio = compare(task, arch, method["inner"], x, rounds, short, long)
        worst = max(worst, ratio)
        print(f"| {task['name']} ({task['kind']}) | {1e3 * meta_s:.1f} | {1e3 * dip_s:.1f} | {ratio:.2f} |", flush=True)
    print(f"\nmetadip/dip per-step ratio: {worst:.2f}")


if __name__ == "__main__":
    main()
