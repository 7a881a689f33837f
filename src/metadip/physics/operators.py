"""Measurement operators y = M(x) for denoising, compressive sensing and phase retrieval.

Every operator is an :class:`torch.nn.Module` whose random state (matrices, signs, phases,
row subsets) lives in buffers drawn once from an explicit seed, so ``state_dict`` round-trips,
``.to(device)`` moves it, and the same seed always gives the same operator.

Conventions (``docs/method.md``):

* images are float32 in [0, 1] with shape ``(..., C, H, W)``; leading dims are batch dims;
* ``sigma`` is given on the 0–255 scale and divided by 255 here, once;
* the colour convention is explicit: ``colour="joint"`` applies one A to the flattened colour
  image (n = C·H·W, y has shape ``(..., m)``), ``colour="shared"`` applies one A of size
  m × (H·W) to every channel (y has shape ``(..., C, m)``).  m = round(ratio · n).

Compressive sensing: y = A x + e, A iid N(0, 1/m), e ~ N(0, σ²).
Phase retrieval:     y = |A x + e|, A iid CN(0, 1/m), e ~ CN(0, σ²) (σ²/2 per real component).

The structured ("fast") twins replace the dense Gaussian by sqrt(n/m) · S T D — random signs
(CS) or random unit phases (PR) D, an orthonormal transform T of the flattened vector (the
Hartley transform for CS, the unitary DFT for PR; both O(n log n)) and a random subset S of m
rows.  They share the dense operators' first and second moments: E[A] = 0, E[AᴴA] = I, and
E|A_ij|² = 1/m.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any, Literal

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import Tensor, nn

from metadip.core.atomic import atomic_path
from metadip.core.errors import InputError

Colour = Literal["joint", "shared"]


class OperatorInputError(InputError):
    """An image or measurement does not fit an operator (shape, channels, non-finite values)."""


def _check_sigma(sigma: float) -> float:
    sigma = float(sigma)
    if not math.isfinite(sigma) or sigma < 0:
        raise OperatorInputError(f"noise level sigma must be a finite number >= 0 on the 0-255 scale, got {sigma}")
    return sigma


def _check_ratio(ratio: float) -> float:
    ratio = float(ratio)
    if not (0.0 < ratio <= 1.0) or not math.isfinite(ratio):
        raise OperatorInputError(f"sampling ratio m/n must lie in (0, 1], got {ratio}")
    return ratio


def _generator(seed: int) -> torch.Generator:
    return torch.Generator(device="cpu").manual_seed(int(seed))


def additive_noise(clean: Tensor, sigma: float, generator: torch.Generator) -> Tensor:
    """``clean + σ·N(0, 1)``; the noise is drawn on the CPU so results do not depend on the device."""
    e = torch.randn(clean.shape, generator=generator, dtype=clean.dtype)
    return clean + sigma * e.to(clean.device)


def hartley(v: Tensor) -> Tensor:
    """Orthonormal discrete Hartley transform along the last dim; symmetric and its own inverse."""
    f = torch.fft.fft(v, dim=-1, norm="ortho")
    return f.real - f.imag


class Operator(nn.Module):
    """Common interface of a measurement model M with additive noise of level ``sigma``.

    Subclasses implement :meth:`A` (the noiseless model) and :meth:`_noisy`.
    """

    kind: str = "operator"
    linear: bool = False

    def __init__(self, image_shape: tuple[int, int, int], sigma: float, seed: int) -> None:
        super().__init__()
        if len(image_shape) != 3 or min(image_shape) < 1:
            raise ValueError(f"image_shape must be (C, H, W) with positive sizes, got {image_shape}")
        self.image_shape = tuple(int(s) for s in image_shape)
        self.sigma255 = _check_sigma(sigma)
        self.sigma = self.sigma255 / 255.0
        self.seed = int(seed)

    # -- interface --------------------------------------------------------------------------
    @property
    def measurement_shape(self) -> tuple[int, ...]:
        raise NotImplementedError

    def A(self, x: Tensor) -> Tensor:
        """Noiseless measurement M(x): ``(..., C, H, W)`` → ``(..., *measurement_shape)``."""
        raise NotImplementedError

    def _noisy(self, x: Tensor, generator: torch.Generator) -> Tensor:
        raise NotImplementedError

    def measure(self, x: Tensor, generator: torch.Generator) -> Tensor:
        """Noisy measurement y = M(x, e) with noise drawn (on the CPU) from ``generator``."""
        self.check_image(x)
        return self._noisy(x, generator)

    def initial_estimate(self, y: Tensor) -> Tensor:
        """Cheap non-learned estimate of x from y (least squares / spectral), ``(..., C, H, W)``."""
        raise NotImplementedError

    def data_loss(self, x: Tensor, y: Tensor) -> Tensor:
        """Squared measurement residual per image value, ‖M(x) − y‖² / n with n = C·H·W (not the
        number of measurements m), per item of the batch dims.

        The operators are normalised so that E[AᵀA] = I; the loss of an error d is then on average
        ‖d‖²/n, the image MSE — for every operator and ratio, as for denoising (m = n) — so the
        gradient scale and a step size learned on denoising carry over to CS and PR.  Dividing by m
        made the loss n/m times steeper (8x at m/n = 1/8) and MetaDIP's learned steps diverged there.
        """
        r = self.A(x) - y
        return r.pow(2).flatten(start_dim=r.dim() - len(self.measurement_shape)).sum(-1) / math.prod(self.image_shape)

    def config(self) -> dict[str, Any]:
        """JSON-serialisable constructor arguments; ``build_operator(op.config())`` rebuilds it."""
        return {"kind": self.kind, "image_shape": list(self.image_shape), "sigma": self.sigma255, "seed": self.seed}

    # -- validation -------------------------------------------------------------------------
    def check_image(self, x: Tensor) -> None:
        if x.dim() < 3 or tuple(x.shape[-3:]) != self.image_shape:
            raise OperatorInputError(
                f"{self.kind} operator expects images of shape (..., {', '.join(map(str, self.image_shape))}) "
                f"(C, H, W); got {tuple(x.shape)}"
            )

    def check_measurement(self, y: Tensor) -> None:
        k = len(self.measurement_shape)
        if y.dim() < k or tuple(y.shape[y.dim() - k :]) != self.measurement_shape:
            raise OperatorInputError(
                f"{self.kind} operator expects measurements of shape (..., "
                f"{', '.join(map(str, self.measurement_shape))}); "
                f"got {tuple(y.shape)}"
            )
        if not torch.isfinite(y).all():
            raise OperatorInputError(f"{self.kind} measurement contains NaN or inf values; check the measurement file")

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.config().items() if k != "kind")


class Denoising(Operator):
    """AWGN denoising: y = x + e, e ~ N(0, σ²); M is the identity."""

    kind = "denoising"
    linear = True

    @property
    def measurement_shape(self) -> tuple[int, ...]:
        return self.image_shape

    def A(self, x: Tensor) -> Tensor:
        return x

    def A_adjoint(self, y: Tensor) -> Tensor:
        return y

    def A_dagger(self, y: Tensor) -> Tensor:
        return y

    def initial_estimate(self, y: Tensor) -> Tensor:
        self.check_measurement(y)
        return y

    def _noisy(self, x: Tensor, generator: torch.Generator) -> Tensor:
        return additive_noise(x, self.sigma, generator)


class _Compressive(Operator):
    """Shared bookkeeping of CS/PR operators: ratio, colour convention, flattening."""

    def __init__(self, image_shape, ratio: float, sigma: float, seed: int, colour: Colour = "joint") -> None:
        super().__init__(image_shape, sigma, seed)
        if colour not in ("joint", "shared"):
            raise OperatorInputError(
                f"colour must be 'joint' (one A on the flattened colour image) or 'shared', got {colour!r}"
            )
        self.colour = colour
        self.ratio = _check_ratio(ratio)
        c, h, w = self.image_shape
        self.n = c * h * w if colour == "joint" else h * w
        self.m = max(1, round(self.ratio * self.n))

    @property
    def measurement_shape(self) -> tuple[int, ...]:
        return (self.m,) if self.colour == "joint" else (self.image_shape[0], self.m)

    def _flat(self, x: Tensor) -> Tensor:
        """``(..., C, H, W)`` → ``(..., n)`` (joint) or ``(..., C, H·W)`` (shared)."""
        self.check_image(x)
        return x.flatten(start_dim=x.dim() - 3) if self.colour == "joint" else x.flatten(start_dim=x.dim() - 2)

    def _unflat(self, v: Tensor) -> Tensor:
        c, h, w = self.image_shape
        lead = v.shape[: v.dim() - (1 if self.colour == "joint" else 2)]
        return v.reshape(*lead, c, h, w)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "ratio": self.ratio, "colour": self.colour}

    def _constant_plus_minimum_norm(self, y: Tensor) -> Tensor:
        """Linear CS start: the least-squares constant image c·1 (c = ⟨A1, y⟩ / ‖A1‖², one level per
        image, or per channel in ``shared`` mode) plus the minimum-norm correction A†(y − A c1) that
        fits the measurements, ``(..., C, H, W)``.

        A†y alone keeps only the part of x in A's row space, about m/n of the image's mean: on
        validation crops it starts PnP-ADMM at 6–11 dB (this start: 19–20 dB) and leaves the missing
        mean to the denoiser, which restores it over up to a hundred iterations or more
        (bench/pnp_start.py)."""
        self.check_measurement(y)
        one = torch.ones(self.image_shape, dtype=y.dtype, device=y.device)
        a1 = self.A(one)  # (m,) joint, (C, m) shared
        level = (y * a1).sum(-1) / a1.pow(2).sum(-1)
        flat = (level[..., None, None, None] if self.colour == "joint" else level[..., None, None]) * one
        return flat + self.A_dagger(y - self.A(flat))


class CompressiveSensing(_Compressive):
    """Dense Gaussian compressive sensing y = A x + e, A ∈ R^{m×n} iid N(0, 1/m)."""

    kind = "cs"
    linear = True

    def __init__(self, image_shape, ratio: float, sigma: float, seed: int, colour: Colour = "joint") -> None:
        super().__init__(image_shape, ratio, sigma, seed, colour)
        g = _generator(self.seed)
        self.register_buffer("matrix", torch.randn(self.m, self.n, generator=g) / math.sqrt(self.m))
        self._gram: Tensor | None = None  # AAᵀ in float64, computed once (the O(m²n) part)
        self._chol: dict[tuple[float, torch.device], Tensor] = {}

    def gram_cholesky(self, rho: float = 0.0) -> Tensor:
        """float64 Cholesky factor of the m × m matrix AAᵀ + ρI, cached per (ρ, device).

        ρ = 0 serves the pseudo-inverse, ρ > 0 PnP-ADMM's x-update (Woodbury); AAᵀ itself is
        computed once per device and shared by every ρ.
        """
        key = (float(rho), self.matrix.device)
        if key not in self._chol:
            if self._gram is None or self._gram.device != self.matrix.device:
                self._gram = (self.matrix @ self.matrix.mT).double()
            eye = torch.eye(self.m, dtype=torch.float64, device=self.matrix.device)
            self._chol[key] = torch.linalg.cholesky(self._gram + float(rho) * eye)
        return self._chol[key]

    def A(self, x: Tensor) -> Tensor:
        return self._flat(x) @ self.matrix.mT

    def A_adjoint(self, y: Tensor) -> Tensor:
        return self._unflat(y @ self.matrix)

    def A_dagger(self, y: Tensor) -> Tensor:
        """Minimum-norm least-squares solution Aᵀ(AAᵀ)⁻¹y via the cached Cholesky factor."""
        self.check_measurement(y)
        u = torch.cholesky_solve(y.double().unsqueeze(-1), self.gram_cholesky()).squeeze(-1).to(y.dtype)
        return self.A_adjoint(u)

    def initial_estimate(self, y: Tensor) -> Tensor:
        return self._constant_plus_minimum_norm(y)

    def _noisy(self, x: Tensor, generator: torch.Generator) -> Tensor:
        return additive_noise(self.A(x), self.sigma, generator)


class StructuredCompressiveSensing(_Compressive):
    """Structured CS twin: A = sqrt(n/m) · S H D (signs D, Hartley H, row subset S); O(n log n).

    AAᵀ = (n/m) I, so the minimum-norm solution is closed form: A† y = (m/n) Aᵀ y.
    """

    kind = "cs_fast"
    linear = True

    def __init__(self, image_shape, ratio: float, sigma: float, seed: int, colour: Colour = "joint") -> None:
        super().__init__(image_shape, ratio, sigma, seed, colour)
        g = _generator(self.seed)
        signs = torch.randint(0, 2, (self.n,), generator=g).float().mul_(2).sub_(1)
        self.register_buffer("signs", signs)
        self.register_buffer("rows", torch.randperm(self.n, generator=g)[: self.m].sort().values)
        self.scale = math.sqrt(self.n / self.m)

    def A(self, x: Tensor) -> Tensor:
        return self.scale * hartley(self._flat(x) * self.signs)[..., self.rows]

    def A_adjoint(self, y: Tensor) -> Tensor:
        full = y.new_zeros(*y.shape[:-1], self.n).index_copy(-1, self.rows, y)
        return self._unflat(self.scale * hartley(full) * self.signs)

    def A_dagger(self, y: Tensor) -> Tensor:
        self.check_measurement(y)
        return (self.m / self.n) * self.A_adjoint(y)

    def initial_estimate(self, y: Tensor) -> Tensor:
        return self._constant_plus_minimum_norm(y)

    def _noisy(self, x: Tensor, generator: torch.Generator) -> Tensor:
        return additive_noise(self.A(x), self.sigma, generator)


class PhaseRetrievalOperator(_Compressive):
    """y = |A x + e| with complex A; subclasses give the linear part ``linear_A`` and its adjoint."""

    def linear_A(self, x: Tensor) -> Tensor:
        """Complex linear part A x: ``(..., C, H, W)`` (real or complex) → complex measurement."""
        raise NotImplementedError

    def linear_adjoint(self, y: Tensor) -> Tensor:
        """Aᴴ y: complex measurement → complex ``(..., C, H, W)``."""
        raise NotImplementedError

    def __init__(self, image_shape, ratio: float, sigma: float, seed: int, colour: Colour = "joint") -> None:
        super().__init__(image_shape, ratio, sigma, seed, colour)
        self._norm_sq: dict[torch.device, float] = {}

    def A(self, x: Tensor) -> Tensor:
        return self.linear_A(x).abs()

    def norm_sq(self, iters: int = 30) -> float:
        """‖A‖², the largest eigenvalue of AᴴA, by seeded power iteration; cached per device."""
        device = next(self.buffers()).device
        cache = self._norm_sq
        if device not in cache:
            v = torch.randn(self.image_shape, generator=_generator(0)).to(device=device, dtype=torch.complex64)
            lam = 1.0
            for _ in range(iters):
                w = self.linear_adjoint(self.linear_A(v))
                lam = float(torch.linalg.vector_norm(w))
                v = w / lam
            cache[device] = lam
        return cache[device]

    def _noisy(self, x: Tensor, generator: torch.Generator) -> Tensor:
        ax = self.linear_A(x)
        e = torch.randn((*ax.shape, 2), generator=generator, dtype=x.dtype) * (self.sigma / math.sqrt(2))
        return (ax + torch.view_as_complex(e.contiguous()).to(ax.device)).abs()

    def initial_estimate(self, y: Tensor) -> Tensor:
        """Flat image of the energy the measurement implies: E‖y‖² = ‖x‖² + mσ² (E[AᴴA] = I),
        so x₀ = sqrt((‖y‖² − mσ²) / n) · 1, clipped to [0, 1]; per channel in ``shared`` mode.

        Spectral initialisers (leading eigenvector of Aᴴ diag(y²) A) need m ≳ n: measured here at
        m/n ≤ 1 on a 32×32 photograph they correlated with the image no better than 0.05–0.19.
        """
        self.check_measurement(y)
        energy = (y.pow(2).sum(-1) - self.m * self.sigma**2).clamp_min(0)
        level = (energy / self.n).sqrt()
        c, h, w = self.image_shape
        if self.colour == "joint":
            level = level.unsqueeze(-1).expand(*level.shape, c)
        return level[..., None, None].expand(*level.shape, h, w).clamp(0, 1).contiguous()


class PhaseRetrieval(PhaseRetrievalOperator):
    """Dense compressive phase retrieval, A iid CN(0, 1/m) stored as real and imaginary parts.

    Real matmuls only: complex ``A @ x`` and ``A.mT.conj() @ y`` take a slow path in torch.
    """

    kind = "pr"

    def __init__(self, image_shape, ratio: float, sigma: float, seed: int, colour: Colour = "joint") -> None:
        super().__init__(image_shape, ratio, sigma, seed, colour)
        g = _generator(self.seed)
        std = 1.0 / math.sqrt(2 * self.m)
        self.register_buffer("real", torch.randn(self.m, self.n, generator=g) * std)
        self.register_buffer("imag", torch.randn(self.m, self.n, generator=g) * std)

    def A(self, x: Tensor) -> Tensor:
        v = self._flat(x)
        return torch.sqrt((v @ self.real.mT).pow(2) + (v @ self.imag.mT).pow(2))

    def linear_A(self, x: Tensor) -> Tensor:
        v = self._flat(x)
        if v.is_complex():
            vr, vi = v.real, v.imag
            return torch.complex(vr @ self.real.mT - vi @ self.imag.mT, vi @ self.real.mT + vr @ self.imag.mT)
        return torch.complex(v @ self.real.mT, v @ self.imag.mT)

    def linear_adjoint(self, y: Tensor) -> Tensor:
        yr, yi = y.real, y.imag
        return self._unflat(torch.complex(yr @ self.real + yi @ self.imag, yi @ self.real - yr @ self.imag))


class StructuredPhaseRetrieval(PhaseRetrievalOperator):
    """Coded-diffraction twin: A = sqrt(n/m) · S F D with random unit phases D, unitary DFT F and
    a random subset S of m rows.  |A_ij|² = 1/m exactly and E[AᴴA] = I; O(n log n)."""

    kind = "pr_fast"

    def __init__(self, image_shape, ratio: float, sigma: float, seed: int, colour: Colour = "joint") -> None:
        super().__init__(image_shape, ratio, sigma, seed, colour)
        g = _generator(self.seed)
        angle = torch.rand(self.n, generator=g) * (2 * math.pi)
        self.register_buffer("phases", torch.polar(torch.ones(self.n), angle))
        self.register_buffer("rows", torch.randperm(self.n, generator=g)[: self.m].sort().values)
        self.scale = math.sqrt(self.n / self.m)

    def linear_A(self, x: Tensor) -> Tensor:
        return self.scale * torch.fft.fft(self._flat(x) * self.phases, dim=-1, norm="ortho")[..., self.rows]

    def linear_adjoint(self, y: Tensor) -> Tensor:
        full = y.new_zeros(*y.shape[:-1], self.n).index_copy(-1, self.rows, y)
        return self._unflat(self.scale * torch.fft.ifft(full, dim=-1, norm="ortho") * self.phases.conj())


OPERATORS: dict[str, type[Operator]] = {
    cls.kind: cls
    for cls in (Denoising, CompressiveSensing, StructuredCompressiveSensing, PhaseRetrieval, StructuredPhaseRetrieval)
}


def build_operator(config: dict[str, Any]) -> Operator:
    """Build an operator from its :meth:`Operator.config` dict (``kind`` selects the class)."""
    cfg = dict(config)
    kind = cfg.pop("kind", None)
    if kind not in OPERATORS:
        raise OperatorInputError(f"unknown operator kind {kind!r}; choose one of {sorted(OPERATORS)}")
    cfg["image_shape"] = tuple(cfg["image_shape"])
    return OPERATORS[kind](**cfg)


def operator_sha256(operator: Operator) -> str:
    """sha256 (hex) of an operator's content: its config as canonical JSON, then every buffer by name
    (dtype, shape, bytes). Equal for a built operator and the same one saved and loaded again."""
    h = hashlib.sha256(json.dumps(operator.config(), sort_keys=True, separators=(",", ":")).encode())
    for name, buffer in sorted(operator.state_dict().items()):
        value = buffer.detach().cpu().contiguous()
        h.update(f"\n{name} {value.dtype} {tuple(value.shape)}\n".encode())
        h.update(value.numpy().tobytes())
    return h.hexdigest()


def save_operator(operator: Operator, path: str | os.PathLike) -> None:
    """Save an operator's buffers as safetensors, its config as JSON in the file's metadata."""
    state = {k: v.detach().cpu().contiguous() for k, v in operator.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata={"metadip.operator": json.dumps(operator.config())})


def load_operator(path: str | os.PathLike) -> Operator:
    """Rebuild an operator saved by :func:`save_operator`; its buffers must match exactly.

    Raises ``FileNotFoundError`` or :class:`OperatorInputError`, one line naming the file, for a missing,
    truncated or corrupt file, or one that does not hold a metadip operator."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: operator file not found")
    fix = "save the operator again (--save-operator, metadip.physics.operators.save_operator)"
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            if "metadip.operator" not in meta:
                raise OperatorInputError(f"{path}: not a metadip operator file (no 'metadip.operator' metadata)")
            names = f.keys()  # a safe_open handle is not iterable
            state = {k: f.get_tensor(k) for k in names}
    except (SafetensorError, OSError) as err:
        raise OperatorInputError(
            f"{path}: not a readable operator file, truncated or corrupt "
            f"({str(err).splitlines()[0][:120] if str(err) else type(err).__name__}); {fix}"
        ) from None
    try:
        operator = build_operator(json.loads(meta["metadip.operator"]))
        operator.load_state_dict(state, strict=True)
    except (ValueError, TypeError, KeyError, RuntimeError) as err:
        first = str(err).strip().splitlines()[0][:160] if str(err).strip() else type(err).__name__
        raise OperatorInputError(f"{path}: the operator it describes cannot be rebuilt ({first}); {fix}") from None
    return operator
