"""What every stage shares (metadip.pipeline.stage): the config snapshot the workflow planned a job
with is refused when its content has another hash, the cross-checks always run, and bad options or
a write error are one line with exit status 1, before any work or leaving no output."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from argparse import Namespace
from pathlib import Path

import pytest
import torch
import yaml
from workflow_helpers import ROOT

from metadip.core.hashing import content_sha
from metadip.pipeline.config import DEFAULT_CONFIG, ConfigError, load_config
from metadip.pipeline.stage import config_snapshot, load_stage_config, write_snapshot


def stage_module(name: str):
    """stages/<name>.py as a module (its main() callable in-process)."""
    spec = importlib.util.spec_from_file_location(f"stage_{name}", ROOT / "stages" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def snapshot(tmp_path):
    """The default config's snapshot under tmp_path/results: (path, hash)."""
    path, sha, text = config_snapshot(load_config(DEFAULT_CONFIG), tmp_path / "results")
    assert write_snapshot(path, text) and not write_snapshot(path, text)  # written once
    return Path(path), sha


def test_a_snapshot_is_named_by_its_content_and_a_damaged_one_is_rewritten(tmp_path, snapshot):
    path, sha = snapshot
    assert path == tmp_path / "results" / "configs" / f"{sha}.yaml"
    text = path.read_text()
    assert content_sha(text.encode()) == sha and yaml.safe_load(text) == load_config(DEFAULT_CONFIG)
    path.write_text(text + "seed: 1\n")
    assert write_snapshot(path, text) and content_sha(path.read_bytes()) == sha


def test_a_stage_refuses_a_snapshot_whose_content_is_not_the_planned_one(tmp_path, snapshot):
    """Another process changed the file after snakemake planned the job: one line, exit 1, nothing
    written (the stage never starts curating)."""
    path, sha = snapshot
    path.write_text(path.read_text().replace("sigma: 25", "sigma: 50"))
    out = tmp_path / "out"
    cmd = [sys.executable, ROOT / "stages" / "curate.py", "--config", path, "--config-sha", sha]
    run = subprocess.run(
        [*cmd, "--dataset", "skimage", "--out", out],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 1 and run.stderr.count("\n") == 1, run.stderr
    assert run.stderr.startswith(f"curate: error: {path}: content hash ")
    assert f"not the {sha} this job was planned with" in run.stderr and "delete it and rerun snakemake" in run.stderr
    assert not out.exists()


def test_the_planned_snapshot_loads_and_without_the_option_any_config_does(tmp_path, snapshot):
    path, sha = snapshot
    assert load_stage_config(Namespace(config=path, config_sha=sha)) == load_config(DEFAULT_CONFIG)
    assert load_stage_config(Namespace(config=DEFAULT_CONFIG, config_sha=None)) == load_config(DEFAULT_CONFIG)
    with pytest.raises(ConfigError, match="cannot read the config snapshot"):
        load_stage_config(Namespace(config=tmp_path / "none.yaml", config_sha=sha))


def test_every_stage_runs_the_cross_checks(tmp_path, monkeypatch, capsys):
    """curate (which read the config without them) refuses a role naming no dataset before any work."""
    config = load_config(DEFAULT_CONFIG)
    config["evaluate"]["roles"]["faces"] = "celeba"
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(config))
    curate = stage_module("curate")
    monkeypatch.setattr(curate, "curate_dataset", lambda *a: pytest.fail("curated with a bad config"))
    code = curate.main(["--config", str(tmp_path / "bad.yaml"), "--dataset", "skimage", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1, err
    assert "evaluate.roles.faces: no dataset 'celeba' under curate.datasets" in err


@pytest.mark.parametrize("threads", [0, -1, 100000])
def test_evaluate_refuses_threads_outside_the_cpus_it_may_use(threads, tmp_path, monkeypatch, capsys):
    evaluate = stage_module("evaluate")
    monkeypatch.setattr(evaluate, "load_stage_config", lambda a: pytest.fail("read the config"))
    monkeypatch.setattr(torch, "set_num_threads", lambda n: pytest.fail(f"set {n} threads"))
    args = ["--task", "den_25", "--dataset", "d", "--data", "d", "--method", "bm3d", "--out", str(tmp_path / "s")]
    assert evaluate.main([*args, "--threads", str(threads)]) == 1
    err = capsys.readouterr().err
    cores = len(os.sched_getaffinity(0))
    assert err == f"evaluate: error: --threads {threads}: give 1 to {cores} (the CPUs this process may use)\n"


def test_evaluate_reports_a_write_error_in_one_line(tmp_path, monkeypatch, capsys):
    """--out under a regular file: one line naming it, exit 1, no file left beside it."""
    evaluate = stage_module("evaluate")
    images = torch.zeros(2, 3, 8, 8)
    chosen = Namespace(images=images, ids=["a", "b"], sources=["p", "q"])
    monkeypatch.setattr(evaluate, "load_evaluation_set", lambda *a, **k: chosen)
    monkeypatch.setattr(evaluate, "evaluate_shard", lambda *a, **k: [{"label": "BM3D", "psnr": 30.0}])
    (tmp_path / "blocker").write_text("a file, not a folder")
    out = tmp_path / "blocker" / "shard-0.parquet"
    args = ["--task", "den_25", "--dataset", "skimage", "--data", "d", "--method", "bm3d", "--out", str(out)]
    assert evaluate.main(args) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("evaluate: error: ") and "Traceback" not in err, err
    assert f"{out}: cannot create its folder" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker"]


def test_the_latest_runs_config_link_points_at_its_snapshot_and_is_replaced_whole(tmp_path):
    from metadip.pipeline.stage import point_latest

    (tmp_path / "configs").mkdir()
    for name in ("a", "b"):
        (tmp_path / "configs" / f"{name}.yaml").write_text(f"seed: {name}\n")
    (tmp_path / "config.yaml").write_text("an earlier version's regular file\n")
    point_latest(tmp_path / "config.yaml", tmp_path / "configs" / "a.yaml")
    assert os.readlink(tmp_path / "config.yaml") == "configs/a.yaml"
    point_latest(tmp_path / "config.yaml", tmp_path / "configs" / "b.yaml")
    assert (tmp_path / "config.yaml").read_text() == "seed: b\n"
    inode = (tmp_path / "config.yaml").lstat().st_ino
    point_latest(tmp_path / "config.yaml", tmp_path / "configs" / "b.yaml")  # already there: untouched
    assert (tmp_path / "config.yaml").lstat().st_ino == inode
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml", "configs"]
