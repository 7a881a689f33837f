"""Figures a person wants to look at: labelled image grids."""

from __future__ import annotations

import os
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from torch import Tensor

from metadip.core.atomic import atomic_path
from metadip.core.images import to_uint8


def save_image_grid(
    rows: Sequence[Sequence[tuple[str, Tensor | None]]],
    row_labels: Sequence[str],
    path: str | os.PathLike,
    title: str | None = None,
    cell_inches: float = 2.2,
) -> None:
    """Save a grid of ``(caption, (C, H, W) image or None)`` cells as a PNG, atomically.

    ``None`` leaves a cell blank (e.g. a measurement that is not an image).
    """
    ncols = max(len(r) for r in rows)
    fig, axes = plt.subplots(
        len(rows), ncols, figsize=(cell_inches * ncols, cell_inches * len(rows) + 0.4), squeeze=False
    )
    for r, (cells, label) in enumerate(zip(rows, row_labels, strict=True)):
        for c in range(ncols):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            for side in ax.spines.values():
                side.set_visible(False)
            if c < len(cells):
                caption, img = cells[c]
                if img is not None:
                    arr = to_uint8(img)
                    ax.imshow(arr, cmap="gray" if arr.ndim == 2 else None, vmin=0, vmax=255, interpolation="nearest")
                else:
                    ax.text(0.5, 0.5, "(not an image)", ha="center", va="center", fontsize=8, color="0.4")
                ax.set_title(caption, fontsize=8)
            if c == 0:
                ax.set_ylabel(label, fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def save_convergence_figure(
    conv: Sequence[dict],
    panels: Sequence[tuple[str, str, str]],
    path: str | os.PathLike,
    title: str | None = None,
    metadata: dict[str, str] | None = None,
) -> None:
    """Figure 2: NMSE vs iteration (log–log), one panel per ``(task, dataset, panel title)``, one
    line per series (mean over images) with its 95% interval over photographs as a shaded band
    (rows' ``nmse_ci_low`` / ``nmse_ci_high``; none with fewer than 2 photographs) and the minimum
    and maximum image as thin dotted lines."""
    ncols = max(1, min(len(panels), 3 if len(panels) % 3 == 0 else 4))
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.3 * nrows + 0.5), squeeze=False)
    names = sorted({r["series"] for r in conv})
    colours = {n: plt.cm.tab10(i % 10) for i, n in enumerate(names)}
    for ax, (task, dataset, caption) in zip(axes.flat, panels, strict=False):
        for name in names:
            pts = [r for r in conv if r["task"] == task and r["dataset"] == dataset and r["series"] == name]
            if not pts:
                continue
            steps = [r["step"] for r in pts]
            ax.plot(
                steps,
                [r["nmse_mean"] for r in pts],
                color=colours[name],
                lw=1.6,
                ls="--" if "EMA" in name else "-",
                label=f"{name} (n={pts[0]['images']} images / {pts[0].get('photos', '?')} photos)",
            )
            if pts[0].get("nmse_ci_low") is not None:
                ax.fill_between(
                    steps,
                    [r["nmse_ci_low"] for r in pts],
                    [r["nmse_ci_high"] for r in pts],
                    color=colours[name],
                    alpha=0.25,
                    lw=0,
                )
            for k in ("nmse_min", "nmse_max"):
                ax.plot(steps, [r[k] for r in pts], color=colours[name], lw=0.6, ls=":", alpha=0.6)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(caption, fontsize=9)
        ax.set_xlabel("iteration")
        ax.set_ylabel("NMSE ‖x̂ − x‖² / ‖x‖²")
        ax.grid(True, which="both", alpha=0.3)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(
        handles,
        labels,
        loc="lower center",
        bbox_to_anchor=(0.5, 0.02),
        ncol=min(3, max(1, len(labels))),
        fontsize=8,
        frameon=False,
    )
    fig.text(
        0.5,
        0.005,
        "line: mean over images; band: its 95% t interval over source photographs; dotted: min and max image",
        ha="center",
        va="bottom",
        fontsize=7,
        color="0.35",
    )
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout(rect=(0, 0.09, 1, 1))
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, metadata=metadata)
    plt.close(fig)
