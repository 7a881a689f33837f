"""The `metadip` command: simulate + reconstruct, reconstruct a given measurement, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from metadip.meta.inner_loop import InnerSettings, MetaModel
from metadip.models.networks import DIPConfig, DIPPrior
from metadip.pipeline.artifacts import save_meta_init


@pytest.fixture
def init(tmp_path):
    cfg = DIPConfig(
        image_shape=(3, 32, 32), latent_channels=4, channels_down=(8, 8), channels_up=(8, 8), channels_skip=(2, 2)
    )
    model = MetaModel(DIPPrior(cfg, 0), InnerSettings(steps=3, lr_init=1.0, momentum=0.5))
    save_meta_init(
        model, tmp_path / "init", training_config={"outer": {"test_steps": 12}}, dataset_manifest_sha256="", seed=0
    )
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (48, 60, 3), dtype=np.uint8)).save(tmp_path / "photo.png")
    return tmp_path


def cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "metadip.cli", *map(str, args)], check=False, capture_output=True, text=True
    )


def test_simulate_then_reconstruct_the_saved_measurement(init):
    t = init
    first = cli(
        "reconstruct",
        "--init",
        t / "init",
        "--image",
        t / "photo.png",
        "--task",
        "cs_fast",
        "--ratio",
        0.5,
        "--out",
        t / "a.png",
        "--save-measurement",
        t / "y.npy",
        "--save-operator",
        t / "op.safetensors",
    )
    assert first.returncode == 0, first.stderr
    report = json.loads((t / "a.json").read_text())
    assert (
        report["steps"] == 12
        and report["threads"] == 1  # the evaluation's: a solve's float sums depend on the thread count
        and report["operator"]["kind"] == "cs_fast"
        and np.isfinite(report["psnr"])
        and 0 < report["ssim"] <= 1
    )
    assert Image.open(t / "a.png").size == (32, 32)  # fitted to the meta-init's 32×32 (central square, resized)
    assert np.load(t / "y.npy").shape == (1536,)
    again = cli(
        "reconstruct",
        "--init",
        t / "init.json",
        "--measurement",
        t / "y.npy",
        "--operator",
        t / "op.safetensors",
        "--out",
        t / "b.png",
        "--steps",
        12,
        "--truth",
        t / "photo.png",
    )
    assert again.returncode == 0, again.stderr
    assert "reconstructed cs_fast measurement in 12 steps" in again.stdout
    assert json.loads((t / "b.json").read_text())["psnr"] == pytest.approx(report["psnr"], abs=1e-3)
    assert np.array_equal(np.asarray(Image.open(t / "a.png")), np.asarray(Image.open(t / "b.png")))


def test_clear_errors(init):
    t = init
    cli(
        "reconstruct",
        "--init",
        t / "init",
        "--image",
        t / "photo.png",
        "--task",
        "cs_fast",
        "--ratio",
        0.5,
        "--out",
        t / "a.png",
        "--save-measurement",
        t / "y.npy",
    )
    cases = [
        (["--init", t / "missing", "--image", t / "photo.png"], "sidecar not found"),
        (["--init", t / "init", "--image", t / "photo.png", "--threads", 0], "use at least 1 thread"),
        (
            ["--init", t / "init", "--measurement", t / "y.npy", "--task", "cs_fast", "--ratio", 0.25],
            "measurement of shape (1536,), but the cs_fast operator measures (768,)",
        ),
        (["--init", t / "init", "--measurement", t / "nope.npy"], "measurement file not found"),
        (["--init", t / "init", "--image", t / "nope.png"], "no such image file"),
        (
            ["--init", t / "init", "--image", t / "photo.png", "--task", "cs", "--ratio", 2],
            "ratio m/n must lie in (0, 1]",
        ),
    ]
    for args, message in cases:
        proc = cli("reconstruct", *args, "--out", t / "x.png")
        assert proc.returncode == 1 and message in proc.stderr, (args, proc.stderr)
        assert proc.stderr.strip().count("\n") == 0  # one line
    assert not (t / "x.png").exists()
    bad = np.load(t / "y.npy")
    bad[5] = np.nan
    np.save(t / "nan.npy", bad)
    proc = cli(
        "reconstruct",
        "--init",
        t / "init",
        "--measurement",
        t / "nan.npy",
        "--task",
        "cs_fast",
        "--ratio",
        0.5,
        "--out",
        t / "x.png",
    )
    assert proc.returncode == 1 and "NaN or inf" in proc.stderr
    assert not (t / "x.png").exists()
    assert "simulate compressive-sensing measurements" in cli("--help").stdout
