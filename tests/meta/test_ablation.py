"""Ablations: variant configs, the ablate / ablation_table stages on a tiny dataset, the table."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from builders import curate, dataset_config, make_folder

from metadip.meta.ablation import deep_merge, overrides_text, variant_method
from metadip.meta.maml import curated_ablation_problems
from metadip.pipeline.config import ConfigError, check_pipeline_config, validate_config
from metadip.reporting.ablation_table import table_rows, to_markdown

ROOT = Path(__file__).resolve().parents[2]
METHOD = {
    "arch": "dip",
    "network": {"width": 4, "depth": 2, "latent_channels": 4},
    "inner": {"steps": 2, "lr_init": 1.0},
    "outer": {"steps": 3, "meta_batch": 2, "val_images": 2, "test_steps": 2, "first_order": True},
}


def test_deep_merge_replaces_leaves_and_lists_and_keeps_the_base():
    base = {"inner": {"steps": 20, "momentum": 0.5}, "outer": {"tasks": [{"kind": "denoising"}]}}
    merged = deep_merge(base, {"inner": {"momentum": 0.0}, "outer": {"tasks": [{"kind": "cs_fast", "ratio": 0.25}]}})
    assert merged == {"inner": {"steps": 20, "momentum": 0.0}, "outer": {"tasks": [{"kind": "cs_fast", "ratio": 0.25}]}}
    assert base["inner"]["momentum"] == 0.5  # untouched


def test_variant_method_trains_every_variant_equally_long_unless_it_sets_the_length():
    cfg = validate_config({"meta": {"methods": {"m": dict(METHOD)}}})["meta"]["methods"]["m"]
    v = variant_method(cfg, {"outer": {"first_order": False}}, outer_steps=7, test_steps=5)
    assert v["outer"]["steps"] == 7 and v["outer"]["test_steps"] == 5 and v["outer"]["val_every"] == 7
    assert v["outer"]["first_order"] is False and cfg["outer"]["first_order"] is True
    longer = variant_method(cfg, {"outer": {"steps": 30}}, outer_steps=7, test_steps=5)
    assert longer["outer"]["steps"] == 30 and longer["outer"]["val_every"] == 30


def test_overrides_text_names_each_changed_setting():
    assert overrides_text({}) == ""
    assert (
        overrides_text({"inner": {"momentum": 0.0, "learn_lr": False}, "network": {"fourier_features": 64}})
        == "inner.learn_lr=false, inner.momentum=0.0, network.fourier_features=64"
    )
    assert (
        overrides_text({"outer": {"tasks": [{"kind": "cs_fast", "ratio": 0.25}]}})
        == "outer.tasks=[{kind:cs_fast ratio:0.25}]"
    )
    assert overrides_text({"outer": {"lr_step_sizes": None}}) == "outer.lr_step_sizes=null"


def _record(variant: str, text: str, meta: list[float], control: list[float], seconds: float = 10) -> dict:
    return {
        "variant": variant,
        "overrides_text": text,
        "photos": {"den": ["a", "a", "b", "b"]},
        "psnr_db": {"meta": {"den": meta}, "control": {"den": control}, "init": {"den": [20.0] * 4}},
        "train_seconds": seconds,
    }


def test_ablation_rows_pair_images_with_intervals_over_photographs():
    results = [
        _record("reference", "", [30.0, 31.0, 29.0, 30.0], [29.0, 29.5, 28.0, 29.5]),
        _record("fixed_lr", "inner.learn_lr=false", [29.5, 30.0, 29.0, 29.5], [29.5, 30.0, 28.5, 29.5], 9),
    ]
    rows = table_rows(results, "reference")
    ref, var = rows
    assert ref["n_images"] == 4 and ref["n_photos"] == 2
    assert ref["psnr_meta_db"] == 30.0 and ref["psnr_control_db"] == 29.0 and ref["psnr_init_db"] == 20.0
    # init gain: paired per image (1.0, 1.5, 1.0, 0.5), photos a, a, b, b: 1.0 ± t(1 df) · 0.25 = ± 3.18
    assert ref["init_gain_db"] == 1.0
    assert (ref["init_gain_ci_low"], ref["init_gain_ci_high"]) == pytest.approx((-2.1766, 4.1766), abs=1e-4)
    assert ref["delta_reference_db"] == 0.0
    assert var["delta_reference_db"] == -0.5 and var["init_gain_db"] == 0.125
    assert (var["delta_reference_ci_low"], var["delta_reference_ci_high"]) == pytest.approx((-3.6766, 2.6766), abs=1e-4)
    md = to_markdown(rows, "reference")
    assert "| fixed_lr | inner.learn_lr=false | 29.50 (-0.50 [" in md
    assert "| reference | — | 30.00 | 10 |" in md
    assert "| reference | +1.00 [-2.18, +4.18]; 29.00 (20.00) | -2.18 |" in md
    dip = {"psnr_db": {"dip_50": {"den": [20.0] * 4}, "dip_1000": {"den": [30.5, 30.5, 29.5, 30.5]}}}
    ref_dip, var_dip = table_rows(results, "reference", dip)
    # the longest reading (1000), paired per image: (-0.5, 0.5, -0.5, -0.5) and (-1.0, -0.5, -0.5, -1.0)
    assert ref_dip["psnr_dip_db"] == 30.25 and ref_dip["vs_dip_db"] == -0.25 and var_dip["vs_dip_db"] == -0.75
    assert "| DIP (PSNR) | 30.25 |" in to_markdown([ref_dip, var_dip], "reference", " (1000 steps, EMA)")
    with pytest.raises(ValueError, match="vanilla DIP scored 3 images of den, the variants 4"):
        table_rows(results, "reference", {"psnr_db": {"dip_1000": {"den": [30.0] * 3}}})
    one_photo = [_record("reference", "", [30.0] * 4, [29.0] * 4)]
    one_photo[0]["photos"]["den"] = ["a"] * 4
    row = table_rows(one_photo, "reference")[0]
    assert row["init_gain_ci_low"] is None and "| — |" in to_markdown([row], "reference")


def ablation_config(tmp_path: Path, **ablation) -> dict:
    cfg = dataset_config(
        [{"type": "folder", "name": "photos", "root": str(make_folder(tmp_path / "photos"))}], crops=(8, 2, 2)
    )
    cfg["meta"] = {"image_size": 32, "train_dataset": "d", "methods": {"tiny": METHOD}}
    cfg["evaluate"] = {
        "roles": {"faces": "d", "natural": "d"},
        "methods": {"dip": {"kind": "dip", "label": "DIP", "network_of": "tiny", "steps": 4, "report_at": [2, 4]}},
    }
    cfg["ablation"] = {
        "enabled": True,
        "method": "tiny",
        "outer_steps": 2,
        "test_steps": 2,
        "val_images": 2,
        "tasks": {"den_25": {"kind": "denoising", "sigma": 25}, "cs_4": {"kind": "cs_fast", "ratio": 0.25}},
        "variants": {"reference": {}, "no_momentum": {"inner": {"momentum": 0.0}}},
        **ablation,
    }
    return cfg


def test_a_variant_with_a_bad_setting_is_a_config_error(tmp_path):
    cfg = ablation_config(tmp_path, variants={"reference": {}, "bad": {"inner": {"momentum": 2.0}}})
    with pytest.raises(ConfigError, match=r"ablation\.variants\.bad"):
        check_pipeline_config(validate_config(cfg))
    cfg = ablation_config(tmp_path, reference="nope")
    with pytest.raises(ConfigError, match=r"ablation\.reference: no variant 'nope'"):
        check_pipeline_config(validate_config(cfg))
    cfg = ablation_config(tmp_path, transfer={"dataset": "celeba", "tasks": {"den_15": {"kind": "denoising"}}})
    with pytest.raises(ConfigError, match=r"ablation\.transfer\.dataset: no dataset 'celeba'"):
        check_pipeline_config(validate_config(cfg))
    cfg = ablation_config(tmp_path, dip="dip_long")
    with pytest.raises(ConfigError, match=r"ablation\.dip: no method 'dip_long' of kind dip under evaluate\.methods"):
        check_pipeline_config(validate_config(cfg))


def test_ablate_and_table_stages(tmp_path):
    # scored on the training collection's val split and (transfer) on another dataset's: here the same one
    cfg = ablation_config(tmp_path, transfer={"dataset": "d", "tasks": {"den_15": {"kind": "denoising", "sigma": 15}}})
    data = tmp_path / "data"
    curate(cfg, data)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    stage = [
        sys.executable,
        str(ROOT / "stages" / "ablate.py"),
        "--config",
        str(tmp_path / "c.yaml"),
        "--data",
        str(data),
        "--transfer-data",
        str(data),
    ]
    results = []
    for variant in ("reference", "no_momentum"):
        out = tmp_path / "ablation" / variant
        proc = subprocess.run(
            [*stage, "--variant", variant, "--out", str(out)], capture_output=True, text=True, check=False
        )
        assert proc.returncode == 0, proc.stderr
        rec = json.loads((out / "result.json").read_text())
        scores = rec["psnr_db"]
        assert rec["variant"] == variant and set(scores) == {"meta", "control", "init"}
        assert all(set(s) == {"den_25", "cs_4", "d:den_15"} for s in scores.values())
        assert all(len(v) == 2 and all(5 < p < 60 for p in v) for s in scores.values() for v in s.values())
        assert all(len(set(p)) == 2 for p in rec["photos"].values())  # interleaved: one crop of each photograph
        assert scores["control"] != scores["meta"] and scores["control"] != scores["init"]
        results.append(out / "result.json")
    ref, nom = (json.loads(p.read_text()) for p in results)
    # the benches build the stage's problems from the config alone
    (tmp_path / "curated").mkdir()
    (tmp_path / "curated" / "d").symlink_to(data)  # the collection 'd' of paths.curated
    full = validate_config({**cfg, "paths": {"curated": str(tmp_path / "curated")}})
    problems, photos = curated_ablation_problems(full)
    assert list(problems) == ["den_25", "cs_4", "d:den_15"] and photos == ref["photos"]
    assert ref["psnr_db"]["init"] != nom["psnr_db"]["init"]  # same problems, different inner optimiser
    assert ref["outer_steps"] == 2 and ref["train_seconds"] > 0
    # rerun in the same folder: resumed at the last step, the record keeps the whole training's time
    proc = subprocess.run(
        [*stage, "--variant", "reference", "--out", str(results[0].parent)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    again = json.loads(results[0].read_text())
    assert again["train_seconds"] == ref["train_seconds"] and again["psnr_db"] == ref["psnr_db"]
    # the same validation problems for every variant: an identical variant scores identically
    cfg["ablation"]["variants"]["same"] = {}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    proc = subprocess.run(
        [*stage, "--variant", "same", "--out", str(tmp_path / "ablation" / "same")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "ablation" / "same" / "result.json").read_text())["psnr_db"] == ref["psnr_db"]
    md, table = tmp_path / "ablation.md", tmp_path / "ablation.csv"

    def ablation_table(*extra: str) -> subprocess.CompletedProcess:
        cmd = [sys.executable, str(ROOT / "stages" / "ablation_table.py"), "--config", str(tmp_path / "c.yaml")]
        cmd += ["--results", *map(str, results), *extra, "--markdown", str(md), "--csv", str(table)]
        return subprocess.run(cmd, capture_output=True, text=True, check=False)

    proc = ablation_table()
    assert proc.returncode == 0, proc.stderr
    assert "| no_momentum | inner.momentum=0.0 |" in md.read_text() and "init gain d:den_15" in md.read_text()
    assert "vs DIP" not in md.read_text()
    rows = list(csv.DictReader(table.open()))
    assert len(rows) == 6 and {r["task"] for r in rows} == {"den_25", "cs_4", "d:den_15"}
    proc = ablation_table("--reference", "no_momentum")  # pair with another variant than ablation.reference
    assert proc.returncode == 0, proc.stderr
    assert "paired difference to 'no_momentum'" in md.read_text()
    by_variant = {(r["variant"], r["task"]): r for r in csv.DictReader(table.open())}
    assert all(float(by_variant[("no_momentum", t)]["delta_reference_db"]) == 0 for t in ("den_25", "cs_4"))
    proc = ablation_table("--reference", "nope")
    assert proc.returncode == 1 and "--reference nope: no such variant among --results" in proc.stderr
    # vanilla DIP on the same problems, read at each report_at step; the table pairs every variant with the longest
    dip_out = tmp_path / "ablation" / "dip-reference"
    proc = subprocess.run([*stage, "--dip", "--out", str(dip_out)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    dip = json.loads((dip_out / "result.json").read_text())
    assert set(dip["psnr_db"]) == {"dip_2", "dip_4"} and dip["photos"] == ref["photos"]
    assert all(len(v) == 2 and all(5 < p < 60 for p in v) for s in dip["psnr_db"].values() for v in s.values())
    proc = ablation_table("--dip", str(dip_out / "result.json"))
    assert proc.returncode == 0, proc.stderr
    assert "Against vanilla DIP (4 steps, EMA)" in md.read_text() and "| vs DIP den_25 |" in md.read_text()
    rows = list(csv.DictReader(table.open()))
    for r in rows:
        long = dip["psnr_db"]["dip_4"][r["task"]]
        assert float(r["vs_dip_db"]) == pytest.approx(float(r["psnr_meta_db"]) - sum(long) / len(long), abs=1e-3)
    bad = subprocess.run(
        [*stage, "--variant", "nope", "--out", str(tmp_path / "x")], capture_output=True, text=True, check=False
    )
    assert bad.returncode == 1 and "no variant 'nope'" in bad.stderr
    bad = subprocess.run(
        [*stage[:-2], "--variant", "reference", "--out", str(tmp_path / "x")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 1 and "ablation.transfer.dataset is 'd' but --transfer-data is None" in bad.stderr
    assert not (tmp_path / "x").exists()
