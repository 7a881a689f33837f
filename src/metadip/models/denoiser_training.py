"""Train a DRUNet on curated clean images with random noise levels (when no official weights exist).

Each step draws a batch of random ``patch`` × ``patch`` crops (random flips / 90° rotations) from
the training images and a noise level σ ~ U(0, sigma_max) per crop (0–255 scale), and minimises
the L1 error of DRUNet(x + σ/255·n, σ) to x (KAIR's loss) with Adam, at a constant learning rate
or along a cosine decay.  As in meta-training, all
randomness of step t is drawn from generators seeded by (seed, t), checkpoints are atomic, resumed
only by a run of the same configuration, data and code (:mod:`metadip.core.checkpoints`), and a resumed
run retraces the uninterrupted one; validation is PSNR at σ = ``val_sigma`` on held-out
images, logged to ``metrics.csv``.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor

from metadip.core.checkpoints import (
    code_sha256,
    resume_step,
    save_checkpoint,
    tensors_sha256,
)
from metadip.core.errors import InputError
from metadip.core.hashing import config_hash
from metadip.core.metrics import psnr
from metadip.core.progress_bars import progress
from metadip.core.seeding import seeded_generator
from metadip.core.training_log import TrainingLog
from metadip.models.denoisers import DRUNet

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DenoiserTraining:
    steps: int = 2000
    batch: int = 16
    patch: int = 64
    lr: float = 1e-4
    schedule: str = "constant"  # "cosine": lr decays along a half cosine to lr / 100 at the last step
    sigma_max: float = 50.0
    checkpoint_every: int = 100
    val_every: int = 100
    val_sigma: float = 25.0
    val_images: int = 16

    def __post_init__(self) -> None:
        if (
            min(self.steps, self.batch, self.patch, self.checkpoint_every, self.val_every, self.val_images) < 1
            or not self.lr > 0
        ):
            raise ValueError(f"invalid denoiser training settings: {self}")
        if self.patch % 8:
            raise InputError(
                f"baselines.drunet.train.patch: {self.patch} is not a multiple of 8 (DRUNet downsamples three "
                "times); give a multiple of 8"
            )
        if self.schedule not in ("constant", "cosine"):
            raise ValueError(f"schedule must be 'constant' or 'cosine', got {self.schedule!r}")
        if not 0 < self.sigma_max <= 255 or not 0 <= self.val_sigma <= 255:
            raise ValueError("sigma_max must lie in (0, 255] and val_sigma in [0, 255]")


def memory_format(device: torch.device) -> torch.memory_format:
    """The layout DRUNet trains in: channels-last (NHWC) on the CPU, where one training step of the
    CPU-scale DRUNet (batch 16, 64 px) runs 1.07-1.14x faster in it than in NCHW on one thread
    (bench/denoiser_training.py); the default layout on other devices, where it is not measured.
    The layout changes float rounding only, not the result."""
    return torch.channels_last if device.type == "cpu" else torch.contiguous_format


def learning_rate(s: DenoiserTraining, step: int) -> float:
    """The learning rate of step ``step`` (1..steps): a function of the step alone, so a resumed run
    follows the uninterrupted run's schedule."""
    if s.schedule == "constant":
        return s.lr
    return s.lr * (0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * (step - 1) / s.steps)))


def training_batch(images: Tensor, s: DenoiserTraining, seed: int, step: int) -> tuple[Tensor, Tensor, Tensor]:
    """(noisy (B, C, p, p), clean, σ (B,)) of step ``step``."""
    g = seeded_generator(seed, step, 7)
    n, _, h, w = images.shape
    if min(h, w) < s.patch:
        raise InputError(
            f"training images of {h}x{w} px (meta.image_size) are smaller than baselines.drunet.train.patch="
            f"{s.patch}; lower the patch or raise meta.image_size"
        )
    idx = torch.randint(0, n, (s.batch,), generator=g)
    ys = torch.randint(0, h - s.patch + 1, (s.batch,), generator=g)
    xs = torch.randint(0, w - s.patch + 1, (s.batch,), generator=g)
    rot = torch.randint(0, 4, (s.batch,), generator=g)
    flip = torch.randint(0, 2, (s.batch,), generator=g)
    crops = []
    for i, y0, x0, r, f in zip(idx, ys, xs, rot, flip, strict=True):
        c = images[i, :, y0 : y0 + s.patch, x0 : x0 + s.patch]
        c = torch.rot90(c, int(r), dims=(1, 2))
        crops.append(torch.flip(c, dims=(2,)) if f else c)
    clean = torch.stack(crops)
    sigma = torch.rand(s.batch, generator=g) * s.sigma_max
    noisy = clean + sigma.reshape(-1, 1, 1, 1) / 255.0 * torch.randn(clean.shape, generator=g)
    return noisy, clean, sigma


@torch.no_grad()
def validate_denoiser(net: DRUNet, images: Tensor, sigma: float, seed: int, device: torch.device) -> float:
    """Mean PSNR (dB) of DRUNet on ``images`` with fixed seeded noise of level ``sigma``."""
    g = seeded_generator(seed, 2**31 - 2)
    noisy = images + sigma / 255.0 * torch.randn(images.shape, generator=g)
    net.eval()
    out = torch.cat([net(noisy[i : i + 4].to(device), sigma).cpu() for i in range(0, len(images), 4)])
    net.train()
    return float(psnr(out, images).mean())


def train_denoiser(
    net: DRUNet,
    s: DenoiserTraining,
    train_images: Tensor,
    val_images: Tensor,
    seed: int,
    work_dir: str | os.PathLike,
    device: torch.device | str | None = None,
    show_progress: bool = True,
    on_step: Callable[[int], None] | None = None,
    provenance: Mapping[str, str] | None = None,
) -> DRUNet:
    """Train ``net`` in place; resumes from ``work_dir/checkpoint.safetensors`` if that was written
    by a run of the same identity (:mod:`metadip.core.checkpoints`): the same settings, network config,
    seed, initial weights, images and code.  ``provenance``:
    more identity entries from the caller (as for :func:`metadip.meta.maml.meta_train`)."""
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    device = (
        torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    )
    identity = {
        "init_sha256": tensors_sha256(*net.state_dict().values()),
        "data_sha256": tensors_sha256(train_images, val_images[: s.val_images]),
        "code_sha256": code_sha256("metadip.models.denoiser_training"),
        **(provenance or {}),
    }
    net.to(device, memory_format=memory_format(device)).train()
    opt = torch.optim.Adam(net.parameters(), lr=s.lr)
    identity["run_hash"] = config_hash({"training": asdict(s), "net": net.config.to_dict(), "seed": seed})
    ckpt = work / "checkpoint.safetensors"
    start = resume_step(ckpt, net, opt, identity, device)
    if start:
        log.info("resuming denoiser training at step %d from %s", start, ckpt)
    val = val_images[: s.val_images]
    training_log = TrainingLog(work, start, lambda: validate_denoiser(net, val, s.val_sigma, seed, device))
    for step in progress(
        range(start + 1, s.steps + 1), desc="train DRUNet", enabled=show_progress, initial=start, total=s.steps
    ):
        noisy, clean, sigma = training_batch(train_images, s, seed, step)
        noisy = noisy.to(device, memory_format=memory_format(device))
        loss = (net(noisy, sigma.to(device)) - clean.to(device)).abs().mean()
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"denoiser training loss became {loss.item()} at step {step}; lower the learning rate"
            )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        for group in opt.param_groups:
            group["lr"] = learning_rate(s, step)
        opt.step()
        training_log.add_loss(float(loss.detach()))
        if step % s.val_every == 0 or step == s.steps:
            v = validate_denoiser(net, val, s.val_sigma, seed, device)
            row = training_log.record(step, v)
            log.info("step %d: L1 %.5f, val PSNR (sigma %g) %.2f dB", step, row["train_loss"], s.val_sigma, v)
        if step % s.checkpoint_every == 0 or step == s.steps:
            save_checkpoint(ckpt, net, opt, step, identity)
            training_log.checkpointed(step)
        if on_step is not None:
            on_step(step)
    return net.eval()
