"""Aggregate evaluation rows into Tables 1–3 (Markdown, LaTeX, CSV) beside the paper's numbers,
the headline summary and the convergence CSV of Figure 2.

A table row is a method variant (e.g. "DIP (50)", and "DIP (50), last iterate" where the method
reports an EMA); a column is a (task setting, image class) pair: mean PSNR over the images in dB
with its 95% interval over source photographs (:mod:`metadip.reporting.stats`) and the
number of images and photographs. Time columns are mean seconds per image over the settings they
cover, with their interval likewise.
"""

from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
from collections.abc import Mapping
from fractions import Fraction
from typing import Any

import numpy as np

from metadip.core.csv_text import csv_text
from metadip.pipeline.plan import dip_method_id, report_steps, stop_method_id, stops_on_val
from metadip.reporting.paper import PAPER_PSNR, PAPER_SECONDS
from metadip.reporting.settings import ReportSettings
from metadip.reporting.stats import INFERENCE, Summary, by_image, interval, paired_difference, photo_of, summarize

ROLES = ("faces", "natural")
TITLES = {1: "Table 1: denoising", 2: "Table 2: compressive sensing", 3: "Table 3: compressive phase retrieval"}


def group_rows(rows: list[dict[str, Any]]) -> dict[tuple[str, str, str], list[dict[str, Any]]]:
    """(task, dataset, method) → its rows, keys sorted."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[(r["task"], r["dataset"], r["method"])].append(r)
    return dict(sorted(groups.items()))


def summary_of(rows: list[dict[str, Any]], field: str) -> Summary:
    """Mean of ``field`` over ``rows`` (one per image) with its interval over their photographs."""
    return summarize([r[field] for r in rows], [photo_of(r) for r in rows])


MEANS_FIELDS = [
    "task",
    "dataset",
    "method",
    "psnr_db",
    "psnr_ci_low_db",
    "psnr_ci_high_db",
    "psnr_last_db",
    "seconds",
    "images",
    "photos",
]


def method_means(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (task, dataset, method): mean PSNR (dB) and its 95% interval (None with fewer than 2
    photographs), mean PSNR of the last iterate (None where it is the estimate), mean seconds per
    image, and the number of images and photographs."""
    out = []
    for (task, dataset, method), rs in sorted(group_rows(rows).items()):
        p = summary_of(rs, "psnr")
        last = float(np.mean([r["psnr_last"] for r in rs]))
        out.append(
            {
                "task": task,
                "dataset": dataset,
                "method": method,
                "psnr_db": round(p.mean, 3),
                "psnr_ci_low_db": None if p.ci_low is None else round(p.ci_low, 3),
                "psnr_ci_high_db": None if p.ci_high is None else round(p.ci_high, 3),
                "psnr_last_db": round(last, 3) if abs(last - p.mean) > 1e-9 else None,
                "seconds": round(float(np.mean([r["seconds"] for r in rs])), 4),
                "images": p.n_images,
                "photos": p.n_photos,
            }
        )
    return out


def means_csv(means: list[dict[str, Any]]) -> str:
    """:func:`method_means` as CSV (empty cells where a value is None)."""
    return csv_text(means, MEANS_FIELDS)


def _ratio(r: float) -> str:
    f = Fraction(r).limit_denominator(256)
    return f"{f.numerator}/{f.denominator}"


def setting_value(task: Mapping[str, Any]) -> float:
    """The number a task setting is known by: σ (0-255 scale) for denoising, m/n for CS and PR."""
    return float(task["sigma"]) if task["kind"] == "denoising" else float(task["ratio"])


def setting_label(task: Mapping[str, Any]) -> str:
    """A task setting as a column header: ``σ=15`` (denoising) or ``m/n=1/4`` (CS, PR)."""
    return f"σ={task['sigma']:g}" if task["kind"] == "denoising" else f"m/n={_ratio(task['ratio'])}"


def _fmt(v: float | None, digits: int = 2) -> str:
    return "—" if v is None or not math.isfinite(v) else f"{v:.{digits}f}"


def _fmt_s(v: float | None) -> str:
    return "—" if v is None else (f"{v:.3f}" if v < 1 else f"{v:.2f}" if v < 100 else f"{v:.1f}")


def data_label(settings: ReportSettings, role: str) -> str:
    """What a class's column holds, named from the config, e.g. "'skimage' (stand-in for CelebA faces;
    transfer class)" or "'wallpapers' (natural patches; meta-training class)"."""
    dataset = settings.roles[role]
    what = (
        ("CelebA faces" if "celeba" in dataset.lower() else "stand-in for CelebA faces")
        if role == "faces"
        else "natural patches"
    )
    kind = "meta-training class" if dataset == settings.train_dataset else "transfer class"
    return f"'{dataset}' ({what}; {kind})"


def column_label(roles: Mapping[str, str], role: str) -> str:
    """A class as a column header: the dataset and the paper's class it plays ("skimage (for faces)");
    ``roles``: class → dataset."""
    dataset = roles[role]
    return f"{dataset} (for faces)" if role == "faces" and "celeba" not in dataset.lower() else f"{dataset} ({role})"


def _cell(rows: list[dict[str, Any]] | None, field: str, key: str, **cell: Any) -> dict[str, Any]:
    """A table cell: ``cell`` plus, under ``key``, the mean of the rows' ``field`` with its interval,
    images and photos (None without rows)."""
    s = summary_of(rows, field) if rows else None
    return {
        **cell,
        key: None if s is None else s.mean,
        "ci_low": None if s is None else s.ci_low,
        "ci_high": None if s is None else s.ci_high,
        "n": None if s is None else s.n_images,
        "photos": None if s is None else s.n_photos,
    }


def build_table(table: int, rows: list[dict[str, Any]], settings: ReportSettings) -> dict[str, Any] | None:
    """The cells of one table, or None when no task of the config belongs to it."""
    tasks = settings.tasks_of(table)
    if not tasks:
        return None
    groups_of = group_rows([r for r in rows if r["task"] in tasks])
    datasets = {role: settings.roles[role] for role in ROLES}
    variants: list[tuple[str, str, str, str]] = []  # (method id, label, variant, method name)
    # one row per method variant (a PnP method's tuned iteration count may differ between tasks)
    seen: dict[tuple[str, str], tuple[str, int]] = {}
    for r in rows:
        if r["task"] in tasks:
            label, steps = seen.get((r["method_name"], r["method"]), (r["label"], 0))
            seen[(r["method_name"], r["method"])] = (label, max(steps, r["steps"]))
    for name, m in settings.methods.items():
        mine = sorted(((method, *v) for (n, method), v in seen.items() if n == name), key=lambda s: -s[2])
        for method, label, _ in mine:
            variants.append((method, label, "estimate", name))
            if m["kind"] == "dip" and m.get("ema") is not None and method != stop_method_id(name):
                variants.append((method, f"{label}, last iterate", "last", name))
    # columns: per task, the two classes; time per task for tables 2/3, one time column for table 1
    groups = [tasks] if table == 1 else [[t] for t in tasks]
    body = []
    for method, label, variant, _name in variants:
        cells = []
        for group in groups:
            for task in group:
                spec = settings.tasks[task]
                for role in ROLES:
                    paper = (
                        PAPER_PSNR.get((table, method, setting_value(spec), role)) if variant == "estimate" else None
                    )
                    cells.append(
                        _cell(
                            groups_of.get((task, datasets[role], method)),
                            "psnr_last" if variant == "last" else "psnr",
                            "psnr",
                            task=task,
                            role=role,
                            dataset=datasets[role],
                            paper=paper,
                        )
                    )
            timed = [r for t in group for d in datasets.values() for r in groups_of.get((t, d, method), [])]
            paper_s = PAPER_SECONDS.get(
                (table, method, None if table == 1 else setting_value(settings.tasks[group[0]]))
            )
            cells.append(
                _cell(
                    timed,
                    "seconds",
                    "seconds",
                    task="+".join(group),
                    role="time",
                    paper=paper_s if variant == "estimate" else None,
                )
            )
        body.append({"method": method, "label": label, "variant": variant, "cells": cells})
    headers = []
    for group in groups:
        for task in group:
            for role in ROLES:
                headers.append(f"{setting_label(settings.tasks[task])} {column_label(settings.roles, role)}")
        headers.append("time (s)" if table == 1 else f"{setting_label(settings.tasks[group[0]])} time (s)")
    counts = {(c["n"], c["photos"]) for r in body for c in r["cells"] if c["role"] != "time" and c["n"] is not None}
    uniform = next(iter(counts)) if len(counts) == 1 else None
    return {
        "table": table,
        "title": TITLES[table],
        "headers": headers,
        "rows": body,
        "uniform_n": uniform,
        "notes": table_notes(settings, [r for r in rows if r["task"] in tasks], uniform),
    }


def _evaluated(rows: list[dict[str, Any]], dataset: str) -> tuple[int, int | None]:
    """(images, photographs or None when the rows do not record them) of ``dataset`` in ``rows``."""
    mine = [r for r in rows if r["dataset"] == dataset]
    photos = {r.get("source_file") for r in mine}
    return len({r["image_index"] for r in mine}), None if None in photos else len(photos)


def table_notes(
    settings: ReportSettings, rows: list[dict[str, Any]], uniform: tuple[int, int] | None = None
) -> list[str]:
    """The notes under a table: what a cell is, n, the data of each class, DIP's two rows."""
    size = settings.image_size
    n = f"n = {uniform[0]} images / {uniform[1]} photos per cell" if uniform else "n = images/photos, per cell"
    notes = [
        (
            "Ours: mean PSNR (dB) over the evaluated images with its 95% interval [low, high], a "
            f"{INFERENCE}, none with fewer than 2 photographs; in parentheses, the "
            f"paper's number; {n}. Images {size}×{size} RGB (the paper: 128×128). Time: mean seconds per image on this "
            f"run's device over every image of the settings it covers (the paper: its authors' GPU)."
        )
    ]
    for role in ROLES:
        images, photos = _evaluated(rows, settings.roles[role])
        source = "photographs not recorded in the rows" if photos is None else f"{photos} photographs"
        notes.append(
            f"'{role}' columns: {data_label(settings, role)}: {images} images from {source} of the '{settings.split}' "
            f"split (interleaved across photographs)."
        )
    notes.append(
        "DIP (k): vanilla DIP from a random init read at step k of one run — EMA of outputs (weight "
        "0.99, the paper's definition) and, in its own row, the last iterate."
    )
    for m in settings.methods.values():
        if "images" in m:
            notes.append(
                f"{m['label']}: run on the first {m['images']} of each class's evaluated images only (its cells "
                "average fewer images than the rows beside them); the claims compare it with the other methods "
                f"on those {m['images']} images, paired (claims.md)."
            )
    return notes + stop_notes(settings, rows)


def stop_notes(settings: ReportSettings, rows: list[dict[str, Any]]) -> list[str]:
    """Per dip method with ``stop_on_val`` (rows of its stopped row among ``rows``): the step it was
    read at in each setting and class, and where its longest reading lies below it beyond the 95%
    interval of their paired per-image difference (that reading overfits the noise there)."""
    notes = []
    for name, m in settings.methods.items():
        if not stops_on_val(dict(m)):
            continue
        stop_id, long_id = stop_method_id(name), dip_method_id(name, report_steps(dict(m))[-1])
        groups = group_rows([r for r in rows if r["method"] in (stop_id, long_id)])
        steps, overfit = [], []
        for task in settings.tasks:
            for role in ROLES:
                stopped, long = (groups.get((task, settings.roles[role], i)) for i in (stop_id, long_id))
                if not stopped:
                    continue
                where = f"{setting_label(settings.tasks[task])} {column_label(settings.roles, role)}"
                steps.append(f"{where} {stopped[0]['steps']}")
                d = long and paired_difference(by_image(long), by_image(stopped), what=f"{long_id} − {stop_id}")
                if d and d.ci_high is not None and d.ci_high < 0:
                    overfit.append(f"{where} {d.mean:+.2f} dB [{d.ci_low:+.2f}, {d.ci_high:+.2f}]")
        if not steps:
            continue
        long_label, stop_label = f"{m['label']} ({long_id.rsplit('_', 1)[1]})", f"{m['label']} (stopped on val)"
        estimate = "EMA" if m.get("ema") is not None else "last iterate"
        notes.append(
            f"{stop_label}: the runs of {long_label} read at the step of the highest mean PSNR ({estimate}) of the "
            "same DIP on validation crops of each setting and class, with validation noise and operators of their own "
            f"(stages/dip_stop.py; the test split chose nothing); steps: {', '.join(steps)}."
        )
        notes.append(
            f"{long_label} below {stop_label} beyond the 95% interval of their paired difference ({long_label} "
            f"overfits the noise there): {'; '.join(overfit) or 'nowhere'}."
        )
    return notes


def _paper(v: float) -> str:
    """The paper's number as printed there (at least one decimal: 26 -> 26.0, 9.84 stays)."""
    text = f"{v:g}"
    return text if "." in text else f"{text}.0"


def _parts(c: dict[str, Any], uniform: tuple[int, int] | None) -> tuple[str, str, str, str]:
    """A cell as (ours, '[low, high]' or '', '(paper)' or '', 'n=images/photos' or '' where the table's
    note gives it, and for time cells)."""
    timed = c["role"] == "time"
    value = c["seconds"] if timed else c["psnr"]
    fmt = _fmt_s if timed else lambda v: _fmt(v, 1)
    ci = "" if c["ci_low"] is None else f"[{fmt(c['ci_low'])}, {fmt(c['ci_high'])}]"
    paper = "" if c["paper"] is None else f"({_paper(c['paper'])})"
    n = "" if timed or c["n"] is None or (c["n"], c["photos"]) == uniform else f"n={c['n']}/{c['photos']}"
    return (_fmt_s(value) if timed else _fmt(value)), ci, paper, n


def to_markdown(t: dict[str, Any]) -> str:
    lines = [
        f"### {t['title']}",
        "",
        "| method | " + " | ".join(t["headers"]) + " |",
        "|---" * (len(t["headers"]) + 1) + "|",
    ]
    for r in t["rows"]:
        lines.append(
            f"| {r['label']} | "
            + " | ".join(" ".join(p for p in _parts(c, t["uniform_n"]) if p) for c in r["cells"])
            + " |"
        )
    lines += [""] + [f"- {n}" for n in t["notes"]]
    return "\n".join(lines) + "\n"


def _tex(s: str) -> str:
    return (
        s.replace("\\", "\\textbackslash{}")
        .replace("&", "\\&")
        .replace("%", "\\%")
        .replace("_", "\\_")
        .replace("σ", "$\\sigma$")
        .replace("—", "--")
        .replace("×", "$\\times$")
    )


def _tex_cell(c: dict[str, Any], uniform: tuple[int, int] | None) -> str:
    """'27.49\\,{\\scriptsize[26.1, 28.7]} (32.0)', n in \\tiny where it differs from the caption's."""
    ours, ci, paper, n = _parts(c, uniform)
    return " ".join(
        p for p in (_tex(ours) + (f"\\,{{\\scriptsize{ci}}}" if ci else ""), paper, f"{{\\tiny {n}}}" if n else "") if p
    )


def to_latex(t: dict[str, Any]) -> str:
    cols = "l" + "r" * len(t["headers"])
    n = f" n = {t['uniform_n'][0]} images / {t['uniform_n'][1]} photographs per cell." if t["uniform_n"] else ""
    lines = [
        "% generated by stages/render.py; needs \\usepackage{booktabs}",
        "\\begin{table}[t]",
        "\\centering",
        f"\\caption{{{_tex(t['title'])}. Ours [95\\% interval over photographs] (paper).{n}}}",
        f"\\begin{{tabular}}{{{cols}}}",
        "\\toprule",
        "method & " + " & ".join(_tex(h) for h in t["headers"]) + " \\\\",
        "\\midrule",
    ]
    for r in t["rows"]:
        lines.append(_tex(r["label"]) + " & " + " & ".join(_tex_cell(c, t["uniform_n"]) for c in r["cells"]) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}", "\\end{table}"]
    return "\n".join(lines) + "\n"


def _num(v: float | None) -> str:
    return "" if v is None else f"{v:.4f}"


def to_csv(t: dict[str, Any]) -> str:
    """Long format: one line per (row, column) with our value, its 95% interval (ci_low, ci_high: of
    psnr_db, or of seconds on time lines), images, photos and the paper's value."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(
        [
            "table",
            "method",
            "label",
            "variant",
            "task",
            "role",
            "dataset",
            "images",
            "photos",
            "psnr_db",
            "ci_low",
            "ci_high",
            "paper_psnr_db",
            "seconds",
            "paper_seconds",
        ]
    )
    for r in t["rows"]:
        for c in r["cells"]:
            timed = c["role"] == "time"
            w.writerow(
                [
                    t["table"],
                    r["method"],
                    r["label"],
                    r["variant"],
                    c["task"],
                    c["role"],
                    c.get("dataset", ""),
                    "" if c["n"] is None else c["n"],
                    "" if c["photos"] is None else c["photos"],
                    "" if timed else _num(c["psnr"]),
                    _num(c["ci_low"]),
                    _num(c["ci_high"]),
                    "" if timed or c["paper"] is None else c["paper"],
                    _num(c["seconds"]) if timed else "",
                    "" if not timed or c["paper"] is None else c["paper"],
                ]
            )
    return buf.getvalue()


def convergence_rows(rows: list[dict[str, Any]], methods: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Figure 2's data: per (task, dataset, series, step) the mean NMSE over images with its 95%
    interval over photographs (per step; None with fewer than 2 photographs) and the min / max over
    images.

    Series: every meta method but an averaged one (``average_last``: its trace is the plain
    method's up to the window), and the longest reading of every DIP method (not its row stopped on
    validation crops), as its EMA estimate and its last iterate. ``methods``: method name → its
    kind, label, ... (evaluate.methods)."""
    rows = [
        r for r in rows if methods[r["method_name"]]["kind"] != "dip" or r["method"] != stop_method_id(r["method_name"])
    ]
    longest = {}
    for r in rows:
        if methods[r["method_name"]]["kind"] == "dip":
            longest[r["method_name"]] = max(longest.get(r["method_name"], 0), r["steps"])
    series: dict[tuple[str, str, str], list[tuple[list[float], tuple]]] = defaultdict(list)
    for r in rows:
        m = methods[r["method_name"]]
        if m["kind"] == "meta" and m.get("average_last", 1) == 1:
            name = (
                m["label"] if m.get("random_init") else f"{m['label']} (meta-init)"
            )  # the control starts from a random init
            series[(r["task"], r["dataset"], name)].append((list(r["trace_nmse"]), photo_of(r)))
        elif m["kind"] == "dip" and r["steps"] == longest[r["method_name"]]:
            series[(r["task"], r["dataset"], f"{m['label']} random init, last iterate")].append(
                (list(r["trace_nmse_last"]), photo_of(r))
            )
            if m.get("ema") is not None:
                series[(r["task"], r["dataset"], f"{m['label']} random init, EMA")].append(
                    (list(r["trace_nmse"]), photo_of(r))
                )
    out = []
    for (task, dataset, name), traces in sorted(series.items()):
        arr, photos = np.array([t for t, _ in traces]), [p for _, p in traces]
        ci = interval(arr, photos)
        for k in range(arr.shape[1]):
            if not np.isfinite(arr[:, k]).all():
                continue  # a step the trace did not record (DIP's last iterate is read on a grid)
            out.append(
                {
                    "task": task,
                    "dataset": dataset,
                    "series": name,
                    "step": k + 1,
                    "images": arr.shape[0],
                    "photos": len(set(photos)),
                    "nmse_mean": float(arr[:, k].mean()),
                    "nmse_ci_low": None if ci is None else float(ci[0][k]),
                    "nmse_ci_high": None if ci is None else float(ci[1][k]),
                    "nmse_min": float(arr[:, k].min()),
                    "nmse_max": float(arr[:, k].max()),
                }
            )
    return out


CONVERGENCE_FIELDS = [
    "task",
    "dataset",
    "series",
    "step",
    "images",
    "photos",
    "nmse_mean",
    "nmse_ci_low",
    "nmse_ci_high",
    "nmse_min",
    "nmse_max",
]


def convergence_csv(conv: list[dict[str, Any]]) -> str:
    """Figure 2's data as CSV (an empty interval: fewer than 2 photographs)."""
    rows = ({**r, **{k: "" if r[k] is None else f"{r[k]:.6g}" for k in CONVERGENCE_FIELDS[6:]}} for r in conv)
    return csv_text(rows, CONVERGENCE_FIELDS)
