"""Denoisers for the baselines and PnP priors: BM3D (the ``bm3d`` package) and DRUNet (KAIR/DPIR).

Both take images ``(C, H, W)`` or ``(B, C, H, W)`` float32 in [0, 1] and σ on the 0–255 scale
(divided by 255 here, once) and return float32 of the same shape.

DRUNet is KAIR's ``UNetRes``: channels [64, 128, 256, 512], 4 residual blocks per scale, no
biases, stride-2 conv down / transposed conv up, the noise level as an extra constant input
channel (σ/255); about 32.6 M parameters.  :func:`load_official_drunet` strictly loads the
official ``drunet_color.pth`` / ``drunet_gray.pth`` (KAIR v1.0 release) with
``torch.load(weights_only=True)`` — tensors only, no code executed.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from metadip.core.errors import InputError

MAX_SIGMA = 255.0


def _check_sigma(sigma: float, upper: float = MAX_SIGMA) -> float:
    sigma = float(sigma)
    if not math.isfinite(sigma) or not 0 <= sigma <= upper:
        raise ValueError(f"denoiser strength sigma must lie in [0, {upper:g}] on the 0-255 scale, got {sigma}")
    return sigma


BM3D_PROFILES = ("np", "classic")


def bm3d_denoise(x: Tensor, sigma: float, profile: str = "np") -> Tensor:
    """BM3D (``bm3d.bm3d_rgb`` with the opponent colour transform for 3 channels, ``bm3d.bm3d`` for
    grey) at noise level ``sigma`` (0–255 scale); runs on the CPU, on one thread.

    ``profile``: "np", the package's default, computes the exact variances of the transform
    coefficients from the noise PSD (made for correlated noise; Mäkinen et al. 2020) at a cost per
    call that barely shrinks with the image; "classic" is the package's conventional mode
    (``nf = 0``: white-noise thresholds, no block-matching correction), the original BM3D of Dabov
    et al. (2007), ~10x faster at 64 px (bench/bm3d_profiles.py measures both).  The package's
    default of one thread per core aggregates in a varying order (repeated calls differ in the last
    float digits) and oversubscribes the cores the workflow's parallel jobs already use;
    single-threaded, a call is bitwise reproducible."""
    import bm3d  # deferred: 2 s import

    sigma = _check_sigma(sigma)
    if profile not in BM3D_PROFILES:
        raise ValueError(f"BM3D profile must be one of {BM3D_PROFILES}, got {profile!r}")
    if x.dim() == 4:
        return torch.stack([bm3d_denoise(xi, sigma, profile) for xi in x])
    if x.dim() != 3 or x.shape[0] not in (1, 3):
        raise ValueError(f"BM3D expects (C, H, W) or (B, C, H, W) images with 1 or 3 channels, got {tuple(x.shape)}")
    if sigma == 0:
        return x.clone()
    arr = x.detach().cpu().permute(1, 2, 0).double().numpy()
    settings = bm3d.BM3DProfile()  # 'np'
    settings.num_threads = 1
    if profile == "classic":
        settings.nf = 0
    out = (
        bm3d.bm3d_rgb(arr, sigma / 255.0, settings)
        if x.shape[0] == 3
        else bm3d.bm3d(arr[..., 0], sigma / 255.0, settings)[..., None]
    )
    return torch.from_numpy(np.ascontiguousarray(out, dtype=np.float32)).permute(2, 0, 1).to(x.device)


class _ResBlock(nn.Module):
    """x + conv(relu(conv(x))), no biases (KAIR ``ResBlock`` mode 'CRC')."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.res = nn.Sequential(
            nn.Conv2d(c, c, 3, 1, 1, bias=False), nn.ReLU(inplace=True), nn.Conv2d(c, c, 3, 1, 1, bias=False)
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.res(x)


@dataclass(frozen=True)
class DRUNetConfig:
    channels: int = 3
    widths: tuple[int, ...] = (64, 128, 256, 512)
    blocks: int = 4
    residual: bool = False  # True: the network predicts x̂ − y and adds y back (KAIR's DRUNet: False)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["widths"] = list(self.widths)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> DRUNetConfig:
        return cls(
            channels=d["channels"], widths=tuple(d["widths"]), blocks=d["blocks"], residual=d.get("residual", False)
        )


class DRUNet(nn.Module):
    """KAIR ``UNetRes`` with module names m_head, m_down1..3, m_body, m_up3..1, m_tail."""

    def __init__(self, config: DRUNetConfig = DRUNetConfig(), seed: int = 0) -> None:
        """Initial weights are PyTorch's defaults drawn under ``seed`` (the global RNG is left alone)."""
        super().__init__()
        if len(config.widths) != 4:
            raise ValueError(f"DRUNet has 4 scales; got widths {config.widths}")
        self.config = config
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self._build(config)

    def _build(self, config: DRUNetConfig) -> None:
        w, nb, c = config.widths, config.blocks, config.channels
        self.m_head = nn.Conv2d(c + 1, w[0], 3, 1, 1, bias=False)
        for i in range(3):
            setattr(
                self,
                f"m_down{i + 1}",
                nn.Sequential(*[_ResBlock(w[i]) for _ in range(nb)], nn.Conv2d(w[i], w[i + 1], 2, 2, 0, bias=False)),
            )
        self.m_body = nn.Sequential(*[_ResBlock(w[3]) for _ in range(nb)])
        for i in (2, 1, 0):
            setattr(
                self,
                f"m_up{i + 1}",
                nn.Sequential(
                    nn.ConvTranspose2d(w[i + 1], w[i], 2, 2, 0, bias=False), *[_ResBlock(w[i]) for _ in range(nb)]
                ),
            )
        self.m_tail = nn.Conv2d(w[0], c, 3, 1, 1, bias=False)

    def forward(self, x: Tensor, sigma: float | Tensor) -> Tensor:
        """``x`` (B, C, H, W) in [0, 1]; ``sigma`` on the 0–255 scale (a number or a (B,) tensor)."""
        b, _, h, wd = x.shape
        level = torch.as_tensor(sigma, dtype=x.dtype, device=x.device).reshape(-1, 1, 1, 1) / 255.0
        pad_h, pad_w = (-h) % 8, (-wd) % 8  # three stride-2 levels
        xp = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate") if pad_h or pad_w else x
        x0 = torch.cat([xp, level.expand(b, 1, *xp.shape[-2:])], dim=1)
        x1 = self.m_head(x0)
        x2 = self.m_down1(x1)
        x3 = self.m_down2(x2)
        x4 = self.m_down3(x3)
        y = self.m_body(x4)
        y = self.m_up3(y + x4)
        y = self.m_up2(y + x3)
        y = self.m_up1(y + x2)
        y = self.m_tail(y + x1)[..., :h, :wd]
        return x + y if self.config.residual else y


class DRUNetDenoiser:
    """Callable denoiser around a :class:`DRUNet`: ``denoiser(x, sigma)`` in eval mode, no grad.

    ``self_ensemble``: average the network's outputs over the 8 rotations / flips of the input, each
    transformed back (KAIR's test mode 'x8'; 8 forward passes)."""

    def __init__(self, net: DRUNet, device: torch.device | str | None = None, self_ensemble: bool = False) -> None:
        self.device = (
            torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
        )
        self.net = net.to(self.device).eval()
        self.self_ensemble = self_ensemble

    def _forward(self, x: Tensor, sigma: float) -> Tensor:
        if not self.self_ensemble:
            return self.net(x, sigma)
        out = torch.zeros_like(x)
        for k in range(4):
            for flip in (False, True):
                t = torch.rot90(x, k, dims=(-2, -1))
                t = torch.flip(t, dims=(-1,)) if flip else t
                y = self.net(t, sigma)
                y = torch.flip(y, dims=(-1,)) if flip else y
                out += torch.rot90(y, -k, dims=(-2, -1))
        return out / 8

    @torch.no_grad()
    def __call__(self, x: Tensor, sigma: float) -> Tensor:
        sigma = _check_sigma(sigma)
        single = x.dim() == 3
        xb = (x.unsqueeze(0) if single else x).to(self.device)
        if xb.shape[1] != self.net.config.channels:
            raise ValueError(
                f"this DRUNet denoises {self.net.config.channels}-channel images, got {xb.shape[1]} channels"
            )
        out = self._forward(xb, sigma).to(x.device)
        return out[0] if single else out


def load_official_drunet(path: str | os.PathLike, channels: int) -> DRUNet:
    """Strictly load an official KAIR ``drunet_color.pth`` (channels=3) / ``drunet_gray.pth`` (1)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: DRUNet weights not found; bring drunet_color.pth / drunet_gray.pth in with dvc import-url "
            "(see docs/method.md) or train one with stages/train_denoiser.py"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch.load raises many types: truncated zip, not a torch file, pickled code
        raise InputError(
            f"{path}: not a readable DRUNet weights file ({type(err).__name__}: {str(err).splitlines()[0][:120]})"
        ) from None
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise InputError(f"{path}: expected a state dict of tensors; give KAIR's drunet_color.pth or drunet_gray.pth")
    net = DRUNet(DRUNetConfig(channels=channels))
    missing, unexpected = set(net.state_dict()) - set(state), set(state) - set(net.state_dict())
    if missing or unexpected:
        raise InputError(
            f"{path}: not a DRUNet ({channels}-channel) state dict: missing {sorted(missing)[:3]}, "
            f"unexpected {sorted(unexpected)[:3]}"
        )
    shapes = [k for k, v in net.state_dict().items() if v.shape != state[k].shape]
    if shapes:
        raise InputError(
            f"{path}: wrong architecture: {shapes[0]} has shape {tuple(state[shapes[0]].shape)}, "
            f"expected {tuple(net.state_dict()[shapes[0]].shape)} (color file for 3 channels, gray for 1?)"
        )
    net.load_state_dict(state, strict=True)
    return net
