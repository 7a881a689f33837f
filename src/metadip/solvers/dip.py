"""Vanilla Deep Image Prior: fit a prior network f_θ(z) to measurements y of any operator.

min_θ ‖M(f_θ(z)) − y‖² / numel  (+ tv_weight · TV(f_θ(z))), optimised with Adam; each step the
latent z is jittered with N(0, jitter_std²) (Ulyanov: 1/30); the reconstruction is the
exponential moving average (EMA) of the (jittered) outputs when ``ema`` is set (Ulyanov / the
paper: 0.99, initialised at the first output), otherwise the last iterate.

The last iterate at step k is f_θk(z) *after* the k-th update, without jitter — the definition
MetaDIP's inner loop uses — computed by an extra no-grad forward outside the timer. Seconds count
the optimisation only (forward, backward, Adam, EMA; :class:`StepClock`); the trace's metrics and
that forward run between timed steps, stay on the device and are read once, after the loop.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from metadip.core.device import default_device
from metadip.core.metrics import mse, quality_trace
from metadip.core.progress_bars import progress
from metadip.core.step_clock import StepClock
from metadip.models.compiled import eager, prepare
from metadip.physics.operators import Operator
from metadip.solvers.result import Reconstruction


@dataclass(frozen=True)
class DIPSettings:
    """Optimiser settings of vanilla DIP (defaults: Ulyanov et al. / the paper's baseline)."""

    steps: int = 1000
    lr: float = 0.01
    jitter_std: float = 1 / 30
    ema: float | None = 0.99  # None: the reconstruction is the last iterate
    tv_weight: float = 0.0

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"DIP needs at least one step, got steps={self.steps}")
        if not self.lr > 0:
            raise ValueError(f"DIP learning rate must be > 0, got lr={self.lr}")
        if self.jitter_std < 0 or self.tv_weight < 0:
            raise ValueError("jitter_std and tv_weight must be >= 0")
        if self.ema is not None and not 0 <= self.ema < 1:
            raise ValueError(f"ema weight must lie in [0, 1) or be None, got {self.ema}")


def total_variation(x: Tensor) -> Tensor:
    """Anisotropic TV, mean absolute difference of neighbours over ``(..., C, H, W)``, per image."""
    dh = (x[..., 1:, :] - x[..., :-1, :]).abs().flatten(start_dim=x.dim() - 3).mean(-1)
    dw = (x[..., :, 1:] - x[..., :, :-1]).abs().flatten(start_dim=x.dim() - 3).mean(-1)
    return dh + dw


def fit_dip(
    prior: nn.Module,
    operator: Operator,
    y: Tensor,
    settings: DIPSettings,
    generator: torch.Generator,
    x_true: Tensor | None = None,
    device: torch.device | str | None = None,
    show_progress: bool = True,
    keep_at: tuple[int, ...] = (),
    last_every: int = 1,
    last_dense: int = 0,
    compiled: bool = False,
) -> Reconstruction:
    """Run vanilla DIP from ``prior``'s current weights (they are updated in place).

    ``y``: one measurement of shape ``operator.measurement_shape``; ``x_true`` (optional): the
    ``(C, H, W)`` ground truth for the trace; ``generator``: CPU generator for the jitter draws;
    ``keep_at``: steps whose (estimate, last iterate) are kept in ``result.snapshots``;
    ``last_every`` / ``last_dense``: with ``x_true``, the last iterate's trace is recorded at every
    step up to ``last_dense`` and then at every ``last_every``-th step (NaN in between), since each
    reading costs an extra forward pass.
    """
    _check_inputs(operator, y, x_true)
    device = torch.device(device) if device is not None else default_device()
    prior.to(device)
    operator.to(device)
    y = y.to(device)
    truth = x_true.to(device) if x_true is not None else None
    draw_jitter = _jitter_draws(prior, settings, generator, device)
    steps = prepare(prior, device) if compiled else eager(prior)
    forward, compiled = steps.forward, steps.compiled
    opt = torch.optim.Adam(steps.params, lr=settings.lr, **({"fused": True} if compiled else {}))
    clock = StepClock(device)
    losses: list[Tensor] = []
    errors: dict[str, list[Tensor]] = {"estimate": [], "last": []}  # per-step MSE, kept on the device
    untraced = torch.tensor(math.nan, dtype=torch.float64, device=device)
    snapshots: dict[int, tuple[Tensor, Tensor]] = {}
    ema: Tensor | None = None
    last: Tensor | None = None
    for step in progress(range(1, settings.steps + 1), desc=f"DIP {operator.kind}", enabled=show_progress):
        clock.start()
        out, loss = _update(forward, operator, y, opt, settings.tv_weight, draw_jitter())
        if settings.ema is not None:
            out = out.detach()
            ema = out.clone() if ema is None else ema.mul_(settings.ema).add_(out, alpha=1 - settings.ema)
        clock.stop()
        # untimed from here on, and no host sync: the trace is read once, after the loop
        losses.append(loss.detach())
        traced = truth is not None and (step <= last_dense or step % last_every == 0 or step == settings.steps)
        fresh = traced or step in keep_at or step == settings.steps or (settings.ema is None and truth is not None)
        if fresh:
            with torch.no_grad():  # BatchNorm uses the image's own statistics: no state changes
                last = prior(None)[0]
        estimate = ema if settings.ema is not None else last
        if truth is not None:
            errors["estimate"].append(mse(estimate, truth))
            errors["last"].append(mse(last, truth) if traced else untraced)
        if step in keep_at:
            snapshots[step] = (estimate.clone(), last.clone())
    trace: dict[str, list[float]] = {
        "step": list(range(1, settings.steps + 1)),
        "loss": _finite_losses(losses, settings.lr),
        "seconds": clock.cumulative(),
    }
    if truth is not None:
        trace.update(quality_trace(torch.stack(errors["estimate"]), truth))
        trace.update({f"{k}_last": v for k, v in quality_trace(torch.stack(errors["last"]), truth).items()})
    snapshots = {k: (e.contiguous().cpu(), la.contiguous().cpu()) for k, (e, la) in snapshots.items()}
    return Reconstruction(
        estimate=estimate.contiguous().cpu(),
        last=last.contiguous().cpu(),
        seconds=trace["seconds"][-1],
        trace=trace,
        snapshots=snapshots,
        compiled=compiled,
    )


def _check_inputs(operator: Operator, y: Tensor, x_true: Tensor | None) -> None:
    """Refuse a measurement ``y`` that is not one of ``operator``'s, or a ground truth of the wrong shape."""
    operator.check_measurement(y)
    if y.shape != operator.measurement_shape:
        raise ValueError(
            f"fit_dip reconstructs one measurement of shape {operator.measurement_shape}, got {tuple(y.shape)}"
        )
    if x_true is not None:
        operator.check_image(x_true)


def _jitter_draws(
    prior: nn.Module, settings: DIPSettings, generator: torch.Generator, device: torch.device
) -> Callable[[], Tensor | None]:
    """A function drawing one latent jitter N(0, jitter_std²) from ``generator`` (on the CPU) onto
    ``device``; it returns None for a prior without a latent or without jitter."""
    latent_shape = getattr(prior, "latent_shape", None)
    if latent_shape is None or not settings.jitter_std > 0:
        return lambda: None
    return lambda: (torch.randn(latent_shape, generator=generator) * settings.jitter_std).to(device)


def _update(
    forward: Callable[[Tensor | None], Tensor],
    operator: Operator,
    y: Tensor,
    opt: torch.optim.Optimizer,
    tv_weight: float,
    jitter: Tensor | None,
) -> tuple[Tensor, Tensor]:
    """One Adam step on the data loss (+ ``tv_weight`` · TV) of the output f_θ(z + ``jitter``)
    (``forward``: the prior's forward pass); that output ``(C, H, W)`` (before the step) and its loss."""
    out = forward(jitter)[0]
    loss = operator.data_loss(out, y)
    if tv_weight:
        loss = loss + tv_weight * total_variation(out)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return out, loss


def _finite_losses(losses: list[Tensor], lr: float) -> list[float]:
    """The per-step losses as floats; :class:`FloatingPointError` naming the first step whose loss is
    not finite."""
    values = torch.stack(losses).tolist()
    bad = next((i for i, v in enumerate(values) if not math.isfinite(v)), None)
    if bad is not None:
        raise FloatingPointError(f"DIP loss became {values[bad]} at step {bad + 1}; lower the learning rate (lr={lr})")
    return values
