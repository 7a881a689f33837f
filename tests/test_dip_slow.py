"""Larger DIP runs (marked slow; .ci/run runs them): 64×64 colour, width-32 depth-5 skip net."""

from __future__ import annotations

import pytest
from conftest import gen

from metadip.dip import DIPSettings, fit_dip
from metadip.metrics import psnr
from metadip.networks import DIPConfig, DIPPrior
from metadip.operators import CompressiveSensing, Denoising, PhaseRetrieval

pytestmark = pytest.mark.slow


def reconstruct(op, x):
    y = op.measure(x, gen(1))
    prior = DIPPrior(DIPConfig(image_shape=tuple(x.shape), channels_down=(32,) * 5, channels_up=(32,) * 5), seed=0)
    return y, fit_dip(prior, op, y, DIPSettings(steps=600), gen(2), x_true=x, device="cpu", show_progress=False)


def test_colour_denoising(astronaut64):
    op = Denoising(astronaut64.shape, 25, seed=0)
    y, r = reconstruct(op, astronaut64)
    assert psnr(r.estimate, astronaut64).item() > psnr(y, astronaut64).item() + 3.0  # measured: 20.7 → 25.2 dB


@pytest.mark.parametrize("cls", (CompressiveSensing, PhaseRetrieval))
def test_colour_compressive_dense(astronaut64, cls):
    op = cls(astronaut64.shape, 0.25, 25, seed=0)
    y, r = reconstruct(op, astronaut64)
    assert psnr(r.estimate, astronaut64).item() > psnr(op.initial_estimate(y), astronaut64).item() + 10.0
