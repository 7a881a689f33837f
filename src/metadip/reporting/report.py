"""Render the results of a run: Tables 1–3 (Markdown, LaTeX, CSV), Figure 2 (convergence) and
Figures 3–5 (qualitative grids: ground truth, measurement where it is an image, every method)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from torch import Tensor

from metadip.core.atomic import write_text
from metadip.pipeline.evaluation import decode_image, measure_image, setting_operator
from metadip.reporting.figures import save_convergence_figure, save_image_grid
from metadip.reporting.settings import ReportSettings
from metadip.reporting.tables import (
    ROLES,
    TITLES,
    build_table,
    convergence_rows,
    data_label,
    to_csv,
    to_latex,
    to_markdown,
)

FIGURE_OF_TABLE = {1: 3, 2: 4, 3: 5}


def qualitative_grid(table: int, rows: list[dict[str, Any]], settings: ReportSettings, truth: dict[str, Tensor]):
    """Grid rows for the qualitative figure of ``table``: per task, class and image (the first
    ``evaluate.qualitative_images``), ground truth, the measurement when it is an image, and each
    method variant's estimate with its PSNR; ``truth``: dataset → its evaluated images (N, 3, H, W)."""
    tasks = settings.tasks_of(table)
    order = {name: i for i, name in enumerate(settings.methods)}
    grid, labels = [], []
    for task in tasks:
        spec = settings.tasks[task]
        for role in ROLES:
            dataset = settings.roles[role]
            mine = [r for r in rows if r["task"] == task and r["dataset"] == dataset]
            for index in sorted({r["image_index"] for r in mine})[: settings.qualitative_images]:
                x = truth[dataset][index]
                image_rows = sorted(
                    (r for r in mine if r["image_index"] == index), key=lambda r: (order[r["method_name"]], -r["steps"])
                )
                cells: list[tuple[str, Tensor | None]] = [("ground truth", x)]
                if spec["kind"] == "denoising":
                    op, _ = setting_operator(dict(spec), tuple(x.shape), settings.seed, task, dataset)
                    cells.append(
                        (
                            f"noisy, σ={spec['sigma']:g}",
                            measure_image(op, x, settings.seed, task, dataset, index)[0].clamp(0, 1),
                        )
                    )
                else:
                    cells.append(("measurement", None))
                for r in image_rows:
                    cells.append(
                        (f"{r['label']}\n{r['psnr']:.2f} dB", decode_image(r["estimate"], r["height"], r["width"]))
                    )
                    if settings.kind_of(r["method_name"]) == "dip" and r["psnr_last"] != r["psnr"]:
                        cells.append(
                            (
                                f"{r['label']}, last\n{r['psnr_last']:.2f} dB",
                                decode_image(r["estimate_last"], r["height"], r["width"]),
                            )
                        )
                grid.append(cells)
                labels.append(f"{task} · {role}\n{image_rows[0]['image_id'].rsplit('/', 1)[-1]}")
    return grid, labels


def render(
    settings: ReportSettings,
    rows: list[dict[str, Any]],
    truth: dict[str, Tensor],
    tables_dir: str | os.PathLike,
    figures_dir: str | os.PathLike,
    metadata: dict[str, str] | None = None,
) -> list[Path]:
    """Write every table and figure the config's tasks call for; returns the paths written.
    ``metadata``: PNG text chunks of Figure 2, the file the workflow reads the step's record from."""
    tables_dir, figures_dir = Path(tables_dir), Path(figures_dir)
    written = []
    for table in (1, 2, 3):
        t = build_table(table, rows, settings)
        if t is None:
            continue
        for ext, text in (("md", to_markdown(t)), ("tex", to_latex(t)), ("csv", to_csv(t))):
            write_text(tables_dir / f"table{table}.{ext}", text)
            written.append(tables_dir / f"table{table}.{ext}")
        grid, labels = qualitative_grid(table, rows, settings, truth)
        path = figures_dir / f"figure{FIGURE_OF_TABLE[table]}.png"
        save_image_grid(
            grid,
            labels,
            path,
            title=f"Figure {FIGURE_OF_TABLE[table]}: {TITLES[table].split(': ')[1]} "
            f"({settings.image_size} px, PSNR in dB)",
            cell_inches=1.6,
        )
        written.append(path)
    panels = [
        (task, settings.roles[role], f"{task} · {data_label(settings, role)}")
        for task in settings.tasks
        for role in ROLES
    ]
    path = figures_dir / "figure2.png"
    save_convergence_figure(
        convergence_rows(rows, settings.methods),
        panels,
        path,
        title="Figure 2: NMSE vs iteration, meta-init vs random init (mean; band: 95% interval over photographs)",
        metadata=metadata,
    )
    written.append(path)
    return written
