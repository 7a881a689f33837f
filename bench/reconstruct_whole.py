"""A photograph larger than the meta-init, reconstructed at its own size: `metadip reconstruct`'s
tiles against one network over the whole image, on a photograph outside the test split.

The photograph (``--photo``, one of the curated collection's sources; refused unless the manifest
puts it in the train or val split) is cropped to the aspect of ``--size`` and resized to it
(Lanczos); the measurement is simulated as `metadip reconstruct --image` does (operator seed 0,
noise seed 1) and solved in the meta-init's test-time steps by:

* ``tiles``: the meta-init's tiles blended and solved as one image against the whole measurement
  (:mod:`metadip.tiling`, the command's method), neighbours overlapping by at least each fraction
  of a tile in ``--overlaps`` (the command's: 0.25);
* ``tiles, each alone`` (denoising only): every tile solved on its own part of the measurement, then
  blended with the same window;
* ``whole``: one network, the meta-init's weights with its latent drawn at the image's size;
* ``whole, padded``: the same with the latent drawn at the size rounded up to a multiple of
  2^depth (every down-sampling exact, as at the meta-init's size), the output cropped back;
* ``centre crop``: what the command did before: the central square resized to the meta-init's size
  and reconstructed there (its PSNR is against that small image, not the photograph).

Run (after curation and meta-training):
    .venv/bin/python bench/reconstruct_whole.py [--init results/meta/metadip/meta_init] \\
        [--manifest data/curated/wallpapers/manifest.parquet] [--photo PATH] [--task denoising]
Prints a Markdown table: PSNR and SSIM against the clean image, seconds of the solve on
``--threads`` CPU threads, and the process's peak memory after each method (tiles run first).
"""

from __future__ import annotations

import argparse
import math
import platform
import resource
import time
from dataclasses import replace
from functools import partial
from pathlib import Path

import pandas as pd
import torch
from PIL import Image, ImageOps
from torch import Tensor, nn

from metadip.core.images import read_rgb, square_resize, to_tensor
from metadip.core.metrics import psnr, ssim
from metadip.meta.inner_loop import MetaModel, solve
from metadip.models.networks import DIPPrior
from metadip.physics.operators import Operator, build_operator
from metadip.pipeline.artifacts import load_meta_init, read_sidecar
from metadip.tiling import OVERLAP, TileLayout, solve_bytes, tiled_model, window

NOISE_SEED = 1  # metadip reconstruct's default noise seed


def operator(task: str, shape: tuple[int, int, int], ratio: float) -> Operator:
    cfg = {"kind": task, "image_shape": shape, "sigma": 25.0, "seed": 0}
    if task != "denoising":
        cfg.update(ratio=ratio, colour="joint")
    return build_operator(cfg)


class Cropped(nn.Module):
    """A prior's output cropped to ``box`` = (top, left, height, width)."""

    def __init__(self, prior: nn.Module, box: tuple[int, int, int, int]) -> None:
        super().__init__()
        self.inner, self.box = prior, box

    def forward(self, jitter: Tensor | None = None) -> Tensor:
        top, left, h, w = self.box
        return self.inner(jitter)[..., top : top + h, left : left + w]


def whole_model(model: MetaModel, h: int, w: int, multiple: int = 1) -> MetaModel:
    """One network over an H × W image: the meta-init's weights and step sizes, its latent drawn
    (from its seed) at (H, W) rounded up to ``multiple``, the output cropped back to (H, W)."""
    hp, wp = math.ceil(h / multiple) * multiple, math.ceil(w / multiple) * multiple
    config = replace(model.prior.config, image_shape=(model.prior.config.image_shape[0], hp, wp))
    prior = DIPPrior(config, model.prior.seed)
    state = {k: v for k, v in model.prior.state_dict().items() if k != "z"}
    missing = prior.load_state_dict(state, strict=False).missing_keys
    assert missing == ["z"], missing
    whole = MetaModel(Cropped(prior, ((hp - h) // 2, (wp - w) // 2, h, w)), model.inner)
    with torch.no_grad():
        whole.log_lr.copy_(model.log_lr)
    return whole


def tiles_alone(model: MetaModel, op: Operator, y: Tensor, steps: int) -> Tensor:
    """Every tile solved on its own part of a denoising measurement, blended with the tiles' window."""
    c, h, w = op.image_shape
    layout = TileLayout.cover((h, w), tuple(model.prior.config.image_shape[1:]))
    (th, tw) = layout.tile
    win = window(th)[:, None] * window(tw)[None, :]
    tile_op = operator("denoising", (c, th, tw), 0.0)
    total, weight = torch.zeros(c, h, w), torch.zeros(h, w)
    for r in layout.rows:
        for q in layout.cols:
            out = solve(model, tile_op, y[:, r : r + th, q : q + tw], steps, device="cpu", show_progress=False)
            total[:, r : r + th, q : q + tw] += out.estimate.clamp(0, 1) * win
            weight[r : r + th, q : q + tw] += win
    return total / weight


def split_of(manifest: Path, photo: Path) -> str:
    """The split the curated manifest gives the photograph's crops; refuses the test split."""
    splits = set(pd.read_parquet(manifest, columns=["source_file", "split"]).query("source_file == @photo.name").split)
    if len(splits) != 1:
        raise SystemExit(f"{manifest}: {photo.name} has crops in {sorted(splits) or 'no split'}; give a source photo")
    (split,) = splits
    if split == "test":
        raise SystemExit(
            f"{photo.name} is a test photograph; give a train or val one (the test split is for evaluation)"
        )
    return split


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--init", default="results/meta/metadip/meta_init", help="meta-init stem")
    p.add_argument("--manifest", default="data/curated/wallpapers/manifest.parquet", help="curated manifest")
    p.add_argument("--photo", default="/usr/share/backgrounds/life_by_Aitzol_Berasategi.jpg", help="source photo")
    p.add_argument("--size", type=int, nargs=2, default=[600, 400], metavar=("W", "H"), help="width, height")
    p.add_argument("--task", default="denoising", choices=["denoising", "cs_fast", "pr_fast"], help="σ = 25")
    p.add_argument("--ratio", type=float, default=0.25, help="cs_fast and pr_fast: m/n")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (metadip reconstruct's default)")
    p.add_argument(
        "--overlaps", type=float, nargs="+", default=[OVERLAP], help="tiles' least overlap, fractions of a tile"
    )
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    photo = Path(a.photo)
    split = split_of(Path(a.manifest), photo)
    model = load_meta_init(a.init)
    steps = read_sidecar(a.init)["training_config"]["outer"]["test_steps"]
    w, h = a.size
    image = ImageOps.fit(Image.fromarray(read_rgb(photo)), (w, h), method=Image.Resampling.LANCZOS)
    x = to_tensor(image)
    op = operator(a.task, tuple(x.shape), a.ratio)
    y = op.measure(x, torch.Generator().manual_seed(NOISE_SEED))
    tile = tuple(model.prior.config.image_shape[1:])
    layout = TileLayout.cover((h, w), tile)
    depth = len(model.prior.config.channels_down)

    def tiles(overlap: float) -> Tensor:
        tiled = tiled_model(model, TileLayout.cover((h, w), tile, overlap))
        return solve(tiled, op, y, steps, device="cpu", show_progress=False).estimate

    methods = {
        f"tiles, overlap {o:g}" + (" (the command's)" if o == OVERLAP else ""): partial(tiles, o) for o in a.overlaps
    }
    methods |= {
        "tiles, each alone": lambda: tiles_alone(model, op, y, steps),
        "whole": lambda: solve(whole_model(model, h, w), op, y, steps, device="cpu", show_progress=False).estimate,
        "whole, padded": lambda: (
            solve(whole_model(model, h, w, 2**depth), op, y, steps, device="cpu", show_progress=False).estimate
        ),
    }
    if a.task != "denoising":
        del methods["tiles, each alone"]
    print(
        f"# {photo.name} ({split} split) at {w}×{h}, {a.task} σ=25"
        + (f" ratio {a.ratio}" if a.task != "denoising" else "")
        + f", {steps} steps; meta-init {a.init} ({read_sidecar(a.init)['weights_sha256'][:12]}); "
        f"torch {torch.__version__}, {a.threads} thread(s), {platform.machine()} CPU"
    )
    print(f"tiles: {layout.describe()}; estimated solve memory {solve_bytes(model.prior, layout) / 2**20:.0f} MiB")
    start = op.initial_estimate(y).clamp(0, 1)
    print(f"initial estimate (the noisy image for denoising): PSNR {float(psnr(start, x)):.2f} dB\n")
    print("| method | image | PSNR dB | SSIM | seconds | peak memory MiB |\n|---|---|---|---|---|---|")
    for name, run in methods.items():
        t = time.perf_counter()
        estimate = run()
        seconds = time.perf_counter() - t
        print(
            f"| {name} | {w}×{h} | {float(psnr(estimate, x)):.2f} | {float(ssim(estimate, x)):.3f} | {seconds:.0f} "
            f"| {peak_mib():.0f} |",
            flush=True,
        )
    small = to_tensor(square_resize(image, model.prior.config.image_shape[-1]))
    small_op = operator(a.task, tuple(small.shape), a.ratio)
    ys = small_op.measure(small, torch.Generator().manual_seed(NOISE_SEED))
    t = time.perf_counter()
    estimate = solve(model, small_op, ys, steps, device="cpu", show_progress=False).estimate
    print(
        f"| centre crop, as before | {small.shape[-1]}×{small.shape[-2]} | {float(psnr(estimate, small)):.2f} "
        f"| {float(ssim(estimate, small)):.3f} | {time.perf_counter() - t:.1f} | {peak_mib():.0f} |"
    )


if __name__ == "__main__":
    main()
