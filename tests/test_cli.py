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
    assert Image.open(t / "a.png").size == (60, 48)  # the photo's own size, not the meta-init's 32×32
    assert report["image_shape"] == [3, 48, 60] and report["layout"]["method"] == "tiles"
    assert np.load(t / "y.npy").shape == (4320,)  # ratio 0.5 of 3·48·60
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
            "measurement of shape (4320,), but the cs_fast operator measures (2160,)",  # 60×48 from its record
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
        "--truth",  # its size: nan.npy has no record
        t / "photo.png",
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
        {"kind": kind, "image_shape": (3, 48, 60), "sigma": 25.0, "seed": seed, "ratio": 0.5, "colour": "joint"}
    )
    assert other.measurement_shape == (4320,)
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
        and f"{kind} (60×48, ratio 0.5, sigma 25, colour joint, seed {seed})" in err
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
    np.save(t / "y.npy", np.zeros(4320, dtype=np.float32))
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


def reconstruct_75x50(t, capsys, *extra) -> tuple[int, str, str]:
    """`metadip reconstruct` of a 75×50 photo with the 32×32 meta-init: (exit status, stdout, stderr)."""
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (50, 75, 3), dtype=np.uint8)).save(t / "wide.png")
    capsys.readouterr()
    rc = cli_module.main(["reconstruct", "--init", str(t / "init"), "--image", str(t / "wide.png"), *map(str, extra)])
    out, err = capsys.readouterr()
    return rc, out, err


def test_an_image_is_reconstructed_at_its_own_size_in_tiles(init, capsys):
    t = init
    rc, out, err = reconstruct_75x50(
        t, capsys, "--task", "cs_fast", "--steps", 3, "--out", t / "w.png", "--save-measurement", t / "y.npy"
    )
    assert rc == 0, err
    assert Image.open(t / "w.png").size == (75, 50)
    said = [line for line in out.splitlines() if line.startswith("metadip: reconstructing")]
    assert said == [
        "metadip: reconstructing 75×50 at its own size, in 6 tiles of 32×32 (3 × 2, overlap ≥ 10 px) "
        "blended and solved as one image"
    ]
    report = json.loads((t / "w.json").read_text())
    assert report["image_shape"] == [3, 50, 75] and report["operator"]["image_shape"] == [3, 50, 75]
    assert report["layout"] == {"method": "tiles", "tiles": 6, "grid": [2, 3], "tile": [32, 32], "overlap": 10}
    assert np.isfinite(report["psnr"]) and 0 < report["ssim"] <= 1
    # the saved measurement, reconstructed with the task options: its record gives the size
    rc, err = run(
        capsys,
        "--init",
        t / "init",
        "--measurement",
        t / "y.npy",
        "--task",
        "cs_fast",
        "--steps",
        3,
        "--out",
        t / "again.png",
    )
    assert rc == 0, err
    assert np.array_equal(np.asarray(Image.open(t / "w.png")), np.asarray(Image.open(t / "again.png")))


def test_an_image_of_the_meta_inits_size_is_one_solve(init, capsys):
    t = init
    Image.fromarray(np.random.default_rng(2).integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(t / "sq.png")
    capsys.readouterr()
    rc = cli_module.main(
        [
            "reconstruct",
            "--init",
            str(t / "init"),
            "--image",
            str(t / "sq.png"),
            "--steps",
            "2",
            "--out",
            str(t / "sq_r.png"),
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0 and "metadip: reconstructing 32×32 at the meta-init's own size" in out
    assert json.loads((t / "sq_r.json").read_text())["layout"] == {
        "method": "meta-init size",
        "tiles": 1,
        "grid": [1, 1],
        "tile": [32, 32],
        "overlap": 0,
    }


def test_an_image_smaller_than_the_meta_init_keeps_its_size(init, capsys):
    t = init
    Image.fromarray(np.full((5, 20, 3), 128, dtype=np.uint8)).save(t / "strip.png")
    capsys.readouterr()
    rc = cli_module.main(
        [
            "reconstruct",
            "--init",
            str(t / "init"),
            "--image",
            str(t / "strip.png"),
            "--steps",
            "2",
            "--out",
            str(t / "strip_r.png"),
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0 and "reconstructing 20×5 in 1 tile of 32×32 (the image centred in it)" in out
    assert Image.open(t / "strip_r.png").size == (20, 5)
    report = json.loads((t / "strip_r.json").read_text())
    assert np.isfinite(report["psnr"]) and "ssim" not in report  # SSIM needs a 7×7 window


@pytest.fixture
def no_solve(monkeypatch):
    """Fail the test if an operator is built or the solver runs."""

    def boom(*args, **kwargs):
        raise AssertionError("work was done before the refusal")

    monkeypatch.setattr(cli_module, "build_operator", boom)
    monkeypatch.setattr(cli_module, "solve", boom)


def test_a_dense_operator_too_large_for_the_machine_is_refused(init, capsys, no_solve):
    t = init
    Image.new("RGB", (2000, 2000), (90, 120, 40)).save(t / "big.png")
    before = files(t)
    rc, err = run(capsys, "--init", t / "init", "--image", t / "big.png", "--task", "cs", "--out", t / "b.png")
    assert rc == 1 and err.count("\n") == 1, err
    assert (
        err.startswith(
            "metadip: error: --task cs: its dense matrix for a 2000×2000 image has 3000000 × 12000000 entries"
        )
        and "use --task cs_fast" in err
    ), err
    assert files(t) == before


def test_an_image_of_too_many_tiles_for_the_machine_is_refused(init, capsys, no_solve, monkeypatch):
    t = init
    monkeypatch.setattr(cli_module, "_memory", lambda device: (2**20, "memory"))  # a machine of 1 MiB
    rc, _, err = reconstruct_75x50(t, capsys, "--out", t / "w.png")
    assert rc == 1 and err.count("\n") == 1, err
    assert f"--image {t / 'wide.png'}: a 75×50 image is 6 tiles of 32×32, about" in err and "downscale or crop" in err
    assert not (t / "w.png").exists()


def test_a_truth_of_another_size_is_refused(saved, capsys):
    t = saved
    rc, err = run(
        capsys,
        *("--init", t / "init", "--measurement", t / "y.npy", "--operator", t / "op.safetensors"),
        *("--truth", t / "photo.png", "--out", t / "b.png", "--steps", 1),
    )
    assert rc == 0, err  # the photo the measurement was simulated from: its size
    Image.new("RGB", (32, 32)).save(t / "small.png")
    rc, err = run(
        capsys,
        *("--init", t / "init", "--measurement", t / "y.npy", "--operator", t / "op.safetensors"),
        *("--truth", t / "small.png", "--out", t / "c.png"),
    )
    assert rc == 1 and "--truth" in err and "a 32×32 image, but the measurement is of a 60×48 image" in err, err


def test_help_says_how_cs_and_cs_fast_differ(capsys):
    with pytest.raises(SystemExit):
        cli_module.main(["reconstruct", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "dense Gaussian A of m × n entries" in text and "orthonormal Hartley transform" in text
    assert "reconstructed at its own size" in text


def test_a_denoising_measurement_that_is_not_one_image_is_refused(init, capsys, no_solve):
    t = init
    np.save(t / "flat.npy", np.zeros(1536, dtype=np.float32))
    rc, err = run(capsys, "--init", t / "init", "--measurement", t / "flat.npy", "--out", t / "b.png")
    assert rc == 1 and err.count("\n") == 1, err
    assert "flat.npy: denoising measurement of shape (1536,); expected an image of shape (3, H, W)" in err, err
