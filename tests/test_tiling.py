"""Tiles of a meta-init over an image of another size (metadip.tiling)."""

from __future__ import annotations

import math
from itertools import pairwise

import pytest
import torch

from metadip.meta.inner_loop import InnerSettings, MetaModel
from metadip.models.networks import DIPConfig, DIPPrior
from metadip.tiling import TiledPrior, TileLayout, tile_starts, tiled_model


def tiny(update: str = "sgd", **inner) -> MetaModel:
    cfg = DIPConfig(
        image_shape=(3, 16, 16), latent_channels=2, channels_down=(4, 4), channels_up=(4, 4), channels_skip=(1, 1)
    )
    return MetaModel(DIPPrior(cfg, 0), InnerSettings(steps=2, momentum=0.5, update=update, **inner))


@pytest.mark.parametrize(("n", "t", "overlap"), [(600, 64, 16), (400, 64, 16), (65, 64, 16), (75, 32, 8), (64, 64, 16)])
def test_tiles_cover_every_pixel_with_the_least_overlap(n, t, overlap):
    starts = tile_starts(n, t, overlap)
    assert starts[0] == 0 and starts[-1] == n - t
    assert all(t - (b - a) >= overlap for a, b in pairwise(starts))
    assert len(starts) == 1 or t + (len(starts) - 2) * (t - overlap) < n  # one tile fewer would not cover n


def test_the_photo_layout_of_the_docs():
    layout = TileLayout.cover((400, 600), (64, 64))
    assert (layout.count, len(layout.cols), len(layout.rows), layout.least_overlap) == (104, 13, 8, 16)


def test_one_tile_of_the_prior_is_the_prior():
    model = tiny()
    prior = TiledPrior(model.prior, TileLayout.cover((16, 16), (16, 16)))
    assert torch.allclose(prior(), model.prior(), atol=1e-6)
    assert [p.shape[1:] for p in prior.parameters()] == [p.shape for p in model.prior.parameters()]


def test_a_small_image_is_cropped_from_the_centre_of_one_tile():
    model = tiny()
    layout = TileLayout.cover((5, 12), (16, 16))
    assert (layout.count, layout.canvas, layout.offset) == (1, (16, 16), (5, 2))
    assert torch.allclose(TiledPrior(model.prior, layout)(), model.prior()[..., 5:10, 2:14], atol=1e-6)


def test_where_one_tile_alone_covers_the_image_the_blend_is_its_output():
    model = tiny()
    layout = TileLayout.cover((20, 37), (16, 16))
    prior = TiledPrior(model.prior, layout)
    out = prior()
    assert out.shape == (1, 3, 20, 37) and torch.isfinite(out).all() and (prior.weight > 0).all()
    r, c = layout.rows[1], layout.cols[1]  # the top-left corner before the second row and column of tiles
    assert torch.allclose(out[..., :r, :c], model.prior()[..., :r, :c], atol=1e-6)


@pytest.mark.parametrize(("update", "shift"), [("sgd", math.log(50 * 75 / 256)), ("adam", 0.0)])
def test_the_step_sizes_give_each_tile_its_trained_step(update, shift):
    model = tiny(update)
    tiled = tiled_model(model, TileLayout.cover((50, 75), (16, 16)))
    assert torch.allclose(tiled.log_lr, model.log_lr + shift)
    assert tiled_model(model, TileLayout.cover((16, 16), (16, 16))) is model
