"""Gathering the evaluation shards (metadip.reporting.results) and the aggregate stage's refusal of
rows that do not pair up, were computed under another config or cannot be written: one line on
stderr, nothing written."""

from __future__ import annotations

import importlib.util
import math
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from test_claims import make_rows
from workflow_helpers import ROOT

from metadip.core.errors import InputError, ResultError
from metadip.pipeline.config import DEFAULT_CONFIG, ConfigError, load_config
from metadip.pipeline.settings import shard_config_hash
from metadip.reporting.results import read_shards


def _row(table: int, task: str, method: str, index: int, **extra) -> dict:
    return {"table": table, "task": task, "dataset": "a", "method": method, "image_index": index, **extra}


def test_shards_are_concatenated_in_one_order_with_missing_columns_null(tmp_path):
    # the second shard has no psnr column: its rows read as null
    pq.write_table(
        pa.Table.from_pylist([_row(2, "cs", "dip", 1, psnr=None), _row(1, "den", "metadip", 0, psnr=30.0)]),
        tmp_path / "s1.parquet",
    )
    pq.write_table(pa.Table.from_pylist([_row(1, "den", "dip", 1), _row(1, "den", "dip", 0)]), tmp_path / "s2.parquet")
    rows = read_shards([tmp_path / "s1.parquet", tmp_path / "s2.parquet"]).to_pylist()
    assert [(r["table"], r["method"], r["image_index"]) for r in rows] == [
        (1, "dip", 0),
        (1, "dip", 1),
        (1, "metadip", 0),
        (2, "dip", 1),
    ]
    assert [r["psnr"] for r in rows] == [None, None, 30.0, None]


def test_an_unreadable_shard_is_named(tmp_path):
    good, bad = tmp_path / "good.parquet", tmp_path / "bad.parquet"
    pq.write_table(pa.Table.from_pylist([_row(1, "den", "dip", 0)]), good)
    bad.write_text("not parquet")
    with pytest.raises(ValueError, match=r"bad\.parquet: not a readable shard .* delete it and rerun"):
        read_shards([good, bad])
    with pytest.raises(ValueError, match="no shards"):
        read_shards([])


@pytest.mark.parametrize(("column", "value"), [("psnr", math.nan), ("ssim", -math.inf), ("seconds", math.inf)])
def test_a_shard_with_a_non_finite_metric_is_refused_naming_the_file(tmp_path, column, value):
    good, bad = tmp_path / "good.parquet", tmp_path / "bad.parquet"
    metrics = {"psnr": 30.0, "psnr_last": 29.0, "ssim": 0.9, "seconds": 1.0}
    pq.write_table(pa.Table.from_pylist([_row(1, "den", "dip", 0, **metrics)]), good)
    rows = [_row(1, "den", "dip", i, **metrics) for i in (1, 2)]
    rows[1][column] = value
    pq.write_table(pa.Table.from_pylist(rows), bad)
    with pytest.raises(
        ResultError, match=rf"^\S*bad\.parquet: {column} = {value} in row 1, not a finite number; delete"
    ):
        read_shards([good, bad])


def planned_rows(config: dict) -> list[dict]:
    """Rows of every task, class, image and method, each with the config_hash ``config`` gives it."""
    return [
        dict(r, table=1, config_hash=shard_config_hash(config, r["task"], r["dataset"], r["method_name"]))
        for r in make_rows(config)
    ]


def den_25_config(tmp_path) -> dict:
    """The default config with the one task setting den_25, written to tmp_path/config.yaml."""
    config = load_config(DEFAULT_CONFIG)
    config["evaluate"]["tasks"] = {"den_25": {"kind": "denoising", "sigma": 25}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    return load_config(tmp_path / "config.yaml")  # as the stage reads it


def run_stage(stage: str, tmp_path, out, shards=("shard.parquet",)) -> subprocess.CompletedProcess:
    """stages/<stage>.py (aggregate or claims) on tmp_path/config.yaml and the shards, writing under ``out``."""
    outputs = {
        "aggregate": [
            *("--results", str(out / "results.parquet"), "--summary", str(out / "summary.json")),
            *("--means", str(out / "means.csv"), "--convergence", str(out / "convergence.csv")),
            *("--plots", str(out / "plots")),
        ],
        "claims": ["--out", str(out / "claims"), "--metrics", str(out / "metrics")],
    }[stage]
    return subprocess.run(
        [
            *(sys.executable, str(ROOT / "stages" / f"{stage}.py"), "--config", str(tmp_path / "config.yaml")),
            *("--shards", *(str(tmp_path / s) for s in shards)),
            *outputs,
        ],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize("stage", ["aggregate", "claims"])
def test_aggregate_and_claims_refuse_rows_that_do_not_pair_up_and_write_nothing(stage, tmp_path):
    config = den_25_config(tmp_path)
    rows = [r for r in planned_rows(config) if not (r["method"] == "dip_1000" and r["image_index"] == 2)]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "shard.parquet")
    out = tmp_path / "out"
    run = run_stage(stage, tmp_path, out)
    assert run.returncode == 1, run.stderr
    assert run.stderr.startswith(f"{stage}: error: ") and run.stderr.count("\n") == 1, run.stderr
    assert "dip_1000" in run.stderr
    assert not out.exists()


def load_stage(name: str):
    """The stage script stages/<name>.py as a module (its ``main`` runs in this process)."""
    spec = importlib.util.spec_from_file_location(f"stage_{name}", ROOT / "stages" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _aggregate(tmp_path) -> list[str]:
    """Arguments of stages/aggregate.py on a config and a shard of rows that pair up."""
    config = den_25_config(tmp_path)
    pq.write_table(pa.Table.from_pylist(planned_rows(config)), tmp_path / "shard.parquet")
    out = tmp_path / "out"
    return [
        *("--config", str(tmp_path / "config.yaml"), "--shards", str(tmp_path / "shard.parquet")),
        *("--results", str(out / "results.parquet"), "--summary", str(out / "summary.json")),
        *("--means", str(out / "means.csv"), "--convergence", str(out / "convergence.csv")),
        *("--plots", str(out / "plots")),
    ]


@pytest.mark.parametrize("bug", [ValueError("planted bug"), IndexError("planted bug")])
def test_a_bug_in_the_aggregation_keeps_its_traceback(tmp_path, monkeypatch, bug):
    def difference(*args, **kwargs):
        raise bug

    monkeypatch.setattr("metadip.reporting.claims.paired_difference", difference)
    with pytest.raises(type(bug), match="planted bug"):
        load_stage("aggregate").main(_aggregate(tmp_path))
    assert not (tmp_path / "out").exists()


def test_an_input_error_in_the_aggregation_is_one_line(tmp_path, monkeypatch, capsys):
    def difference(*args, **kwargs):
        raise InputError("planted bad input; the fix")

    monkeypatch.setattr("metadip.reporting.claims.paired_difference", difference)
    assert load_stage("aggregate").main(_aggregate(tmp_path)) == 1
    assert capsys.readouterr().err == "aggregate: error: planted bad input; the fix\n"
    assert not (tmp_path / "out").exists()


def test_claims_stage_refuses_a_config_with_the_claims_off(tmp_path):
    config = load_config(DEFAULT_CONFIG)
    config["claims"]["enabled"] = False
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    run = subprocess.run(
        [
            *(sys.executable, str(ROOT / "stages" / "claims.py"), "--config", str(tmp_path / "config.yaml")),
            *("--shards", "--out", str(tmp_path / "claims"), "--metrics", str(tmp_path / "claims_metrics")),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 1 and run.stderr.count("\n") == 1, run.stderr
    assert "claims.enabled is false" in run.stderr and "set it to true" in run.stderr
    assert not list(tmp_path.glob("claims*"))


@pytest.mark.parametrize("stage", ["aggregate", "claims"])
def test_aggregate_and_claims_refuse_a_shard_computed_under_another_config(stage, tmp_path):
    """A shard whose rows carry another config_hash than the config gives their task and method (e.g.
    computed at sigma 50 while the plan says 25) is named, with the fix; nothing is written."""
    config = den_25_config(tmp_path)
    other = load_config(DEFAULT_CONFIG)
    other["evaluate"]["tasks"] = {"den_25": {"kind": "denoising", "sigma": 50}}
    rows = planned_rows(config)
    pq.write_table(pa.Table.from_pylist([r for r in rows if r["method_name"] != "metadip"]), tmp_path / "good.parquet")
    stale = [
        dict(r, config_hash=shard_config_hash(other, "den_25", r["dataset"], "metadip"))
        for r in rows
        if r["method_name"] == "metadip"
    ]
    pq.write_table(pa.Table.from_pylist(stale), tmp_path / "stale.parquet")
    out = tmp_path / "out"
    run = run_stage(stage, tmp_path, out, shards=("good.parquet", "stale.parquet"))
    assert run.returncode == 1 and run.stderr.count("\n") == 1, run.stderr
    assert run.stderr.startswith(
        f"{stage}: error: {tmp_path / 'stale.parquet'}: rows of den_25/{stale[0]['dataset']}/metadip computed under "
        "another config"
    )
    assert "delete the shard and rerun snakemake" in run.stderr
    assert not out.exists()
    # the same shard with the planned hashes passes the check
    pq.write_table(pa.Table.from_pylist([r for r in rows if r["method_name"] == "metadip"]), tmp_path / "stale.parquet")
    assert "another config" not in run_stage(stage, tmp_path, out, shards=("good.parquet", "stale.parquet")).stderr


def test_read_shards_checks_rows_against_the_config_only_when_given_one(tmp_path):
    config = load_config(DEFAULT_CONFIG)
    row = _row(1, "den_25", "bm3d", 0, method_name="bm3d", config_hash="0123456789abcdef")
    pq.write_table(pa.Table.from_pylist([row]), tmp_path / "s.parquet")
    assert read_shards([tmp_path / "s.parquet"]).num_rows == 1
    with pytest.raises(ConfigError, match=r"s\.parquet: rows of den_25/a/bm3d computed under another config"):
        read_shards([tmp_path / "s.parquet"], config)
    pq.write_table(pa.Table.from_pylist([_row(1, "den_25", "bm3d", 0)]), tmp_path / "s.parquet")
    with pytest.raises(ConfigError, match=r"s\.parquet: no column method_name, config_hash"):
        read_shards([tmp_path / "s.parquet"], config)


def test_shard_config_hash_moves_only_with_what_the_rows_depend_on():
    """Sections a shard does not read (another meta method, the PnP grids, the claims) leave its hash
    alone, so that aggregate never refuses a shard the workflow keeps."""
    config = load_config(DEFAULT_CONFIG)
    before = {m: shard_config_hash(config, "den_25", "wallpapers", m) for m in ("dip", "metadip", "bm3d", "drunet")}
    config["meta"]["methods"]["metasiren"]["outer"]["steps"] += 1
    config["baselines"]["pnp"]["grid"]["cs_bm3d"]["rho"] = [9.0]
    config["claims"]["rivals"] = []
    assert {m: shard_config_hash(config, "den_25", "wallpapers", m) for m in before} == before
    config["meta"]["methods"]["metadip"]["outer"]["steps"] += 1  # what metadip's meta-init was trained with
    after = {m: shard_config_hash(config, "den_25", "wallpapers", m) for m in before}
    assert after["metadip"] != before["metadip"] and after["dip"] == before["dip"] and after["bm3d"] == before["bm3d"]
    config["evaluate"]["tasks"]["den_25"]["sigma"] = 50
    assert all(shard_config_hash(config, "den_25", "wallpapers", m) != after[m] for m in before)


def test_a_write_error_is_one_line_and_writes_nothing(tmp_path):
    """--results under a regular file (or a full disk): one line naming the file, exit 1."""
    config = den_25_config(tmp_path)
    traces = {
        "trace_step": [1, 2],
        "trace_nmse": [0.5, 0.25],
        "trace_nmse_last": [0.5, 0.25],
        "trace_psnr": [20.0, 21.0],
    }
    pq.write_table(pa.Table.from_pylist([r | traces for r in planned_rows(config)]), tmp_path / "shard.parquet")
    (tmp_path / "blocker").write_text("a file, not a folder")
    out = tmp_path / "out"
    out.mkdir()
    run = subprocess.run(
        [
            *(sys.executable, str(ROOT / "stages" / "aggregate.py"), "--config", str(tmp_path / "config.yaml")),
            *("--shards", str(tmp_path / "shard.parquet"), "--results", str(tmp_path / "blocker" / "results.parquet")),
            *("--summary", str(out / "summary.json"), "--means", str(out / "means.csv")),
            *("--convergence", str(out / "convergence.csv"), "--plots", str(out / "plots")),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 1 and run.stderr.count("\n") == 1, run.stderr
    assert (
        run.stderr.startswith("aggregate: error: ")
        and "blocker/results.parquet: cannot create its folder" in run.stderr
    )
    assert "Traceback" not in run.stderr and not list(out.iterdir())  # the other outputs are not written either
