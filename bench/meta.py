"""Benchmark of meta-learning and MetaDIP inference on this machine (numbers for docs/performance.md).

1. Seconds and peak memory per outer step (one task, meta-batch 1) for K = 5 / 10 / 20 inner
   steps, first vs second order, at 64×64 and 128×128, skip-net widths 32 and 64 (RGB, depth 5).
   Each configuration runs in its own process so its peak RSS is its own.
2. MetaDIP(50) solve time vs DIP(1000) solve time at equal width (128×128 RGB denoising).
3. Batched MetaDIP solves (one vmapped call over B images) vs B sequential solves, B = 1 / 4 / 8.

Run:  .venv/bin/python bench/meta.py  [--quick]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time

import torch

from metadip.meta.inner_loop import InnerSettings, MetaModel, solve, solve_batch, task_loss
from metadip.models.networks import DIPConfig, DIPPrior
from metadip.physics.operators import Denoising
from metadip.solvers.dip import DIPSettings, fit_dip


def model(size: int, width: int, k: int) -> MetaModel:
    cfg = DIPConfig(image_shape=(3, size, size), channels_down=(width,) * 5, channels_up=(width,) * 5)
    return MetaModel(DIPPrior(cfg, 0), InnerSettings(steps=k, lr_init=1.0, momentum=0.9))


def one_outer_step(k: int, first_order: bool, size: int, width: int, reps: int) -> dict:
    """Run in a child process: time and peak-RSS increase of outer steps of one configuration."""
    m = model(size, width, k)
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    op = Denoising((3, size, size), 25, 0)
    x = torch.rand(3, size, size, generator=torch.Generator().manual_seed(0))
    y = op.measure(x, torch.Generator().manual_seed(1))

    def step():
        opt.zero_grad()
        task_loss(m, op, y, x, k, first_order).backward()
        opt.step()

    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    step()  # warm-up (and the peak: every step allocates the same)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    return {"seconds": min(times), "peak_mib": (peak - base) / 1024}


def outer_table(quick: bool) -> None:
    print("\n**Seconds and peak memory per outer step (one task), RGB, depth-5 skip net**\n")
    print("| size | width | K | order | s / outer step | peak extra memory (MiB) | SO / FO time |")
    print("|---|---|---|---|---|---|---|")
    for size in (64, 128):
        for width in (32, 64):
            for k in (5, 10) if quick else (5, 10, 20):
                res = {}
                for order in ("first", "second"):
                    out = subprocess.run(
                        [
                            sys.executable,
                            __file__,
                            "--one",
                            str(k),
                            order,
                            str(size),
                            str(width),
                            "1" if quick else "2",
                        ],
                        capture_output=True,
                        text=True,
                        check=True,
                    )
                    res[order] = json.loads(out.stdout.strip().splitlines()[-1])
                for order in ("first", "second"):
                    r = res[order]
                    ratio = f"{res['second']['seconds'] / res['first']['seconds']:.1f}×" if order == "second" else ""
                    print(
                        f"| {size} | {width} | {k} | {order} | {r['seconds']:.2f} | {r['peak_mib']:,.0f} | {ratio} |",
                        flush=True,
                    )


def solve_vs_dip(quick: bool) -> None:
    print("\n**MetaDIP(50) vs DIP(1000), one 128×128 RGB denoising solve**\n")
    print("| width | MetaDIP 50 steps (s) | DIP 1000 steps (s) | DIP(1000) / MetaDIP(50) |")
    print("|---|---|---|---|")
    dip_steps = 200 if quick else 1000
    for width in (32, 64):
        m = model(128, width, 20)
        op = Denoising((3, 128, 128), 25, 0)
        x = torch.rand(3, 128, 128, generator=torch.Generator().manual_seed(0))
        y = op.measure(x, torch.Generator().manual_seed(1))
        meta = solve(m, op, y, 50, device="cpu", show_progress=False).seconds
        dip = fit_dip(
            DIPPrior(m.prior.config, 0),
            op,
            y,
            DIPSettings(steps=dip_steps),
            torch.Generator().manual_seed(2),
            device="cpu",
            show_progress=False,
        ).seconds * (1000 / dip_steps)
        print(f"| {width} | {meta:.1f} | {dip:.1f} | {dip / meta:.1f}× |", flush=True)


def batched(quick: bool) -> None:
    print("\n**Batched MetaDIP solves (vmap over per-image parameter copies) vs sequential, 20 steps, width 32**\n")
    print("| size | B | sequential (images / s) | batched (images / s) | batched / sequential |")
    print("|---|---|---|---|---|")
    for size in (64, 128):
        m = model(size, 32, 20)
        op = Denoising((3, size, size), 25, 0)
        for b in (1, 4, 8):
            xs = torch.rand(b, 3, size, size, generator=torch.Generator().manual_seed(0))
            ys = op.measure(xs, torch.Generator().manual_seed(1))
            rates = {}
            for vec in (False, True):
                t = time.perf_counter()
                solve_batch(m, op, ys, 20, device="cpu", show_progress=False, vectorise=vec)
                rates[vec] = b / (time.perf_counter() - t)
            print(
                f"| {size} | {b} | {rates[False]:.2f} | {rates[True]:.2f} | {rates[True] / rates[False]:.2f}× |",
                flush=True,
            )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smaller grid and fewer steps (smoke run)")
    p.add_argument("--one", nargs=5, metavar=("K", "ORDER", "SIZE", "WIDTH", "REPS"), help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.one:
        k, order, size, width, reps = a.one
        print(json.dumps(one_outer_step(int(k), order == "first", int(size), int(width), int(reps))))
        return
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"
    print(
        f"# metadip meta-learning benchmark — torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{platform.machine()}, {device}"
    )
    outer_table(a.quick)
    solve_vs_dip(a.quick)
    batched(a.quick)


if __name__ == "__main__":
    main()
