"""Tables 1-3, the metrics summary and Figure 2's data from synthetic result rows: values, 95%
intervals over photographs, n images / photos, and labels that name the data."""

from __future__ import annotations

import csv
import io

import pytest
from builders import tiny_config

from metadip.pipeline.config import validate_config
from metadip.reporting.figures import save_convergence_figure
from metadip.reporting.settings import report_settings
from metadip.reporting.stats import summarize
from metadip.reporting.tables import (
    build_table,
    convergence_csv,
    convergence_rows,
    means_csv,
    method_means,
    to_csv,
    to_latex,
    to_markdown,
)


def rows_for(cfg, images=4, photos=2):
    """Per task, dataset and image i (photo i % photos): DIP read at 1 and 3 steps, BM3D on denoising."""
    rows = []
    for task, kind in (("den", "denoising"), ("cs", "cs_fast")):
        for dataset in ("a", "b"):
            for i in range(images):
                base = {
                    "task": task,
                    "kind": kind,
                    "dataset": dataset,
                    "image_index": i,
                    "image_id": f"{dataset}/test/{i}",
                    "source_file": f"{dataset}/photo{i % photos}.jpg",
                }
                for k, p in ((1, 10.0), (3, 20.0)):
                    rows.append(
                        {
                            **base,
                            "method_name": "dip",
                            "method": f"dip_{k}",
                            "label": f"DIP ({k})",
                            "steps": k,
                            "psnr": p + i,
                            "psnr_last": p + 5 + i,
                            "ssim": 0.5,
                            "seconds": 0.1 * k,
                            "trace_nmse": [0.5, 0.3, 0.2][:k],
                            "trace_nmse_last": [0.4, 0.2, 0.1][:k],
                        }
                    )
                if kind == "denoising":
                    rows.append(
                        {
                            **base,
                            "method_name": "bm3d",
                            "method": "bm3d",
                            "label": "BM3D",
                            "steps": 1,
                            "psnr": 30.0 + i,
                            "psnr_last": 30.0 + i,
                            "ssim": 0.9,
                            "seconds": 2.0,
                            "trace_nmse": [0.01],
                            "trace_nmse_last": [0.01],
                        }
                    )
    return rows


def test_table_layout_values_intervals_and_paper_columns():
    cfg = tiny_config()
    cfg["evaluate"]["tasks"]["den"]["sigma"] = 25.0
    rows = rows_for(cfg)
    t1 = build_table(1, rows, report_settings(cfg))
    assert t1["headers"] == ["σ=25 a (for faces)", "σ=25 b (natural)", "time (s)"]
    labels = [r["label"] for r in t1["rows"]]
    assert labels == [
        "DIP (3)",
        "DIP (3), last iterate",
        "DIP (1)",
        "DIP (1), last iterate",
        "BM3D",
    ]  # config order, long run first
    bm3d = t1["rows"][-1]["cells"][0]
    # photo 0 holds images 0, 2 (mean 31), photo 1 images 1, 3 (mean 32): 31.5 ± t(1 df) · 0.5 = ± 6.353
    assert (bm3d["psnr"], bm3d["n"], bm3d["photos"]) == (31.5, 4, 2)
    assert (bm3d["ci_low"], bm3d["ci_high"]) == pytest.approx((25.147, 37.853), abs=1e-3)
    assert bm3d["paper"] == 31.9 and t1["rows"][0]["cells"][0]["paper"] is None
    md = to_markdown(t1)
    assert "| BM3D | 31.50 [25.1, 37.9] (31.9) | 31.50 [25.1, 37.9] (31.8) | 2.00 [2.00, 2.00] (1.66) |" in md
    assert "| DIP (3), last iterate | 26.50 [20.1, 32.9] | 26.50 [20.1, 32.9] |" in md
    assert "a cluster-robust t interval over source photographs (G−1 df)" in md
    assert "n = 4 images / 2 photos per cell" in md and "n=" not in md.split("\n- ")[0]
    tex = to_latex(t1)
    assert (
        "\\begin{tabular}{lrrr}" in tex
        and "31.50\\,{\\scriptsize[25.1, 37.9]} (31.9)" in tex
        and "2 photographs per cell" in tex
    )
    parsed = list(csv.DictReader(io.StringIO(to_csv(t1))))
    assert {p["variant"] for p in parsed} == {"estimate", "last"} and len(parsed) == 5 * 3
    first = next(p for p in parsed if p["method"] == "bm3d" and p["role"] == "faces")
    assert (first["psnr_db"], first["ci_low"], first["ci_high"], first["images"], first["photos"]) == (
        "31.5000",
        "25.1469",
        "37.8531",
        "4",
        "2",
    )
    assert build_table(3, rows, report_settings(cfg)) is None  # no PR task in this config
    # a method whose step count differs between settings (PnP's tuned iterations) is still one row
    rows2 = [
        dict(r, steps=r["steps"] * (2 if r["dataset"] == "b" else 1)) if r["method"] == "bm3d" else r for r in rows
    ]
    assert [r["label"] for r in build_table(1, rows2, report_settings(cfg))["rows"]] == labels


def test_notes_name_the_data_and_its_photographs():
    cfg = tiny_config()
    notes = " ".join(build_table(1, rows_for(cfg, images=3, photos=3), report_settings(cfg))["notes"])
    assert (
        "'faces' columns: 'a' (stand-in for CelebA faces; meta-training class): 3 images from 3 photographs "
        "of the 'test' split" in notes
    )
    assert (
        "'natural' columns: 'b' (natural patches; transfer class)" in notes
        and "interleaved across photographs" in notes
    )
    assert "first" not in notes
    cfg["evaluate"]["roles"] = {"faces": "celeba", "natural": "b"}
    rows = [dict(r, dataset="celeba") if r["dataset"] == "a" else r for r in rows_for(cfg)]
    t = build_table(1, rows, report_settings(cfg))
    assert t["headers"][0] == "σ=25 celeba (faces)" and "'celeba' (CelebA faces; transfer class)" in " ".join(
        t["notes"]
    )


def test_a_method_run_on_the_first_images_says_so_under_the_table():
    cfg = tiny_config()
    cfg["evaluate"]["methods"]["dip"]["images"] = 2
    rows = [r for r in rows_for(cfg, images=3, photos=3) if not (r["method_name"] == "dip" and r["image_index"] == 2)]
    table = build_table(1, rows, report_settings(cfg))
    assert "DIP: run on the first 2 of each class's evaluated images only" in " ".join(table["notes"])
    assert "n=2/2" in to_markdown(table) and "n=3/3" in to_markdown(table)


def test_uneven_cells_show_their_own_n_and_one_photo_shows_no_interval():
    cfg = tiny_config()
    # image 3 of b missing: photo 0 keeps images 0, 2 (mean 31), photo 1 image 1 (31): no spread
    rows = [r for r in rows_for(cfg) if not (r["method"] == "bm3d" and r["dataset"] == "b" and r["image_index"] == 3)]
    md = to_markdown(build_table(1, rows, report_settings(cfg)))
    assert (
        "n = images/photos, per cell" in md
        and "| BM3D | 31.50 [25.1, 37.9] (31.9) n=4/2 | 31.00 [31.0, 31.0] (31.8) n=3/2 |" in md
    )
    single = build_table(1, rows_for(cfg, photos=1), report_settings(cfg))
    assert "| BM3D | 31.50 (31.9) | 31.50 (31.8) | 2.00 [2.00, 2.00] (1.66) |" in to_markdown(
        single
    )  # time: both classes
    cell = next(p for p in csv.DictReader(io.StringIO(to_csv(single))) if p["method"] == "bm3d")
    assert (cell["ci_low"], cell["photos"]) == ("", "1")


def test_paper_numbers_sit_beside_ours_for_the_paper_methods():
    cfg = validate_config(
        {
            "evaluate": {
                "roles": {"faces": "a", "natural": "b"},
                "tasks": {"den_25": {"kind": "denoising", "sigma": 25}},
                "methods": {"bm3d": {"kind": "denoiser", "denoiser": "bm3d", "label": "BM3D"}},
            }
        }
    )
    rows = [
        {
            "task": "den_25",
            "kind": "denoising",
            "dataset": d,
            "image_index": i,
            "image_id": "x",
            "method_name": "bm3d",
            "method": "bm3d",
            "label": "BM3D",
            "steps": 1,
            "psnr": 29.0,
            "psnr_last": 29.0,
            "ssim": 0.8,
            "seconds": 1.5,
            "source_file": f"p{i}",
        }
        for d in ("a", "b")
        for i in range(2)
    ]
    t1 = build_table(1, rows, report_settings(cfg))
    cells = t1["rows"][0]["cells"]
    assert [c["paper"] for c in cells] == [31.9, 31.8, 1.66]
    assert "| BM3D | 29.00 [29.0, 29.0] (31.9) | 29.00 [29.0, 29.0] (31.8) | 1.50 [1.50, 1.50] (1.66) |" in to_markdown(
        t1
    )


def test_metrics_summary_and_convergence():
    cfg = tiny_config()
    rows = rows_for(cfg)
    s = {(m["task"], m["dataset"], m["method"]): m for m in method_means(rows)}
    assert s[("den", "a", "dip_3")] == {
        "task": "den",
        "dataset": "a",
        "method": "dip_3",
        "psnr_db": 21.5,
        "psnr_ci_low_db": 15.147,
        "psnr_ci_high_db": 27.853,
        "psnr_last_db": 26.5,
        "seconds": 0.3,
        "images": 4,
        "photos": 2,
    }
    assert s[("den", "a", "bm3d")]["psnr_last_db"] is None
    one_photo = {(m["task"], m["dataset"], m["method"]): m for m in method_means(rows_for(cfg, photos=1))}
    assert one_photo[("den", "a", "bm3d")]["psnr_ci_low_db"] is None  # one photo: no interval
    text = means_csv(method_means(rows)).splitlines()
    assert text[0].startswith("task,dataset,method,psnr_db") and "den,a,dip_3,21.5,15.147,27.853,26.5,0.3,4,2" in text
    conv = convergence_rows(rows, cfg["evaluate"]["methods"])
    series = {r["series"] for r in conv}
    assert series == {"DIP random init, last iterate", "DIP random init, EMA"}  # the longest DIP run only
    first = next(
        r for r in conv if r["task"] == "den" and r["dataset"] == "a" and r["series"].endswith("EMA") and r["step"] == 3
    )
    assert first["nmse_mean"] == 0.2 and first["images"] == 4 and first["photos"] == 2
    header = convergence_csv(conv).splitlines()[0].split(",")
    assert header[5:9] == ["photos", "nmse_mean", "nmse_ci_low", "nmse_ci_high"]


def test_convergence_leaves_out_an_averaged_meta_row():
    # its trace repeats the plain row's up to the window, so Figure 2 draws the plain row only
    methods = {
        "m": {"kind": "meta", "label": "M"},
        "m_avg": {"kind": "meta", "label": "M mean of last 2", "average_last": 2},
    }
    rows = [
        {"task": "den", "dataset": "a", "method_name": name, "trace_nmse": [0.5, 0.3, 0.2], "source_file": f"p{i}"}
        for name in methods
        for i in range(2)
    ]
    assert {r["series"] for r in convergence_rows(rows, methods)} == {"M (meta-init)"}


def test_convergence_interval_per_step_equals_the_scalar_interval(tmp_path):
    cfg = tiny_config()
    rng = __import__("numpy").random.default_rng(0)
    rows = [
        dict(r, trace_nmse=list(rng.uniform(0.1, 1.0, 3)), trace_nmse_last=list(rng.uniform(0.1, 1.0, 3)))
        for r in rows_for(cfg, images=6, photos=3)
        if r["method"] == "dip_3"
    ]
    conv = [
        r
        for r in convergence_rows(rows, cfg["evaluate"]["methods"])
        if r["task"] == "cs" and r["dataset"] == "b" and r["series"].endswith("EMA")
    ]
    mine = [r for r in rows if r["task"] == "cs" and r["dataset"] == "b"]
    for c in conv:
        s = summarize([r["trace_nmse"][c["step"] - 1] for r in mine], [(r["dataset"], r["source_file"]) for r in mine])
        assert (c["nmse_ci_low"], c["nmse_ci_high"]) == pytest.approx((s.ci_low, s.ci_high), abs=1e-12)
        assert c["nmse_ci_low"] <= c["nmse_mean"] <= c["nmse_ci_high"]
        assert c["nmse_min"] <= c["nmse_mean"] <= c["nmse_max"]
    # Figure 2 draws the band, and a panel whose rows have no interval (one photo) without it
    panels = [("cs", "b", "cs · 'b'"), ("den", "a", "den · 'a'")]
    one_photo = [dict(r, nmse_ci_low=None, nmse_ci_high=None, task="den", dataset="a") for r in conv]
    save_convergence_figure(conv + one_photo, panels, tmp_path / "figure2.png", title="Figure 2")
    assert (tmp_path / "figure2.png").stat().st_size > 0
