"""Tables 1-3, the metrics summary and Figure 2's data from synthetic result rows."""

from __future__ import annotations

import csv
import io

from metadip.config import validate_config
from metadip.tables import build_table, convergence_rows, metrics_summary, to_csv, to_latex, to_markdown
from test_evaluation import tiny_config


def rows_for(cfg):
    rows = []
    for task, kind in (("den", "denoising"), ("cs", "cs_fast")):
        for dataset in ("a", "b"):
            for i in range(2):
                base = {"task": task, "kind": kind, "dataset": dataset, "image_index": i, "image_id": f"{dataset}/test/{i}"}
                for k, p in ((1, 10.0), (3, 20.0)):
                    rows.append({**base, "method_name": "dip", "method": f"dip_{k}", "label": f"DIP ({k})", "steps": k,
                                 "psnr": p + i, "psnr_last": p + 5 + i, "ssim": 0.5, "seconds": 0.1 * k,
                                 "trace_nmse": [0.5, 0.3, 0.2][:k], "trace_nmse_last": [0.4, 0.2, 0.1][:k]})
                if kind == "denoising":
                    rows.append({**base, "method_name": "bm3d", "method": "bm3d", "label": "BM3D", "steps": 1, "psnr": 30.0 + i,
                                 "psnr_last": 30.0 + i, "ssim": 0.9, "seconds": 2.0, "trace_nmse": [0.01], "trace_nmse_last": [0.01]})
    return rows


def test_table_layout_values_and_paper_columns():
    cfg = tiny_config()
    cfg["evaluate"]["tasks"]["den"]["sigma"] = 25.0
    rows = rows_for(cfg)
    t1 = build_table(1, rows, cfg)
    assert t1["headers"] == ["σ=25 faces", "σ=25 natural", "time (s)"]
    labels = [r["label"] for r in t1["rows"]]
    assert labels == ["DIP (3)", "DIP (3), last iterate", "DIP (1)", "DIP (1), last iterate", "BM3D"]  # config order, long run first
    bm3d = t1["rows"][-1]["cells"]
    assert bm3d[0]["psnr"] == 30.5 and bm3d[0]["paper"] == 31.9 and t1["rows"][0]["cells"][0]["paper"] is None
    md = to_markdown(t1)
    assert "| DIP (3), last iterate | 25.50 | 25.50 |" in md and "substitute for CelebA" in md
    assert "\\begin{tabular}{lrrr}" in to_latex(t1)
    parsed = list(csv.DictReader(io.StringIO(to_csv(t1))))
    assert {p["variant"] for p in parsed} == {"estimate", "last"} and len(parsed) == 5 * 3
    assert build_table(3, rows, cfg) is None  # no PR task in this config
    # a method whose step count differs between settings (PnP's tuned iterations) is still one row
    rows2 = [dict(r, steps=r["steps"] * (2 if r["dataset"] == "b" else 1)) if r["method"] == "bm3d" else r for r in rows]
    assert [r["label"] for r in build_table(1, rows2, cfg)["rows"]] == labels


def test_paper_numbers_sit_beside_ours_for_the_paper_methods():
    cfg = validate_config({"evaluate": {"roles": {"faces": "a", "natural": "b"},
                                        "tasks": {"den_25": {"kind": "denoising", "sigma": 25}},
                                        "methods": {"bm3d": {"kind": "denoiser", "denoiser": "bm3d", "label": "BM3D"}}}})
    rows = [{"task": "den_25", "kind": "denoising", "dataset": d, "image_index": 0, "image_id": "x", "method_name": "bm3d",
             "method": "bm3d", "label": "BM3D", "steps": 1, "psnr": 29.0, "psnr_last": 29.0, "ssim": 0.8, "seconds": 1.5}
            for d in ("a", "b")]
    t1 = build_table(1, rows, cfg)
    cells = t1["rows"][0]["cells"]
    assert [c["paper"] for c in cells] == [31.9, 31.8, 1.66]
    assert "| BM3D | 29.00 (31.9) | 29.00 (31.8) | 1.50 (1.66) |" in to_markdown(t1)


def test_metrics_summary_and_convergence():
    cfg = tiny_config()
    rows = rows_for(cfg)
    s = metrics_summary(rows)
    assert s["den"]["a"]["dip_3"] == {"psnr_db": 20.5, "psnr_last_db": 25.5, "seconds": 0.3, "images": 2}
    assert "psnr_last_db" not in s["den"]["a"]["bm3d"]
    conv = convergence_rows(rows, cfg)
    series = {r["series"] for r in conv}
    assert series == {"DIP random init, last iterate", "DIP random init, EMA"}  # the longest DIP run only
    first = next(r for r in conv if r["task"] == "den" and r["dataset"] == "a" and r["series"].endswith("EMA") and r["step"] == 3)
    assert first["nmse_mean"] == 0.2 and first["images"] == 2
