"""Bad inputs to `metadip reconstruct` and to the artifacts / checkpoints it and the stages read.

Each case: exit status 1 (or an :class:`ArtifactError`), the FIRST line of stderr names the file
or the option / field, nothing in the folder changed (sha256 of every file before and after, no
stray file), and the refusals that concern paths come before any work (the meta-init is not even
loaded, the solver never runs).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from metadip import cli
from metadip.core.checkpoints import resume_step, save_checkpoint
from metadip.core.hashing import file_sha256
from metadip.meta.inner_loop import InnerSettings, MetaModel
from metadip.models.denoisers import DRUNet, DRUNetConfig
from metadip.models.networks import DIPConfig, DIPPrior
from metadip.physics.operators import build_operator, load_operator, save_operator
from metadip.pipeline.artifacts import (
    ArtifactError,
    load_denoiser,
    load_meta_init,
    save_denoiser,
    save_meta_init,
)

SHAPE = (3, 16, 16)


def tiny_model(channels: int = 3) -> MetaModel:
    cfg = DIPConfig(
        image_shape=(channels, 16, 16),
        latent_channels=2,
        channels_down=(4, 4),
        channels_up=(4, 4),
        channels_skip=(1, 1),
    )
    return MetaModel(DIPPrior(cfg, 0), InnerSettings(steps=2, momentum=0.5))


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """A user's folder (the working directory): a meta-init, a photo, a measurement and its operator."""
    monkeypatch.chdir(tmp_path)
    save_meta_init(
        tiny_model(),
        tmp_path / "init",
        training_config={"outer": {"test_steps": 2}},
        dataset_manifest_sha256="",
        seed=0,
    )
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(tmp_path / "photo.png")
    op = build_operator(
        {"kind": "cs_fast", "image_shape": SHAPE, "sigma": 10.0, "seed": 0, "ratio": 0.5, "colour": "joint"}
    )
    save_operator(op, tmp_path / "op.safetensors")
    np.save(
        tmp_path / "y.npy",
        op.measure(
            torch.rand(SHAPE, generator=torch.Generator().manual_seed(0)), torch.Generator().manual_seed(1)
        ).numpy(),
    )
    return tmp_path


def snapshot(root: Path) -> dict[str, str]:
    """sha256 of every file (and the target of every link) under ``root``, folders marked as such."""
    out = {}
    for p in sorted(root.rglob("*")):
        key = p.relative_to(root).as_posix()
        if p.is_symlink():
            out[key] = "link -> " + os.readlink(p)
        elif p.is_dir():
            out[key] = "dir"
        else:
            out[key] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.fixture
def no_work(monkeypatch):
    """Fail the test if the meta-init is loaded or the solver runs."""

    def boom(*args, **kwargs):
        raise AssertionError("work was done before the refusal")

    monkeypatch.setattr(cli, "load_meta_init", boom)
    monkeypatch.setattr(cli, "solve", boom)


def refused(root: Path, capsys, *args, names: tuple[str, ...] = ()) -> str:
    """Run `metadip reconstruct *args` in-process; assert exit status 1, a one-line error whose
    first line names every string of ``names``, and an unchanged folder. Returns the line."""
    before = snapshot(root)
    capsys.readouterr()
    rc = cli.main(["reconstruct", *map(str, args)])
    err = capsys.readouterr().err
    assert rc == 1, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("metadip: error: "), err
    for name in names:
        assert name in lines[0], (name, lines[0])
    assert snapshot(root) == before
    return lines[0]


# -- 1. outputs that are inputs or other outputs ------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "names"),
    [
        (["--image", "photo.png", "--out", "photo.png"], ("--out photo.png", "--image")),
        (["--image", "photo.png", "--out", "./photo.png"], ("--out ./photo.png", "--image")),
        (["--image", "photo.png", "--out", "sub/../photo.png"], ("--out sub/../photo.png", "--image")),
        (["--image", "photo.png", "--out", "link.png"], ("--out link.png", "--image")),  # a symlink to the photo
        (["--image", "photo.png", "--out", "hard.png"], ("--out hard.png", "--image")),  # a hard link to the photo
        (["--image", "photo.png", "--out", "r.json"], ("--out r.json", ".png")),  # the report would replace the PNG
        (["--image", "photo.png", "--out", "init.png"], ("--out init.png", "init.json", "sidecar")),
        (
            ["--image", "photo.png", "--out", "a.png", "--save-measurement", "photo.png"],
            ("--save-measurement photo.png", "--image"),
        ),
        (
            ["--image", "photo.png", "--out", "a.png", "--save-operator", "init.safetensors"],
            ("--save-operator init.safetensors", "weights"),
        ),
        (
            ["--image", "photo.png", "--out", "a.png", "--save-measurement", "a.json"],
            ("--save-measurement a.json", "JSON report of --out a.png"),
        ),
        (
            ["--image", "photo.png", "--out", "a.png", "--save-measurement", "m.npy", "--save-operator", "./m.npy"],
            ("--save-operator ./m.npy", "--save-measurement m.npy"),
        ),
        (
            ["--measurement", "y.npy", "--operator", "op.safetensors", "--out", "a.png", "--save-measurement", "y.npy"],
            ("--save-measurement y.npy", "--measurement"),
        ),
        (
            [
                "--measurement",
                "y.npy",
                "--operator",
                "op.safetensors",
                "--out",
                "a.png",
                "--save-operator",
                "op.safetensors",
            ],
            ("--save-operator op.safetensors", "--operator"),
        ),
        (
            ["--measurement", "y.npy", "--operator", "op.safetensors", "--truth", "photo.png", "--out", "photo.png"],
            ("--out photo.png", "--truth"),
        ),
    ],
)
def test_outputs_never_overwrite_inputs_or_each_other(folder, capsys, no_work, extra, names):
    (folder / "sub").mkdir()
    (folder / "link.png").symlink_to("photo.png")
    os.link(folder / "photo.png", folder / "hard.png")
    refused(folder, capsys, "--init", "init", *extra, names=names)


def test_the_real_command_refuses_to_overwrite_the_photo(folder):
    """The installed entry point, in a subprocess: exit 1, one line on stderr, the photo intact."""
    before = snapshot(folder)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "metadip.cli",
            "reconstruct",
            "--init",
            "init",
            "--image",
            "photo.png",
            "--out",
            "photo.png",
        ],
        check=False,
        capture_output=True,
        text=True,
        cwd=folder,
    )
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        "metadip: error: --out photo.png: that is the --image file photo.png; choose another output path "
        "(inputs are never overwritten)"
    ]
    assert snapshot(folder) == before


# -- 2. edited or malformed sidecars -------------------------------------------------------------------


def edit_sidecar(path: Path, change) -> None:
    side = json.loads(path.read_text())
    side = change(side) or side
    path.write_text(json.dumps(side, indent=2))


def _set(section, key, value):
    def change(side):
        target = side
        for k in section:
            target = target[k]
        target[key] = value

    return change


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (_set(["inner"], "momentum", 0.9), "inner.momentum"),
        (_set(["inner"], "steps", 3), "inner.steps"),
        (_set(["architecture", "config"], "activation", "relu"), "architecture.config.activation"),
        (_set(["architecture", "config"], "latent_scale", 1.0), "architecture.config.latent_scale"),
        (_set(["architecture"], "seed", 5), "architecture.seed"),
        (_set(["training_config", "outer"], "test_steps", 1), "training_config"),
    ],
)
def test_an_edited_sidecar_is_refused_naming_the_field(folder, capsys, change, field):
    edit_sidecar(folder / "init.json", change)
    line = refused(
        folder,
        capsys,
        "--init",
        "init",
        "--image",
        "photo.png",
        "--out",
        "a.png",
        names=("init.json", field, "dvc pull"),
    )
    assert "changed since the meta-init was saved" in line


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_set([], "extra", 1), "unexpected field 'extra'"),
        (_set(["architecture", "config"], "bogus", 2), "unexpected field 'architecture.config.bogus'"),
        (lambda side: side.pop("inner") and None, "missing field 'inner'"),
        (
            lambda side: side["architecture"]["config"].pop("activation") and None,
            "missing field 'architecture.config.activation'",
        ),
        (lambda side: [side], "the top level is a list, expected an object"),
        (_set(["inner"], "momentum", "0.5"), "field 'inner.momentum' is a string, expected number"),
        (
            _set(["architecture", "config"], "channels_down", [4, "x"]),
            "field 'architecture.config.channels_down[1]' is a string",
        ),
        (_set(["inner"], "update", "rmsprop"), "field 'inner.update' is \"rmsprop\""),
        (_set([], "weights_sha256", "abc"), "field 'weights_sha256' is not a sha256"),
    ],
)
def test_a_malformed_sidecar_is_one_line_naming_the_field(folder, capsys, change, message):
    edit_sidecar(folder / "init.json", change)
    line = refused(
        folder, capsys, "--init", "init", "--image", "photo.png", "--out", "a.png", names=("init.json", message)
    )
    assert "malformed meta-init sidecar" in line


def test_sidecars_of_the_old_format_are_refused(folder, capsys):
    def old(side):
        side["format"] = "metadip.meta-init/1"
        del side["behaviour_sha256"], side["behaviour_fields"]

    edit_sidecar(folder / "init.json", old)
    refused(
        folder,
        capsys,
        "--init",
        "init",
        "--image",
        "photo.png",
        "--out",
        "a.png",
        names=("init.json", "metadip.meta-init/1", "re-run meta-training"),
    )


def test_a_sidecar_reformatted_but_unchanged_still_loads(folder):
    """The hash is over canonical JSON: key order and indentation do not matter."""
    side = json.loads((folder / "init.json").read_text())
    (folder / "init.json").write_text(json.dumps(dict(reversed(side.items())), separators=(",", ":")))
    assert load_meta_init(folder / "init") is not None


def test_denoiser_sidecar_edits_and_truncated_weights(tmp_path):
    save_denoiser(
        DRUNet(DRUNetConfig(channels=1, widths=(4, 4, 4, 4), blocks=1)), tmp_path / "dn", source="trained", seed=0
    )
    assert load_denoiser(tmp_path / "dn", channels=1) is not None
    original = (tmp_path / "dn.json").read_text()
    edit_sidecar(tmp_path / "dn.json", _set(["architecture", "config"], "blocks", 2))
    with pytest.raises(
        ArtifactError, match=r"dn\.json: architecture\.config\.blocks changed since the denoiser was saved"
    ):
        load_denoiser(tmp_path / "dn")
    (tmp_path / "dn.json").write_text(original)
    edit_sidecar(tmp_path / "dn.json", _set([], "source", 3))
    with pytest.raises(
        ArtifactError, match=r"dn\.json: malformed denoiser sidecar: field 'source' is an integer, expected string"
    ):
        load_denoiser(tmp_path / "dn")
    (tmp_path / "dn.json").write_text(original)
    weights = tmp_path / "dn.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    edit_sidecar(tmp_path / "dn.json", _set([], "weights_sha256", file_sha256(weights)))
    with pytest.raises(
        ArtifactError, match=r"dn\.safetensors: not a readable safetensors file, truncated or corrupt"
    ) as err:
        load_denoiser(tmp_path / "dn")
    assert "\n" not in str(err.value)


# -- 3. unwritable outputs, truncated files ----------------------------------------------------------------


def test_an_output_that_is_a_directory_is_refused_before_any_work(folder, capsys, no_work):
    (folder / "d.png").mkdir()
    refused(
        folder,
        capsys,
        "--init",
        "init",
        "--image",
        "photo.png",
        "--out",
        "d.png",
        names=("--out d.png", "is a directory"),
    )
    refused(
        folder,
        capsys,
        "--init",
        "init",
        "--image",
        "photo.png",
        "--out",
        "a.png",
        "--save-measurement",
        "d.png",
        names=("--save-measurement d.png", "is a directory"),
    )


def test_an_output_under_a_file_is_refused_before_any_work(folder, capsys, no_work):
    refused(
        folder,
        capsys,
        "--init",
        "init",
        "--image",
        "photo.png",
        "--out",
        "photo.png/x.png",
        names=("--out photo.png/x.png", "is not a directory"),
    )


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_an_output_in_a_read_only_folder_is_refused_before_any_work(folder, capsys, no_work):
    (folder / "ro").mkdir()
    (folder / "ro").chmod(0o555)
    try:
        refused(
            folder,
            capsys,
            "--init",
            "init",
            "--image",
            "photo.png",
            "--out",
            "ro/a.png",
            names=("--out ro/a.png", "cannot write"),
        )
    finally:
        (folder / "ro").chmod(0o755)


def test_an_unwritable_folder_is_refused_before_any_work(folder, capsys, no_work, monkeypatch):
    """As root cannot be denied a write, the probe's failure is simulated (a read-only file system)."""
    real = cli.tempfile.mkstemp

    def read_only(*args, dir=None, **kwargs):
        if dir is not None and Path(dir).resolve() == (folder / "out").resolve():
            raise OSError(30, "Read-only file system")
        return real(*args, dir=dir, **kwargs)

    (folder / "out").mkdir()
    monkeypatch.setattr(cli.tempfile, "mkstemp", read_only)
    refused(
        folder,
        capsys,
        "--init",
        "init",
        "--image",
        "photo.png",
        "--out",
        "out/a.png",
        names=("--out out/a.png", "cannot write in", "Read-only file system"),
    )


def test_truncated_weights_whose_hash_was_updated(folder, capsys):
    weights = folder / "init.safetensors"
    weights.write_bytes(weights.read_bytes()[:-200])
    edit_sidecar(folder / "init.json", _set([], "weights_sha256", file_sha256(weights)))
    refused(
        folder,
        capsys,
        "--init",
        "init",
        "--image",
        "photo.png",
        "--out",
        "a.png",
        names=("init.safetensors", "truncated or corrupt", "dvc pull"),
    )


def test_truncated_operator_file(folder, capsys):
    op = folder / "op.safetensors"
    op.write_bytes(op.read_bytes()[:-50])
    refused(
        folder,
        capsys,
        "--init",
        "init",
        "--measurement",
        "y.npy",
        "--operator",
        "op.safetensors",
        "--out",
        "a.png",
        names=("op.safetensors", "truncated or corrupt", "--save-operator"),
    )
    op.write_bytes(op.read_bytes()[:10])  # the header's length cut short
    with pytest.raises(ValueError, match=r"op\.safetensors: not a readable operator file"):
        load_operator(op)


def _checkpointed(path: Path) -> tuple[torch.nn.Module, torch.optim.Adam]:
    model = tiny_model(1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    opt.step()
    save_checkpoint(path, model, opt, 4, {"run_hash": "r"})
    return model, opt


@pytest.mark.parametrize("keep", [10, 200, -100])
def test_a_truncated_checkpoint_is_set_aside_and_training_restarts(tmp_path, caplog, keep):
    ckpt = tmp_path / "checkpoint.safetensors"
    _checkpointed(ckpt)
    ckpt.write_bytes(ckpt.read_bytes()[:keep])
    model = tiny_model(1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    with caplog.at_level(logging.WARNING):
        assert resume_step(ckpt, model, opt, {"run_hash": "r"}, torch.device("cpu")) == 0
    assert not ckpt.exists() and (tmp_path / "checkpoint.safetensors.corrupt").is_file()
    assert "unreadable checkpoint" in caplog.text and "checkpoint.safetensors.corrupt" in caplog.text
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items()) and not opt.state  # nothing loaded


def test_a_checkpoint_of_the_wrong_shapes_is_set_aside_before_anything_is_loaded(tmp_path, caplog):
    ckpt = tmp_path / "checkpoint.safetensors"
    _checkpointed(ckpt)
    other = MetaModel(
        DIPPrior(
            DIPConfig(
                image_shape=(1, 16, 16),
                latent_channels=2,
                channels_down=(8, 8),
                channels_up=(4, 4),
                channels_skip=(1, 1),
            ),
            0,
        ),
        InnerSettings(steps=2),
    )
    before = {k: v.clone() for k, v in other.state_dict().items()}
    assert resume_step(ckpt, other, torch.optim.Adam(other.parameters()), {"run_hash": "r"}, torch.device("cpu")) == 0
    assert (tmp_path / "checkpoint.safetensors.corrupt").is_file()
    assert all(torch.equal(v, before[k]) for k, v in other.state_dict().items())


def test_meta_training_recovers_from_a_truncated_checkpoint(tmp_path):
    """The stage's situation: a checkpoint cut short (full disk, killed copy); the rerun sets it aside and
    ends exactly like a run in an empty folder instead of failing until work/ is deleted by hand."""
    from metadip.meta.maml import OuterSettings, meta_train
    from metadip.physics.tasks import TaskSpec

    settings = OuterSettings(
        steps=2,
        meta_batch=1,
        lr=1e-2,
        checkpoint_every=1,
        val_every=2,
        val_images=1,
        test_steps=1,
        tasks=(TaskSpec("denoising", 25),),
    )
    x = torch.rand(3, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    kw = {"device": "cpu", "show_progress": False}
    meta_train(tiny_model(1), settings, x, x[:1], 0, tmp_path / "run", stop_after=1, **kw)
    ckpt = tmp_path / "run" / "checkpoint.safetensors"
    ckpt.write_bytes(ckpt.read_bytes()[:-64])
    resumed = meta_train(tiny_model(1), settings, x, x[:1], 0, tmp_path / "run", **kw)
    fresh = meta_train(tiny_model(1), settings, x, x[:1], 0, tmp_path / "fresh", **kw)
    assert (tmp_path / "run" / "checkpoint.safetensors.corrupt").is_file()
    for k, v in fresh.state_dict().items():
        assert torch.equal(resumed.state_dict()[k], v), k


# -- 4. steps, tiny images, pickled measurements -------------------------------------------------------------


@pytest.mark.parametrize("steps", [0, -3])
def test_steps_below_one_are_refused(folder, capsys, no_work, steps):
    refused(
        folder,
        capsys,
        "--init",
        "init",
        "--image",
        "photo.png",
        "--out",
        "a.png",
        "--steps",
        steps,
        names=(f"--steps {steps}",),
    )


@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_a_one_pixel_image_is_reconstructed_at_its_size(folder, capsys, mode):
    Image.new(mode, (1, 1), 200 if mode == "L" else (200, 10, 10)).save(folder / "one.png")
    before = snapshot(folder)
    assert cli.main(["reconstruct", "--init", "init", "--image", "one.png", "--out", "r.png", "--steps", "1"]) == 0
    after = snapshot(folder)
    assert set(after) - set(before) == {"r.png", "r.json"} and all(after[k] == v for k, v in before.items())
    assert Image.open(folder / "r.png").size == (1, 1)


def test_a_pickled_measurement_is_refused_naming_the_file(folder, capsys):
    np.save(folder / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    refused(
        folder,
        capsys,
        "--init",
        "init",
        "--measurement",
        "obj.npy",
        "--operator",
        "op.safetensors",
        "--out",
        "a.png",
        names=("obj.npy", "pickled"),
    )


def test_a_pickled_measurement_is_never_unpickled(folder, capsys):
    (folder / "evil.npy").write_bytes(b"\x80\x04K\x01.")  # a pickle, not an .npy
    refused(
        folder,
        capsys,
        "--init",
        "init",
        "--measurement",
        "evil.npy",
        "--operator",
        "op.safetensors",
        "--out",
        "a.png",
        names=("evil.npy", "pickled"),
    )
    with open(folder / "z.npy", "wb") as f:
        np.savez(f, y=np.zeros(3))
    refused(
        folder,
        capsys,
        "--init",
        "init",
        "--measurement",
        "z.npy",
        "--operator",
        "op.safetensors",
        "--out",
        "a.png",
        names=("z.npy", ".npz"),
    )


def test_a_good_run_writes_only_its_outputs(folder, capsys):
    """The control: the checks let a correct command through, and it writes exactly its outputs."""
    Image.new("RGB", SHAPE[:0:-1]).save(folder / "truth.png")  # the measurement's size
    before = snapshot(folder)
    assert (
        cli.main(
            [
                "reconstruct",
                "--init",
                "init.json",
                "--measurement",
                "y.npy",
                "--operator",
                "op.safetensors",
                "--out",
                "out/r.png",
                "--steps",
                "1",
                "--truth",
                "truth.png",
            ]
        )
        == 0
    )
    after = snapshot(folder)
    assert set(after) - set(before) == {"out", "out/r.png", "out/r.json"} and all(
        after[k] == v for k, v in before.items()
    )
    shutil.rmtree(folder / "out")
