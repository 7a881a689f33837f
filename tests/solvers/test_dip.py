"""Vanilla DIP: it reconstructs, its trace and EMA are right, it is deterministic, bad input fails."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import gen

from metadip.core.metrics import nmse, psnr
from metadip.models.networks import DIPConfig, DIPPrior, SirenConfig, SirenPrior
from metadip.physics.operators import (
    CompressiveSensing,
    Denoising,
    OperatorInputError,
    PhaseRetrieval,
    StructuredPhaseRetrieval,
)
from metadip.solvers.dip import DIPSettings, fit_dip, total_variation


def tiny_prior(shape, seed=0) -> DIPPrior:
    """Depth-3, width-16 skip net: ~2 s for 300 steps at 32×32 on 2 cores."""
    return DIPPrior(
        DIPConfig(image_shape=tuple(shape), channels_down=(16,) * 3, channels_up=(16,) * 3, channels_skip=(4,) * 3),
        seed,
    )


def run(op, x, steps=300, seed=0, **kw):
    y = op.measure(x, gen(seed + 1))
    result = fit_dip(
        tiny_prior(x.shape, seed),
        op,
        y,
        DIPSettings(steps=steps, **kw),
        gen(seed + 2),
        x_true=x,
        device="cpu",
        show_progress=False,
    )
    return y, result


def test_dip_denoises(camera32):
    op = Denoising(camera32.shape, 25, seed=0)
    y, result = run(op, camera32)
    noisy = psnr(y, camera32).item()
    assert psnr(result.estimate, camera32).item() > noisy + 3.0  # measured: +5.3 dB


def test_dip_compressive_sensing_beats_least_squares(camera32):
    op = CompressiveSensing(camera32.shape, 0.25, 25, seed=0)
    y, result = run(op, camera32)
    least_squares = psnr(op.A_dagger(y), camera32).item()
    assert psnr(result.estimate, camera32).item() > least_squares + 10.0  # measured: 23.1 vs 7.1 dB


def test_dip_phase_retrieval_beats_flat_estimate(camera32):
    op = StructuredPhaseRetrieval(camera32.shape, 0.25, 25, seed=0)
    y, result = run(op, camera32)
    assert psnr(result.estimate, camera32).item() > psnr(op.initial_estimate(y), camera32).item() + 3.0


def test_trace_and_result_layout(camera32):
    op = Denoising(camera32.shape, 25, seed=0)
    _, result = run(op, camera32, steps=7)
    assert result.estimate.shape == result.last.shape == camera32.shape
    assert set(result.trace) == {"step", "loss", "seconds", "psnr", "nmse", "psnr_last", "nmse_last"}
    assert result.trace["step"] == list(range(1, 8))
    assert all(len(v) == 7 for v in result.trace.values())
    assert result.trace["seconds"] == sorted(result.trace["seconds"]) and result.seconds >= result.trace["seconds"][-1]
    assert result.trace["psnr"][-1] == pytest.approx(psnr(result.estimate, camera32).item())
    assert result.trace["psnr_last"][-1] == pytest.approx(psnr(result.last, camera32).item())
    assert result.trace["nmse_last"][-1] == pytest.approx(nmse(result.last, camera32).item())


def test_snapshots_equal_a_shorter_run(camera32):
    """A run read at step k (snapshot) is the run of k steps: Adam's iterates ignore the total."""
    op = Denoising(camera32.shape, 25, seed=0)
    y = op.measure(camera32, gen(1))
    long = fit_dip(
        tiny_prior(camera32.shape),
        op,
        y,
        DIPSettings(steps=6),
        gen(2),
        device="cpu",
        show_progress=False,
        keep_at=(3, 6),
    )
    short = fit_dip(tiny_prior(camera32.shape), op, y, DIPSettings(steps=3), gen(2), device="cpu", show_progress=False)
    assert set(long.snapshots) == {3, 6}
    torch.testing.assert_close(long.snapshots[3][0], short.estimate)
    torch.testing.assert_close(long.snapshots[3][1], short.last)
    torch.testing.assert_close(long.snapshots[6][0], long.estimate)


def test_ema_starts_at_the_first_output_and_last_iterate_without_ema(camera32):
    op = Denoising(camera32.shape, 25, seed=0)
    y = op.measure(camera32, gen(1))
    first = tiny_prior(camera32.shape)(None)[0].detach()
    one = fit_dip(
        tiny_prior(camera32.shape), op, y, DIPSettings(steps=1, jitter_std=0), gen(2), device="cpu", show_progress=False
    )
    torch.testing.assert_close(one.estimate, first)
    plain = fit_dip(
        tiny_prior(camera32.shape), op, y, DIPSettings(steps=5, ema=None), gen(2), device="cpu", show_progress=False
    )
    assert torch.equal(plain.estimate, plain.last)
    # two steps with weight w: ema = w·out1 + (1 − w)·out2, out2 = f_θ1(z) = the last iterate after one step
    two = fit_dip(
        tiny_prior(camera32.shape),
        op,
        y,
        DIPSettings(steps=2, ema=0.9, jitter_std=0),
        gen(2),
        device="cpu",
        show_progress=False,
    )
    torch.testing.assert_close(two.estimate, 0.9 * first + 0.1 * one.last)


def test_last_iterate_is_the_unjittered_output_after_the_update(camera32):
    """DIP's last iterate at step k is f_θk(z) after the k-th update, without jitter (as MetaDIP's)."""
    op = Denoising(camera32.shape, 25, seed=0)
    y = op.measure(camera32, gen(1))
    prior = tiny_prior(camera32.shape)
    result = fit_dip(
        prior, op, y, DIPSettings(steps=4), gen(2), device="cpu", show_progress=False, x_true=camera32, keep_at=(2,)
    )
    with torch.no_grad():
        after = prior(None)[0]
    torch.testing.assert_close(result.last, after)
    assert result.trace["psnr_last"][-1] == pytest.approx(psnr(after, camera32).item())
    again = fit_dip(tiny_prior(camera32.shape), op, y, DIPSettings(steps=2), gen(2), device="cpu", show_progress=False)
    torch.testing.assert_close(result.snapshots[2][1], again.last)


def test_same_seeds_same_reconstruction(camera32):
    op = Denoising(camera32.shape, 25, seed=0)
    _, a = run(op, camera32, steps=20)
    _, b = run(op, camera32, steps=20)
    assert torch.equal(a.estimate, b.estimate)
    assert a.trace["loss"] == b.trace["loss"]


def test_tv_penalty_smooths(camera32):
    op = Denoising(camera32.shape, 25, seed=0)
    _, plain = run(op, camera32, steps=150, ema=None)
    _, smooth = run(op, camera32, steps=150, ema=None, tv_weight=0.5)
    assert total_variation(smooth.last) < total_variation(plain.last)


def test_siren_prior_runs_under_dip():
    x = torch.rand(1, 16, 16)
    op = Denoising(x.shape, 25, 0)
    prior = SirenPrior(SirenConfig(image_shape=(1, 16, 16), width=32, depth=3), 0)
    result = fit_dip(
        prior,
        op,
        op.measure(x, gen(0)),
        DIPSettings(steps=20, lr=1e-4),
        gen(1),
        x_true=x,
        device="cpu",
        show_progress=False,
    )
    assert result.trace["loss"][-1] < result.trace["loss"][0]


def test_bad_measurement_and_settings(camera32):
    op = Denoising(camera32.shape, 25, seed=0)
    y = op.measure(camera32, gen(1))
    y[0, 0, 0] = float("nan")
    with pytest.raises(OperatorInputError, match="NaN or inf"):
        fit_dip(tiny_prior(camera32.shape), op, y, DIPSettings(steps=2), gen(2), device="cpu")
    with pytest.raises(OperatorInputError, match="expects measurements of shape"):
        fit_dip(tiny_prior(camera32.shape), op, torch.rand(3, 32, 32), DIPSettings(steps=2), gen(2), device="cpu")
    with pytest.raises(ValueError, match="one measurement"):
        fit_dip(tiny_prior(camera32.shape), op, torch.rand(2, 1, 32, 32), DIPSettings(steps=2), gen(2), device="cpu")
    for bad in ({"steps": 0}, {"lr": 0.0}, {"ema": 1.0}, {"jitter_std": -1.0}, {"tv_weight": -1.0}):
        with pytest.raises(ValueError):
            DIPSettings(**bad)


def test_divergence_is_reported(camera32):
    op = Denoising(camera32.shape, 25, seed=0)
    y = op.measure(camera32, gen(1))
    prior = tiny_prior(camera32.shape)
    with torch.no_grad():
        next(prior.parameters()).fill_(float("nan"))
    with pytest.raises(FloatingPointError, match="lower the learning rate"):
        fit_dip(prior, op, y, DIPSettings(steps=2), gen(2), device="cpu")


def test_last_iterate_trace_on_a_grid(camera32):
    """With last_every / last_dense the last iterate is read densely, then every k-th step (NaN between);
    the estimate's trace and the result do not change."""
    op = Denoising(camera32.shape, 25, seed=0)
    y = op.measure(camera32, gen(1))
    kw = {"device": "cpu", "show_progress": False, "x_true": camera32}
    full = fit_dip(tiny_prior(camera32.shape), op, y, DIPSettings(steps=12), gen(2), **kw)
    grid = fit_dip(tiny_prior(camera32.shape), op, y, DIPSettings(steps=12), gen(2), last_every=5, last_dense=3, **kw)
    read = [s for s, v in zip(grid.trace["step"], grid.trace["psnr_last"], strict=True) if not math.isnan(v)]
    assert read == [1, 2, 3, 5, 10, 12]
    assert [full.trace["psnr_last"][s - 1] for s in read] == [grid.trace["psnr_last"][s - 1] for s in read]
    assert grid.trace["psnr"] == full.trace["psnr"] and torch.equal(grid.last, full.last)


# --- slow (`pytest -m slow`; .ci/run runs them) ----------
# Larger DIP runs: 64×64 colour, width-32 depth-5 skip net.


def reconstruct(op, x):
    y = op.measure(x, gen(1))
    prior = DIPPrior(DIPConfig(image_shape=tuple(x.shape), channels_down=(32,) * 5, channels_up=(32,) * 5), seed=0)
    return y, fit_dip(prior, op, y, DIPSettings(steps=600), gen(2), x_true=x, device="cpu", show_progress=False)


@pytest.mark.slow
def test_colour_denoising(astronaut64):
    op = Denoising(astronaut64.shape, 25, seed=0)
    y, r = reconstruct(op, astronaut64)
    assert psnr(r.estimate, astronaut64).item() > psnr(y, astronaut64).item() + 3.0  # measured: 20.7 → 25.2 dB


@pytest.mark.slow
@pytest.mark.parametrize("cls", (CompressiveSensing, PhaseRetrieval))
def test_colour_compressive_dense(astronaut64, cls):
    op = cls(astronaut64.shape, 0.25, 25, seed=0)
    y, r = reconstruct(op, astronaut64)
    assert psnr(r.estimate, astronaut64).item() > psnr(op.initial_estimate(y), astronaut64).item() + 10.0
