"""How far compiled steps move the rows, against a control that moves only float rounding.

A compiled step computes the eager step's arithmetic in another order, so its results differ from
the eager ones by float rounding — which DIP's and MetaDIP's trajectories can amplify over their
steps. The control is the eager step on 2 torch threads instead of 1: a change of summation order
and nothing else, as valid as the eager run itself. On the 8 bundled photographs (none is a test
crop) at the config's image size, for the config's first setting of each task family, this prints
per row (DIP(50) and DIP(1000) with their EMA, MetaDIP(50) from a meta-init) the mean and largest
|ΔPSNR| of compiled − eager and of control − eager, and the mean paired difference compiled − eager
with a 95% t-interval over the photographs.

Run:  .venv/bin/python bench/compiled_numerics.py [--meta-init results/meta/metadip/meta_init]
      [--family denoising|cs|pr ...] [--images 8] [--config config/config.yaml]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from solve_speed import first_of_each_kind
from timing import default_metadip

from metadip.core.images import BUNDLED, bundled_image
from metadip.core.metrics import psnr
from metadip.meta.inner_loop import build_model, solve
from metadip.physics.tasks import TaskSpec
from metadip.pipeline.artifacts import load_meta_init
from metadip.pipeline.config import load_config
from metadip.solvers.dip import DIPSettings, fit_dip

VARIANTS = {"eager": (1, False), "control": (2, False), "compiled": (1, True)}  # threads, compiled


def rows_of(meta, arch: dict, inner: dict, op, y, x, variant: str, seed: int) -> dict[str, float]:
    """PSNR of DIP(50), DIP(1000) (EMA) and MetaDIP(50) on one image under one variant."""
    threads, compiled = VARIANTS[variant]
    torch.set_num_threads(threads)
    dip = fit_dip(
        build_model(arch, inner).prior,
        op,
        y,
        DIPSettings(steps=1000),
        torch.Generator().manual_seed(seed),
        device="cpu",
        show_progress=False,
        keep_at=(50, 1000),
        compiled=compiled,
    )
    solved = solve(meta, op, y, 50, device="cpu", show_progress=False, compiled=compiled)
    return {
        "DIP(50)": float(psnr(dip.snapshots[50][0], x)),
        "DIP(1000)": float(psnr(dip.snapshots[1000][0], x)),
        "MetaDIP(50)": float(psnr(solved.estimate, x)),
    }


def interval(diffs: list[float]) -> str:
    """Mean with a 95% t-interval (normal quantile for n > 30)."""
    from scipy import stats

    n, mean = len(diffs), statistics.fmean(diffs)
    if n < 2:
        return f"{mean:+.3f}"
    half = stats.t.ppf(0.975, n - 1) * statistics.stdev(diffs) / n**0.5
    return f"{mean:+.3f} [{mean - half:+.3f}, {mean + half:+.3f}]"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="config/config.yaml")
    p.add_argument("--meta-init", default="results/meta/metadip/meta_init")
    p.add_argument("--family", nargs="*", default=["denoising", "cs", "pr"])
    p.add_argument("--images", type=int, default=len(BUNDLED))
    a = p.parse_args()
    config = load_config(a.config)
    method, shape, arch = default_metadip(a.config)
    meta = load_meta_init(a.meta_init)
    tasks = first_of_each_kind(config["evaluate"]["tasks"])
    print(f"# compiled against eager, control: eager on 2 threads; {shape[1]} px, {a.images} photos, {a.meta_init}")
    print(
        "\n| setting | row | compiled − eager: mean / max abs (dB) | control − eager: mean / max abs (dB) "
        "| compiled − eager, mean [95% CI] |"
    )
    print("|---|---|---|---|---|")
    for family in a.family:
        task = tasks[family]
        op = TaskSpec.from_setting(task).operator(shape, 0)
        diffs: dict[str, dict[str, list[float]]] = {"compiled": {}, "control": {}}
        t = time.perf_counter()
        for i, name in enumerate(BUNDLED[: a.images]):
            x = bundled_image(name, shape[1])
            y = op.measure(x.unsqueeze(0), torch.Generator().manual_seed(i))[0]
            got = {v: rows_of(meta, arch, method["inner"], op, y, x, v, 1000 + i) for v in VARIANTS}
            for v in ("compiled", "control"):
                for row, value in got[v].items():
                    diffs[v].setdefault(row, []).append(value - got["eager"][row])
        for row in diffs["compiled"]:
            c, k = diffs["compiled"][row], diffs["control"][row]
            print(
                f"| {task['name']} | {row} | {statistics.fmean(map(abs, c)):.3f} / {max(map(abs, c)):.3f} "
                f"| {statistics.fmean(map(abs, k)):.3f} / {max(map(abs, k)):.3f} | {interval(c)} |",
                flush=True,
            )
        print(f"<!-- {task['name']}: {time.perf_counter() - t:.0f} s -->", flush=True)


if __name__ == "__main__":
    main()
