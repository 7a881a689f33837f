"""The PnP-ADMM tuning table: one row per tuned task and denoiser, every grid searched, in order."""

from __future__ import annotations

import csv
import io

import pytest
import torch

from metadip.physics.tasks import TaskSpec
from metadip.reporting.pnp_tuning import FIELDS, grid_text, to_csv, to_markdown, tuning_rows
from metadip.solvers.pnp_tuning import grid_search


def smoother(x, sigma):
    """A denoiser whose best strength lies above the first grid (so the grid moves)."""
    c = x.shape[-3]
    k = torch.ones(c, 1, 3, 3) / 9
    out = torch.nn.functional.conv2d(x.reshape(1, c, *x.shape[-2:]), k, padding=1, groups=c).reshape(x.shape)
    w = min(sigma / 400.0, 1.0)
    return (1 - w) * x + w * out


def record(camera32, task_name, max_moves):
    images = camera32.unsqueeze(0).expand(2, -1, -1, -1).contiguous()
    grid = {"sigma_d": [1.0, 2.0, 4.0], "rho": [0.5], "iterations": [1, 2, 3]}
    r = grid_search(
        TaskSpec(kind="cs_fast", sigma=25, ratio=0.5), smoother, grid, images, ["a/1", "b/2"], 0, max_moves=max_moves
    )
    return r | {"task_name": task_name, "denoiser": "bm3d", "validation_photos": ["a", "b"]}


def test_rows_hold_every_grid_and_the_chosen_point(camera32):
    moved, fixed = record(camera32, "cs_8", 6), record(camera32, "cs_4", 0)
    rows = tuning_rows([moved, fixed])
    assert [r["task"] for r in rows] == ["cs_4", "cs_8"]  # sorted by task
    for row, rec in zip(rows, [fixed, moved], strict=True):
        assert row["grids_searched"] == len(rec["grids"]) and row["interior"] == rec["interior"]
        assert row["grids"].split(" | ") == [grid_text(g) for g in rec["grids"]]
        assert (row["sigma_d"], row["rho"], row["iterations"]) == tuple(
            rec["best"][k] for k in ("sigma_d", "rho", "iterations")
        )
        assert row["validation_images"] == 2 and row["validation_photos"] == 2
        assert row["grid_max_psnr_db"] == round(rec["grid_max"]["mean_psnr"], 2)
    assert rows[0]["grids"] == "σ_d 1/2/4, ρ 0.5, iterations 1/2/3" and rows[0]["interior"] is False
    assert rows[1]["grids_searched"] > 1

    md = to_markdown(rows)
    assert md.count("\n| cs_") == 2 and "no: moves ran out" in md
    assert f"- cs_8, bm3d: {'; then '.join(grid_text(g) for g in moved['grids'])}" in md
    # a chosen point below its grid's highest mean (flat_db > 0): both columns, each its own value
    best, top = {**moved["best"], "mean_psnr": 30.004}, {**moved["grid_max"], "mean_psnr": 30.05}
    flat = moved | {"best": best, "grid_max": top}
    (row,) = tuning_rows([flat])
    assert (row["mean_psnr_db"], row["grid_max_psnr_db"]) == (30.0, 30.05)
    assert "| 30.00 | 30.05 |" in to_markdown([row])
    with pytest.raises(ValueError):
        tuning_rows([moved | {"best": {**moved["best"], "sigma_d": "strong"}}])
    parsed = list(csv.DictReader(io.StringIO(to_csv(rows))))
    assert list(parsed[0]) == FIELDS and parsed[1]["grids"] == rows[1]["grids"]


def test_a_record_without_its_fields_is_named():
    with pytest.raises(KeyError, match="without task_name, denoiser, validation_photos"):
        tuning_rows([{"grids": [], "best": {}, "grid_max": {}, "interior": True, "validation_images": []}])
