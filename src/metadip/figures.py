"""Figures a person wants to look at: labelled image grids."""

from __future__ import annotations

import os
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from torch import Tensor  # noqa: E402

from metadip.atomic import atomic_path  # noqa: E402
from metadip.images import to_uint8  # noqa: E402


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
    fig, axes = plt.subplots(len(rows), ncols, figsize=(cell_inches * ncols, cell_inches * len(rows) + 0.4), squeeze=False)
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
