"""The steps' declarations: hashes that move with exactly what a step computes from, the DVC params
derived from them, the check of recorded reads, and the records outputs carry."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from PIL import Image, PngImagePlugin

from metadip.pipeline.config import DEFAULT_CONFIG, ConfigError, check_pipeline_config, load_config, workflow_config
from metadip.pipeline.records import METADATA_KEY, RecordError, check_inputs, read_step_hash
from metadip.pipeline.steps import Steps, dvc_params, minimal_keys, planned_steps, undeclared

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "config_reads"))
from sitecustomize import Reading  # noqa: E402


@pytest.fixture(scope="module")
def default() -> dict:
    return check_pipeline_config(load_config(ROOT / DEFAULT_CONFIG))


def overlaid(overlay: str) -> dict:
    """The default config with a config/ overlay merged as the workflow merges it."""
    from snakemake.utils import update_config

    base = yaml.safe_load((ROOT / DEFAULT_CONFIG).read_text())
    merged = copy.deepcopy(base)
    update_config(merged, yaml.safe_load((ROOT / overlay).read_text()))
    return check_pipeline_config(workflow_config(merged, overlay, base))


def test_a_step_hash_moves_with_its_own_keys_and_upstream_steps_only(default):
    before = Steps(default)
    cfg = copy.deepcopy(default)
    cfg["meta"]["methods"]["metasiren"]["outer"]["steps"] += 1  # another meta method
    cfg["claims"]["control_same_loop"] = None  # read by the claims only
    cfg["paths"]["results"] = "elsewhere"  # where, not what
    after = Steps(cfg)
    for rule, wc in [
        ("curate", {"dataset": "wallpapers"}),
        ("meta_train", {"method": "metadip"}),
        ("evaluate", {"task": "den_25", "dataset": "skimage", "method": "metadip"}),
    ]:
        assert before.rule_hash(rule, **wc) == after.rule_hash(rule, **wc), rule
    assert before.rule_hash("claims") != after.rule_hash("claims")
    cfg["curate"]["datasets"]["wallpapers"]["min_std"] = 0.05  # the training data: everything trained on it
    moved = Steps(cfg)
    assert moved.rule_hash("meta_train", method="metadip") != before.rule_hash("meta_train", method="metadip")
    ev = {"task": "den_25", "method": "metadip"}
    assert moved.rule_hash("evaluate", dataset="skimage", **ev) != before.rule_hash("evaluate", dataset="skimage", **ev)
    # vanilla DIP borrows the network, not the meta-training or its data
    assert moved.rule_hash("evaluate", dataset="skimage", task="den_25", method="dip") == before.rule_hash(
        "evaluate", dataset="skimage", task="den_25", method="dip"
    )


def test_the_study_and_the_default_run_share_their_curated_data(default):
    """Both configs curate into data/curated: the curate steps are the same step."""
    study = overlaid("config/study.yaml")
    assert study["paths"]["results"] != default["paths"]["results"]
    for dataset in default["curate"]["datasets"]:
        assert Steps(study).rule_hash("curate", dataset=dataset) == Steps(default).rule_hash("curate", dataset=dataset)


def test_dvc_yaml_lists_the_params_the_steps_declare(default):
    """dvc.yaml's params are derived (scripts/dvc_params.py --write); each DVC stage lists its steps' keys."""
    cmd = [sys.executable, "scripts/dvc_params.py", "--check"]
    run = subprocess.run(cmd, check=False, cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    params = dvc_params(default)
    assert {s: v["params"][0]["config/config.yaml"] for s, v in stages.items()} == params
    steps = planned_steps(default)
    for stage, keys in params.items():
        assert all(any(k == d or k.startswith(d + ".") for d in keys) for s in steps[stage] for k in s.keys), stage
    # DVC reads the keys from the config file: each is written in the shipped configs, the tiny one too
    for name in ("config/config.yaml", ".test/config.yaml"):
        written = yaml.safe_load((ROOT / name).read_text())
        for key in {k for keys in params.values() for k in keys}:
            node = written
            for part in key.split("."):
                assert isinstance(node, dict) and part in node, (name, key)
                node = node[part]


def test_minimal_keys_names_a_whole_mapping_once_every_entry_is_listed(default):
    tasks = [f"evaluate.tasks.{t}" for t in default["evaluate"]["tasks"]]
    assert minimal_keys([*tasks, "evaluate.tasks.den_25.sigma", "seed"], default) == ["evaluate.tasks", "seed"]
    assert minimal_keys(tasks[:2], default) == sorted(tasks[:2])


def test_undeclared_reads_are_named(default):
    steps = Steps(default)
    step = steps.step("train_denoiser")
    log: set[str] = set()
    cfg = Reading(default, "", log)
    cfg["baselines"]["drunet"]["train"]["steps"]
    cfg["curate"]["crop_size"]  # upstream (the curate step): declared
    assert "skimage" in cfg["curate"]["datasets"]  # found: read by what is read in it
    cfg["curate"]["datasets"]["skimage"]["min_std"]  # another dataset than the one DRUNet trains on
    assert undeclared(steps, step, log) == ["curate.datasets.skimage.min_std"]
    log.clear()
    list(cfg["evaluate"]["tasks"])  # listing a mapping none of whose entries the step reads
    cfg.get("claims", {}).get("nothing")
    assert undeclared(steps, step, log) == ["claims.nothing", "evaluate.tasks"]
    # the aggregate lists the tasks: every one is read by one of its upstream evaluate steps
    log.clear()
    list(cfg["evaluate"]["tasks"])
    assert undeclared(steps, steps.step("aggregate"), log) == []


def test_the_recording_config_records_what_is_read():
    log: set[str] = set()
    cfg = Reading({"a": {"b": 1, "c": {"d": [1, 2]}}, "e": 2}, "", log)
    assert cfg["a"]["c"]["d"] == [1, 2] and "x" not in cfg["a"] and json.dumps(cfg["a"]["c"]) and "c" in cfg["a"]
    assert log == {"a.c.d", "a.x", "a.c"}
    log.clear()
    assert dict(cfg["a"])["b"] == 1
    assert log == {"a", "a.b"}


def test_outputs_record_their_step_hash(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps({"step_hash": "0123456789abcdef", "x": 1}))
    assert read_step_hash(tmp_path / "a.json") == "0123456789abcdef"
    table = pa.table({"x": [1]}).replace_schema_metadata({METADATA_KEY: "fedcba9876543210"})
    pq.write_table(table, tmp_path / "a.parquet")
    assert read_step_hash(tmp_path / "a.parquet") == "fedcba9876543210"
    info = PngImagePlugin.PngInfo()
    info.add_text(METADATA_KEY, "00ff00ff00ff00ff")
    Image.new("RGB", (4, 4)).save(tmp_path / "a.png", pnginfo=info)
    assert read_step_hash(tmp_path / "a.png") == "00ff00ff00ff00ff"
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "summary.json").write_text(json.dumps({"step_hash": "1111222233334444"}))
    assert read_step_hash(tmp_path / "folder") == "1111222233334444"
    # no record, an unreadable file, a missing one: none (the workflow's other triggers apply)
    (tmp_path / "b.json").write_text("{not json")
    pq.write_table(pa.table({"x": [1]}), tmp_path / "b.parquet")
    (tmp_path / "c.parquet").write_bytes(b"PAR1 truncated")
    for name in ("b.json", "b.parquet", "c.parquet", "missing.json", "empty"):
        assert read_step_hash(tmp_path / name) is None, name


def test_a_stage_refuses_an_input_computed_under_another_config(tmp_path):
    sidecar = tmp_path / "meta_init.json"
    sidecar.write_text(json.dumps({"step_hash": "aaaaaaaaaaaaaaaa"}))
    (tmp_path / "meta_init.safetensors").write_bytes(b"")
    inputs = {"meta_train": tmp_path / "meta_init.safetensors", "curate": tmp_path / "none"}
    check_inputs(inputs, {"meta_train": "aaaaaaaaaaaaaaaa"}, "fix")  # the record the config gives; none
    with pytest.raises(RecordError, match=r"meta_init\.safetensors: computed under another config \(step hash a+, "):
        check_inputs(inputs, {"meta_train": "bbbbbbbbbbbbbbbb"}, "rerun snakemake")


def test_a_name_with_a_dot_is_refused(default):
    """A '.' in a dataset, task, method or variant name would split the steps' dotted keys."""
    cfg = copy.deepcopy(default)
    cfg["curate"]["datasets"]["wall.v2"] = cfg["curate"]["datasets"].pop("skimage")
    with pytest.raises(ConfigError, match=r"curate\.datasets: name 'wall\.v2' may hold only letters, digits"):
        check_pipeline_config(cfg)


def test_the_ablations_dip_reference_hashes_the_network_it_borrows(default):
    cfg = copy.deepcopy(default)
    before = Steps(cfg).rule_hash("ablation_dip")
    cfg["meta"]["methods"]["metadip"]["outer"]["steps"] += 1  # the meta-training, not the network
    assert Steps(cfg).rule_hash("ablation_dip") == before
    cfg["meta"]["methods"]["metadip"]["network"]["width"] += 1
    assert Steps(cfg).rule_hash("ablation_dip") != before
