"""Metrics: PSNR / SSIM / NMSE conventions (data range 1, clipped estimate, per image)."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from metadip.core.metrics import mse, nmse, psnr, ssim


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), c=st.sampled_from((1, 3)), h=st.integers(8, 24))
def test_identical_images_have_infinite_psnr_zero_nmse_unit_ssim(seed, c, h):
    x = torch.rand(c, h, h, generator=torch.Generator().manual_seed(seed))
    assert math.isinf(psnr(x, x).item())
    assert nmse(x, x).item() == 0
    assert ssim(x, x).item() == pytest.approx(1.0)


@settings(max_examples=30, deadline=None)
@given(delta=st.floats(1e-3, 0.5))
def test_psnr_of_a_constant_offset(delta):
    x = torch.full((3, 8, 8), 0.25, dtype=torch.float64)
    assert psnr(x + delta, x).item() == pytest.approx(-20 * math.log10(delta), rel=1e-6)


def test_estimate_is_clipped_before_the_metric():
    x = torch.ones(1, 8, 8)
    over = torch.full((1, 8, 8), 1.7)
    assert math.isinf(psnr(over, x).item())  # clipped to 1 → identical
    assert mse(torch.full((1, 8, 8), -3.0), torch.zeros(1, 8, 8)).item() == 0


def test_per_image_over_batch_dims():
    x = torch.rand(2, 4, 3, 8, 8)
    est = x + 0.1 * torch.randn_like(x)
    values = psnr(est, x)
    assert values.shape == (2, 4)
    assert values[1, 2].item() == pytest.approx(psnr(est[1, 2], x[1, 2]).item())
    assert ssim(est, x).shape == (2, 4)
    assert nmse(est, x).shape == (2, 4)


def test_nmse_definition():
    x = torch.full((1, 4, 4), 0.5)
    est = torch.full((1, 4, 4), 0.6)
    assert nmse(est, x).item() == pytest.approx(0.01 / 0.25)


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match="equal shape"):
        psnr(torch.rand(3, 8, 8), torch.rand(1, 8, 8))
