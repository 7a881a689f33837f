"""BM3D's two profiles side by side on validation crops: quality (paired per image) and seconds per call.

"np" is the bm3d package's default (exact transform-coefficient variances from the noise PSD, made
for correlated noise); "classic" is its conventional mode, the original white-noise BM3D
(:func:`metadip.models.denoisers.bm3d_denoise`).  For both image classes of the config, on the
``--images`` validation crops (interleaved across photographs, at the config's image size):
denoising at σ = 15 and 25, and PnP-ADMM on the structured CS and PR operators at m/n = 1/4
(σ = 25; σ_d and ρ fixed per problem by ``--cs`` / ``--pr``, by default near the default run's tuned
points on validation crops; ``--iterations``), each image solved with both profiles.
Differences are classic − np, paired per image, with 95% intervals over photographs
(cluster-robust t); times are medians per BM3D call, measured interleaved in this process.

Run:  .venv/bin/python bench/bm3d_profiles.py [--images 4] [--config config/config.yaml]
The last line is ``classic/np seconds per call: X; PSNR classic − np: worst mean Y dB``.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import torch

from metadip.core.metrics import psnr
from metadip.core.seeding import derived_seed
from metadip.datasets.sampling import load_evaluation_set
from metadip.models.denoisers import bm3d_denoise
from metadip.physics.operators import StructuredCompressiveSensing, StructuredPhaseRetrieval
from metadip.pipeline.config import load_config
from metadip.reporting.stats import summarize
from metadip.solvers.pnp import PnPSettings, pnp_admm

PROFILES = ("np", "classic")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="config/config.yaml")
    p.add_argument("--images", type=int, default=4, help="validation crops per class")
    p.add_argument("--cs", type=float, nargs=2, default=(50.0, 2.0), metavar=("SIGMA_D", "RHO"), help="PnP for CS")
    p.add_argument("--pr", type=float, nargs=2, default=(35.0, 0.5), metavar=("SIGMA_D", "RHO"), help="PnP for PR")
    p.add_argument("--iterations", type=int, default=10)
    a = p.parse_args()
    torch.set_num_threads(1)
    config = load_config(a.config)
    size, curated = config["meta"]["image_size"], Path(config["paths"]["curated"])
    roles = config["evaluate"]["roles"]
    print(
        f"# BM3D profiles — torch {torch.__version__}, one thread, {platform.machine()}, CPU; {size} px, "
        f"{a.images} validation crops per class; PnP-ADMM (σ_d, ρ) CS {tuple(a.cs)}, PR {tuple(a.pr)}, "
        f"{a.iterations} iterations"
    )
    seconds: dict[str, list[float]] = {k: [] for k in PROFILES}

    def timed_denoiser(profile: str):
        def den(x: torch.Tensor, sigma: float) -> torch.Tensor:
            t = time.perf_counter()
            out = bm3d_denoise(x, sigma, profile)
            seconds[profile].append(time.perf_counter() - t)
            return out

        return den

    print("\n| problem | class | n images/photos | PSNR np (dB) | PSNR classic (dB) | classic − np (dB) [95% CI] |")
    print("|---|---|---|---|---|---|")
    worst = float("inf")
    for r, (role, dataset) in enumerate(roles.items()):
        chosen = load_evaluation_set(
            curated / dataset, "val", a.images, 2, size, key="bench.images", photos_key="bench.min_photos"
        )
        shape = tuple(chosen.images.shape[1:])
        problems = {
            "denoising σ=15": None,
            "denoising σ=25": None,
            "PnP CS m/n=1/4": (StructuredCompressiveSensing(shape, 0.25, 25, seed=0), a.cs),
            "PnP PR m/n=1/4": (StructuredPhaseRetrieval(shape, 0.25, 25, seed=0), a.pr),
        }
        for k, (name, problem) in enumerate(problems.items()):
            scores: dict[str, list[float]] = {k: [] for k in PROFILES}
            for i, x in enumerate(chosen.images):
                g = torch.Generator().manual_seed(derived_seed(0, r, k, i))
                if problem is None:
                    sigma = float(name.split("=")[1])
                    y = x + sigma / 255 * torch.randn(x.shape, generator=g)
                    for prof in PROFILES:
                        scores[prof].append(float(psnr(timed_denoiser(prof)(y, sigma).clamp(0, 1), x)))
                else:
                    op, (sigma_d, rho) = problem
                    y = op.measure(x, g)
                    settings = PnPSettings(sigma_d=sigma_d, rho=rho, iterations=a.iterations)
                    for prof in PROFILES:
                        scores[prof].append(float(psnr(pnp_admm(op, y, timed_denoiser(prof), settings).estimate, x)))
            diff = summarize([c - n for c, n in zip(scores["classic"], scores["np"], strict=True)], chosen.sources)
            worst = min(worst, diff.mean)
            ci = "" if diff.ci_low is None else f" [{diff.ci_low:.2f}, {diff.ci_high:.2f}]"
            print(
                f"| {name} | {role} ({dataset}) | {diff.n_images}/{diff.n_photos} | "
                f"{statistics.mean(scores['np']):.2f} | {statistics.mean(scores['classic']):.2f} | "
                f"{diff.mean:+.2f}{ci} |",
                flush=True,
            )
    med = {k: statistics.median(v) for k, v in seconds.items()}
    print(f"\nseconds per BM3D call (median of {len(seconds['np'])}): np {med['np']:.3f}, classic {med['classic']:.3f}")
    ratio = med["classic"] / med["np"]
    print(f"classic/np seconds per call: {ratio:.3f}; PSNR classic − np: worst mean {worst:+.2f} dB")


if __name__ == "__main__":
    main()
