"""Benchmark of the imaging core on this machine (not a test; numbers go to docs/performance.md).

1. Seconds per vanilla-DIP step (forward + backward + Adam) at 128×128 RGB for skip-net widths
   32 / 64 / 128 (depth 5, Fourier features off and on).
2. Memory and time per application of dense vs structured CS and PR operators at
   n = 128·128·3, m = n/4 (joint colour): forward A x, adjoint, and forward + backward of the DIP
   data loss — with the dense/structured ratio measured side by side in the same run.

Run:  .venv/bin/python bench/core.py  [--quick]
"""

from __future__ import annotations

import argparse
import platform
import time
from functools import partial

import torch
from timing import timed

from metadip.models.networks import DIPConfig, DIPPrior, count_parameters
from metadip.physics.operators import (
    CompressiveSensing,
    PhaseRetrieval,
    StructuredCompressiveSensing,
    StructuredPhaseRetrieval,
)


def dip_steps(widths: tuple[int, ...], reps: int) -> None:
    print("\n### Seconds per DIP step, 128×128 RGB, depth-5 skip net (forward + backward + Adam)\n")
    print("| width | Fourier features | parameters | s / step | steps / s |")
    print("|---|---|---|---|---|")
    for width in widths:
        for ff in (0, 256):
            prior = DIPPrior(
                DIPConfig(
                    image_shape=(3, 128, 128), channels_down=(width,) * 5, channels_up=(width,) * 5, fourier_features=ff
                ),
                0,
            )
            opt = torch.optim.Adam(prior.parameters(), lr=0.01)
            target = torch.rand(1, 3, 128, 128)

            def step(prior=prior, opt=opt, target=target):
                loss = (prior(torch.randn(prior.latent_shape) / 30) - target).square().mean()
                opt.zero_grad()
                loss.backward()
                opt.step()

            s = timed(step, reps)
            print(f"| {width} | {ff} | {count_parameters(prior):,} | {s:.3f} | {1 / s:.1f} |")


def operators(reps: int) -> None:
    shape = (3, 128, 128)
    n = 3 * 128 * 128
    print(f"\n### Operators at n = {n} (128×128×3, joint colour), m = n/4 = {n // 4}\n")
    print("| operator | memory (MiB) | build (s) | A x (ms) | adjoint (ms) | loss fwd+bwd (ms) |")
    print("|---|---|---|---|---|---|")
    x = torch.rand(*shape)
    results = {}
    for cls in (CompressiveSensing, StructuredCompressiveSensing, PhaseRetrieval, StructuredPhaseRetrieval):
        t = time.perf_counter()
        op = cls(shape, 0.25, 25, seed=0)
        build = time.perf_counter() - t
        mem = sum(b.numel() * b.element_size() for b in op.buffers()) / 2**20
        y = op.measure(x, torch.Generator().manual_seed(1))
        if op.linear:
            fwd, adj = partial(op.A, x), partial(op.A_adjoint, y)
        else:
            yc = op.linear_A(x)
            fwd, adj = partial(op.linear_A, x), partial(op.linear_adjoint, yc)
        xg = x.clone().requires_grad_(True)

        def loss_fb(op=op, xg=xg, y=y):
            op.data_loss(xg, y).backward()

        row = (mem, build, 1e3 * timed(fwd, reps), 1e3 * timed(adj, reps), 1e3 * timed(loss_fb, reps))
        results[op.kind] = row
        print(f"| {op.kind} | {row[0]:,.1f} | {row[1]:.2f} | {row[2]:.2f} | {row[3]:.2f} | {row[4]:.2f} |")
        del op
    print("\n| ratio dense / structured | memory | A x | adjoint | loss fwd+bwd |")
    print("|---|---|---|---|---|")
    for dense, fast in (("cs", "cs_fast"), ("pr", "pr_fast")):
        d, f = results[dense], results[fast]
        print(
            f"| {dense} / {fast} | {d[0] / f[0]:,.0f}× | {d[2] / f[2]:.0f}× | {d[3] / f[3]:.0f}× | {d[4] / f[4]:.0f}× |"
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="fewer repetitions (smoke run)")
    a = p.parse_args()
    reps = 3 if a.quick else 10
    print(
        f"# metadip core benchmark — torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{platform.processor() or platform.machine()}, "
        f"{torch.cuda.get_device_name() if torch.cuda.is_available() else 'CPU'}"
    )
    dip_steps((32, 64, 128), reps)
    operators(reps)


if __name__ == "__main__":
    main()
