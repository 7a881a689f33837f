"""PnP-ADMM's start for compressive sensing, side by side on validation crops.

Two starts x₀ = z₀ of PnP-ADMM + BM3D on the structured CS operator (σ = 25): the minimum-norm
least-squares solution A†y, and the operators' initial estimate, the least-squares constant image
plus the minimum-norm correction that fits the measurements
(:meth:`metadip.physics.operators.StructuredCompressiveSensing.initial_estimate`).  For both image
classes of the config, on the ``--images`` validation crops (interleaved across photographs, at the
config's image size), m/n = 1/4 and 1/8, σ_d and ρ fixed (``--sigma-d``, ``--rho``; by default
near the study's tuned CS points); PSNR of the start itself and after each of ``--iterations``
ADMM iterations, and the paired difference (initial estimate − A†y) with its 95% interval over
photographs (cluster-robust t).

Run:  .venv/bin/python bench/pnp_start.py [--images 8] [--config config/config.yaml]
The last line is ``iterations to reach the final PSNR within 0.1 dB (mean of N runs, every crop and ratio): A†y X,
initial estimate Y`` (the final PSNR: after the last of ``--iterations``).
"""

from __future__ import annotations

import argparse
import platform
import statistics
from functools import partial
from pathlib import Path

import torch

from metadip.core.metrics import psnr
from metadip.core.seeding import derived_seed
from metadip.datasets.sampling import load_evaluation_set
from metadip.models.denoisers import bm3d_denoise
from metadip.physics.operators import StructuredCompressiveSensing
from metadip.pipeline.config import load_config
from metadip.reporting.stats import summarize
from metadip.solvers.pnp import admm_iterates

STARTS = ("A†y", "initial estimate")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="config/config.yaml")
    p.add_argument("--images", type=int, default=8, help="validation crops per class")
    p.add_argument("--sigma-d", type=float, default=24.5, help="BM3D strength inside PnP-ADMM (0-255 scale)")
    p.add_argument("--rho", type=float, default=2.0, help="ADMM penalty")
    p.add_argument("--iterations", type=int, nargs="+", default=[10, 20, 40, 80, 160])
    p.add_argument("--ratios", type=float, nargs="+", default=[0.25, 0.125])
    a = p.parse_args()
    torch.set_num_threads(1)
    config = load_config(a.config)
    size, curated = config["meta"]["image_size"], Path(config["paths"]["curated"])
    profile = config["baselines"]["pnp"]["bm3d_profile"]
    denoiser = partial(bm3d_denoise, profile=profile)
    last = max(a.iterations)
    print(
        f"# PnP-ADMM start for CS — torch {torch.__version__}, one thread, {platform.machine()}, CPU; {size} px, "
        f"{a.images} validation crops per class; BM3D ({profile}) σ_d={a.sigma_d}, ρ={a.rho}"
    )
    cols = ["start", *(str(k) for k in a.iterations)]
    print(f"\n| problem | class | n images/photos | start | {' | '.join(f'PSNR at {c} (dB)' for c in cols)} |")
    print("|---|---|---|---|" + "---|" * len(cols))
    reach: dict[str, list[float]] = {s: [] for s in STARTS}
    for r, dataset in enumerate(dict.fromkeys(config["evaluate"]["roles"].values())):
        chosen = load_evaluation_set(
            curated / dataset, "val", a.images, 2, size, key="bench.images", photos_key="bench.min_photos"
        )
        shape = tuple(chosen.images.shape[1:])
        for k, ratio in enumerate(a.ratios):
            op = StructuredCompressiveSensing(shape, ratio, 25, seed=derived_seed(0, r, k))
            scores: dict[str, list[list[float]]] = {s: [] for s in STARTS}
            for i, x in enumerate(chosen.images):
                y = op.measure(x, torch.Generator().manual_seed(derived_seed(1, r, k, i)))
                for name, x0 in zip(STARTS, (op.A_dagger(y), op.initial_estimate(y)), strict=True):
                    iterates = admm_iterates(op, y, denoiser, a.sigma_d, a.rho, start=x0)
                    trace = [float(psnr(next(iterates).clamp(0, 1), x)) for _ in range(last)]
                    scores[name].append([float(psnr(x0.clamp(0, 1), x))] + [trace[t - 1] for t in a.iterations])
                    final = trace[-1]
                    reach[name].append(next(t + 1 for t, v in enumerate(trace) if v >= final - 0.1))
            for name in STARTS:
                means = [statistics.mean(s[c] for s in scores[name]) for c in range(len(cols))]
                print(
                    f"| CS m/n={ratio:g} | {dataset} | {len(chosen.ids)}/{len(set(chosen.sources))} | {name} | "
                    + " | ".join(f"{v:.2f}" for v in means)
                    + " |"
                )
            diffs = []
            for c in range(len(cols)):
                d = summarize(
                    [b[c] - s[c] for b, s in zip(scores[STARTS[1]], scores[STARTS[0]], strict=True)], chosen.sources
                )
                diffs.append(f"{d.mean:+.2f}" + ("" if d.ci_low is None else f" [{d.ci_low:+.2f}, {d.ci_high:+.2f}]"))
            print(f"| CS m/n={ratio:g} | {dataset} | | difference | " + " | ".join(diffs) + " |", flush=True)
    mean_reach = {s: statistics.mean(v) for s, v in reach.items()}
    print(
        "\niterations to reach the final PSNR within 0.1 dB "
        f"(mean of {len(reach[STARTS[0]])} runs, every crop and ratio): "
        f"A†y {mean_reach[STARTS[0]]:.1f}, initial estimate {mean_reach[STARTS[1]]:.1f}"
    )


if __name__ == "__main__":
    main()
