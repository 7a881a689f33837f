"""Networks for DIP and MetaSIREN: Ulyanov's skip encoder–decoder, Fourier features, SIREN.

A *prior* module maps nothing (or a jitter of its fixed input) to an image ``(1, C, H, W)``:
:class:`DIPPrior` = fixed latent z (+ optional Fourier features of the pixel grid) → skip net;
:class:`SirenPrior` = pixel coordinates → SIREN MLP.  The fixed inputs are buffers, so the whole
reconstruction model is one ``state_dict`` and works under ``torch.func.functional_call`` and
``torch.func.vmap`` (BatchNorm never keeps running stats: each image is normalised with its own
statistics, exactly as in DIP, and tasks never share a BatchNorm batch).

The skip net's normalisation layers are a choice (``norm``): ``batch`` (Ulyanov's BatchNorm; with one
image per call it is instance normalisation with a learned per-channel affine), ``group`` (GroupNorm
over gcd(C, 8) groups of channels, with the same affine) or ``none`` (no normalisation layers).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from metadip.core.errors import InputError
from metadip.core.hashing import without_later_defaults


def _conv(cin: int, cout: int, k: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride=stride, padding=(k - 1) // 2, padding_mode="reflect")


NORMS = {  # layer of c channels per kind: see the module docstring
    "batch": lambda c: nn.BatchNorm2d(c, track_running_stats=False),
    "group": lambda c: nn.GroupNorm(math.gcd(c, 8), c),
    "none": lambda c: nn.Identity(),
}


def _norm(kind: str, c: int) -> nn.Module:
    if kind not in NORMS:
        raise ValueError(f"norm must be one of {list(NORMS)}, got {kind!r}")
    return NORMS[kind](c)


ACTIVATIONS = {"leaky_relu": lambda: nn.LeakyReLU(0.2), "silu": nn.SiLU}


def _act(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {name!r}")
    return ACTIVATIONS[name]()


class _SkipLevel(nn.Module):
    """One scale: [skip branch ‖ down → inner → upsample] → concat → norm → conv → norm → act → 1×1."""

    def __init__(
        self,
        cin: int,
        down: int,
        up: int,
        skip: int,
        inner: nn.Module | None,
        inner_out: int,
        act: str,
        norm: str,
    ) -> None:
        super().__init__()
        self.skip = nn.Sequential(_conv(cin, skip, 1), _norm(norm, skip), _act(act)) if skip > 0 else None
        self.down = nn.Sequential(
            _conv(cin, down, 3, stride=2),
            _norm(norm, down),
            _act(act),
            _conv(down, down, 3),
            _norm(norm, down),
            _act(act),
        )
        self.inner = inner
        deeper = inner_out if inner is not None else down
        self.up = nn.Sequential(
            _norm(norm, skip + deeper),
            _conv(skip + deeper, up, 3),
            _norm(norm, up),
            _act(act),
            _conv(up, up, 1),
            _norm(norm, up),
            _act(act),
        )

    def forward(self, x: Tensor) -> Tensor:
        d = self.down(x)
        if self.inner is not None:
            d = self.inner(d)
        d = F.interpolate(d, size=x.shape[-2:], mode="bilinear", align_corners=False)
        if self.skip is not None:
            d = torch.cat([self.skip(x), d], dim=1)
        return self.up(d)


@dataclass(frozen=True)
class SkipConfig:
    """Hyper-parameters of the skip net (defaults: Ulyanov's DIP configuration, ~2.2 M params)."""

    in_channels: int = 32
    out_channels: int = 3
    channels_down: tuple[int, ...] = (128, 128, 128, 128, 128)
    channels_up: tuple[int, ...] = (128, 128, 128, 128, 128)
    channels_skip: tuple[int, ...] = (4, 4, 4, 4, 4)
    activation: str = "leaky_relu"  # Ulyanov: LeakyReLU(0.2); "silu" is smooth (exact meta-gradient checks)
    norm: str = "batch"  # Ulyanov: BatchNorm; "group" or "none" (module docstring)

    @classmethod
    def uniform(cls, width: int, depth: int = 5, skip: int = 4, **kw) -> SkipConfig:
        return cls(channels_down=(width,) * depth, channels_up=(width,) * depth, channels_skip=(skip,) * depth, **kw)

    def __post_init__(self) -> None:
        n = len(self.channels_down)
        if n == 0 or len(self.channels_up) != n or len(self.channels_skip) != n:
            raise ValueError("channels_down, channels_up and channels_skip must be non-empty and of equal length")


class SkipNet(nn.Module):
    """Ulyanov et al.'s "skip" encoder–decoder: stride-2 conv downsampling, bilinear upsampling,
    reflection padding, BatchNorm + LeakyReLU(0.2), 1×1 output conv + sigmoid.

    ``(B, in_channels, H, W)`` → ``(B, out_channels, H, W)`` in (0, 1).  H and W must be at least
    2**depth · 2 so the deepest BatchNorm sees more than one value per channel.
    """

    def __init__(self, config: SkipConfig = SkipConfig()) -> None:
        super().__init__()
        self.config = config
        cins = (config.in_channels, *config.channels_down[:-1])
        inner: nn.Module | None = None
        inner_out = 0
        for i in reversed(range(len(config.channels_down))):
            inner = _SkipLevel(
                cins[i],
                config.channels_down[i],
                config.channels_up[i],
                config.channels_skip[i],
                inner,
                inner_out,
                config.activation,
                config.norm,
            )
            inner_out = config.channels_up[i]
        self.body = inner
        self.head = _conv(config.channels_up[0], config.out_channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        _check_size(self.config, x)
        return torch.sigmoid(self.head(self.body(x)))


def _check_size(config: SkipConfig, x: Tensor) -> None:
    min_size = 2 ** (len(config.channels_down) + 1)
    if min(x.shape[-2:]) < min_size:
        raise InputError(
            f"skip net of depth {len(config.channels_down)} needs images of at least {min_size} px, "
            f"got {tuple(x.shape[-2:])}; raise the image size (meta.image_size) or lower network.depth"
        )


def _norm_f(kind: str, x: Tensor, params: Iterator[Tensor]) -> Tensor:
    """The layer of :data:`NORMS` as a function of its (weight, bias), drawn from ``params``."""
    if kind == "none":
        return x
    w, b = next(params), next(params)
    if kind == "batch":
        return F.batch_norm(x, None, None, w, b, training=True, momentum=0.1, eps=1e-5)
    return F.group_norm(x, math.gcd(x.shape[1], 8), w, b, eps=1e-5)


def _conv_f(x: Tensor, params: Iterator[Tensor], stride: int = 1) -> Tensor:
    """:func:`_conv` as a function of its (weight, bias), drawn from ``params``: reflection padding, then
    the convolution."""
    w, b = next(params), next(params)
    p = (w.shape[-1] - 1) // 2
    if p:
        x = F.pad(x, (p, p, p, p), mode="reflect")
    return F.conv2d(x, w, b, stride=stride)


def _level_f(config: SkipConfig, i: int, x: Tensor, params: Iterator[Tensor]) -> Tensor:
    """:class:`_SkipLevel` number ``i`` (0: the outermost) and the levels inside it, as a function."""
    act = (lambda t: F.leaky_relu(t, 0.2)) if config.activation == "leaky_relu" else F.silu
    norm = config.norm
    s = act(_norm_f(norm, _conv_f(x, params), params)) if config.channels_skip[i] > 0 else None
    d = act(_norm_f(norm, _conv_f(x, params, stride=2), params))
    d = act(_norm_f(norm, _conv_f(d, params), params))
    if i + 1 < len(config.channels_down):
        d = _level_f(config, i + 1, d, params)
    d = F.interpolate(d, size=x.shape[-2:], mode="bilinear", align_corners=False)
    if s is not None:
        d = torch.cat([s, d], dim=1)
    d = _norm_f(norm, d, params)
    d = act(_norm_f(norm, _conv_f(d, params), params))
    return act(_norm_f(norm, _conv_f(d, params), params))


def skip_forward(config: SkipConfig, params: Sequence[Tensor], x: Tensor) -> Tensor:
    """:class:`SkipNet`'s forward pass as a function of its parameter tensors, in ``named_parameters``
    order: the same operations in the same order (so the same output, bit for bit), without the module
    machinery that a compiler would have to trace and guard. ``x`` ``(B, in_channels, H, W)``."""
    _check_size(config, x)
    it = iter(params)
    out = torch.sigmoid(_conv_f(_level_f(config, 0, x, it), it))
    if next(it, None) is not None:
        raise ValueError("skip_forward: more parameter tensors than the skip net of this config has")
    return out


def jittered(z: Tensor, latent_channels: int, jitter: Tensor) -> Tensor:
    """z ``(1, C_in, H, W)`` with ``jitter`` added to its first ``latent_channels`` channels (the
    Fourier channels after them stay fixed)."""
    return torch.cat([z[:, :latent_channels] + jitter, z[:, latent_channels:]], dim=1)


def pixel_grid(height: int, width: int) -> Tensor:
    """Pixel-centre coordinates in [0, 1]², shape ``(H, W, 2)`` (row, column)."""
    r = (torch.arange(height) + 0.5) / height
    c = (torch.arange(width) + 0.5) / width
    return torch.stack(torch.meshgrid(r, c, indexing="ij"), dim=-1)


def fourier_features(height: int, width: int, num: int, scale: float, generator: torch.Generator) -> Tensor:
    """Tancik et al.'s Gaussian Fourier features of the pixel grid: B ~ N(0, scale²) of shape
    (num/2, 2), features [sin 2πvBᵀ, cos 2πvBᵀ] as channels, shape ``(num, H, W)``."""
    if num % 2 or num <= 0:
        raise InputError(f"network.fourier_features: {num} is not a positive even number; give an even number (0: off)")
    b = torch.randn(num // 2, 2, generator=generator) * scale
    proj = 2 * math.pi * pixel_grid(height, width) @ b.T  # (H, W, num/2)
    return torch.cat([proj.sin(), proj.cos()], dim=-1).permute(2, 0, 1).contiguous()


class _JSONConfig:
    """to_dict / from_dict for frozen dataclass configs (tuples ↔ JSON lists)."""

    @classmethod
    def from_dict(cls, d: dict):
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


@dataclass(frozen=True)
class DIPConfig(_JSONConfig):
    """A DIP prior: the skip net, its fixed input and the image size it reconstructs.

    ``z`` has ``latent_channels`` channels of U(0, 1)·``latent_scale`` noise (Ulyanov: 32, 0.1);
    ``fourier_features`` > 0 appends that many Fourier-feature channels of scale ``fourier_scale``.
    """

    image_shape: tuple[int, int, int] = (3, 128, 128)
    latent_channels: int = 32
    latent_scale: float = 0.1
    fourier_features: int = 0
    fourier_scale: float = 10.0
    channels_down: tuple[int, ...] = (128,) * 5
    channels_up: tuple[int, ...] = (128,) * 5
    channels_skip: tuple[int, ...] = (4,) * 5
    activation: str = "leaky_relu"
    norm: str = "batch"

    def to_dict(self) -> dict:
        """As :meth:`_JSONConfig.to_dict`; ``norm`` only when not the default BatchNorm, so that
        artifacts and hashes written before the choice existed stay valid."""
        return without_later_defaults(super().to_dict(), {"norm": "batch"})


class DIPPrior(nn.Module):
    """x = f_θ(z): fixed input buffer ``z`` ``(1, C_in, H, W)`` → skip net → image ``(1, C, H, W)``.

    ``forward(jitter)`` adds ``jitter`` (same shape as the latent part of z) to the latent channels
    only — DIP's input regularisation; the Fourier channels stay fixed.
    """

    def __init__(self, config: DIPConfig, seed: int) -> None:
        super().__init__()
        self.config = config
        self.seed = int(seed)
        c, h, w = config.image_shape
        g = torch.Generator().manual_seed(self.seed)
        z = torch.rand(config.latent_channels, h, w, generator=g) * config.latent_scale
        if config.fourier_features:
            z = torch.cat([z, fourier_features(h, w, config.fourier_features, config.fourier_scale, g)])
        self.register_buffer("z", z.unsqueeze(0))
        net_config = SkipConfig(
            in_channels=z.shape[0],
            out_channels=c,
            channels_down=config.channels_down,
            channels_up=config.channels_up,
            channels_skip=config.channels_skip,
            activation=config.activation,
            norm=config.norm,
        )
        with torch.random.fork_rng(devices=[]):  # default inits draw from the global generator
            torch.manual_seed(self.seed)
            self.net = SkipNet(net_config)

    @property
    def latent_shape(self) -> tuple[int, ...]:
        _c, h, w = self.config.image_shape
        return (1, self.config.latent_channels, h, w)

    def net_input(self, jitter: Tensor | None = None) -> Tensor:
        """The skip net's input ``(1, C_in, H, W)``: z with ``jitter`` added to its latent channels."""
        return self.z if jitter is None else jittered(self.z, self.config.latent_channels, jitter)

    def forward(self, jitter: Tensor | None = None) -> Tensor:
        return self.net(self.net_input(jitter))


class Sine(nn.Module):
    """sin(ω₀ · x)."""

    def __init__(self, omega0: float) -> None:
        super().__init__()
        self.omega0 = omega0

    def forward(self, x: Tensor) -> Tensor:
        return torch.sin(self.omega0 * x)


@dataclass(frozen=True)
class SirenConfig(_JSONConfig):
    """SIREN MLP (Sitzmann et al.): ``depth`` sine layers of ``width`` units, ω₀ scaling, linear
    output layer; output + 0.5 so the zero function maps to mid-grey (images live in [0, 1])."""

    image_shape: tuple[int, int, int] = (3, 128, 128)
    width: int = 256
    depth: int = 5
    omega0: float = 30.0


class SirenPrior(nn.Module):
    """Coordinate MLP image model: fixed coords buffer ``(H·W, 2)`` in [-1, 1]² → ``(1, C, H, W)``."""

    def __init__(self, config: SirenConfig, seed: int) -> None:
        super().__init__()
        self.config = config
        self.seed = int(seed)
        c, h, w = config.image_shape
        self.register_buffer("coords", (pixel_grid(h, w) * 2 - 1).reshape(h * w, 2))
        g = torch.Generator().manual_seed(self.seed)
        layers: list[nn.Module] = []
        fan_in = 2
        for i in range(config.depth):
            lin = nn.Linear(fan_in, config.width)
            bound = 1 / fan_in if i == 0 else math.sqrt(6 / fan_in) / config.omega0
            with torch.no_grad():
                lin.weight.uniform_(-bound, bound, generator=g)
                lin.bias.uniform_(-1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in), generator=g)
            layers += [lin, Sine(config.omega0)]
            fan_in = config.width
        out = nn.Linear(fan_in, c)
        bound = math.sqrt(6 / fan_in) / config.omega0
        with torch.no_grad():
            out.weight.uniform_(-bound, bound, generator=g)
            out.bias.zero_()
        self.mlp = nn.Sequential(*layers, out)

    def forward(self, jitter: Tensor | None = None) -> Tensor:
        """``jitter`` is accepted for a common prior interface and ignored (SIREN has no latent)."""
        c, h, w = self.config.image_shape
        return (self.mlp(self.coords) + 0.5).T.reshape(1, c, h, w)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
