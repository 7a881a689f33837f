"""Provenance of training runs and the test split.

A checkpoint is resumed only by a run of the same config, initial weights, data and code (a rerun
after a data or code change starts over and ends like a run in an empty folder; an identical rerun
resumes, also from the final checkpoint, at no cost). Only the evaluation opens the test split:
every other stage reads its data through ``training_split``, which refuses it.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
import yaml
from builders import curate, dataset_config, images, make_folder, outer, recurate, state, tiny_model
from safetensors import safe_open
from safetensors.torch import load_file

import metadip.meta.maml
from metadip.core.checkpoints import code_files, code_sha256, save_checkpoint
from metadip.core.hashing import config_hash, without_later_defaults
from metadip.datasets import store
from metadip.datasets.store import CuratedSplit, SplitError, training_split
from metadip.meta.maml import meta_train
from metadip.models.denoiser_training import DenoiserTraining, train_denoiser
from metadip.models.denoisers import DRUNet, DRUNetConfig
from metadip.pipeline.artifacts import file_sha256, read_sidecar

ROOT = Path(__file__).resolve().parents[2]
TINY = {
    "arch": "dip",
    "network": {"width": 4, "depth": 2, "latent_channels": 4},
    "inner": {"steps": 2},
    "outer": {
        "steps": 3,
        "meta_batch": 2,
        "val_every": 3,
        "checkpoint_every": 3,
        "val_images": 2,
        "test_steps": 2,
        "first_order": True,
        "task_batching": "vmap",
    },
}


def load_stage(name: str):
    """The stage script stages/<name>.py as a module (its ``main`` runs in this process)."""
    spec = importlib.util.spec_from_file_location(f"stage_{name}", ROOT / "stages" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tiny_setup(tmp_path: Path) -> tuple[Path, Path]:
    """A curated dataset (train/val/test) and a config with every non-evaluation stage's section."""
    cfg = dataset_config(
        [{"type": "folder", "name": "photos", "root": str(make_folder(tmp_path / "photos"))}], crops=(8, 2, 2)
    )
    data = tmp_path / "data"
    curate(cfg, data)
    cfg["meta"] = {"image_size": 32, "train_dataset": "d", "methods": {"tiny": TINY}}
    cfg["baselines"] = {
        "drunet": {
            "network": {"widths": [4, 8, 8, 8], "blocks": 1},
            "train": {"steps": 2, "batch": 2, "patch": 16, "val_images": 2, "checkpoint_every": 2, "val_every": 2},
        },
        "pnp": {"val_images": 1, "grid": {"cs_bm3d": {"sigma_d": [20], "rho": [0.5], "iterations": [1]}}},
    }
    cfg["evaluate"] = {"roles": {"faces": "d", "natural": "d"}, "tasks": {"cs": {"kind": "cs_fast", "ratio": 0.5}}}
    cfg["ablation"] = {
        "enabled": True,
        "method": "tiny",
        "outer_steps": 2,
        "test_steps": 2,
        "val_images": 2,
        "tasks": {"den_25": {"kind": "denoising", "sigma": 25}},
        "variants": {"reference": {}},
        "transfer": {"dataset": "d", "tasks": {"den_15": {"kind": "denoising", "sigma": 15}}},
        "dip": None,  # no dip method under evaluate.methods
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    return tmp_path / "c.yaml", data


def alter_a_training_crop(data: Path) -> None:
    """What a re-curation does to the data: one training crop changes (inverted), and the manifest
    is rewritten (its texture_std column recomputed for that crop)."""
    rows = pq.read_table(data / "manifest.parquet").to_pylist()
    row = next(r for r in rows if r["split"] == "train")
    shard = np.load(data / row["shard"])
    shard[row["index"]] = 255 - shard[row["index"]]
    row["texture_std"] = float(shard[row["index"]].std() / 255.0) + 1e-3
    recurate(data, rows, {row["shard"]: shard})


# -- Task A: a checkpoint is resumed only by a run of the same config, data and code ------------------


def test_rerun_on_changed_data_retrains_and_equals_a_fresh_run(tmp_path, caplog):
    """The dataset changes (one crop, a rewritten manifest) and the job reruns in the same folder:
    it must not resume the finished run (same weights, new dataset hash in the sidecar) but start
    over, and end exactly like a run on the new data in an empty folder."""
    config, data = tiny_setup(tmp_path)
    stage = load_stage("meta_train")

    def run(out: Path) -> dict[str, torch.Tensor]:
        assert (
            stage.main(
                ["--config", str(config), "--method", "tiny", "--data", str(data), "--out", str(out), "--device", "cpu"]
            )
            == 0
        )
        return load_file(out / "meta_init.safetensors")

    old = run(tmp_path / "run")
    old_manifest = file_sha256(data / "manifest.parquet")
    caplog.clear()
    with caplog.at_level("INFO"):
        assert {k: torch.equal(v, old[k]) for k, v in run(tmp_path / "run").items()} == dict.fromkeys(old, True)
    assert "resuming meta-training at outer step 3" in caplog.text  # identical rerun: the finished run, at no cost

    alter_a_training_crop(data)
    assert file_sha256(data / "manifest.parquet") != old_manifest
    caplog.clear()
    with caplog.at_level("INFO"):
        rerun = run(tmp_path / "run")
    warning = next(r.getMessage() for r in caplog.records if "checkpoint of another run" in r.getMessage())
    warning = warning.split("checkpoint of another run")[1]  # what differs (not the folder's name)
    assert "training/validation images" in warning and "dataset manifest" in warning
    assert "configuration" not in warning and "code" not in warning and "resuming" not in caplog.text
    assert any(not torch.equal(v, old[k]) for k, v in rerun.items())  # retrained on the new data
    fresh = run(tmp_path / "fresh")
    for k, v in fresh.items():
        assert torch.equal(rerun[k], v), k
    side = read_sidecar(tmp_path / "run" / "meta_init")
    assert side["dataset_manifest_sha256"] == file_sha256(data / "manifest.parquet")
    steps = {
        d: [r.split(",")[0] for r in (tmp_path / d / "work" / "metrics.csv").read_text().splitlines()[1:]]
        for d in ("run", "fresh")
    }
    assert steps["run"] == steps["fresh"] == ["0", "3"]


def test_a_crop_changed_under_the_same_manifest_is_not_resumed(tmp_path, caplog):
    """The images themselves are part of the identity, not only the manifest's hash."""
    x = images()
    meta_train(tiny_model(), outer(steps=2), x, images(seed=1), 0, tmp_path / "w", device="cpu", show_progress=False)
    x[0] = 1 - x[0]
    ran: list[int] = []
    with caplog.at_level("WARNING", logger="metadip.core.checkpoints"):
        rerun = meta_train(
            tiny_model(),
            outer(steps=2),
            x,
            images(seed=1),
            0,
            tmp_path / "w",
            device="cpu",
            show_progress=False,
            on_step=ran.append,
        )
    assert ran == [1, 2] and "training/validation images" in caplog.text
    fresh = meta_train(
        tiny_model(), outer(steps=2), x, images(seed=1), 0, tmp_path / "f", device="cpu", show_progress=False
    )
    for k, v in state(fresh).items():
        assert torch.equal(state(rerun)[k], v), k


@pytest.mark.parametrize("how", ["library code", "stage code", "dataset manifest", "initial weights"])
def test_a_checkpoint_of_other_code_or_provenance_is_not_resumed(tmp_path, caplog, monkeypatch, how):
    """A finished run in the folder; the rerun differs only in its code version (the library's
    default, or the one the stage passes), its dataset manifest or its initial weights: it starts
    over (every step runs again), with a warning naming that and nothing else."""
    first = (
        {"code_sha256": "a" * 64, "dataset_manifest_sha256": "b" * 64}
        if how in ("stage code", "dataset manifest")
        else None
    )
    meta_train(
        tiny_model(),
        outer(steps=2),
        images(),
        images(seed=1),
        0,
        tmp_path / "w",
        device="cpu",
        show_progress=False,
        provenance=first,
    )
    provenance, seed = first, 0
    if how == "library code":
        real = code_sha256("metadip.meta.maml", "metadip.models.networks")
        monkeypatch.setattr(metadip.meta.maml, "code_sha256", lambda *roots: "c" * 64)
    elif how == "stage code":
        provenance = {**first, "code_sha256": "c" * 64}
    elif how == "dataset manifest":
        provenance = {**first, "dataset_manifest_sha256": "c" * 64}
    else:
        seed = 1  # another network.seed: its own initial weights
    ran: list[int] = []
    with caplog.at_level("WARNING", logger="metadip.core.checkpoints"):
        meta_train(
            tiny_model(seed=seed),
            outer(steps=2),
            images(),
            images(seed=1),
            0,
            tmp_path / "w",
            device="cpu",
            show_progress=False,
            on_step=ran.append,
            provenance=provenance,
        )
    assert ran == [1, 2]
    label = {"library code": "code", "stage code": "code"}.get(how, how)
    assert re.search(rf"checkpoint of another run \({label}: \w{{12}} -> \w{{12}}\)", caplog.text), caplog.text
    with safe_open(str(tmp_path / "w" / "checkpoint.safetensors"), framework="pt") as f:
        meta = f.metadata()
    if how == "library code":
        assert meta["code_sha256"] == "c" * 64 != real
    # the same again: now resumed at the final step, nothing reruns
    ran.clear()
    meta_train(
        tiny_model(seed=seed),
        outer(steps=2),
        images(),
        images(seed=1),
        0,
        tmp_path / "w",
        device="cpu",
        show_progress=False,
        on_step=ran.append,
        provenance=provenance,
    )
    assert ran == []


def test_a_checkpoint_without_provenance_is_not_resumed(tmp_path, caplog):
    """A checkpoint of the old format (config hash only) could belong to any data or code."""
    model = tiny_model()
    opt = torch.optim.Adam(model.parameters())
    (tmp_path / "w").mkdir()
    save_checkpoint(tmp_path / "w" / "checkpoint.safetensors", model, opt, 2, {"run_hash": "whatever"})
    ran: list[int] = []
    with caplog.at_level("WARNING", logger="metadip.core.checkpoints"):
        meta_train(
            tiny_model(),
            outer(steps=2),
            images(),
            images(seed=1),
            0,
            tmp_path / "w",
            device="cpu",
            show_progress=False,
            on_step=ran.append,
        )
    assert (
        ran == [1, 2]
        and "code: not recorded" in caplog.text
        and "training/validation images: not recorded" in caplog.text
    )


def test_drunet_rerun_on_changed_data_retrains(tmp_path, caplog):
    s = DenoiserTraining(steps=2, batch=2, patch=16, lr=1e-3, checkpoint_every=1, val_every=2, val_images=1)

    def net() -> DRUNet:
        return DRUNet(DRUNetConfig(channels=1, widths=(4, 8, 8, 8), blocks=1), seed=0)

    a, b, val = images(4, seed=2), images(4, seed=3), images(2, seed=4)
    first = train_denoiser(net(), s, a, val, 0, tmp_path / "w", device="cpu", show_progress=False)
    ran: list[int] = []
    train_denoiser(net(), s, a, val, 0, tmp_path / "w", device="cpu", show_progress=False, on_step=ran.append)
    assert ran == []  # identical rerun: resumed at the final step
    with caplog.at_level("WARNING", logger="metadip.core.checkpoints"):
        rerun = train_denoiser(
            net(), s, b, val, 0, tmp_path / "w", device="cpu", show_progress=False, on_step=ran.append
        )
    assert ran == [1, 2] and "training/validation images" in caplog.text
    fresh = train_denoiser(net(), s, b, val, 0, tmp_path / "f", device="cpu", show_progress=False)
    assert any(not torch.equal(v, first.state_dict()[k]) for k, v in rerun.state_dict().items())
    for k, v in fresh.state_dict().items():
        assert torch.equal(rerun.state_dict()[k], v), k


def test_code_version_covers_what_training_imports(tmp_path):
    """The code hash covers the training module and everything it imports inside metadip (not the
    tables or the report), names files by stable labels, and follows a script's content."""
    maml = code_files("metadip.meta.maml")
    assert {
        "metadip/meta/maml.py",
        "metadip/meta/inner_loop.py",
        "metadip/meta/__init__.py",
        "metadip/physics/operators.py",
        "metadip/physics/tasks.py",
        "metadip/solvers/dip.py",
        "metadip/core/checkpoints.py",
        "metadip/_lazy.py",
        "metadip/__init__.py",
    } <= set(maml)
    assert not {
        "metadip/reporting/tables.py",
        "metadip/reporting/report.py",
        "metadip/pipeline/evaluation.py",
        "metadip/reporting/claims.py",
    } & set(maml)
    stage = code_files(ROOT / "stages" / "meta_train.py")
    assert {
        "meta_train.py",
        "metadip/models/networks.py",
        "metadip/pipeline/artifacts.py",
        "metadip/datasets/store.py",
        "metadip/datasets/__init__.py",
    } <= set(stage)
    for d in ("a", "b"):  # the same script in two checkouts: the same version
        (tmp_path / d).mkdir()
        shutil.copy(ROOT / "stages" / "meta_train.py", tmp_path / d / "meta_train.py")
    assert (
        code_sha256(tmp_path / "a" / "meta_train.py")
        == code_sha256(tmp_path / "b" / "meta_train.py")
        == code_sha256(ROOT / "stages" / "meta_train.py")
    )
    with open(tmp_path / "b" / "meta_train.py", "a") as f:
        f.write("# an uncommitted edit\n")
    assert code_sha256(tmp_path / "a" / "meta_train.py") != code_sha256(tmp_path / "b" / "meta_train.py")
    with pytest.raises(ValueError, match="not a module of the metadip package"):
        code_files("metadip.nope")


# -- Task B: the test split decides nothing ---------------------------------------------------------


def test_training_split_refuses_the_test_split_and_evaluation_reads_it(tmp_path):
    _, data = tiny_setup(tmp_path)
    assert len(training_split(data, "train", key="k")) == 8 and len(training_split(data, "val", key="k")) == 2
    for split in ("test", "TEST", "all"):
        with pytest.raises(
            SplitError,
            match=rf"^baselines\.pnp\.val_images: may read only the train and val splits "
            rf".*not '{split}' \(the test split is for evaluation only: evaluate\.split\)$",
        ):
            training_split(data, split, key="baselines.pnp.val_images")
    test = CuratedSplit(data, "test")  # the evaluation's reader
    assert len(test) == 2 and all(i.startswith("d/test/") for i in test.ids)


def test_an_empty_training_split_is_a_one_line_error_before_any_work(tmp_path, capsys):
    """A dataset curated without train crops (a transfer-only collection) given to meta-training."""
    config, _ = tiny_setup(tmp_path)
    cfg = dataset_config(
        [{"type": "folder", "name": "photos", "root": str(tmp_path / "photos")}],
        crops=(0, 2, 2),
        split_fractions={"train": 0.0, "val": 0.5, "test": 0.5},
    )
    empty = tmp_path / "transfer_only"
    curate(cfg, empty)
    with pytest.raises(ValueError, match=r"the train split is empty; curate the dataset with train crops"):
        store.training_images(empty, "train", 32, key="meta.train_dataset")
    assert store.training_images(empty, "val", 16, key="k").shape == (2, 3, 16, 16)
    out = tmp_path / "out"
    args = ["--config", str(config), "--data", str(empty), "--out", str(out), "--method", "tiny"]
    assert load_stage("meta_train").main(args) == 1
    assert capsys.readouterr().err.strip() == (
        f"meta_train: error: {empty}: the train split is empty; curate the dataset with train crops "
        "(meta.train_dataset)"
    )
    assert not out.exists()


# (stage, keys of its training_split calls in order); --transfer-data: the ablation's other dataset
STAGE_SPLITS = [
    ("meta_train", ["meta.train_dataset", "meta.methods.tiny.outer.val_images"]),
    ("train_denoiser", ["baselines.drunet.train", "baselines.drunet.train.val_images"]),
    ("tune_pnp", ["baselines.pnp.val_images"]),
    ("ablate", ["meta.train_dataset", "ablation.val_images", "ablation.transfer"]),
]


@pytest.mark.parametrize(("name", "call", "key"), [(n, i, k) for n, keys in STAGE_SPLITS for i, k in enumerate(keys)])
def test_every_non_evaluation_stage_refuses_the_test_split(tmp_path, monkeypatch, capsys, name, call, key):
    """Each split a stage opens goes through the guard: were it the test split (here redirected),
    the stage stops before any work with a one-line error naming the config key."""
    config, data = tiny_setup(tmp_path)
    stage = load_stage(name)
    calls: list[tuple[str, str]] = []

    def redirected(root, split, *, key, **kw):
        calls.append((split, key))
        return training_split(root, "test" if len(calls) - 1 == call else split, key=key, **kw)

    if hasattr(stage, "training_split"):
        monkeypatch.setattr(stage, "training_split", redirected)
    monkeypatch.setattr(store, "training_split", redirected)  # what metadip.datasets.sampling's readers call
    args = {
        "meta_train": ["--method", "tiny"],
        "train_denoiser": [],
        "ablate": ["--variant", "reference", "--transfer-data", str(data)],
        "tune_pnp": ["--task", "cs", "--denoiser", "bm3d"],
    }[name]
    out = tmp_path / ("out.json" if name == "tune_pnp" else "out")
    assert stage.main(["--config", str(config), "--data", str(data), "--out", str(out), *args]) == 1
    err = capsys.readouterr().err.strip()
    assert (
        err == f"{name}: error: {key}: may read only the train and val splits of {data}, not 'test' "
        "(the test split is for evaluation only: evaluate.split)"
    )
    assert calls[call][1] == key and not out.exists()


def test_only_the_evaluation_opens_curated_splits_directly():
    """Every other reader of curated data (stages, library, benchmarks) goes through training_split."""
    evaluation = {
        "src/metadip/datasets/store.py",
        "src/metadip/datasets/__init__.py",
        "src/metadip/datasets/sampling.py",
        "src/metadip/pipeline/evaluation.py",
        "stages/evaluate.py",
        "stages/render.py",
    }
    users = {
        p.relative_to(ROOT).as_posix()
        for d in ("src", "stages", "bench")
        for p in (ROOT / d).rglob("*.py")
        if "CuratedSplit" in p.read_text()
    }
    assert users <= evaluation, users - evaluation
    literal_test = re.compile(r"training_split\([^)]*[\"']test[\"']")
    assert not [
        p for d in ("src", "stages", "bench") for p in (ROOT / d).rglob("*.py") if literal_test.search(p.read_text())
    ]


def test_a_later_key_at_its_default_leaves_the_record_and_its_hash_as_before():
    before = {"width": 32, "tasks": [{"kind": "denoising"}]}
    later = {"norm": "batch", "lr_per_element": False}
    assert config_hash(without_later_defaults(before | {"norm": "batch"}, later)) == config_hash(before)
    kept = without_later_defaults(before | {"norm": "group", "lr_per_element": False}, later)
    assert kept == before | {"norm": "group"}
    assert without_later_defaults(before | {"lr_per_element": True}, later)["lr_per_element"] is True
