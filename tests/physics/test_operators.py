"""Measurement operators: adjointness, statistics of A, noise, seeding, save/load, bad input."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import gen
from hypothesis import given, settings
from hypothesis import strategies as st

from metadip.core.metrics import psnr
from metadip.physics.operators import (
    OPERATORS,
    CompressiveSensing,
    Denoising,
    OperatorInputError,
    PhaseRetrieval,
    StructuredCompressiveSensing,
    StructuredPhaseRetrieval,
    build_operator,
    load_operator,
    save_operator,
)

CS_KINDS = ("cs", "cs_fast")
PR_KINDS = ("pr", "pr_fast")
SHAPES = ((1, 16, 16), (3, 16, 16), (3, 8, 12))


def make(kind: str, shape=(3, 16, 16), ratio=0.25, sigma=25.0, seed=0, colour="joint"):
    if kind == "denoising":
        return Denoising(shape, sigma, seed)
    return OPERATORS[kind](shape, ratio, sigma, seed, colour)


def inner(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """⟨a, b⟩ = Σ a · conj(b), in double precision."""
    a, b = a.to(torch.complex128), b.to(torch.complex128)
    return (a * b.conj()).sum()


# -- adjointness ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind, tol", [("denoising", 1e-12), ("cs_fast", 1e-12), ("cs", 0.05)])
@pytest.mark.parametrize("ratio", [1 / 8, 1 / 2])
def test_data_loss_estimates_the_image_mse_for_every_operator(kind, tol, ratio):
    """The loss is per image value, ‖A d‖²/n: with E[AᵀA] = I its sum over the n unit perturbations
    d = e_j (the Hessian's trace / 2) is ‖A‖_F²/n = 1 for every operator and ratio, as for denoising,
    so a step size learned on denoising has the right scale on CS (dividing by m gave n/m)."""
    shape = (3, 8, 8)
    op = make(kind, shape, ratio)
    n = math.prod(shape)
    x = torch.rand(shape, generator=gen(0))
    basis = torch.eye(n).reshape(n, *shape)
    trace = op.data_loss(x + basis, op.A(x)).sum().item()
    assert trace == pytest.approx(1.0, rel=tol, abs=1e-6)
    assert op.data_loss(x + basis[:2], op.A(x)).shape == (2,)


@settings(max_examples=25, deadline=None)
@given(
    kind=st.sampled_from(("denoising", *CS_KINDS)),
    shape=st.sampled_from(SHAPES),
    colour=st.sampled_from(("joint", "shared")),
    ratio=st.sampled_from((1 / 8, 1 / 4, 0.5, 1.0)),
    seed=st.integers(0, 2**31 - 1),
)
def test_linear_operators_are_adjoint(kind, shape, colour, ratio, seed):
    op = make(kind, shape, ratio, seed=seed, colour=colour)
    g = gen(seed)
    x = torch.randn(2, *shape, generator=g)
    y = torch.randn(2, *op.measurement_shape, generator=g)
    lhs, rhs = inner(op.A(x), y), inner(x, op.A_adjoint(y))
    assert abs(lhs - rhs) <= 1e-4 * (1 + abs(lhs))


@settings(max_examples=25, deadline=None)
@given(
    kind=st.sampled_from(PR_KINDS),
    shape=st.sampled_from(SHAPES),
    colour=st.sampled_from(("joint", "shared")),
    seed=st.integers(0, 2**31 - 1),
)
def test_phase_retrieval_linear_part_is_adjoint(kind, shape, colour, seed):
    op = make(kind, shape, 0.25, seed=seed, colour=colour)
    g = gen(seed)
    x = torch.complex(torch.randn(2, *shape, generator=g), torch.randn(2, *shape, generator=g))
    y = torch.complex(
        torch.randn(2, *op.measurement_shape, generator=g), torch.randn(2, *op.measurement_shape, generator=g)
    )
    lhs, rhs = inner(op.linear_A(x), y), inner(x, op.linear_adjoint(y))
    assert abs(lhs - rhs) <= 1e-4 * (1 + abs(lhs))


# -- colour convention -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", CS_KINDS + PR_KINDS)
def test_colour_conventions(kind):
    joint = make(kind, (3, 16, 16), 0.25, colour="joint")
    shared = make(kind, (3, 16, 16), 0.25, colour="shared")
    assert joint.measurement_shape == (192,) and joint.n == 768
    assert shared.measurement_shape == (3, 64) and shared.n == 256
    # shared: channel c of the measurement depends on channel c of the image only
    x = torch.rand(3, 16, 16)
    x2 = x.clone()
    x2[1] = torch.rand(16, 16)
    y, y2 = shared.A(x), shared.A(x2)
    assert torch.equal(y[0], y2[0]) and torch.equal(y[2], y2[2]) and not torch.equal(y[1], y2[1])
    # shared == the same grey operator applied to each channel
    grey = make(kind, (1, 16, 16), 0.25, colour="joint")
    for c in range(3):
        torch.testing.assert_close(y[c], grey.A(x[c : c + 1]), rtol=1e-5, atol=1e-6)
    # joint mixes channels
    assert not torch.equal(joint.A(x), joint.A(x2))


# -- entry statistics -----------------------------------------------------------------------------


def materialise(op, complex_part: bool = False) -> torch.Tensor:
    """The m × n matrix of a (joint, grey) operator, column by column."""
    eye = torch.eye(op.n).reshape(op.n, *op.image_shape)
    cols = op.linear_A(eye) if complex_part else op.A(eye)
    return cols.T  # (m, n)


@pytest.mark.parametrize("kind", CS_KINDS)
def test_cs_entry_statistics(kind):
    op = make(kind, (1, 64, 64), 0.25)
    a = materialise(op).double()
    m = op.m
    assert a.shape == (m, 4096)
    assert abs(a.mean()) < 3 / math.sqrt(a.numel() * m)  # mean 0 within 3 standard errors
    assert a.pow(2).mean() * m == pytest.approx(1.0, rel=0.01)  # variance 1/m
    if kind == "cs":  # Gaussian: kurtosis 3
        assert (a.pow(4).mean() / a.pow(2).mean() ** 2).item() == pytest.approx(3.0, rel=0.05)
    # second moment of the operator: E[AᵀA] = I  (diagonal ≈ 1, off-diagonal ≈ 0)
    gram = a.T @ a
    assert gram.diagonal().mean() == pytest.approx(1.0, rel=0.01)
    off = gram - torch.diag(gram.diagonal())
    assert off.abs().mean() < 0.05


@pytest.mark.parametrize("kind", PR_KINDS)
def test_pr_entry_statistics_complex_variance_split(kind):
    op = make(kind, (1, 64, 64), 0.25)
    a = materialise(op, complex_part=True).to(torch.complex128)
    m = op.m
    assert abs(a.mean()) < 3 / math.sqrt(a.numel() * m)
    assert a.abs().pow(2).mean() * m == pytest.approx(1.0, rel=0.01)  # E|A_ij|² = 1/m
    assert a.real.pow(2).mean() * 2 * m == pytest.approx(1.0, rel=0.02)  # 1/(2m) per component
    assert a.imag.pow(2).mean() * 2 * m == pytest.approx(1.0, rel=0.02)
    assert abs((a.real * a.imag).mean()) * 2 * m < 0.02  # components uncorrelated
    gram = a.conj().T @ a
    assert gram.diagonal().real.mean() == pytest.approx(1.0, rel=0.01)


# -- noise ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ("denoising", *CS_KINDS))
@pytest.mark.parametrize("sigma", (15.0, 25.0))
def test_additive_noise_level(kind, sigma):
    op = make(kind, (3, 64, 64), 0.5, sigma=sigma)
    x = torch.rand(3, 64, 64, generator=gen(1))
    e = op.measure(x, gen(2)) - op.A(x)
    assert e.std().item() == pytest.approx(sigma / 255, rel=0.03)
    assert abs(e.mean().item()) < 4 * sigma / 255 / math.sqrt(e.numel())


@pytest.mark.parametrize("kind", PR_KINDS)
def test_phase_retrieval_noise_level(kind):
    op = make(kind, (3, 64, 64), 0.5, sigma=25.0)
    y = op.measure(torch.zeros(3, 64, 64), gen(3))  # y = |e|, e ~ CN(0, σ²): E[y²] = σ²
    assert y.pow(2).mean().sqrt().item() == pytest.approx(25 / 255, rel=0.03)
    # |e| is Rayleigh: E|e| = σ·sqrt(π)/2
    assert y.mean().item() == pytest.approx(25 / 255 * math.sqrt(math.pi) / 2, rel=0.03)


def test_zero_sigma_is_noiseless():
    op = make("cs", sigma=0.0)
    x = torch.rand(3, 16, 16)
    assert torch.equal(op.measure(x, gen(0)), op.A(x))


# -- seeding ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ("denoising", *CS_KINDS, *PR_KINDS))
def test_same_seed_same_operator_and_measurement(kind):
    x = torch.rand(3, 16, 16, generator=gen(0))
    a, b, c = make(kind, seed=7), make(kind, seed=7), make(kind, seed=8)
    ya, yb = a.measure(x, gen(1)), b.measure(x, gen(1))
    assert torch.equal(ya, yb)
    assert not torch.equal(ya, a.measure(x, gen(2)))  # other noise seed
    if kind != "denoising":
        assert not torch.equal(a.A(x), c.A(x))  # other operator seed


# -- structured vs dense ---------------------------------------------------------------------------


@pytest.mark.parametrize("pair", (("cs", "cs_fast"), ("pr", "pr_fast")))
def test_structured_and_dense_measurements_match_statistically(astronaut64, pair):
    """Same image, same ratio: the measurement distributions agree in mean, energy and spread."""
    x = astronaut64
    stats = []
    for kind in pair:
        ys = torch.cat([make(kind, x.shape, 0.25, sigma=25, seed=s).measure(x, gen(100 + s)) for s in range(4)])
        stats.append((ys.mean().item(), ys.pow(2).mean().item(), ys.std().item()))
    (m1, e1, s1), (m2, e2, s2) = stats
    assert e1 == pytest.approx(e2, rel=0.05)  # E‖y‖² = ‖x‖² + mσ² for both
    assert s1 == pytest.approx(s2, rel=0.05)
    assert abs(m1 - m2) < 0.05 * math.sqrt(e1)
    energy = x.pow(2).sum().item() / make(pair[0], x.shape, 0.25).m + (25 / 255) ** 2
    assert e1 == pytest.approx(energy, rel=0.05)


# -- pseudo-inverse and initial estimates ----------------------------------------------------------


@pytest.mark.parametrize("kind", CS_KINDS)
@pytest.mark.parametrize("colour", ("joint", "shared"))
def test_cs_pseudo_inverse_is_minimum_norm_solution(kind, colour):
    op = make(kind, (3, 16, 16), 0.25, colour=colour)
    x = torch.rand(2, 3, 16, 16, generator=gen(0))
    y = op.A(x)
    xd = op.A_dagger(y)
    torch.testing.assert_close(op.A(xd), y, rtol=1e-4, atol=1e-4)  # consistent
    # in the row space of A: xd = Aᵀu, so projecting x onto that space gives xd
    torch.testing.assert_close(op.A_dagger(op.A(xd)), xd, rtol=1e-4, atol=1e-4)
    assert xd.norm() < x.norm()


@pytest.mark.parametrize("kind", CS_KINDS)
@pytest.mark.parametrize("colour", ("joint", "shared"))
def test_cs_initial_estimate_is_a_constant_plus_a_consistent_minimum_norm_correction(kind, colour, astronaut64):
    op = make(kind, astronaut64.shape, 0.125, colour=colour)
    # a constant image (per channel in shared mode) is recovered exactly from noise-free measurements
    levels = torch.tensor([0.8, 0.5, 0.3]) if colour == "shared" else torch.tensor([0.7, 0.7, 0.7])
    flat = levels[:, None, None].expand(astronaut64.shape)
    torch.testing.assert_close(op.initial_estimate(op.A(flat)), flat, rtol=1e-4, atol=1e-4)
    # on a photograph: it fits the measurements, differs from A†y only outside A's row space,
    # and is closer to the image than A†y, which keeps about m/n of its mean (here 10.8 against 6.7 dB)
    y = op.A(astronaut64)
    est, lsq = op.initial_estimate(y), op.A_dagger(y)
    torch.testing.assert_close(op.A(est), y, rtol=1e-3, atol=1e-3)
    torch.testing.assert_close(op.A_dagger(op.A(est - lsq)), torch.zeros_like(est), rtol=0, atol=1e-4)
    assert psnr(est.clamp(0, 1), astronaut64).item() > psnr(lsq.clamp(0, 1), astronaut64).item() + 3.0


@pytest.mark.parametrize("kind", PR_KINDS)
@pytest.mark.parametrize("colour", ("joint", "shared"))
def test_pr_initial_estimate_has_the_image_energy(kind, colour, astronaut64):
    x = astronaut64
    op = make(kind, x.shape, 0.25, sigma=25, colour=colour)
    est = op.initial_estimate(op.measure(x, gen(0)))
    assert est.shape == x.shape and est.min() >= 0 and est.max() <= 1
    if colour == "joint":
        assert est.mean().item() == pytest.approx(x.pow(2).mean().sqrt().item(), rel=0.05)
    else:  # one level per channel
        rms = x.pow(2).mean(dim=(-2, -1)).sqrt()
        torch.testing.assert_close(est.mean(dim=(-2, -1)), rms, rtol=0.05, atol=0)
        assert torch.equal(est[0], est[0, :1, :1].expand(64, 64))


# -- save / load / device ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ("denoising", *CS_KINDS, *PR_KINDS))
def test_save_load_round_trip(kind, tmp_path):
    op = make(kind, (3, 16, 16), 0.25, sigma=15, seed=3, colour="shared")
    save_operator(op, tmp_path / "op.safetensors")
    back = load_operator(tmp_path / "op.safetensors")
    assert type(back) is type(op) and back.config() == op.config()
    for (k, v), (k2, v2) in zip(op.state_dict().items(), back.state_dict().items(), strict=True):
        assert k == k2 and torch.equal(v, v2)
    x = torch.rand(3, 16, 16)
    assert torch.equal(back.measure(x, gen(5)), op.measure(x, gen(5)))
    assert build_operator(op.config()).config() == op.config()


def test_load_operator_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="operator file not found"):
        load_operator(tmp_path / "missing.safetensors")
    from safetensors.torch import save_file

    save_file({"a": torch.zeros(1)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(ValueError, match="not a metadip operator file"):
        load_operator(tmp_path / "other.safetensors")


def test_to_device_moves_buffers():
    op = make("pr_fast").to("meta")
    assert all(b.device.type == "meta" for b in op.buffers())


# -- bad input --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ("denoising", *CS_KINDS, *PR_KINDS))
def test_wrong_image_shape_or_channels_raise(kind):
    op = make(kind, (3, 16, 16))
    for bad in (torch.rand(1, 16, 16), torch.rand(3, 16, 8), torch.rand(16, 16)):
        with pytest.raises(OperatorInputError, match=r"expects images of shape \(\.\.\., 3, 16, 16\)"):
            op.measure(bad, gen(0))


@pytest.mark.parametrize("kind", ("denoising", *CS_KINDS, *PR_KINDS))
def test_non_finite_or_misshapen_measurements_raise(kind):
    op = make(kind, (3, 16, 16))
    y = op.measure(torch.rand(3, 16, 16), gen(0))
    for value in (float("nan"), float("inf")):
        bad = y.clone()
        bad.view(-1)[3] = value
        with pytest.raises(OperatorInputError, match="NaN or inf"):
            op.initial_estimate(bad)
    with pytest.raises(OperatorInputError, match="expects measurements of shape"):
        op.initial_estimate(y.flatten()[:-1])


@pytest.mark.parametrize("sigma", (-1.0, float("nan"), float("inf")))
def test_bad_sigma_raises(sigma):
    with pytest.raises(ValueError, match="sigma must be a finite number >= 0"):
        Denoising((3, 16, 16), sigma, 0)
    with pytest.raises(ValueError, match="sigma must be a finite number >= 0"):
        CompressiveSensing((3, 16, 16), 0.25, sigma, 0)


@pytest.mark.parametrize("ratio", (0.0, -0.25, 1.5, float("nan")))
@pytest.mark.parametrize(
    "cls", (CompressiveSensing, StructuredCompressiveSensing, PhaseRetrieval, StructuredPhaseRetrieval)
)
def test_bad_ratio_raises(cls, ratio):
    with pytest.raises(ValueError, match=r"ratio m/n must lie in \(0, 1\]"):
        cls((3, 16, 16), ratio, 25, 0)


def test_bad_colour_and_kind_raise():
    with pytest.raises(ValueError, match="colour must be 'joint'"):
        CompressiveSensing((3, 16, 16), 0.25, 25, 0, colour="rgb")
    with pytest.raises(ValueError, match="unknown operator kind"):
        build_operator({"kind": "deblur", "image_shape": [3, 16, 16], "sigma": 0, "seed": 0})
