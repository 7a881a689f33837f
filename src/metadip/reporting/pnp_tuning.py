"""The PnP-ADMM tuning table: for every tuned (task, denoiser), the validation images and photographs
it was tuned on, every grid searched in order, the chosen point and whether it is interior.

Reads the JSON records of :func:`metadip.solvers.pnp_tuning.grid_search` as written by
``stages/tune_pnp.py`` (with ``task_name``, ``denoiser`` and ``validation_photos`` added).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from metadip.core.csv_text import csv_text

FIELDS = [
    "task",
    "denoiser",
    "validation_images",
    "validation_photos",
    "grids_searched",
    "sigma_d",
    "rho",
    "iterations",
    "mean_psnr_db",
    "grid_max_psnr_db",
    "interior",
    "grids",
]
REQUIRED = ("task_name", "denoiser", "grids", "best", "grid_max", "interior", "validation_images", "validation_photos")


def _values(values: Sequence[float]) -> str:
    return "/".join(f"{v:g}" for v in values)


def grid_text(grid: Mapping[str, Sequence[float]]) -> str:
    """One grid as ``σ_d 20/35/50, ρ 0.1/0.5/2, iterations 5/10/20``."""
    return f"σ_d {_values(grid['sigma_d'])}, ρ {_values(grid['rho'])}, iterations {_values(grid['iterations'])}"


def tuning_rows(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per tuning record, sorted by task then denoiser; ``grids`` joins every grid searched
    with ' | '. Raises KeyError naming the missing fields of a record, ValueError (or TypeError) on a
    value that is not a number."""
    rows = []
    for record in records:
        missing = [k for k in REQUIRED if k not in record]
        if missing:
            raise KeyError(f"a PnP tuning record without {', '.join(missing)}")
        best = record["best"]
        rows.append(
            {
                "task": record["task_name"],
                "denoiser": record["denoiser"],
                "validation_images": len(record["validation_images"]),
                "validation_photos": len(set(record["validation_photos"])),
                "grids_searched": len(record["grids"]),
                "sigma_d": float(best["sigma_d"]),
                "rho": float(best["rho"]),
                "iterations": int(best["iterations"]),
                "mean_psnr_db": round(float(best["mean_psnr"]), 2),
                "grid_max_psnr_db": round(float(record["grid_max"]["mean_psnr"]), 2),
                "interior": bool(record["interior"]),
                "grids": " | ".join(grid_text(g) for g in record["grids"]),
            }
        )
    return sorted(rows, key=lambda r: (r["task"], r["denoiser"]))


def to_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    return csv_text(rows, FIELDS)


def to_markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    """The chosen points (one line per task and denoiser), then every grid searched per tuning."""
    out = [
        "PnP-ADMM's tuned settings: mean PSNR over the validation images at the chosen point (of the points",
        "within baselines.pnp.flat_db of the last grid's highest mean, the one on the fewest movable edges,",
        "then with the fewest iterations) and that highest mean; a grid whose chosen point lies on an edge",
        "is re-centred on it and searched again (baselines.pnp.max_moves).",
        "",
        "| task | denoiser | validation images (photographs) | grids searched | σ_d | ρ | iterations "
        "| mean PSNR (dB) | grid's highest (dB) | interior |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        out.append(
            f"| {r['task']} | {r['denoiser']} | {r['validation_images']} ({r['validation_photos']}) "
            f"| {r['grids_searched']} | {r['sigma_d']:g} | {r['rho']:g} | {r['iterations']} "
            f"| {r['mean_psnr_db']:.2f} | {r['grid_max_psnr_db']:.2f} "
            f"| {'yes' if r['interior'] else 'no: moves ran out'} |"
        )
    out += ["", "Grids searched, in order:", ""]
    for r in rows:
        grids = r["grids"].split(" | ")
        out.append(f"- {r['task']}, {r['denoiser']}: " + "; then ".join(grids))
    return "\n".join(out) + "\n"
