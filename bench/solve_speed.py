"""Per-step cost of the MetaDIP inner step against one vanilla-DIP (Adam) step, side by side; with
``--compiled``, each solver's compiled step (``metadip.models.compiled``) against its eager step.

Both solvers run on the same network (the default config's MetaDIP network, random init), the same
image and the same operator, for one denoising, one CS and one PR setting of the default config.
A step's cost is measured from outside the solver: (wall(n₂ steps) − wall(n₁ steps)) / (n₂ − n₁),
so set-up, the final read-out and any trace bookkeeping a solver does per step all count. The
runs being compared alternate within each round so that both see the machine's load of the same
moment; the ratio is the median over rounds.

With ``--compiled`` the compile is counted too: the first compiled call of the process (a compile,
or a load from the on-disk cache when an earlier process compiled the same graph) is timed and
printed, with what it costs per image of the default run's solves (DIP's steps, MetaDIP's steps)
when one evaluation job of ``--images`` images pays it.

Run:  .venv/bin/python bench/solve_speed.py [--quick] [--compiled] [--threads N] [--config config/config.yaml]
The last line is ``metadip/dip per-step ratio: X`` (the largest over the three settings), or with
``--compiled`` ``compiled speed-up (the smaller of DIP and MetaDIP): X`` (per step, each solver's
smallest over the three settings).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from timing import default_metadip

from metadip.meta.inner_loop import build_model, solve
from metadip.models.compiled import cache_dir
from metadip.physics.operators import Operator
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


def problem(task: dict, x: torch.Tensor) -> tuple[Operator, torch.Tensor]:
    """The setting's operator for images shaped like ``x`` and one measurement of ``x``."""
    op = TaskSpec.from_setting(task).operator(tuple(x.shape), 0)
    return op, op.measure(x.unsqueeze(0), torch.Generator().manual_seed(1))[0]


def compare(
    task: dict, arch: dict, inner: dict, x: torch.Tensor, rounds: int, short: int, long: int
) -> tuple[float, float, float]:
    """Median seconds per MetaDIP inner step, per DIP step and median of their per-round ratios."""
    op, y = problem(task, x)
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


def compare_compiled(
    task: dict, arch: dict, inner: dict, x: torch.Tensor, rounds: int, short: int, long: int
) -> dict[str, tuple[float, float, float]]:
    """Per solver ("MetaDIP", "DIP"): median seconds per eager step, per compiled step and median of
    the per-round ratios eager / compiled."""
    op, y = problem(task, x)
    model = build_model(arch, inner)

    def meta(compiled: bool) -> Callable[[int], None]:
        return lambda n: solve(model, op, y, n, device="cpu", show_progress=False, compiled=compiled)

    def dip(compiled: bool) -> Callable[[int], None]:
        def run(n: int) -> None:
            prior = build_model(arch, inner).prior
            settings, g = DIPSettings(steps=n), torch.Generator().manual_seed(2)
            fit_dip(prior, op, y, settings, g, device="cpu", show_progress=False, compiled=compiled)

        return run

    out = {}
    for name, make in (("MetaDIP", meta), ("DIP", dip)):
        eager, fast = make(False), make(True)
        eager(2), fast(2)  # warm-up (the compile is timed once, in main)
        e_times, c_times, ratios = [], [], []
        for _ in range(rounds):
            e, c = per_step(eager, short, long), per_step(fast, short, long)
            e_times.append(e), c_times.append(c), ratios.append(e / c)
        out[name] = (statistics.median(e_times), statistics.median(c_times), statistics.median(ratios))
    return out


def cache_files() -> set[Path]:
    """The files of the on-disk compile cache."""
    return set(cache_dir().rglob("*")) if cache_dir().is_dir() else set()


def first_compile(arch: dict, inner: dict, x: torch.Tensor, task: dict) -> tuple[float, bool]:
    """Seconds of the process's first compiled step and whether it compiled (wrote new entries to
    the on-disk cache) rather than loading what an earlier process compiled."""
    before = cache_files()
    op, y = problem(task, x)
    t = time.perf_counter()
    result = solve(build_model(arch, inner), op, y, 1, device="cpu", show_progress=False, compiled=True)
    if not result.compiled:
        raise SystemExit("solve_speed.py --compiled: the solvers ran eager (see the line above); nothing to compare")
    return time.perf_counter() - t, bool(cache_files() - before)


def report_compiled(config: dict, arch: dict, inner: dict, x: torch.Tensor, a: argparse.Namespace, n: tuple) -> None:
    """The --compiled table, the compile's cost per image and the final line."""
    rounds, short, long = n
    tasks = first_of_each_kind(config["evaluate"]["tasks"])
    compile_s, compiled = first_compile(arch, inner, x, next(iter(tasks.values())))
    how = "compiled and written to the cache" if compiled else "loaded from the cache"
    print(f"\nfirst compiled call: {compile_s:.1f} s ({how}; {cache_dir()})")
    print("\n| setting | solver | eager step (ms) | compiled step (ms) | eager / compiled |")
    print("|---|---|---|---|---|")
    worst: dict[str, float] = {}
    steps: dict[str, list[float]] = {"MetaDIP": [], "DIP": []}
    for task in tasks.values():
        for solver, (e, c, ratio) in compare_compiled(task, arch, inner, x, rounds, short, long).items():
            worst[solver] = min(worst.get(solver, ratio), ratio)
            steps[solver].append(e - c)
            row = f"| {task['name']} ({task['kind']}) | {solver} | {1e3 * e:.1f} | {1e3 * c:.1f} | {ratio:.2f} |"
            print(row, flush=True)
    methods = config["evaluate"]["methods"]
    run_steps = {"MetaDIP": methods["metadip"]["steps"], "DIP": max(methods["dip"]["report_at"])}
    for solver, saved in steps.items():
        per_image = statistics.median(saved) * run_steps[solver]
        print(
            f"{solver}({run_steps[solver]}): {per_image:.2f} s saved per image; the first call's {compile_s:.1f} s "
            f"spread over a job of {a.images} images: {compile_s / a.images:.2f} s per image"
        )
    print(f"\ncompiled speed-up (the smaller of DIP and MetaDIP): {min(worst.values()):.2f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="fewer rounds and shorter runs (under a minute on 2 cores)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (the workflow's evaluation uses 1)")
    p.add_argument("--config", default="config/config.yaml")
    p.add_argument("--compiled", action="store_true", help="compiled steps against eager steps, per solver")
    p.add_argument("--images", type=int, default=4, help="images per evaluation job, to spread the compile over")
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
    x = torch.rand(shape, generator=torch.Generator().manual_seed(0))
    if a.compiled:
        report_compiled(config, arch, method["inner"], x, a, (rounds, short, long))
        return
    print("\n| setting | MetaDIP inner step (ms) | DIP Adam step (ms) | MetaDIP / DIP |")
    print("|---|---|---|---|")
    worst = 0.0
    for task in first_of_each_kind(config["evaluate"]["tasks"]).values():
        meta_s, dip_s, ratio = compare(task, arch, method["inner"], x, rounds, short, long)
        worst = max(worst, ratio)
        print(f"| {task['name']} ({task['kind']}) | {1e3 * meta_s:.1f} | {1e3 * dip_s:.1f} | {ratio:.2f} |", flush=True)
    print(f"\nmetadip/dip per-step ratio: {worst:.2f}")


if __name__ == "__main__":
    main()
