"""The ablation table: per variant and task setting, the mean validation PSNR of the meta-init, the
control (its untrained θ₀ through the same learned inner loop) and the untrained θ₀ with the initial
step sizes, with paired differences (meta-init − control, variant − reference and, given vanilla
DIP's scores on the same problems, meta-init − DIP at its longest reading) and their 95%
intervals over source photographs (:mod:`metadip.reporting.stats`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from metadip.core.csv_text import csv_text
from metadip.core.errors import InputError
from metadip.reporting.stats import Summary, interval_text, summarize

FIELDS = [
    "variant",
    "overrides",
    "task",
    "n_images",
    "n_photos",
    "psnr_init_db",
    "psnr_control_db",
    "psnr_meta_db",
    "init_gain_db",
    "init_gain_ci_low",
    "init_gain_ci_high",
    "delta_reference_db",
    "delta_reference_ci_low",
    "delta_reference_ci_high",
    "psnr_dip_db",
    "vs_dip_db",
    "vs_dip_ci_low",
    "vs_dip_ci_high",
    "train_seconds",
]


def longest_reading(dip: Mapping[str, Any]) -> str:
    """The row id of vanilla DIP's longest reading in a ``stages/ablate.py --dip`` result ("dip_1000")."""
    return max(dip["psnr_db"], key=lambda k: int(k.rsplit("_", 1)[1]))


def _paired(a: Sequence[float], b: Sequence[float], photos: Sequence[str]) -> Summary:
    """Mean of the per-image differences a − b with its interval over photographs."""
    return summarize(np.subtract(a, b), list(photos))


def table_rows(
    results: list[Mapping[str, Any]], reference: str, dip: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """One row per variant and task: mean PSNR of the meta-init, of the control (the variant's
    untrained θ₀ through its learned inner loop) and of the untrained θ₀ with the initial step sizes;
    the init gain (meta − control), the difference to the reference variant and, with ``dip`` (a
    ``stages/ablate.py --dip`` result on the same problems), the difference to DIP's longest reading,
    each a paired per-image mean with its 95% interval over photographs (None with fewer than 2
    photographs)."""
    ref = next((r for r in results if r["variant"] == reference), None)
    long = dip["psnr_db"][longest_reading(dip)] if dip is not None else {}
    rows = []
    for r in results:
        psnr = r["psnr_db"]
        for task, meta in psnr["meta"].items():
            photos = r["photos"][task]
            gain = _paired(meta, psnr["control"][task], photos)
            delta = _paired(meta, ref["psnr_db"]["meta"][task], photos) if ref is not None else None
            if task in long and len(long[task]) != len(meta):
                raise InputError(f"vanilla DIP scored {len(long[task])} images of {task}, the variants {len(meta)}")
            vs_dip = _paired(meta, long[task], photos) if task in long else None
            rows.append(
                {
                    "variant": r["variant"],
                    "overrides": r["overrides_text"],
                    "task": task,
                    "n_images": gain.n_images,
                    "n_photos": gain.n_photos,
                    "psnr_init_db": round(float(np.mean(psnr["init"][task])), 4),
                    "psnr_control_db": round(float(np.mean(psnr["control"][task])), 4),
                    "psnr_meta_db": round(float(np.mean(meta)), 4),
                    "init_gain_db": round(gain.mean, 4),
                    "init_gain_ci_low": _round(gain.ci_low),
                    "init_gain_ci_high": _round(gain.ci_high),
                    "delta_reference_db": None if delta is None else round(delta.mean, 4),
                    "delta_reference_ci_low": None if delta is None else _round(delta.ci_low),
                    "delta_reference_ci_high": None if delta is None else _round(delta.ci_high),
                    "psnr_dip_db": round(float(np.mean(long[task])), 4) if task in long else None,
                    "vs_dip_db": None if vs_dip is None else round(vs_dip.mean, 4),
                    "vs_dip_ci_low": None if vs_dip is None else _round(vs_dip.ci_low),
                    "vs_dip_ci_high": None if vs_dip is None else _round(vs_dip.ci_high),
                    "train_seconds": r["train_seconds"],
                }
            )
    return rows


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def to_csv(rows: list[Mapping[str, Any]]) -> str:
    return csv_text(rows, FIELDS)


def to_markdown(rows: list[Mapping[str, Any]], reference: str, dip_reading: str = "") -> str:
    """Two tables from :func:`table_rows`. First: per variant and task, the meta-init's mean PSNR
    after the test steps and its paired difference to the reference with the interval. Second: the
    init gain — meta-init minus the control (the variant's untrained θ₀ through the same learned inner
    loop) — with its interval, the control's mean PSNR and, in brackets, the untrained θ₀ with the
    initial step sizes; the last column is the smallest interval low end over the tasks. Third, when
    the rows carry vanilla DIP's scores: meta-init − DIP per variant and task (``dip_reading``
    names the reading, e.g. " (1000 steps)")."""
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    cell = {(r["variant"], r["task"]): r for r in rows}
    head = ["variant", "settings changed", *[f"{t} (dB)" for t in tasks], "meta-training (s)"]
    out = [
        f"Meta-init PSNR after the test steps; in brackets the paired difference to '{reference}' "
        "with its 95% interval.",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for v in variants:
        first = cell[(v, tasks[0])]
        cells = [v, first["overrides"] or "—"]
        for t in tasks:
            r = cell[(v, t)]
            ci = interval_text(r["delta_reference_ci_low"], r["delta_reference_ci_high"])
            shown = v != reference and r["delta_reference_db"] is not None
            delta = f" ({r['delta_reference_db']:+.2f}{ci})" if shown else ""
            cells.append(f"{r['psnr_meta_db']:.2f}{delta}")
        out.append("| " + " | ".join([*cells, f"{first['train_seconds']:.0f}"]) + " |")
    head = ["variant", *[f"init gain {t}" for t in tasks], "min CI low"]
    out += [
        "",
        "Init gain: meta-init − control (the variant's untrained θ₀ through its own learned inner loop), dB, "
        "paired per image, 95% interval over photographs; then the control's PSNR and, in brackets, the "
        "untrained θ₀ with the initial step sizes.",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for v in variants:
        cells = [v]
        lows = []
        for t in tasks:
            r = cell[(v, t)]
            lows.append(r["init_gain_ci_low"])
            cells.append(
                f"{r['init_gain_db']:+.2f}{interval_text(r['init_gain_ci_low'], r['init_gain_ci_high'])}; "
                f"{r['psnr_control_db']:.2f} ({r['psnr_init_db']:.2f})"
            )
        known = [x for x in lows if x is not None]
        cells.append(f"{min(known):+.2f}" if len(known) == len(lows) else "—")
        out.append("| " + " | ".join(cells) + " |")
    if any(r["vs_dip_db"] is not None for r in rows):
        dip_psnr = {t: cell[(variants[0], t)]["psnr_dip_db"] for t in tasks}
        out += [
            "",
            f"Against vanilla DIP{dip_reading} on the same problems: meta-init − DIP, dB, paired per image, "
            "95% interval over photographs (claim 1-quality on validation data).",
            "",
            "| variant | " + " | ".join(f"vs DIP {t}" for t in tasks) + " |",
            "|" + "---|" * (len(tasks) + 1),
            "| DIP (PSNR) | " + " | ".join("—" if dip_psnr[t] is None else f"{dip_psnr[t]:.2f}" for t in tasks) + " |",
        ]
        for v in variants:
            cells = [v]
            for t in tasks:
                r = cell[(v, t)]
                shown = r["vs_dip_db"] is not None
                ci = interval_text(r["vs_dip_ci_low"], r["vs_dip_ci_high"]) if shown else ""
                cells.append(f"{r['vs_dip_db']:+.2f}{ci}" if shown else "—")
            out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"
