"""What `dvc metrics show` and `dvc plots show` read (metadip.reporting.dvc_views): a metrics file per
task setting and image class with the verdict counts and the headline gap, a PSNR-per-step CSV per
setting and class with a line per iterative method, and folders that hold only the current settings."""

from __future__ import annotations

import csv
import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import test_claims
import yaml
from test_claims import make_rows
from test_results import den_25_config, planned_rows, run_stage
from workflow_helpers import ROOT

from metadip.reporting.claims import VERDICTS, check_claims, headline
from metadip.reporting.dvc_views import ALL, metrics_files, plot_csv, psnr_curves, write_folder
from metadip.reporting.protocol import load_protocol
from metadip.reporting.settings import report_settings

config = test_claims.config  # the fixture: the default config with den_25 and cs_8
STEPS = {"dip_50": 50, "dip_1000": 1000}
PROTOCOL = ROOT / "config" / "protocol.yaml"


def traced_rows(config):
    """make_rows with each run's steps and a PSNR trace: image i of method m at step k reads
    base(m) + k / 100 − i (so the mean over images 0-3 at step k is base(m) + k / 100 − 1.5)."""
    rows = make_rows(config, psnr={"metadip_avg": 30.2})
    base = {"dip_50": 30.5, "dip_1000": 30.5, "metadip": 30.0, "metasiren": 29.0, "metadip_random": 28.0}
    base["metadip_avg"] = 31.0  # left out of the plots
    out = []
    for r in rows:
        steps = STEPS.get(r["method"], 50)
        trace = [base[r["method"]] + k / 100 - r["image_index"] for k in range(1, steps + 1)]
        out.append(r | {"steps": steps, "trace_psnr": trace})
    return out


def test_a_plot_per_setting_and_class_with_a_line_per_iterative_method(config):
    settings = report_settings(config)
    curves = psnr_curves(traced_rows(config), settings)
    assert set(curves) == {f"{t}_{c}" for t in ("den_25", "cs_8") for c in ("faces", "natural")}
    lines = {}
    for r in curves["cs_8_natural"]:
        lines.setdefault(r["method"], []).append((r["step"], r["psnr"]))
    # DIP's longest run only (its 50-step reading is the same run), the averaged MetaDIP left out
    assert set(lines) == {"DIP (EMA)", "MetaDIP", "MetaSIREN", "Random init + MetaDIP inner loop"}
    assert [s for s, _ in lines["DIP (EMA)"]] == list(range(1, 1001))
    assert lines["MetaDIP"][9] == (10, pytest.approx(30.0 + 0.1 - 1.5))
    assert lines["DIP (EMA)"][-1] == (1000, pytest.approx(30.5 + 10 - 1.5))

    text = plot_csv(curves["cs_8_natural"])
    parsed = list(csv.DictReader(io.StringIO(text)))
    assert text.splitlines()[0] == "step,method,psnr" and len(parsed) == 1000 + 3 * 50


def test_a_setting_without_an_iterative_method_has_an_empty_plot(config):
    rows = [r for r in traced_rows(config) if r["task"] != "den_25" and r["method"] in ("metadip", "dip_1000")]
    curves = psnr_curves(rows, report_settings(config))
    assert curves["den_25_faces"] == [] and plot_csv([]) == "step,method,psnr\n"
    assert {r["method"] for r in curves["cs_8_faces"]} == {"MetaDIP", "DIP (EMA)"}


def primary_counts(checks: list[dict], where: tuple[str, str] | None = None) -> dict[str, int]:
    """The verdict counts of the primary checks (of one (task, role) setting when ``where`` is given)."""
    mine = [ch for ch in checks if ch["reading"] == "primary" and where in (None, (ch["task"], ch["role"]))]
    return {v: sum(ch["verdict"] == v for ch in mine) for v in VERDICTS}


def test_metrics_count_each_settings_primary_checks_and_give_its_gap(config, tmp_path):
    settings = report_settings(config)
    doc = yaml.safe_load(PROTOCOL.read_text())
    doc["inference"]["min_photos"] = 2  # make_rows: 4 images of 4 photographs
    (tmp_path / "protocol.yaml").write_text(yaml.safe_dump(doc))
    protocol = load_protocol(tmp_path / "protocol.yaml")
    rows = make_rows(config, psnr={"metadip": 31.0})  # 0.5 dB above DIP(1000)
    verdict = check_claims(rows, settings, protocol)
    metrics = metrics_files(verdict, headline(rows, settings), settings)
    assert set(metrics) == {ALL} | {f"{t}_{c}" for t in ("den_25", "cs_8") for c in ("faces", "natural")}
    assert metrics["cs_8_faces"]["gap_db"] == pytest.approx(0.5)
    assert metrics[ALL] == {"n": primary_counts(verdict["checks"])} and metrics[ALL]["n"]["holds"] > 0
    assert any(ch["reading"] == "secondary" for ch in verdict["checks"])  # ... which the counts leave out
    per_setting = [sum(m["n"].values()) for name, m in metrics.items() if name != ALL]
    assert sum(per_setting) == sum(ch["reading"] == "primary" for ch in verdict["checks"]) and min(per_setting) > 0

    worse = make_rows(config, psnr={"metadip": 20.0})  # fails 1-quality, 2, 3 everywhere
    verdict = check_claims(worse, settings, protocol)
    m = metrics_files(verdict, headline(worse, settings), settings)["den_25_natural"]
    assert m["n"] == primary_counts(verdict["checks"], ("den_25", "natural"))
    assert m["n"]["fails"] >= 3 and m["gap_db"] == pytest.approx(-10.5)

    no_long = [r for r in rows if r["method"] != "dip_1000"]
    m = metrics_files(check_claims(no_long, settings, protocol), headline(no_long, settings), settings)
    assert "gap_db" not in m["den_25_faces"] and m["den_25_faces"]["n"]["inconclusive"] > 0


def test_a_folder_keeps_only_the_files_written_last(tmp_path):
    folder = tmp_path / "plots"
    write_folder(folder, {"a.csv": "1\n", "b.csv": "2\n"}, ".csv")
    (folder / "notes.txt").write_text("kept")
    write_folder(folder, {"b.csv": "3\n"}, ".csv")
    assert sorted(p.name for p in folder.iterdir()) == ["b.csv", "notes.txt"]
    assert (folder / "b.csv").read_text() == "3\n"


def test_the_stages_write_the_views_and_drop_a_setting_no_longer_configured(tmp_path):
    config = den_25_config(tmp_path)
    traces = {"trace_step": [1, 2], "trace_nmse": [0.5, 0.25], "trace_nmse_last": [0.5, 0.25]}
    rows = [r | traces | {"trace_psnr": [r["psnr"] - 1, r["psnr"]]} for r in planned_rows(config)]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "shard.parquet")
    out = tmp_path / "out"
    for folder, name in (("plots", "old_faces.csv"), ("metrics", "old_faces.json")):
        (out / folder).mkdir(parents=True)
        (out / folder / name).write_text("from an earlier config")
    for stage in ("aggregate", "claims"):
        run = run_stage(stage, tmp_path, out)
        assert run.returncode == 0, run.stderr
    names = ["den_25_faces", "den_25_natural"]
    assert sorted(p.name for p in (out / "plots").iterdir()) == [f"{n}.csv" for n in names]
    assert sorted(p.name for p in (out / "metrics").iterdir()) == [f"{n}.json" for n in ["all", *names]]
    plot = list(csv.DictReader((out / "plots" / "den_25_faces.csv").open()))
    assert {r["method"] for r in plot} >= {"MetaDIP", "DIP (EMA)"} and {r["step"] for r in plot} == {"1", "2"}
    metrics = json.loads((out / "metrics" / "den_25_faces.json").read_text())
    assert set(metrics) == {"n", "gap_db"} and set(metrics["n"]) == set(VERDICTS)
