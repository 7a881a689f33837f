"""Reconstruct an image of any size with a meta-init trained on one size: tile the meta-init over it.

A meta-init (θ₀, the prior's fixed input and the learned step sizes) is trained on images of one
size T_h × T_w. An image of H × W is covered by overlapping tiles of that size; every tile starts
from its own copy of θ₀ and of the fixed input, the tiles' outputs are blended with a sin² window
into one image, and the inner loop fits that image to the whole measurement, so a global operator
(compressive sensing, phase retrieval) works as denoising does. A side shorter than the tile is
centred on a canvas of the tile's size and cropped out of it.

Drawing the prior's latent at the image's size instead (one network over the whole image) was
measured against this on a 600×400 validation photograph and lost about 5 dB at the meta-init's 50
steps (bench/reconstruct_whole.py, docs/reconstruct.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import pairwise

import torch
from torch import Tensor, nn
from torch.func import functional_call, vmap

from metadip.meta.inner_loop import MetaModel

OVERLAP = 0.25  # least overlap of neighbouring tiles, a fraction of the tile (bench/reconstruct_whole.py)
MEMORY_FACTOR = 4  # a solve's peak memory over its tiles' module outputs (bench/reconstruct_whole.py)


def tile_starts(n: int, t: int, overlap: int) -> list[int]:
    """First pixels of the fewest tiles of length ``t`` that cover ``n`` pixels with neighbours
    overlapping by at least ``overlap`` pixels, spread evenly; ``[0]`` when ``n <= t``."""
    if n <= t:
        return [0]
    k = math.ceil((n - t) / (t - overlap)) + 1
    return [round(i * (n - t) / (k - 1)) for i in range(k)]


@dataclass(frozen=True)
class TileLayout:
    """Where the tiles of an ``image`` (H, W) lie: on a ``canvas`` of at least one tile per side,
    the image at ``offset`` (top, left) in it; ``rows`` and ``cols`` are the tiles' first pixels."""

    image: tuple[int, int]
    tile: tuple[int, int]
    canvas: tuple[int, int]
    offset: tuple[int, int]
    rows: tuple[int, ...]
    cols: tuple[int, ...]

    @classmethod
    def cover(cls, image: tuple[int, int], tile: tuple[int, int], overlap: float = OVERLAP) -> TileLayout:
        """The fewest tiles that cover ``image`` with neighbours overlapping by at least the fraction
        ``overlap`` of a tile (0 <= overlap < 1)."""
        canvas = (max(image[0], tile[0]), max(image[1], tile[1]))
        offset = ((canvas[0] - image[0]) // 2, (canvas[1] - image[1]) // 2)
        rows, cols = (tuple(tile_starts(canvas[i], tile[i], math.ceil(overlap * tile[i]))) for i in (0, 1))
        return cls(tuple(image), tuple(tile), canvas, offset, rows, cols)

    @property
    def count(self) -> int:
        return len(self.rows) * len(self.cols)

    @property
    def native(self) -> bool:
        """Whether the image is exactly one tile (the meta-init's own size)."""
        return self.image == self.tile

    @property
    def least_overlap(self) -> int:
        """The least overlap of two neighbouring tiles in pixels (0 for one tile)."""
        gaps = [
            t - (b - a)
            for starts, t in zip((self.rows, self.cols), self.tile, strict=True)
            for a, b in pairwise(starts)
        ]
        return min(gaps, default=0)

    def describe(self) -> str:
        """One line for the user: ``600×400 in 104 tiles of 64×64 (13 × 8, overlap ≥ 16 px), ...``."""
        (h, w), (th, tw) = self.image, self.tile
        if self.native:
            return f"{w}×{h} at the meta-init's own size"
        if self.count == 1:
            return f"{w}×{h} in 1 tile of {tw}×{th} (the image centred in it)"
        return (
            f"{w}×{h} at its own size, in {self.count} tiles of {tw}×{th} ({len(self.cols)} × {len(self.rows)}, "
            f"overlap ≥ {self.least_overlap} px) blended and solved as one image"
        )

    def record(self) -> dict:
        """The layout for a JSON report: method, tiles, grid (rows, columns), tile (H, W), least overlap."""
        return {
            "method": "meta-init size" if self.native else "tiles",
            "tiles": self.count,
            "grid": [len(self.rows), len(self.cols)],
            "tile": list(self.tile),
            "overlap": self.least_overlap,
        }


def window(t: int) -> Tensor:
    """sin² window of ``t`` pixels, positive at both ends (pixel centres), shape ``(t,)``."""
    return torch.sin(math.pi * (torch.arange(t) + 0.5) / t).pow(2)


class TiledPrior(nn.Module):
    """One copy of a prior per tile, blended into one image ``(1, C, H, W)``.

    Parameter ``i`` is the prior's parameter ``i`` stacked over the tiles, shape ``(B, *p.shape)``,
    in the prior's order (so a meta-init's per-tensor step sizes apply); the tiles run in one
    vmapped call, each with its own normalisation statistics, and share the prior's buffers.
    """

    def __init__(self, prior: nn.Module, layout: TileLayout) -> None:
        super().__init__()
        self._prior = [prior]  # in a list: its own parameters are not this module's
        self.names = [n for n, _ in prior.named_parameters()]
        b = layout.count
        self.stacked = nn.ParameterList(
            [nn.Parameter(p.detach().expand(b, *p.shape).clone()) for p in prior.parameters()]
        )
        self.layout = layout
        (th, tw), (ch, cw) = layout.tile, layout.canvas
        win = window(th)[:, None] * window(tw)[None, :]
        r, c = torch.arange(th), torch.arange(tw)
        index = torch.stack(
            [((y + r)[:, None] * cw + (x + c)[None, :]).flatten() for y in layout.rows for x in layout.cols]
        )
        weight = torch.zeros(ch * cw).index_add_(0, index.flatten(), win.flatten().repeat(b))
        self.register_buffer("index", index.flatten())
        self.register_buffer("window", win)
        self.register_buffer("weight", weight)
        for name, buffer in prior.named_buffers():
            self.register_buffer("prior_" + name.replace(".", "_"), buffer)
        self._buffer_names = [n for n, _ in prior.named_buffers()]

    def forward(self, jitter: Tensor | None = None) -> Tensor:
        """The blended image; ``jitter`` is accepted for the priors' common interface and ignored."""
        prior = self._prior[0]
        buffers = {n: getattr(self, "prior_" + n.replace(".", "_")) for n in self._buffer_names}

        def one(*params: Tensor) -> Tensor:
            return functional_call(prior, (dict(zip(self.names, params, strict=True)), buffers), ())[0]

        out = vmap(one)(*self.stacked)  # (B, C, T_h, T_w)
        c = out.shape[1]
        (ch, cw), (h, w), (top, left) = self.layout.canvas, self.layout.image, self.layout.offset
        values = (out * self.window).transpose(0, 1).reshape(c, -1)
        canvas = out.new_zeros(c, ch * cw).index_add(1, self.index, values) / self.weight
        return canvas.reshape(1, c, ch, cw)[..., top : top + h, left : left + w]


def tiled_model(model: MetaModel, layout: TileLayout) -> MetaModel:
    """The meta-init laid over the image of ``layout``: ``model`` itself at its own size, else a
    :class:`MetaModel` of a :class:`TiledPrior` with the meta-init's step sizes.

    The inner loss is a mean over the whole image, so a tile's gradient is its share of the image;
    with heavy-ball steps ("sgd") the step sizes are multiplied by the image's pixels over a tile's
    to give every tile the step it was meta-trained with (Adam's steps do not scale with the gradient).
    """
    if layout.native:
        return model
    tiled = MetaModel(TiledPrior(model.prior, layout), model.inner)
    (h, w), (th, tw) = layout.image, layout.tile
    shift = math.log(h * w / (min(h, th) * min(w, tw))) if model.inner.update == "sgd" else 0.0
    with torch.no_grad():
        tiled.log_lr.copy_(model.log_lr + shift)
        if model.inner.lr_per_element:
            for mine, trained in zip(tiled.log_lr_scale, model.log_lr_scale, strict=True):
                mine.copy_(trained.expand_as(mine))
        if model.inner.lr_noise_exponent:
            tiled.lr_noise_exponent.copy_(model.lr_noise_exponent)
    return tiled


def solve_bytes(prior: nn.Module, layout: TileLayout) -> int:
    """Rough peak memory of a solve in bytes: the outputs of every module in one forward pass of
    the prior (one tile, counted with hooks), times the tiles, times :data:`MEMORY_FACTOR` for what
    autograd and the optimiser keep."""
    counted = 0

    def count(module: nn.Module, inputs: tuple, output: Tensor) -> None:
        nonlocal counted
        counted += output.numel() * output.element_size()

    hooks = [m.register_forward_hook(count) for m in prior.modules() if not list(m.children())]
    try:
        with torch.no_grad():
            prior()
    finally:
        for hook in hooks:
            hook.remove()
    return MEMORY_FACTOR * counted * layout.count
