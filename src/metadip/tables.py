"""Aggregate evaluation rows into Tables 1–3 (Markdown, LaTeX, CSV) beside the paper's numbers,
the DVC metrics summary and the convergence CSV of Figure 2.

A table row is a method variant (e.g. "DIP (50)", and "DIP (50), last iterate" where the method
reports an EMA); a column is a (task setting, image class) pair: mean PSNR over the images in dB.
Time columns are mean seconds per image over the settings they cover.
"""

from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
from fractions import Fraction
from typing import Any

import numpy as np

from metadip.plan import tasks_of
from metadip.paper import PAPER_PSNR, PAPER_SECONDS

ROLES = ("faces", "natural")
TITLES = {1: "Table 1: denoising", 2: "Table 2: compressive sensing", 3: "Table 3: compressive phase retrieval"}


def group_means(rows: list[dict[str, Any]]) -> dict[tuple[str, str, str], dict[str, float]]:
    """(task, dataset, method) → n, mean / std PSNR, mean PSNR of the last iterate, SSIM, seconds."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[(r["task"], r["dataset"], r["method"])].append(r)
    out = {}
    for key, rs in sorted(groups.items()):
        p = np.array([r["psnr"] for r in rs])
        out[key] = {"n": len(rs), "psnr": float(p.mean()), "psnr_std": float(p.std()),
                    "psnr_last": float(np.mean([r["psnr_last"] for r in rs])), "ssim": float(np.mean([r["ssim"] for r in rs])),
                    "seconds": float(np.mean([r["seconds"] for r in rs]))}
    return out


def metrics_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The DVC metrics file: task → dataset → method → mean PSNR (dB), mean seconds per image, n."""
    summary: dict[str, Any] = {}
    for (task, dataset, method), g in group_means(rows).items():
        entry = {"psnr_db": round(g["psnr"], 3), "seconds": round(g["seconds"], 4), "images": g["n"]}
        if abs(g["psnr_last"] - g["psnr"]) > 1e-9:
            entry["psnr_last_db"] = round(g["psnr_last"], 3)
        summary.setdefault(task, {}).setdefault(dataset, {})[method] = entry
    return summary


def _ratio(r: float) -> str:
    f = Fraction(r).limit_denominator(256)
    return f"{f.numerator}/{f.denominator}"


def _setting(task: dict[str, Any]) -> float:
    return float(task["sigma"]) if task["kind"] == "denoising" else float(task["ratio"])


def setting_label(task: dict[str, Any]) -> str:
    """A task setting as a column header: ``σ=15`` (denoising) or ``m/n=1/4`` (CS, PR)."""
    return f"σ={task['sigma']:g}" if task["kind"] == "denoising" else f"m/n={_ratio(task['ratio'])}"


def _fmt(v: float | None, digits: int = 2) -> str:
    return "—" if v is None or not math.isfinite(v) else f"{v:.{digits}f}"


def _fmt_s(v: float | None) -> str:
    return "—" if v is None else (f"{v:.3f}" if v < 1 else f"{v:.2f}" if v < 100 else f"{v:.1f}")


def build_table(table: int, rows: list[dict[str, Any]], config: dict[str, Any]) -> dict[str, Any] | None:
    """The cells of one table, or None when no task of the config belongs to it."""
    ev = config["evaluate"]
    tasks = tasks_of(config, table)
    if not tasks:
        return None
    means = group_means([r for r in rows if r["task"] in tasks])
    datasets = {role: ev["roles"][role] for role in ROLES}
    variants: list[tuple[str, str, str, str]] = []  # (method id, label, variant, method name)
    # one row per method variant (a PnP method's tuned iteration count may differ between tasks)
    seen: dict[tuple[str, str], tuple[str, int]] = {}
    for r in rows:
        if r["task"] in tasks:
            label, steps = seen.get((r["method_name"], r["method"]), (r["label"], 0))
            seen[(r["method_name"], r["method"])] = (label, max(steps, r["steps"]))
    for name, m in ev["methods"].items():
        mine = sorted(((method, *v) for (n, method), v in seen.items() if n == name), key=lambda s: -s[2])
        for method, label, _ in mine:
            variants.append((method, label, "estimate", name))
            if m["kind"] == "dip" and m.get("ema") is not None:
                variants.append((method, f"{label}, last iterate", "last", name))
    # columns: per task, the two classes; time per task for tables 2/3, one time column for table 1
    groups = [tasks] if table == 1 else [[t] for t in tasks]
    body = []
    for method, label, variant, name in variants:
        cells = []
        for group in groups:
            for task in group:
                spec = ev["tasks"][task]
                for role in ROLES:
                    g = means.get((task, datasets[role], method))
                    ours = None if g is None else g["psnr_last" if variant == "last" else "psnr"]
                    paper = PAPER_PSNR.get((table, method, _setting(spec), role)) if variant == "estimate" else None
                    cells.append({"task": task, "role": role, "dataset": datasets[role], "psnr": ours, "paper": paper,
                                  "n": None if g is None else g["n"]})
            secs = [means[(t, d, method)]["seconds"] for t in group for d in datasets.values() if (t, d, method) in means]
            paper_s = PAPER_SECONDS.get((table, method, None if table == 1 else _setting(ev["tasks"][group[0]])))
            cells.append({"task": "+".join(group), "role": "time", "seconds": float(np.mean(secs)) if secs else None,
                          "paper": paper_s if variant == "estimate" else None})
        body.append({"method": method, "label": label, "variant": variant, "cells": cells})
    headers = []
    for group in groups:
        for task in group:
            for role in ROLES:
                headers.append(f"{setting_label(ev['tasks'][task])} {role}")
        headers.append("time (s)" if table == 1 else f"{setting_label(ev['tasks'][group[0]])} time (s)")
    return {"table": table, "title": TITLES[table], "headers": headers, "rows": body, "notes": table_notes(config)}


def table_notes(config: dict[str, Any]) -> list[str]:
    ev, size = config["evaluate"], config["meta"]["image_size"]
    notes = [f"Ours: mean over the first {ev['images']} images of the '{ev['split']}' split of each class, {size}×{size} RGB "
             f"(the paper: 128×128); in brackets, the paper's number. Time: mean seconds per image on this run's device "
             f"(the paper: its authors' GPU)."]
    faces, natural = ev["roles"]["faces"], ev["roles"]["natural"]
    substitute = "" if "celeba" in faces.lower() else " (a substitute for CelebA faces, which are not available offline)"
    notes.append(f"'faces' = curated dataset '{faces}'{substitute}; 'natural' = curated dataset '{natural}' (natural image patches).")
    notes.append("DIP (k): vanilla DIP from a random init read at step k of one run — EMA of outputs (weight "
                 "0.99, the paper's definition) and, in its own row, the last iterate.")
    return notes


def _paper(v: float) -> str:
    """The paper's number as printed there (at least one decimal: 26 -> 26.0, 9.84 stays)."""
    text = f"{v:g}"
    return text if "." in text else f"{text}.0"


def _cell_text(c: dict[str, Any]) -> str:
    if c["role"] == "time":
        ours = _fmt_s(c["seconds"])
        return ours if c["paper"] is None else f"{ours} ({_paper(c['paper'])})"
    ours = _fmt(c["psnr"])
    return ours if c["paper"] is None else f"{ours} ({_paper(c['paper'])})"


def to_markdown(t: dict[str, Any]) -> str:
    lines = [f"### {t['title']}", "", "| method | " + " | ".join(t["headers"]) + " |", "|---" * (len(t["headers"]) + 1) + "|"]
    for r in t["rows"]:
        lines.append(f"| {r['label']} | " + " | ".join(_cell_text(c) for c in r["cells"]) + " |")
    lines += [""] + [f"- {n}" for n in t["notes"]]
    return "\n".join(lines) + "\n"


def _tex(s: str) -> str:
    return (s.replace("\\", "\\textbackslash{}").replace("&", "\\&").replace("%", "\\%").replace("_", "\\_")
            .replace("σ", "$\\sigma$").replace("—", "--").replace("×", "$\\times$"))


def to_latex(t: dict[str, Any]) -> str:
    cols = "l" + "r" * len(t["headers"])
    lines = ["% generated by stages/render.py; needs \\usepackage{booktabs}", "\\begin{table}[t]", "\\centering",
             f"\\caption{{{_tex(t['title'])}. Ours (paper).}}", f"\\begin{{tabular}}{{{cols}}}", "\\toprule",
             "method & " + " & ".join(_tex(h) for h in t["headers"]) + " \\\\", "\\midrule"]
    for r in t["rows"]:
        lines.append(_tex(r["label"]) + " & " + " & ".join(_tex(_cell_text(c)) for c in r["cells"]) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}", "\\end{table}"]
    return "\n".join(lines) + "\n"


def to_csv(t: dict[str, Any]) -> str:
    """Long format: one line per (row, column) with our value and the paper's."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["table", "method", "label", "variant", "task", "role", "dataset", "images", "psnr_db", "paper_psnr_db", "seconds", "paper_seconds"])
    for r in t["rows"]:
        for c in r["cells"]:
            timed = c["role"] == "time"
            w.writerow([t["table"], r["method"], r["label"], r["variant"], c["task"], c["role"], c.get("dataset", ""), c.get("n") or "",
                        "" if timed or c["psnr"] is None else f"{c['psnr']:.4f}", "" if timed or c["paper"] is None else c["paper"],
                        "" if not timed or c["seconds"] is None else f"{c['seconds']:.4f}", "" if not timed or c["paper"] is None else c["paper"]])
    return buf.getvalue()


def convergence_rows(rows: list[dict[str, Any]], config: dict[str, Any]) -> list[dict[str, Any]]:
    """Figure 2's data: per (task, dataset, series, step) the mean / min / max NMSE over images.

    Series: every meta method, and the longest-run variant of every DIP method, as its EMA
    estimate and its last iterate."""
    methods = config["evaluate"]["methods"]
    longest = {}
    for r in rows:
        if methods[r["method_name"]]["kind"] == "dip":
            longest[r["method_name"]] = max(longest.get(r["method_name"], 0), r["steps"])
    series: dict[tuple[str, str, str], list[list[float]]] = defaultdict(list)
    for r in rows:
        kind = methods[r["method_name"]]["kind"]
        if kind == "meta":
            series[(r["task"], r["dataset"], methods[r["method_name"]]["label"] + " (meta-init)")].append(list(r["trace_nmse"]))
        elif kind == "dip" and r["steps"] == longest[r["method_name"]]:
            label = methods[r["method_name"]]["label"]
            series[(r["task"], r["dataset"], f"{label} random init, last iterate")].append(list(r["trace_nmse_last"]))
            if methods[r["method_name"]].get("ema") is not None:
                series[(r["task"], r["dataset"], f"{label} random init, EMA")].append(list(r["trace_nmse"]))
    out = []
    for (task, dataset, name), traces in sorted(series.items()):
        arr = np.array(traces)
        for k in range(arr.shape[1]):
            out.append({"task": task, "dataset": dataset, "series": name, "step": k + 1, "images": arr.shape[0],
                        "nmse_mean": float(arr[:, k].mean()), "nmse_min": float(arr[:, k].min()), "nmse_max": float(arr[:, k].max())})
    return out


def convergence_csv(conv: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=["task", "dataset", "series", "step", "images", "nmse_mean", "nmse_min", "nmse_max"], lineterminator="\n")
    w.writeheader()
    for r in conv:
        w.writerow({**r, **{k: f"{r[k]:.6g}" for k in ("nmse_mean", "nmse_min", "nmse_max")}})
    return buf.getvalue()
