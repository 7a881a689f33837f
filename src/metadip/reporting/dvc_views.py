"""What `dvc metrics show` and `dvc plots show` display, a screen wide.

Metrics: one small JSON file per (task setting, image class), ``<task>_<class>.json``, with the
headline gap (``claims.method`` − ``claims.long`` mean PSNR, dB, over the images both ran on) and how
many of the claims' primary checks there hold, fail, are inconclusive or underpowered (``n.<verdict>``);
``all.json`` counts every primary check.
DVC prints a row per file. Plots: one CSV per (task setting, image class), ``<task>_<class>.csv``,
in long format (step, method, psnr): the mean PSNR (dB) over the images at each step of every
iterative method (DIP's longest run, the meta methods but an averaged one), a line per method.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from metadip.core.atomic import write_texts
from metadip.core.csv_text import csv_text
from metadip.pipeline.plan import stop_method_id
from metadip.reporting.claims import VERDICTS
from metadip.reporting.settings import ReportSettings

PLOT_FIELDS = ("step", "method", "psnr")
#: the metrics file counting every check (a per-setting file always ends in _<class>)
ALL = "all"


def curve_label(method: Mapping[str, Any]) -> str:
    """A method's line in the plots: its label, and ``(EMA)`` for a DIP that reports its EMA."""
    return f"{method['label']} (EMA)" if method["kind"] == "dip" and method.get("ema") is not None else method["label"]


def psnr_curves(rows: list[dict[str, Any]], settings: ReportSettings) -> dict[str, list[dict[str, Any]]]:
    """``<task>_<class>`` → rows (step, method label, mean PSNR in dB over the images at that step),
    ordered by method then step, for every task setting and class of the config (empty when no
    iterative method ran there). A DIP method contributes its longest run; a meta method that averages
    its last outputs is left out (its trace is the plain method's up to the window), and so is the DIP
    reading stopped on validation crops (its trace is the longest run's up to its step)."""
    role_of = {dataset: role for role, dataset in settings.roles.items()}
    rows = [r for r in rows if r["method"] != stop_method_id(r["method_name"])]  # the stopped DIP reading: no curve
    longest: dict[str, int] = {}
    for r in rows:
        if settings.kind_of(r["method_name"]) == "dip":
            longest[r["method_name"]] = max(longest.get(r["method_name"], 0), r["steps"])
    traces: dict[tuple[str, str, str], list[list[float]]] = defaultdict(list)
    for r in rows:
        m = settings.methods[r["method_name"]]
        plotted = (m["kind"] == "meta" and m.get("average_last", 1) == 1) or (
            m["kind"] == "dip" and r["steps"] == longest[r["method_name"]]
        )
        if plotted and r["dataset"] in role_of and r.get("trace_psnr"):
            traces[(r["task"], role_of[r["dataset"]], curve_label(m))].append(list(r["trace_psnr"]))
    curves: dict[str, list[dict[str, Any]]] = {f"{t}_{role}": [] for t in settings.tasks for role in settings.roles}
    for (task, role, label), images in sorted(traces.items()):
        means = np.mean(np.array(images, dtype=float), axis=0)  # images × steps → steps
        curves[f"{task}_{role}"] += [
            {"step": k + 1, "method": label, "psnr": round(float(v), 4)} for k, v in enumerate(means) if np.isfinite(v)
        ]
    return curves


def plot_csv(curve: list[dict[str, Any]]) -> str:
    """One plot's rows (:func:`psnr_curves`) as CSV with the columns :data:`PLOT_FIELDS`."""
    return csv_text(curve, PLOT_FIELDS)


def metrics_files(
    verdict: Mapping[str, Any], headline: Mapping[str, Any], settings: ReportSettings
) -> dict[str, dict[str, Any]]:
    """``<task>_<class>`` → {n: {holds, fails, inconclusive, underpowered}, gap_db} and :data:`ALL` → {n}:
    the counts of the primary readings' verdicts (secondary readings decide nothing).

    ``verdict``: :func:`metadip.reporting.claims.check_claims`'s result; ``headline``:
    :func:`metadip.reporting.claims.headline`'s (task → dataset → gap_db, ...). A setting without a
    headline (either method missing) has no gap_db."""
    counts: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(VERDICTS, 0))
    for ch in (c for c in verdict["checks"] if c.get("reading", "primary") == "primary"):
        counts[f"{ch['task']}_{ch['role']}"][ch["verdict"]] += 1
        counts[ALL][ch["verdict"]] += 1
    out: dict[str, dict[str, Any]] = {}
    for task in settings.tasks:
        for role, dataset in settings.roles.items():
            name = f"{task}_{role}"
            gap = headline.get(task, {}).get(dataset, {}).get("gap_db")
            out[name] = {"n": counts[name], **({} if gap is None else {"gap_db": gap})}
    out[ALL] = {"n": counts[ALL]}
    return out


def write_folder(folder: str | os.PathLike, texts: Mapping[str, str], suffix: str) -> None:
    """Write ``texts`` (file name → text) into ``folder`` atomically, none replaced unless all are
    written, then remove the folder's other ``*suffix`` files (settings no longer in the config)."""
    folder = Path(folder)
    write_texts({folder / name: text for name, text in texts.items()})
    for stale in set(folder.glob(f"*{suffix}")) - {folder / name for name in texts}:
        stale.unlink()
