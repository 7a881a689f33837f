"""Paper-scale timings on the current device (meant for a GPU node): 128×128 RGB, the full-width
skip net (width 128, depth 5) with 256 Fourier features, K = 20.

1. One DIP (Adam) step, and DIP(1000) extrapolated from it.
2. MetaDIP(50): one image, and per image in a vmapped batch of 8.
3. One MAML outer step (meta-batch 4, tasks in a loop), first vs second order, with peak GPU memory.

Run:  python3 bench/paper_scale.py [--device cuda] [--size 128 --width 128]
"""

from __future__ import annotations

import argparse
import time

import torch

from metadip.meta.inner_loop import InnerSettings, MetaModel, solve, solve_batch, task_loss
from metadip.models.networks import DIPConfig, DIPPrior
from metadip.physics.operators import Denoising
from metadip.solvers.dip import DIPSettings, fit_dip


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--width", type=int, default=128)
    p.add_argument("--fourier", type=int, default=256)
    p.add_argument("--k", type=int, default=20)
    a = p.parse_args()
    dev = torch.device(a.device)
    shape = (3, a.size, a.size)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    print(
        f"device {name}, torch {torch.__version__}, image {shape}, width {a.width}, Fourier features "
        f"{a.fourier}, K {a.k}"
    )

    def model() -> MetaModel:
        cfg = DIPConfig(
            image_shape=shape, channels_down=(a.width,) * 5, channels_up=(a.width,) * 5, fourier_features=a.fourier
        )
        return MetaModel(DIPPrior(cfg, 0), InnerSettings(steps=a.k, lr_init=1.0, momentum=0.5)).to(dev)

    op = Denoising(shape, 25, 0).to(dev)
    xs = torch.rand(8, *shape, generator=torch.Generator().manual_seed(0))
    ys = op.measure(xs, torch.Generator().manual_seed(1))
    m = model()
    print(f"parameters: {sum(v.numel() for v in m.prior.parameters()):,}")
    fit_dip(
        m.prior, op, ys[0], DIPSettings(steps=5), torch.Generator().manual_seed(2), device=dev, show_progress=False
    )  # warm-up
    r = fit_dip(
        m.prior, op, ys[0], DIPSettings(steps=50), torch.Generator().manual_seed(2), device=dev, show_progress=False
    )
    step = r.seconds / 50
    print("| measurement | seconds |\n|---|---|")
    print(f"| DIP step (Adam) | {step:.4f} |\n| DIP(1000), extrapolated | {1000 * step:.2f} |")
    m = model()
    solve(m, op, ys[0], 5, device=dev, show_progress=False)  # warm-up
    r = solve(m, op, ys[0], 50, device=dev, show_progress=False)
    print(f"| MetaDIP(50), one image | {r.seconds:.3f} |")
    rb = solve_batch(m, op, ys, 50, device=dev, show_progress=False, vectorise=True)
    print(f"| MetaDIP(50), per image in a vmapped batch of 8 | {rb[0].seconds:.3f} |")
    for first_order in (True, False):
        m = model()
        opt = torch.optim.Adam(m.parameters(), lr=1e-3)
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(dev)
        times = []
        for _ in range(3):
            sync(dev)
            t = time.perf_counter()
            opt.zero_grad()
            loss = sum(task_loss(m, op, ys[b].to(dev), xs[b].to(dev), a.k, first_order) for b in range(4)) / 4
            loss.backward()
            opt.step()
            sync(dev)
            times.append(time.perf_counter() - t)
        peak = torch.cuda.max_memory_allocated(dev) / 2**30 if dev.type == "cuda" else float("nan")
        print(
            f"| MAML outer step, {'first' if first_order else 'second'} order, meta-batch 4 (median of 3; "
            f"peak {peak:.1f} GiB) "
            f"| {sorted(times)[1]:.2f} |"
        )


if __name__ == "__main__":
    main()
