"""Vanilla DIP stopped on validation crops: the chooser, validation seeds of their own, the plan and
step wiring, the dip_stop stage, and the row read at the chosen step beside unchanged DIP rows."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from builders import curate, dataset_config, make_folder, tiny_config

from metadip.core.errors import InputError
from metadip.core.images import bundled_image
from metadip.core.seeding import derived_seed, name_key
from metadip.datasets.sampling import load_evaluation_set
from metadip.pipeline.artifacts import ArtifactError
from metadip.pipeline.config import check_pipeline_config, load_config
from metadip.pipeline.dip_stop import choose_stop, read_stop, validation_seeds, validation_trace
from metadip.pipeline.evaluation import _JITTER, evaluate_shard, measure_image, setting_operator
from metadip.pipeline.plan import method_ids, stop_dataset, stop_jobs
from metadip.pipeline.settings import dip_solver, shard_settings
from metadip.pipeline.steps import Steps

ROOT = Path(__file__).resolve().parents[2]
STOP = {"images": 2, "min_photos": 1, "datasets": {}}


def with_stop(cfg: dict, **stop) -> dict:
    cfg = copy.deepcopy(cfg)
    cfg["evaluate"]["methods"]["dip"]["stop_on_val"] = {**STOP, **stop}
    return cfg


def test_the_stop_step_is_the_first_step_of_the_highest_mean():
    assert choose_stop([20.0, 22.5, 22.4, 21.0]) == 2
    assert choose_stop([20.0, 22.5, 21.0, 22.5, 22.5]) == 2  # a tie: the earliest step
    assert choose_stop([19.0]) == 1 and choose_stop([1.0, 2.0, 3.0]) == 3
    for bad in ([], [20.0, float("nan")], [float("inf")]):
        with pytest.raises(ValueError, match="finite PSNR trace"):
            choose_stop(bad)


def test_validation_problems_draw_seeds_of_their_own():
    task = {"kind": "cs_fast", "sigma": 25.0, "ratio": 0.25}
    seeds = validation_seeds(3, "cs", "a", 2)
    assert seeds["operator"] != setting_operator(task, (3, 64, 64), 3, "cs", "a")[1]
    op, _ = setting_operator(task, (3, 64, 64), 3, "cs", "a")
    x = bundled_image("astronaut", 64)
    test_noise = {measure_image(op, x, 3, "cs", "a", i)[1] for i in range(2)}
    test_jitter = {derived_seed(3, _JITTER, name_key("cs"), name_key("a"), i) for i in range(2)}
    assert not test_noise & set(seeds["noise"]) and not test_jitter & set(seeds["jitter"])
    assert len({*seeds["noise"], *seeds["jitter"]}) == 4
    assert validation_seeds(3, "cs", "b", 2)["operator"] != seeds["operator"]  # per class, too


def test_the_plan_adds_a_row_and_a_stop_job_per_setting_only_when_on():
    off, on = tiny_config(), check_pipeline_config(with_stop(tiny_config()))
    assert "dip_val" not in method_ids(off["evaluate"]["methods"]) and stop_jobs(off) == []
    assert method_ids(on["evaluate"]["methods"]) == {"dip_1", "dip_3", "dip_val", "bm3d"}
    assert stop_jobs(on) == [
        {"task": t, "dataset": d, "method": "dip"} for t in ("den", "cs") for d in ("a", "b")
    ]  # one per setting and class, not per shard
    steps_off, steps_on = Steps(off), Steps(on)
    ev = {"task": "cs", "dataset": "a", "method": "dip"}
    assert [u.rule for u in steps_off.step("evaluate", **ev).upstream] == ["curate"]
    assert [u.rule for u in steps_on.step("evaluate", **ev).upstream] == ["curate", "dip_stop"]
    # the stop run reads the optimiser, not the readings or the label
    relabelled = copy.deepcopy(on)
    relabelled["evaluate"]["methods"]["dip"].update(label="Vanilla DIP", report_at=[2, 3])
    assert Steps(relabelled).rule_hash("dip_stop", **ev) == steps_on.rule_hash("dip_stop", **ev)
    faster = copy.deepcopy(on)
    faster["evaluate"]["methods"]["dip"]["lr"] = 0.02
    assert Steps(faster).rule_hash("dip_stop", **ev) != steps_on.rule_hash("dip_stop", **ev)


def test_a_speed_reference_does_not_rerun_when_its_dip_stops_on_val():
    cfg = tiny_config()
    cfg["evaluate"]["methods"]["m"] = {"kind": "meta", "init": "md", "label": "M", "steps": 2, "speed_reference": "dip"}
    off = check_pipeline_config(cfg)
    on = check_pipeline_config(with_stop(off))
    ev = {"task": "den", "dataset": "a", "method": "m"}
    assert Steps(off).rule_hash("evaluate", **ev) == Steps(on).rule_hash("evaluate", **ev)
    dip = {**ev, "method": "dip"}
    assert Steps(off).rule_hash("evaluate", **dip) != Steps(on).rule_hash("evaluate", **dip)


def test_the_val_dataset_of_a_class_is_its_own_unless_named():
    cfg = check_pipeline_config(with_stop(tiny_config()))
    assert stop_dataset(cfg, "dip", "a") == "a" and stop_dataset(cfg, "dip", "b") == "b"
    named = check_pipeline_config(with_stop(tiny_config(), datasets={"faces": "b"}))  # faces: 'a'
    assert stop_dataset(named, "dip", "a") == "b" and stop_dataset(named, "dip", "b") == "b"
    assert [u.wildcards for u in Steps(named).step("dip_stop", task="den", dataset="a", method="dip").upstream] == [
        (("dataset", "b"),)
    ]
    unknown = check_pipeline_config(with_stop(tiny_config(), datasets={"faces": "nope"}))
    with pytest.raises(InputError, match=r"stop_on_val.datasets: no dataset 'nope' under curate.datasets"):
        stop_dataset(unknown, "dip", "a")
    shared = tiny_config(roles={"faces": "a", "natural": "a"})
    shared = check_pipeline_config(with_stop(shared, datasets={"faces": "b"}))
    with pytest.raises(InputError, match="classes faces and natural are both 'a'"):
        stop_dataset(shared, "dip", "a")


def stop_record_file(path: Path, step: int, task="cs", dataset="a", method="dip") -> str:
    path.write_text(json.dumps({"task": task, "dataset": dataset, "method": method, "step": step}))
    return str(path)


def test_the_stopped_row_is_the_run_read_at_the_chosen_step_and_the_other_rows_do_not_change(tmp_path):
    off = tiny_config()
    on = check_pipeline_config(with_stop(off))
    images = torch.stack([bundled_image(n, 64) for n in ("astronaut", "coffee")])
    ids = ["a/test/0", "a/test/1"]
    record = stop_record_file(tmp_path / "stop.json", 2)
    plain = evaluate_shard(shard_settings(off, "cs", "dip", "a"), "a", images, ids, ids, [0, 1], {}, "cpu")
    rows = evaluate_shard(
        shard_settings(on, "cs", "dip", "a"), "a", images, ids, ids, [0, 1], {"dip_stop": record}, "cpu"
    )
    assert sorted({r["method"] for r in rows}) == ["dip_1", "dip_3", "dip_val"]
    strip = lambda r: {k: v for k, v in r.items() if k not in ("seconds", "trace_seconds", "config_hash")}  # noqa: E731
    assert [strip(r) for r in rows if r["method"] != "dip_val"] == [strip(r) for r in plain]
    for i in (0, 1):
        mine = {r["method"]: r for r in rows if r["image_index"] == i}
        stopped, long = mine["dip_val"], mine["dip_3"]
        assert stopped["label"] == "DIP (stopped on val)" and stopped["steps"] == 2
        assert json.loads(stopped["provenance"])["stop_step"] == 2
        assert stopped["psnr"] == long["trace_psnr"][1] and stopped["trace_psnr"] == long["trace_psnr"][:2]
        assert stopped["trace_step"] == [1, 2] and stopped["seconds"] == long["trace_seconds"][1]
        assert stopped["estimate"] != long["estimate"] and stopped["noise_seed"] == long["noise_seed"]


def test_a_missing_or_mismatched_stop_record_is_a_clear_error(tmp_path):
    cfg = check_pipeline_config(with_stop(tiny_config()))
    images, ids = bundled_image("astronaut", 64).unsqueeze(0), ["a/test/0"]
    settings = shard_settings(cfg, "cs", "dip", "a")
    with pytest.raises(InputError, match="needs the dip-stop artifact; give it with --dip-stop"):
        evaluate_shard(settings, "a", images, ids, ids, [0], {}, "cpu")
    for record, message in (
        (stop_record_file(tmp_path / "b.json", 2, dataset="b"), "a stop record of cs/b/dip at step 2, not of cs/a/dip"),
        (stop_record_file(tmp_path / "far.json", 4), "at step 4, not of cs/a/dip within its 3 steps"),
    ):
        with pytest.raises(ArtifactError, match=message):
            evaluate_shard(settings, "a", images, ids, ids, [0], {"dip_stop": record}, "cpu")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ArtifactError, match="not a readable stop record"):
        read_stop(tmp_path / "bad.json", "cs", "a", "dip", 3)


def stage_config(tmp_path: Path) -> list[str]:
    """A curated folder (val crops of 2+ photographs) and a config whose dip method stops on val."""
    cfg = dataset_config(
        [{"type": "folder", "name": "photos", "root": str(make_folder(tmp_path / "photos"))}], crops=(4, 3, 2)
    )
    curate(cfg, tmp_path / "data")
    network = {"width": 4, "depth": 2, "latent_channels": 4}
    md = {"arch": "dip", "network": network, "inner": {"steps": 2}}
    cfg["meta"] = {"image_size": 32, "train_dataset": "d", "methods": {"md": md}}
    cfg["ablation"] = {"dip": None}
    dip = {"kind": "dip", "label": "DIP", "network_of": "md", "steps": 6, "report_at": [2, 6], "stop_on_val": STOP}
    cfg["evaluate"] = {
        "roles": {"faces": "d", "natural": "d"},
        "tasks": {"den": {"kind": "denoising", "sigma": 50}},
        "methods": {"dip": dip, "plain": {**dip, "stop_on_val": None}},
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    return [sys.executable, str(ROOT / "stages" / "dip_stop.py"), "--config", str(tmp_path / "c.yaml")]


def test_the_stage_writes_the_step_of_the_highest_mean_validation_psnr(tmp_path):
    stage = stage_config(tmp_path)
    common = ["--task", "den", "--dataset", "d", "--data", str(tmp_path / "data"), "--threads", "1"]
    out = tmp_path / "stop" / "den_d_dip.json"
    proc = run([*stage, *common, "--method", "dip", "--out", str(out)])
    assert proc.returncode == 0, proc.stderr
    record = json.loads(out.read_text())
    assert (record["task"], record["dataset"], record["method"], record["val_dataset"]) == ("den", "d", "dip", "d")
    assert record["steps"] == 6 and len(record["trace_psnr_db"]) == 6 and record["images"] == 2
    assert record["step"] == choose_stop(record["trace_psnr_db"])
    assert record["mean_psnr_db"] == max(record["trace_psnr_db"]) and record["estimate"] == "EMA"
    assert all("/val/" in i for i in record["validation_images"]) and record["photos"] == 2
    config = check_pipeline_config(load_config(tmp_path / "c.yaml"))
    assert record["step_hash"] == Steps(config).rule_hash("dip_stop", task="den", dataset="d", method="dip")
    # the same trace in process: the run is seeded, the step reproducible
    val = load_evaluation_set(tmp_path / "data", "val", 2, 1, 32, key="k")
    trace = validation_trace(dip_solver(config, "dip"), "den", config["evaluate"]["tasks"]["den"], val.images, "d", 0)
    assert trace == record["trace_psnr_db"]
    assert read_stop(out, "den", "d", "dip", 6) == record["step"]

    refused = run([*stage, *common, "--method", "plain", "--out", str(tmp_path / "x.json")])
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1
    assert "no dip method 'plain' with stop_on_val under evaluate.methods (have: dip)" in refused.stderr
    assert not (tmp_path / "x.json").exists()


def run(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, check=False)
