"""Benchmark of the baselines at 128×128 RGB on this machine (numbers for docs/performance.md).

Seconds per image for BM3D, DRUNet inference (official size and the CPU-scale default),
PnP-ADMM + BM3D / + DRUNet per task (CS and PR at m/n = 1/4, 10 iterations), and the PnP x-update
alone for the dense vs the structured operators, side by side in one run.

Run:  .venv/bin/python bench/baselines.py  [--quick]
"""

from __future__ import annotations

import argparse
import platform
import time
from functools import partial

import torch
from timing import timed

from metadip.models.denoisers import DRUNet, DRUNetConfig, DRUNetDenoiser, bm3d_denoise
from metadip.physics.operators import (
    CompressiveSensing,
    PhaseRetrieval,
    StructuredCompressiveSensing,
    StructuredPhaseRetrieval,
)
from metadip.solvers.pnp import DataProx, PnPSettings, pnp_admm


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true")
    a = p.parse_args()
    reps = 1 if a.quick else 3
    shape = (3, 128, 128)
    x = torch.rand(shape, generator=torch.Generator().manual_seed(0))
    noisy = x + 25 / 255 * torch.randn(shape, generator=torch.Generator().manual_seed(1))
    print(
        f"# metadip baselines benchmark — torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{platform.machine()}, CPU"
    )
    official = DRUNetDenoiser(DRUNet(DRUNetConfig(channels=3)), "cpu")
    small = DRUNetDenoiser(DRUNet(DRUNetConfig(channels=3, widths=(16, 32, 64, 128), blocks=2)), "cpu")
    print("\n**Denoisers, one 128×128 RGB image, σ = 25**\n")
    print("| denoiser | s / image |")
    print("|---|---|")
    print(f"| BM3D (bm3d_rgb) | {timed(lambda: bm3d_denoise(noisy, 25), reps):.2f} |", flush=True)
    print(f"| DRUNet, official size (32.6 M parameters) | {timed(lambda: official(noisy, 25), reps):.2f} |", flush=True)
    print(
        f"| DRUNet, CPU-scale default (widths 16-128, 2 blocks) | {timed(lambda: small(noisy, 25), reps):.3f} |",
        flush=True,
    )

    print("\n**PnP-ADMM x-update (data prox), 128×128 RGB, m/n = 1/4, ρ = 0.5: dense vs structured**\n")
    print("| operator | set-up (s) | s / x-update | dense / structured |")
    print("|---|---|---|---|")
    prox_times = {}
    for cls in (CompressiveSensing, StructuredCompressiveSensing, PhaseRetrieval, StructuredPhaseRetrieval):
        op = cls(shape, 0.25, 25, seed=0)
        y = op.measure(x, torch.Generator().manual_seed(2))
        t = time.perf_counter()
        prox = DataProx(op, y, 0.5)
        setup = time.perf_counter() - t
        s = timed(partial(prox, x, x), reps)
        prox_times[op.kind] = s
        ratio = f"{prox_times[op.kind.replace('_fast', '')] / s:.0f}×" if op.kind.endswith("_fast") else ""
        print(f"| {op.kind} | {setup:.2f} | {s:.4f} | {ratio} |", flush=True)
        del op, prox

    print("\n**PnP-ADMM, 10 iterations, structured operators, 128×128 RGB, m/n = 1/4**\n")
    print("| task | denoiser | s / image |")
    print("|---|---|---|")
    for cls in (StructuredCompressiveSensing, StructuredPhaseRetrieval):
        op = cls(shape, 0.25, 25, seed=0)
        y = op.measure(x, torch.Generator().manual_seed(2))
        settings = PnPSettings(sigma_d=25, rho=0.5, iterations=10)
        for name, den in (("BM3D", bm3d_denoise), ("DRUNet official size", official), ("DRUNet CPU-scale", small)):
            s = timed(partial(pnp_admm, op, y, den, settings), 1)
            print(f"| {op.kind} | {name} | {s:.1f} |", flush=True)


if __name__ == "__main__":
    main()
