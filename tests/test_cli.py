"""The `metadip` command: simulate + reconstruct, reconstruct a given measurement, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from metadip import cli as cli_module
from metadip.core.errors import InputError
from metadip.meta.inner_loop import InnerSettings, MetaModel
from metadip.models.networks import DIPConfig, DIPPrior
from metadip.physics.operators import build_operator, save_operator
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


def run(capsys, *args) -> tuple[int, str]:
    """`metadip reconstruct *args` in-process: (exit status, stderr)."""
    capsys.readouterr()
    rc = cli_module.main(["reconstruct", *map(str, args)])
    return rc, capsys.readouterr().err


def files(root) -> set[str]:
    return {p.name for p in root.iterdir()}


@pytest.fixture
def saved(init, capsys):
    """A measurement y.npy saved by the command, with its operator (cs_fast, ratio 0.5, seed 0)."""
    t = init
    rc, err = run(
        capsys,
        *("--init", t / "init", "--image", t / "photo.png", "--task", "cs_fast", "--ratio", 0.5, "--steps", 1),
        *("--out", t / "a.png", "--save-measurement", t / "y.npy", "--save-operator", t / "op.safetensors"),
    )
    assert rc == 0, err
    assert {"y.npy", "y.operator.json", "op.safetensors"} <= files(t)
    return t


@pytest.fixture
def no_work(monkeypatch):
    """Fail the test if the meta-init is loaded or the solver runs."""

    def boom(*args, **kwargs):
        raise AssertionError("work was done before the refusal")

    monkeypatch.setattr(cli_module, "load_meta_init", boom)
    monkeypatch.setattr(cli_module, "solve", boom)


@pytest.mark.parametrize(
    ("kind", "seed"),
    [("cs_fast", 1), ("pr_fast", 0)],  # another seed; phase retrieval with the CS measurement's shape
)
def test_a_measurement_of_another_operator_is_refused(saved, capsys, kind, seed):
    t = saved
    other = build_operator(
        {"kind": kind, "image_shape": (3, 32, 32), "sigma": 25.0, "seed": seed, "ratio": 0.5, "colour": "joint"}
    )
    assert other.measurement_shape == (1536,)
    save_operator(other, t / "other.safetensors")
    before = files(t)
    rc, err = run(
        capsys,
        "--init",
        t / "init",
        "--measurement",
        t / "y.npy",
        "--operator",
        t / "other.safetensors",
        "--out",
        t / "b.png",
    )
    assert rc == 1 and err.count("\n") == 1, err
    assert (
        "y.npy" in err
        and "other.safetensors" in err
        and f"{kind} (ratio 0.5, sigma 25, colour joint, seed {seed})" in err
    )
    assert files(t) == before


def test_a_measurement_of_other_task_options_is_refused(saved, capsys):
    t = saved
    args = ["--init", t / "init", "--measurement", t / "y.npy", "--task", "cs_fast", "--ratio", 0.5, "--steps", 1]
    assert run(capsys, *args, "--out", t / "b.png")[0] == 0  # the options it was made with
    rc, err = run(capsys, *args, "--operator-seed", 1, "--out", t / "c.png")
    assert rc == 1 and "y.npy: y.operator.json records that cs_fast" in err and "seed 1" in err
    assert not (t / "c.png").exists()


def test_a_record_of_another_measurement_is_refused(saved, capsys):
    t = saved
    np.save(t / "y.npy", np.zeros(1536, dtype=np.float32))
    rc, err = run(
        capsys,
        "--init",
        t / "init",
        "--measurement",
        t / "y.npy",
        "--operator",
        t / "op.safetensors",
        "--out",
        t / "b.png",
    )
    assert rc == 1 and "y.operator.json: records another measurement than" in err


def test_a_measurement_without_a_record_runs_with_a_note(saved, capsys):
    t = saved
    (t / "own.npy").write_bytes((t / "y.npy").read_bytes())  # the user's own data: no record beside it
    rc, err = run(
        capsys,
        *("--init", t / "init", "--measurement", t / "own.npy", "--operator", t / "op.safetensors", "--steps", 1),
        *("--out", t / "b.png"),
    )
    assert rc == 0, err
    notes = [line for line in err.splitlines() if line.startswith("metadip: note:")]
    assert len(notes) == 1 and "own.npy has no record of its operator" in notes[0]


@pytest.mark.parametrize(
    "extra",
    [
        ["--task", "cs_fast"],
        ["--ratio", 0.5],
        ["--task", "cs_fast", "--ratio", 0.5],
        ["--sigma", 25],
        ["--operator-seed", 0],
        ["--colour", "joint"],
    ],
)
def test_task_options_are_not_given_with_an_operator(saved, capsys, no_work, extra):
    t = saved
    rc, err = run(
        capsys,
        "--init",
        t / "init",
        "--measurement",
        t / "y.npy",
        "--operator",
        t / "op.safetensors",
        *extra,
        "--out",
        t / "b.png",
    )
    assert rc == 1 and err.startswith(f"metadip: error: --operator {t / 'op.safetensors'}: {extra[0]}"), err
    assert not (t / "b.png").exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--sigma", "nan"], "--sigma nan: the noise level must lie in [0, 255]"),
        (["--sigma", "inf"], "--sigma inf: the noise level must lie in [0, 255]"),
        (["--sigma", "1e30"], "--sigma 1e+30: the noise level must lie in [0, 255]"),
        (["--task", "cs", "--ratio", "nan"], "--ratio nan: the sampling ratio m/n must lie in (0, 1]"),
        (["--task", "cs", "--ratio", "inf"], "--ratio inf: the sampling ratio m/n must lie in (0, 1]"),
        (["--ratio", 0.5], "--ratio 0.5: only the cs and pr tasks take it, and the task is denoising (the default)"),
        (["--steps", 1_000_000_000], "--steps 1000000000: give at most 100000 inner steps"),
        (["--threads", 100_000], "--threads 100000: give 1 to"),
        (["--operator-seed", 2**64], f"--operator-seed {2**64}: a seed must lie in [0, 2^64-1]"),
        (["--truth", "photo.png"], "the --image is the ground truth of a simulation"),
    ],
)
def test_options_out_of_range_are_refused_before_any_work(init, capsys, no_work, extra, message):
    t = init
    rc, err = run(capsys, "--init", t / "init", "--image", t / "photo.png", *extra, "--out", t / "b.png")
    assert rc == 1 and err.count("\n") == 1 and message in err, err
    assert not (t / "b.png").exists()


def test_a_late_failure_writes_nothing(init, capsys, monkeypatch):
    t = init

    def fail(*args, **kwargs):
        raise InputError("forced failure in the solve")

    monkeypatch.setattr(cli_module, "solve", fail)
    before = files(t)
    rc, err = run(
        capsys,
        *("--init", t / "init", "--image", t / "photo.png", "--task", "cs_fast", "--out", t / "a.png"),
        *("--save-measurement", t / "y.npy", "--save-operator", t / "op.safetensors"),
    )
    assert rc == 1 and "forced failure in the solve" in err
    assert files(t) == before  # no y.npy, operator, PNG, report or temporary file


def test_a_diverged_solve_writes_no_nan(init, capsys, monkeypatch):
    t = init
    real = cli_module.solve

    def diverge(*args, **kwargs):
        result = real(*args, **kwargs)
        result.estimate = torch.full_like(result.estimate, float("nan"))
        return result

    monkeypatch.setattr(cli_module, "solve", diverge)
    before = files(t)
    rc, err = run(capsys, "--init", t / "init", "--image", t / "photo.png", "--steps", 1, "--out", t / "a.png")
    assert rc == 1 and "the solve diverged" in err and err.count("\n") == 1, err
    assert files(t) == before


def test_outputs_beside_a_measurement_never_replace_its_record(saved, capsys, no_work):
    t = saved
    rc, err = run(
        capsys,
        "--init",
        t / "init",
        "--measurement",
        t / "y.npy",
        "--operator",
        t / "op.safetensors",
        "--out",
        t / "y.operator.png",
    )
    assert rc == 1 and "would overwrite the record of the --measurement's operator" in err, err
    rc, err = run(
        capsys,
        *("--init", t / "init", "--image", t / "photo.png", "--out", t / "m.png"),
        *("--save-measurement", t / "m.npy", "--save-operator", t / "m.operator.json"),
    )
    assert rc == 1 and "same file as the operator record of --save-measurement" in err, err


def test_help_prints_each_default_once(capsys):
    with pytest.raises(SystemExit):
        cli_module.main(["reconstruct", "--help"])
    text = " ".join(capsys.readouterr().out.split())  # unwrapped
    assert "(default: None)" not in text and text.count("(default: 25)") == 1 and "0 to 255" in text
