"""Seconds per DRUNet training step in the NCHW layout against channels-last (NHWC), side by side.

The config's DRUNet (``baselines.drunet.network``) on random batches of its training size
(``baselines.drunet.train``: batch × 3 × patch × patch, σ ~ U(0, sigma_max)): forward, L1 loss,
backward and an Adam step, as in ``metadip.models.denoiser_training``. The two layouts alternate
within each round so that both see the machine's load of the same moment; the ratio is the median
over rounds. ``metadip.models.denoiser_training.memory_format`` is the choice this measures.

Run:  .venv/bin/python bench/denoiser_training.py [--quick] [--threads N] [--config config/config.yaml]
The last line is ``nchw/channels-last seconds per step: X`` (above 1: channels-last is faster).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

from metadip.models.denoisers import DRUNet, DRUNetConfig
from metadip.pipeline.config import load_config


def seconds_per_step(layout: torch.memory_format, config: DRUNetConfig, batch: int, patch: int, steps: int) -> float:
    """Wall seconds per training step after two warm-up steps (fresh network and optimiser)."""
    net = DRUNet(config, seed=0).to(memory_format=layout)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(0)
    clean = torch.rand(batch, config.channels, patch, patch, generator=g)
    sigma = torch.rand(batch, generator=g) * 50
    noisy = (clean + sigma.reshape(-1, 1, 1, 1) / 255 * torch.randn(clean.shape, generator=g)).contiguous(
        memory_format=layout
    )

    def step() -> None:
        loss = (net(noisy, sigma) - clean).abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(2):
        step()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - t) / steps


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="fewer rounds and steps (under a minute on 2 cores)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (the workflow's training job uses 1)")
    p.add_argument("--config", default="config/config.yaml")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    drunet = load_config(a.config)["baselines"]["drunet"]
    net_cfg = DRUNetConfig(channels=3, widths=tuple(drunet["network"]["widths"]), blocks=drunet["network"]["blocks"])
    batch, patch = drunet["train"]["batch"], drunet["train"]["patch"]
    rounds, steps = (3, 4) if a.quick else (5, 10)
    print(
        f"# DRUNet training step — torch {torch.__version__}, {a.threads} thread(s), {platform.machine()}, CPU; "
        f"widths {list(net_cfg.widths)}, {net_cfg.blocks} blocks, batch {batch} × {patch}² px, {a.config}"
    )
    nchw, nhwc = [], []
    for _ in range(rounds):
        nchw.append(seconds_per_step(torch.contiguous_format, net_cfg, batch, patch, steps))
        nhwc.append(seconds_per_step(torch.channels_last, net_cfg, batch, patch, steps))
    print(f"s/step NCHW: {' '.join(f'{t:.3f}' for t in nchw)}")
    print(f"s/step channels-last: {' '.join(f'{t:.3f}' for t in nhwc)}")
    print(
        f"nchw/channels-last seconds per step: {statistics.median(x / y for x, y in zip(nchw, nhwc, strict=True)):.2f}"
    )


if __name__ == "__main__":
    main()
