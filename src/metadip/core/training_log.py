"""The log of a resumable training run: ``metrics.csv`` and ``progress.json`` in its work folder.

``metrics.csv`` has one row per validation (step, mean training loss since the previous row,
validation PSNR in dB, cumulative training seconds), row 0 being the validation before training.
``progress.json``, written with each checkpoint, holds the running totals at that step — the
cumulative seconds and the losses not yet averaged into a row — so that a run resumed from the
checkpoint continues the clock and the running mean instead of restarting them; rows past the
checkpoint are dropped on resume. Shared by meta-training and DRUNet training.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from metadip.core.atomic import write_text
from metadip.core.checkpoints import read_log, write_log

FIELDS = ["step", "train_loss", "val_psnr", "seconds"]
METRICS = "metrics.csv"
PROGRESS = "progress.json"


def resume_totals(path: Path, start_step: int, rows: list[dict[str, Any]]) -> tuple[float, list[float]]:
    """(cumulative seconds, losses not yet logged) at the checkpoint of ``start_step``: from the
    progress record written with that checkpoint, else (a record of another step, or none) from
    the last kept log row."""
    if start_step > 0:
        try:
            rec = json.loads(path.read_text())
            if int(rec["step"]) == start_step:
                return float(rec["seconds"]), [float(v) for v in rec["pending_losses"]]
        except (OSError, ValueError, KeyError, TypeError):
            pass
    return (float(rows[-1]["seconds"]) if rows else 0.0), []


class TrainingLog:
    """The log of one training session that starts (or resumes) at ``start_step``.

    At step 0 the folder's old progress record is removed and row 0 is written with
    ``initial_val()``; with ``write=False`` (a data-parallel rank other than the lead) nothing is
    read or written and only the clock and the losses are kept."""

    def __init__(
        self, work_dir: str | os.PathLike, start_step: int, initial_val: Callable[[], float], write: bool = True
    ):
        work = Path(work_dir)
        self.path, self.progress_path, self.write = work / METRICS, work / PROGRESS, write
        self.rows: list[dict[str, Any]] = read_log(self.path, start_step) if write else []
        if start_step == 0 and write:
            self.progress_path.unlink(missing_ok=True)
            self.rows = [{"step": 0, "train_loss": "", "val_psnr": round(initial_val(), 4), "seconds": 0.0}]
            write_log(self.path, self.rows, FIELDS)
        done_seconds, self.losses = resume_totals(self.progress_path, start_step, self.rows)
        self._t0 = time.perf_counter() - done_seconds  # cumulative over resumed sessions

    def add_loss(self, loss: float) -> None:
        """The training loss of one step."""
        self.losses.append(loss)

    def record(self, step: int, val_psnr: float) -> dict[str, Any]:
        """Append and write the row of ``step`` (the mean of the losses since the last row); returns it."""
        row = {
            "step": step,
            "train_loss": round(float(np.mean(self.losses)), 6),
            "val_psnr": round(val_psnr, 4),
            "seconds": round(time.perf_counter() - self._t0, 4),
        }
        self.rows.append(row)
        self.losses = []
        if self.write:
            write_log(self.path, self.rows, FIELDS)
        return row

    def checkpointed(self, step: int) -> None:
        """Record the running totals with the checkpoint just written at ``step``."""
        if self.write:
            progress = {
                "step": step,
                "seconds": round(time.perf_counter() - self._t0, 4),
                "pending_losses": self.losses,
            }
            write_text(self.progress_path, json.dumps(progress) + "\n")


def training_summary(work_dir: str | os.PathLike) -> dict[str, Any]:
    """The metrics CSV of a run as a dict: validation PSNR per logged step, first and last, the last
    logged step and the training seconds up to it (the log's cumulative column: summed over resumed
    sessions, counting each session up to the checkpoint the next one resumed from)."""
    rows = read_log(Path(work_dir) / METRICS, 1 << 62)
    vals = [(int(r["step"]), float(r["val_psnr"])) for r in rows if r["val_psnr"] != ""]
    return {
        "validation": vals,
        "initial_val_psnr": vals[0][1] if vals else None,
        "final_val_psnr": vals[-1][1] if vals else None,
        "steps": int(rows[-1]["step"]) if rows else None,
        "seconds": float(rows[-1]["seconds"]) if rows else None,
    }
