"""Trained DRUNets against BM3D on validation images: each denoiser's PSNR per image and noise level,
and the paired difference to BM3D with its 95% interval over source photographs (cluster-robust t).

The measurement that chooses the trained DRUNet's recipe (``baselines.drunet``) on validation data:
the same clean images, the same seeded noise (one draw per image and level) for every denoiser.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from metadip.core.metrics import psnr
from metadip.core.seeding import seeded_generator
from metadip.reporting.stats import interval_text, summarize

NOISE_PURPOSE = 11  # seed key of these validation noise draws

Denoiser = Callable[[Tensor, float], Tensor]  # (B, C, H, W) in [0, 1], σ on the 0-255 scale → same shape


def noisy_images(images: Tensor, sigma: float, seed: int) -> Tensor:
    """``images`` (N, C, H, W) plus white Gaussian noise of level ``sigma`` (0–255 scale), one seeded
    draw per image (image i's noise does not depend on N)."""
    noise = [
        torch.randn(img.shape, generator=seeded_generator(seed, NOISE_PURPOSE, round(sigma * 1000), i))
        for i, img in enumerate(images)
    ]
    return images + sigma / 255.0 * torch.stack(noise)


def denoiser_psnr(
    images: Tensor, sigmas: Sequence[float], denoisers: Mapping[str, Denoiser], seed: int
) -> dict[str, dict[float, list[float]]]:
    """PSNR (dB, clipped estimates, data range 1) of every denoiser on every image at every level:
    ``{name: {sigma: [psnr of image 0, 1, …]}}``."""
    out: dict[str, dict[float, list[float]]] = {name: {} for name in denoisers}
    for sigma in sigmas:
        noisy = noisy_images(images, sigma, seed)
        for name, denoise in denoisers.items():
            estimate = torch.cat([denoise(noisy[i : i + 1], sigma) for i in range(len(noisy))])
            out[name][sigma] = [float(v) for v in psnr(estimate, images)]
    return out


def gap_rows(
    scores: Mapping[str, Mapping[float, Sequence[float]]], photos: Sequence[str], dataset: str, reference: str
) -> list[dict[str, Any]]:
    """One row per denoiser other than ``reference`` and noise level: both mean PSNRs and the paired
    difference denoiser − reference with its interval over ``photos`` (one per image)."""
    rows = []
    for name, by_sigma in scores.items():
        if name == reference:
            continue
        for sigma, values in by_sigma.items():
            ref = scores[reference][sigma]
            diff = summarize([a - b for a, b in zip(values, ref, strict=True)], photos)
            rows.append(
                {
                    "denoiser": name,
                    "dataset": dataset,
                    "sigma": sigma,
                    "psnr": round(sum(values) / len(values), 3),
                    f"{reference}_psnr": round(sum(ref) / len(ref), 3),
                    "difference": diff.rounded(),
                }
            )
    return rows


def to_markdown(rows: Sequence[dict[str, Any]], reference: str) -> str:
    """The rows as a Markdown table, one line per denoiser, one column per dataset and level."""
    columns = sorted({(r["dataset"], r["sigma"]) for r in rows})
    names = list(dict.fromkeys(r["denoiser"] for r in rows))
    cell = {(r["denoiser"], r["dataset"], r["sigma"]): r for r in rows}
    head = [f"σ={s:g} {d}" for d, s in columns]
    lines = [
        f"PSNR (dB) on validation images; in brackets the paired difference to {reference} with its 95% "
        "interval over photographs.",
        "",
        "| denoiser | " + " | ".join(head) + " |",
        "|---|" + "---|" * len(head),
        f"| {reference} | "
        + " | ".join(
            f"{next(r for r in rows if (r['dataset'], r['sigma']) == c)[f'{reference}_psnr']:.2f}" for c in columns
        )
        + " |",
    ]
    for name in names:
        cells = []
        for d, s in columns:
            r = cell.get((name, d, s))
            if r is None:
                cells.append("")
                continue
            diff = r["difference"]
            ci = interval_text(diff["ci_low"], diff["ci_high"])
            cells.append(f"{r['psnr']:.2f} ({diff['mean']:+.2f}{ci}) n={diff['n_images']}/{diff['n_photos']}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
