"""The PnP-ADMM grid search of the paper: a 3×3×3 grid over (denoiser strength σ_d, penalty ρ,
iterations), tuned per inverse problem and denoiser on *validation* images only.

ADMM is deterministic and its iterate after k iterations does not depend on the total, so each
(σ_d, ρ) pair runs once for max(iterations) and the PSNR of every iteration count is read off
its trace: 9 runs instead of 27, identical results.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np
from torch import Tensor

from metadip.maml import TaskSpec
from metadip.pnp import Denoiser, PnPSettings, pnp_admm
from metadip.seeding import seeded_generator


def grid_search(
    problem: TaskSpec,
    denoiser: Denoiser,
    grid: dict[str, Sequence[float]],
    images: Tensor,
    image_ids: Sequence[str],
    seed: int,
    pr_steps: int = 10,
) -> dict[str, Any]:
    """Mean validation PSNR of every grid point and the best one (ties: the earlier grid point)."""
    if set(grid) != {"sigma_d", "rho", "iterations"} or not all(grid.values()):
        raise ValueError(f"grid needs non-empty lists sigma_d, rho and iterations, got {sorted(grid)}")
    op, ys = problem.simulate(images, seeded_generator(seed, 3))
    iterations = sorted(int(i) for i in grid["iterations"])
    results = []
    for sigma_d, rho in itertools.product(grid["sigma_d"], grid["rho"]):
        traces = [
            pnp_admm(
                op, y, denoiser, PnPSettings(float(sigma_d), float(rho), iterations[-1], pr_steps), x_true=x
            ).trace["psnr"]
            for y, x in zip(ys, images, strict=True)
        ]
        for it in iterations:
            results.append(
                {
                    "sigma_d": float(sigma_d),
                    "rho": float(rho),
                    "iterations": it,
                    "mean_psnr": round(float(np.mean([t[it - 1] for t in traces])), 4),
                }
            )
    best = max(results, key=lambda r: r["mean_psnr"])
    return {
        "problem": {"kind": problem.kind, "sigma": problem.sigma, "ratio": problem.ratio, "colour": problem.colour},
        "grid": {k: list(v) for k, v in grid.items()},
        "validation_images": list(image_ids),
        "seed": seed,
        "results": results,
        "best": best,
    }
