"""Plug-and-play ADMM (PnP-ADMM) for compressive sensing and phase retrieval.

min_x f(x) + prior(x), split as x (data) / z (prior) with scaled dual u::

    x ← argmin_x f(x) + ρ/2 ‖x − (z − u)‖²          (data-fidelity prox)
    z ← D(x + u, σ_d)                                  (denoiser as the prior's prox)
    u ← u + x − z

f(x) = ½‖Ax − y‖² for CS — the prox solves (AᵀA + ρI) x = Aᵀy + ρv exactly: dense A through the
Woodbury identity with a cached Cholesky factor of the m × m matrix ρI + AAᵀ, the structured
operator in closed form (AAᵀ = (n/m) I).  For PR, f(x) = ½‖|Ax| − y‖² and the prox is approximated
by ``pr_steps`` (paper: 10) gradient steps (a subgradient where Ax = 0) of step 1/(‖A‖² + ρ).
The estimate is z (a denoiser output); x₀ = z₀ = the operator's non-learned initial estimate.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

from metadip.core.metrics import nmse, psnr
from metadip.physics.operators import CompressiveSensing, Operator, PhaseRetrievalOperator, StructuredCompressiveSensing
from metadip.solvers.result import Reconstruction

Denoiser = Callable[[Tensor, float], Tensor]


@dataclass(frozen=True)
class PnPSettings:
    """σ_d on the 0–255 scale, penalty ρ, ADMM iterations, PR prox gradient steps."""

    sigma_d: float
    rho: float
    iterations: int
    pr_steps: int = 10

    def __post_init__(self) -> None:
        if not self.rho > 0 or self.iterations < 1 or self.pr_steps < 1 or not 0 <= self.sigma_d <= 255:
            raise ValueError(f"invalid PnP-ADMM settings: {self}")


class DataProx:
    """x-update of PnP-ADMM for one operator and measurement (the factorisations of AAᵀ + ρI and
    ‖A‖² are cached on the operator, so every image and grid point of one operator shares them)."""

    def __init__(self, op: Operator, y: Tensor, rho: float, pr_steps: int = 10) -> None:
        op.check_measurement(y)
        self.op, self.y, self.rho, self.pr_steps = op, y, float(rho), pr_steps
        if isinstance(op, CompressiveSensing):
            self.chol = op.gram_cholesky(self.rho)
            self.aty = op.A_adjoint(y)
        elif isinstance(op, StructuredCompressiveSensing):
            self.aty = op.A_adjoint(y)
        elif isinstance(op, PhaseRetrievalOperator):
            self.step = 1.0 / (op.norm_sq() + self.rho)
        else:
            raise TypeError(f"PnP-ADMM supports CS and PR operators, not {op.kind!r}")

    def __call__(self, v: Tensor, x: Tensor) -> Tensor:
        """argmin_x f(x) + ρ/2 ‖x − v‖² (exact for CS; ``pr_steps`` gradient steps from ``x`` for PR)."""
        op, rho = self.op, self.rho
        if isinstance(op, CompressiveSensing):
            b = self.aty + rho * v
            ab = op.A(b)
            w = torch.cholesky_solve(ab.double().unsqueeze(-1), self.chol).squeeze(-1).to(b.dtype)
            return (b - op.A_adjoint(w)) / rho
        if isinstance(op, StructuredCompressiveSensing):
            b = self.aty + rho * v
            return (b - op.A_adjoint(op.A(b)) / (rho + op.n / op.m)) / rho
        for _ in range(self.pr_steps):
            ax = op.linear_A(x)
            mag = ax.abs()
            residual = (mag - self.y) * torch.where(mag > 0, ax / mag.clamp_min(1e-12), torch.zeros_like(ax))
            grad = op.linear_adjoint(residual).real + rho * (x - v)
            x = x - self.step * grad
        return x

    def normal_equation_residual(self, x: Tensor, v: Tensor) -> float:
        """Relative residual ‖(AᵀA + ρI)x − (Aᵀy + ρv)‖ / ‖Aᵀy + ρv‖ (CS only; for tests)."""
        lhs = self.op.A_adjoint(self.op.A(x)) + self.rho * x
        rhs = self.aty + self.rho * v
        return float(torch.linalg.vector_norm(lhs - rhs) / torch.linalg.vector_norm(rhs))


def admm_iterates(
    op: Operator,
    y: Tensor,
    denoiser: Denoiser,
    sigma_d: float,
    rho: float,
    pr_steps: int = 10,
    start: Tensor | None = None,
) -> Iterator[Tensor]:
    """The estimates z₁, z₂, … of PnP-ADMM on one measurement ``y``, one per iteration, without end;
    x₀ = z₀ = ``start`` (default: the operator's initial estimate).

    Iterate k does not depend on how many follow, so a caller may take more later (the grid
    search extends a run instead of restarting it)."""
    prox = DataProx(op, y, rho, pr_steps)
    x = op.initial_estimate(y) if start is None else start
    z = x.clone()
    u = torch.zeros_like(x)
    while True:
        x = prox(z - u, x)
        z = denoiser(x + u, sigma_d)
        u = u + x - z
        yield z


def pnp_admm(
    op: Operator, y: Tensor, denoiser: Denoiser, settings: PnPSettings, x_true: Tensor | None = None
) -> Reconstruction:
    """Reconstruct one measurement ``y`` with PnP-ADMM; the trace has one row per ADMM iteration."""
    start = time.perf_counter()
    iterates = admm_iterates(op, y, denoiser, settings.sigma_d, settings.rho, settings.pr_steps)
    trace: dict[str, list[float]] = {"step": [], "seconds": []} | (
        {"psnr": [], "nmse": []} if x_true is not None else {}
    )
    for k in range(1, settings.iterations + 1):
        z = next(iterates)
        trace["step"].append(k)
        trace["seconds"].append(time.perf_counter() - start)
        if x_true is not None:
            trace["psnr"].append(float(psnr(z, x_true)))
            trace["nmse"].append(float(nmse(z, x_true)))
    estimate = z.clamp(0, 1).cpu()
    return Reconstruction(estimate=estimate, last=estimate, seconds=time.perf_counter() - start, trace=trace)
