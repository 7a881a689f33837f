"""The PnP-ADMM grid search of the paper: a 3×3×3 grid over (denoiser strength σ_d, penalty ρ,
iterations), tuned per inverse problem and denoiser on *validation* images only.

As one tunes by hand, a grid whose chosen point (below) lies on an edge of an axis is moved: that
axis is re-centred on the chosen value (geometric steps, the same ratio as the grid's neighbouring
values) and the search repeats, at most ``max_moves`` times, until the chosen point is interior on
every axis that can still move (σ_d ≤ 255 and at least one iteration bound them). Every grid
searched is recorded.

Where the validation PSNR is flat (ADMM near its fixed point: doubling the iterations, or a step of
σ_d, changes the mean by hundredths of a dB), chasing the grid's single best point moves the grid
for nothing. So the chosen point of a grid is, among its points within ``flat_db`` dB of its best
mean, the one on the fewest movable edges, then with the fewest iterations (the cheapest), then
the highest mean; ``flat_db = 0`` keeps the best point (ties: the earlier one).

ADMM is deterministic and its iterate after k iterations does not depend on the total, so each
(σ_d, ρ) pair runs once up to the largest iteration count and the PSNR of every iteration count is
read off its trace; runs are kept across moves and extended (not restarted) when a move raises the
iteration count.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from torch import Tensor

from metadip.core.metrics import psnr
from metadip.core.seeding import seeded_generator
from metadip.physics.tasks import TaskSpec
from metadip.solvers.pnp import Denoiser, PnPSettings, admm_iterates

AXES = ("sigma_d", "rho", "iterations")


def _moved(values: list[float], best: float, axis: str) -> list[float] | None:
    """``values`` (sorted) re-centred on ``best`` — ``[best / q, best, best · q]`` with q the ratio of
    the two values at that edge — when ``best`` is the first or last of ≥ 2 values; None when it is
    interior, the axis has one value or starts at 0 (no geometric step), or the move would leave
    the axis' range (σ_d ≤ 255, iterations ≥ 1, integer)."""
    if len(values) < 2 or best not in (values[0], values[-1]) or values[0] <= 0:
        return None
    q = values[1] / values[0] if best == values[0] else values[-1] / values[-2]
    new = [best / q, best, best * q]
    if axis == "iterations":
        new = [float(round(v)) for v in new]
        if new[0] < 1 or len(set(new)) < 3:
            return None
    elif axis == "sigma_d" and new[-1] > 255:
        return None
    return [round(v, 4) for v in new]


def choose(
    points: Sequence[tuple[float, float, int]],
    scores: dict[tuple[float, float, int], float],
    current: dict[str, list[float]],
    flat_db: float = 0.0,
) -> tuple[float, float, int]:
    """The chosen point of one grid (``points`` in grid order, ``current`` its axes): among the points
    within ``flat_db`` dB of the grid's best mean, the fewest movable edges, then the fewest
    iterations, then the highest mean, then the earlier point."""
    top = max(scores[p] for p in points)
    near = [p for p in points if round(top - scores[p], 4) <= flat_db]  # scores carry 4 decimals
    if flat_db == 0:
        return near[0]

    def key(i_p: tuple[int, tuple[float, float, int]]) -> tuple[int, int, float, int]:
        i, p = i_p
        edges = sum(_moved(current[k], float(v), k) is not None for k, v in zip(AXES, p, strict=True))
        return edges, p[2], -scores[p], i

    return min(enumerate(near), key=key)[1]


def grid_search(
    task: TaskSpec,
    denoiser: Denoiser,
    grid: dict[str, Sequence[float]],
    images: Tensor,
    image_ids: Sequence[str],
    seed: int,
    pr_steps: int = 10,
    max_moves: int = 0,
    flat_db: float = 0.0,
) -> dict[str, Any]:
    """Mean validation PSNR of every grid point searched and the chosen one (:func:`choose`).

    Returns the task, ``grids`` (every grid searched, in order), ``results`` (every point, once),
    ``best`` (the chosen point), ``grid_max`` (the last grid's highest mean; the chosen point is
    within ``flat_db`` dB of it) and ``interior`` (whether the chosen point is interior on every axis
    of ≥ 2 values that could move, or ``max_moves`` ran out first)."""
    if flat_db < 0 or max_moves < 0:
        raise ValueError(f"flat_db must be >= 0 dB and max_moves >= 0, got {flat_db} and {max_moves}")
    if set(grid) != set(AXES) or not all(grid.values()):
        raise ValueError(f"grid needs non-empty lists sigma_d, rho and iterations, got {sorted(grid)}")
    op, ys = task.simulate(images, seeded_generator(seed, 3))
    # per (σ_d, ρ) and validation image: its ADMM run and the PSNR of each iterate taken so far
    runs: dict[tuple[float, float], list[tuple[Iterator[Tensor], list[float]]]] = {}
    scores: dict[tuple[float, float, int], float] = {}
    current = {k: sorted(float(v) for v in grid[k]) for k in AXES}
    grids: list[dict[str, list]] = []
    for search in range(max_moves + 1):
        grids.append({k: [int(v) if k == "iterations" else v for v in current[k]] for k in AXES})
        iterations = [int(i) for i in current["iterations"]]
        for sigma_d, rho in itertools.product(current["sigma_d"], current["rho"]):
            PnPSettings(sigma_d, rho, iterations[-1], pr_steps)  # refuse an invalid point before running it
            run = runs.setdefault(
                (sigma_d, rho), [(admm_iterates(op, y, denoiser, sigma_d, rho, pr_steps), []) for y in ys]
            )
            for (iterates, trace), x in zip(run, images, strict=True):
                while len(trace) < iterations[-1]:
                    trace.append(float(psnr(next(iterates), x)))
            for it in iterations:
                scores[(sigma_d, rho, it)] = round(float(np.mean([t[it - 1] for _, t in run])), 4)
        points = list(itertools.product(current["sigma_d"], current["rho"], iterations))
        best = choose(points, scores, current, flat_db)
        moves = {k: _moved(current[k], float(v), k) for k, v in zip(AXES, best, strict=True)}
        if all(m is None for m in moves.values()) or search == max_moves:
            break
        current = {k: moves[k] if moves[k] is not None else current[k] for k in AXES}
    interior = all(m is None for m in moves.values())
    top = max(points, key=lambda p: scores[p])
    return {
        "task": {"kind": task.kind, "sigma": task.sigma, "ratio": task.ratio, "colour": task.colour},
        "grid": grids[0],
        "grids": grids,
        "interior": interior,
        "validation_images": list(image_ids),
        "seed": seed,
        "results": [
            {"sigma_d": s, "rho": r, "iterations": i, "mean_psnr": v} for (s, r, i), v in sorted(scores.items())
        ],
        "flat_db": flat_db,
        "best": {"sigma_d": best[0], "rho": best[1], "iterations": best[2], "mean_psnr": scores[best]},
        "grid_max": {"sigma_d": top[0], "rho": top[1], "iterations": top[2], "mean_psnr": scores[top]},
    }
