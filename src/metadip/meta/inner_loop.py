"""The MetaDIP inner loop: a few gradient steps on the measurement loss from a (meta-)init.

One step from parameters θ_k (all functional, so it works under ``torch.func.vmap`` and can be
differentiated through for MAML), with g_k = ∇_θ [ ‖M(f_θk(z)) − y‖² / n + λ_TV · TV(f_θk(z)) ]
(n = C·H·W, :meth:`Operator.data_loss`)
and one of two update rules (``update``)::

    sgd:  v_{k+1} = μ · v_k + g_k                                    (heavy-ball momentum)
          θ_{k+1} = θ_k − α_k ⊙ v_{k+1}
    adam: m_{k+1} = μ · m_k + (1 − μ) · g_k,   s_{k+1} = β₂ · s_k + (1 − β₂) · g_k²
          θ_{k+1} = θ_k − α_k ⊙ m̂ / (sqrt(ŝ) + ε)   (m̂, ŝ: m, s divided by 1 − μ^{k+1}, 1 − β₂^{k+1})

"adam" normalises every element's step by its own gradient scale, so the step does not shrink with
the residual as a plain gradient step does; the learned α_k then scales Adam's direction per tensor
and step.

α_k holds one learned learning rate per parameter tensor and per step (Meta-SGD, stored as
log α so it stays positive); ``lr_per_element`` multiplies it by a learned per-element factor
e^{s} shared by all steps (one more value per weight), so α_k ⊙ v becomes α_k · e^{s} ⊙ v.
``lr_noise_exponent`` multiplies every α_k by (σ/σ_ref)^γ, σ the operator's noise level (at least
1/255), σ_ref = 25/255 and γ one learned exponent starting at 0: one set of step sizes meta-trained
over a range of noise levels can then step further where there is less noise.
For steps beyond the K it was trained for, the rule ``beyond_k`` applies ("last": α_{K−1},
"mean": the mean over the K steps).  The inner loss never sees the clean image.
``first_order`` detaches g_k (first-order MAML): θ_K still depends on θ₀ and on α through the
updates, so both receive a (first-order) meta-gradient.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal, TypeVar

import torch
from torch import Tensor, nn
from torch.func import functional_call, grad_and_value, vmap

from metadip.core.device import default_device
from metadip.core.errors import InputError
from metadip.core.hashing import without_later_defaults
from metadip.core.metrics import mse, quality_trace
from metadip.core.progress_bars import progress
from metadip.core.step_clock import StepClock
from metadip.models.build import build_prior, describe_prior
from metadip.models.compiled import prepare
from metadip.physics.operators import Operator
from metadip.solvers.dip import total_variation
from metadip.solvers.result import Reconstruction

Params = dict[str, Tensor]
SIGMA_REF = 25 / 255  # the noise level at which lr_noise_exponent leaves α unchanged


@dataclass(frozen=True)
class InnerSettings:
    """Inner-loop settings shared by meta-training and inference."""

    steps: int = 20  # K, inner steps at meta-training (the paper: 20)
    lr_init: float = 1.0  # initial α (plain-gradient steps on the mean loss)
    learn_lr: bool = True  # Meta-SGD per tensor per step (MetaSIREN: False)
    momentum: float = 0.9
    tv_weight: float = 0.0
    beyond_k: Literal["last", "mean"] = "last"
    update: Literal["sgd", "adam"] = "sgd"  # sgd: heavy-ball momentum μ; adam: Adam direction, β₁ = μ
    beta2: float = 0.999  # adam only: decay of the squared-gradient average
    lr_per_element: bool = False  # learned per-element factor on α, shared over the steps (needs learn_lr)
    lr_noise_exponent: bool = False  # α times (σ/σ_ref)^γ with one learned γ (needs learn_lr)

    def __post_init__(self) -> None:
        if (
            self.steps < 1
            or not self.lr_init > 0
            or not 0 <= self.momentum < 1
            or self.tv_weight < 0
            or not 0 <= self.beta2 < 1
        ):
            raise ValueError(f"invalid inner-loop settings: {self}")
        if self.beyond_k not in ("last", "mean"):
            raise ValueError(f"beyond_k must be 'last' or 'mean', got {self.beyond_k!r}")
        if self.update not in ("sgd", "adam"):
            raise ValueError(f"update must be 'sgd' or 'adam', got {self.update!r}")
        if self.lr_per_element and not self.learn_lr:
            raise InputError(
                "inner.lr_per_element needs inner.learn_lr: true (the per-element factors are learned step sizes)"
            )
        if self.lr_noise_exponent and not self.learn_lr:
            raise InputError(
                "inner.lr_noise_exponent needs inner.learn_lr: true (the noise-level exponent is a learned step size)"
            )

    def to_dict(self) -> dict:
        """The settings; ``lr_per_element`` and ``lr_noise_exponent`` only when on, so that records
        and hashes written without them stay valid."""
        return without_later_defaults(asdict(self), {"lr_per_element": False, "lr_noise_exponent": False})


class MetaModel(nn.Module):
    """A prior (DIP or SIREN) plus its inner-loop step sizes: everything meta-training learns.

    ``log_lr`` has shape (K, P) for the P parameter tensors of ``prior`` (in ``named_parameters``
    order); a learned ``nn.Parameter`` when ``inner.learn_lr`` else a fixed buffer.
    ``log_lr_scale`` (``inner.lr_per_element`` only): one tensor of log factors shaped like each
    parameter tensor, zeros at the start (factor 1).
    ``lr_noise_exponent`` (``inner.lr_noise_exponent`` only): the scalar γ, zero at the start.
    """

    def __init__(self, prior: nn.Module, inner: InnerSettings) -> None:
        super().__init__()
        self.prior = prior
        self.inner = inner
        self.param_names = [n for n, _ in prior.named_parameters()]
        log_lr = torch.full((inner.steps, len(self.param_names)), math.log(inner.lr_init))
        if inner.learn_lr:
            self.log_lr = nn.Parameter(log_lr)
        else:
            self.register_buffer("log_lr", log_lr)
        if inner.lr_per_element:
            self.log_lr_scale = nn.ParameterList(
                [nn.Parameter(torch.zeros_like(p, requires_grad=True)) for p in prior.parameters()]
            )
        if inner.lr_noise_exponent:
            self.lr_noise_exponent = nn.Parameter(torch.zeros(()))

    def element_scales(self) -> list[Tensor] | None:
        """The per-element factors e^{s}, one tensor shaped like each parameter (None when off)."""
        if not self.inner.lr_per_element:
            return None
        return [s.exp() for s in self.log_lr_scale]

    def step_sizes(self, log_lr: Tensor | None = None, op: Operator | None = None) -> Tensor:
        """α as a (K, P) tensor; with ``op`` and ``inner.lr_noise_exponent``, times (σ/σ_ref)^γ."""
        alphas = (self.log_lr if log_lr is None else log_lr).exp()
        if op is None or not self.inner.lr_noise_exponent:
            return alphas
        return alphas * (self.lr_noise_exponent * math.log(max(op.sigma, 1 / 255) / SIGMA_REF)).exp()

    def step_size_at(self, alphas: Tensor, step: int) -> Tensor:
        """α for step ``step`` (0-based), applying the beyond-K rule; shape (P,)."""
        if step < alphas.shape[0]:
            return alphas[step]
        return alphas[-1] if self.inner.beyond_k == "last" else alphas.mean(0)

    def prior_state(self) -> tuple[Params, Params]:
        return dict(self.prior.named_parameters()), dict(self.prior.named_buffers())


def _inner_loss(model: MetaModel, op: Operator, params: Params, buffers: Params, y: Tensor) -> tuple[Tensor, Tensor]:
    out = functional_call(model.prior, (params, buffers), ())[0]
    return _output_loss(model, op, out, y), out


def _output_loss(model: MetaModel, op: Operator, out: Tensor, y: Tensor) -> Tensor:
    """The inner loss of one output ``(C, H, W)``: data loss (+ ``tv_weight`` · TV)."""
    loss = op.data_loss(out, y)
    if model.inner.tv_weight:
        loss = loss + model.inner.tv_weight * total_variation(out)
    return loss


ADAM_EPS = 1e-8

OptState = tuple[Params, ...]


def initial_state(model: MetaModel, params: Params) -> OptState:
    """Optimiser state before step 0: (v,) for "sgd", (m, s) for "adam"; zeros shaped like θ."""
    n = 2 if model.inner.update == "adam" else 1
    return tuple({k: torch.zeros_like(v) for k, v in params.items()} for _ in range(n))


class MultiTensor:
    """A list of tensors with elementwise arithmetic as multi-tensor ops (``torch._foreach_*``), so
    that :func:`inner_update`, written for one tensor, updates all of a model's tensors at once with
    the same elementwise operations. An operand is a scalar, one scalar per tensor, or a MultiTensor."""

    def __init__(self, tensors: list[Tensor]) -> None:
        self.tensors = tensors

    @staticmethod
    def _operand(other: Any) -> Any:
        return other.tensors if isinstance(other, MultiTensor) else other

    def __add__(self, other: Any) -> MultiTensor:
        return MultiTensor(torch._foreach_add(self.tensors, self._operand(other)))

    def __mul__(self, other: Any) -> MultiTensor:
        return MultiTensor(torch._foreach_mul(self.tensors, self._operand(other)))

    __rmul__ = __mul__  # a product is the same in either order, bit for bit

    def __truediv__(self, other: Any) -> MultiTensor:
        return MultiTensor(torch._foreach_div(self.tensors, self._operand(other)))

    def sqrt(self) -> MultiTensor:
        return MultiTensor(torch._foreach_sqrt(self.tensors))


T = TypeVar("T", Tensor, MultiTensor)


def inner_update(
    inner: InnerSettings,
    grad: T,
    state: tuple[T, ...],
    alpha: Tensor | list[float] | list[Tensor],
    step: int,
    scale: T | None = None,
) -> tuple[T, tuple[T, ...]]:
    """The update rule (module docstring) of inner step ``step`` (0-based; Adam's bias correction
    needs it): (Δ_k, state_{k+1}) with θ_{k+1} = θ_k − Δ_k, from θ_k's gradient and state_k ((v,) for
    "sgd", (m, s) for "adam"). ``alpha``: the step size; ``scale``: its per-element factor. On
    tensors (differentiable, vmappable) or on :class:`MultiTensor` lists with one ``alpha`` per tensor."""
    mu = inner.momentum
    if inner.update == "sgd":
        v = mu * state[0] + grad
        new_state = (v,)
    else:
        m = mu * state[0] + (1 - mu) * grad
        s = inner.beta2 * state[1] + (1 - inner.beta2) * grad * grad
        new_state = (m, s)
        m_hat, s_hat = m / (1 - mu ** (step + 1)), s / (1 - inner.beta2 ** (step + 1))
        # Adam's ε outside the root; the 1e-30 inside keeps the root differentiable at s = 0
        v = m_hat / ((s_hat + 1e-30).sqrt() + ADAM_EPS)
    if scale is not None:
        v = scale * v
    return alpha * v, new_state


def inner_step(
    model: MetaModel,
    op: Operator,
    params: Params,
    state: OptState,
    buffers: Params,
    y: Tensor,
    alpha: Tensor,
    step: int,
    first_order: bool,
    scales: list[Tensor] | None = None,
) -> tuple[Params, OptState, Tensor, Tensor]:
    """Inner update number ``step`` (0-based) by :func:`inner_update`; returns (θ_{k+1}, state_{k+1},
    loss at θ_k, output f_θk(z) of shape (C, H, W)). ``scales``: the per-element factors on α
    (:meth:`MetaModel.element_scales`)."""
    grads, (loss, out) = grad_and_value(lambda p: _inner_loss(model, op, p, buffers, y), has_aux=True)(params)
    new_params: Params = {}
    new_state: OptState = tuple({} for _ in state)
    for i, name in enumerate(model.param_names):
        g = grads[name].detach() if first_order else grads[name]
        scale = None if scales is None else scales[i]
        delta, tensor_state = inner_update(model.inner, g, tuple(s[name] for s in state), alpha[i], step, scale)
        new_params[name] = params[name] - delta
        for s, t in zip(new_state, tensor_state, strict=True):
            s[name] = t
    return new_params, new_state, loss, out


def adapt(
    model: MetaModel,
    op: Operator,
    y: Tensor,
    steps: int,
    first_order: bool,
    params: Params | None = None,
    log_lr: Tensor | None = None,
) -> Params:
    """θ after ``steps`` inner updates from θ₀ (the model's parameters unless given) on one
    measurement ``y`` (differentiable w.r.t. θ₀ and α unless detached by ``first_order``)."""
    theta, buffers = model.prior_state()
    theta = theta if params is None else params
    alphas = model.step_sizes(log_lr, op)
    scales = model.element_scales()
    state = initial_state(model, theta)
    for k in range(steps):
        theta, state, _, _ = inner_step(
            model, op, theta, state, buffers, y, model.step_size_at(alphas, k), k, first_order, scales
        )
    return theta


def reconstruct(model: MetaModel, params: Params) -> Tensor:
    """f_θ(z) for parameters θ: ``(C, H, W)``."""
    _, buffers = model.prior_state()
    return functional_call(model.prior, (params, buffers), ())[0]


def task_loss(
    model: MetaModel,
    op: Operator,
    y: Tensor,
    x: Tensor,
    steps: int,
    first_order: bool,
    params: Params | None = None,
    log_lr: Tensor | None = None,
) -> Tensor:
    """MAML outer loss of one task: mean squared error of f_{θ_K}(z) to the clean image ``x``."""
    theta = adapt(model, op, y, steps, first_order, params, log_lr)
    return (reconstruct(model, theta) - x).pow(2).mean()


def batched_task_loss(
    model: MetaModel,
    op: Operator,
    ys: Tensor,
    xs: Tensor,
    steps: int,
    first_order: bool,
    params: Params | None = None,
) -> Tensor:
    """Mean outer loss of B tasks sharing one operator, each adapted independently (vmap over
    tasks: every task has its own parameter copy and its own BatchNorm statistics) from θ₀ (the
    model's parameters unless ``params`` is given).

    First order only: with torch 2.13 the second-order meta-gradient of a vmapped inner loop
    deviated from finite differences by ~0.2% (the looped one matches to 1e-7), so second-order
    MAML runs its tasks in a loop (:func:`task_loss`).
    """
    if not first_order:
        raise ValueError("vmapped task batching is first-order only; use task_batching: loop for second-order MAML")
    params = model.prior_state()[0] if params is None else params
    log_lr = model.log_lr

    def one(y: Tensor, x: Tensor) -> Tensor:
        return task_loss(model, op, y, x, steps, first_order, params, log_lr)

    return vmap(one)(ys, xs).mean()


# -- inference ------------------------------------------------------------------------------------


def solve(
    model: MetaModel,
    op: Operator,
    y: Tensor,
    steps: int = 50,
    x_true: Tensor | None = None,
    device: torch.device | str | None = None,
    show_progress: bool = True,
    compiled: bool = False,
) -> Reconstruction:
    """Reconstruct one measurement in ``steps`` inner updates from the meta-init (``compiled``:
    as in :func:`solve_batch`).

    Same trace format as :func:`metadip.solvers.dip.fit_dip`: row k (1..steps) is the reconstruction
    available after k updates, f_{θ_k}(z); ``estimate`` and ``last`` are both f_{θ_steps}(z).
    """
    return solve_batch(
        model,
        op,
        y.unsqueeze(0),
        steps,
        None if x_true is None else x_true.unsqueeze(0),
        device,
        show_progress,
        compiled=compiled,
    )[0]


def solve_batch(
    model: MetaModel,
    op: Operator,
    ys: Tensor,
    steps: int = 50,
    x_true: Tensor | None = None,
    device: torch.device | str | None = None,
    show_progress: bool = True,
    vectorise: bool = True,
    average_last: int = 1,
    compiled: bool = False,
) -> list[Reconstruction]:
    """Reconstruct B independent measurements ``ys`` ``(B, *measurement_shape)`` of one operator.

    ``vectorise=True`` runs all B solves in one vmapped call over per-image parameter copies;
    ``False`` runs them one after another.  Both give the same results (up to float rounding).
    Seconds in the results are the timed steps of the whole batch divided by B.

    ``average_last = N > 1``: the estimate is the mean of the last N outputs f_{θ_k}(z),
    k = steps−N+1..steps (test-time iterate averaging; ``last`` stays f_{θ_steps}(z)); trace row k
    k ≥ steps−N+1 of ``psnr`` / ``nmse`` is then the running mean of the outputs from row steps−N+1
    to k (earlier rows: the iterate's), and ``psnr_last`` / ``nmse_last`` the iterate's throughout.

    Inference takes meta-training's update rule (:func:`inner_update`) with plain autograd and
    multi-tensor updates in place (no functional transform of the gradient, no new parameter
    tensors per step): the same arithmetic, bit for bit on one image, at the cost of less than one
    Adam step of vanilla DIP (bench/solve_speed.py).

    ``compiled``: one image at a time takes its steps with the compiled forward
    (:mod:`metadip.models.compiled`), the same arithmetic up to float rounding; a vmapped batch
    stays eager. ``result.compiled`` says which ran.
    """
    op.check_measurement(ys)
    if ys.dim() != len(op.measurement_shape) + 1:
        raise ValueError(
            f"solve_batch expects measurements of shape (B, {op.measurement_shape}), got {tuple(ys.shape)}"
        )
    if x_true is not None and x_true.shape[1:] != op.image_shape:
        raise ValueError(f"x_true must have shape (B, {op.image_shape}), got {tuple(x_true.shape)}")
    if not 1 <= average_last <= steps:
        raise ValueError(f"average_last must be between 1 and steps = {steps}, got {average_last}")
    device = torch.device(device) if device is not None else default_device()
    model.to(device)
    op.to(device)
    ys = ys.to(device)
    truth = x_true.to(device) if x_true is not None else None
    if vectorise or ys.shape[0] == 1:
        return _solve_together(model, op, ys, steps, truth, device, show_progress, average_last, compiled)
    return [
        _solve_together(
            model,
            op,
            ys[b : b + 1],
            steps,
            None if truth is None else truth[b : b + 1],
            device,
            show_progress,
            average_last,
            compiled,
        )[0]
        for b in range(ys.shape[0])
    ]


class StepSizeSchedule:
    """α for every inference step as Python floats, read from K + 1 distinct rows (the K learned
    steps and the beyond-K row) moved to the host at once: ``schedule[k]`` is step k's list of P
    step sizes (0-based, any k ≥ 0), in constant memory whatever the number of steps."""

    def __init__(self, rows: list[list[float]]) -> None:
        self._rows = rows

    def __getitem__(self, step: int) -> list:
        if step < 0:
            raise IndexError(f"step {step}: steps count from 0")
        return self._rows[min(step, len(self._rows) - 1)]

    def map(self, fn: Callable[[list], list]) -> StepSizeSchedule:
        """The schedule of ``fn(row)`` for each distinct row (computed here, once per row)."""
        return StepSizeSchedule([fn(row) for row in self._rows])


def step_size_schedule(model: MetaModel, op: Operator | None = None) -> StepSizeSchedule:
    """The detached step sizes of inference (:meth:`MetaModel.step_sizes` at ``op``, the beyond-K
    rule past K) as a :class:`StepSizeSchedule`; one host transfer."""
    alphas = model.step_sizes(op=op).detach()
    k = alphas.shape[0]
    return StepSizeSchedule(torch.stack([*alphas, model.step_size_at(alphas, k)]).tolist())


def _update_in_place(
    inner: InnerSettings,
    params: list[Tensor],
    grads: tuple[Tensor, ...],
    state: list[list[Tensor]],
    alpha: list[float] | list[Tensor],
    step: int,
    scales: list[Tensor] | None = None,
) -> None:
    """:func:`inner_update` of all of ``params`` and ``state`` at once (multi-tensor ops), written back
    in place (static buffers, as a captured CUDA graph needs); ``alpha``: one step size per parameter
    tensor (floats or 0-d tensors); ``scales``: its per-element factors (broadcast over a leading batch
    dimension)."""
    delta, new_state = inner_update(
        inner,
        MultiTensor(list(grads)),
        tuple(MultiTensor(s) for s in state),
        alpha,
        step,
        None if scales is None else MultiTensor(scales),
    )
    torch._foreach_sub_(params, delta.tensors)
    for old, new in zip(state, new_state, strict=True):
        torch._foreach_copy_(old, new.tensors)


Leaves = tuple[list[Tensor], Callable[[], tuple[Tensor, Tensor]], bool, Callable[[list], list]]


def _inference_params(model: MetaModel, op: Operator, ys: Tensor, compiled: bool, device: torch.device) -> Leaves:
    """The leaves the inference steps update, copies of θ₀ (for B > 1 measurements ``ys``, each with a
    leading batch dimension); the forward pass at them: () → (losses ``(B,)``, outputs ``(B, C, H, W)``;
    vmapped for B > 1); whether it is compiled (``compiled`` and B = 1: :func:`_compiled_params`); and
    the map from one value per parameter tensor to one per leaf (:meth:`StepForward.per_leaf`)."""
    if compiled and ys.shape[0] == 1:
        return _compiled_params(model, op, ys[0], device)
    theta0, buffers = model.prior_state()
    names = model.param_names

    def per_image(params: list[Tensor], y: Tensor) -> tuple[Tensor, Tensor]:
        return _inner_loss(model, op, dict(zip(names, params, strict=True)), buffers, y)

    B = ys.shape[0]
    if B > 1:
        params = [theta0[n].detach().expand(B, *theta0[n].shape).clone().requires_grad_(True) for n in names]
        batched = vmap(per_image)

        def forward() -> tuple[Tensor, Tensor]:
            return batched(params, ys)
    else:
        params = [theta0[n].detach().clone().requires_grad_(True) for n in names]

        def forward() -> tuple[Tensor, Tensor]:
            loss, out = per_image(params, ys[0])
            return loss.unsqueeze(0), out.unsqueeze(0)

    return params, forward, False, list


def _compiled_params(model: MetaModel, op: Operator, y: Tensor, device: torch.device) -> Leaves:
    """:func:`_inference_params` of one measurement ``y`` through :func:`metadip.models.compiled.prepare`,
    on a copy of the prior (its parameters become views of the steps' flat leaf)."""
    work = copy.deepcopy(model.prior).requires_grad_(True)
    steps = prepare(work, device)

    def forward() -> tuple[Tensor, Tensor]:
        # without gradients (the final output) the eager forward: no second graph to compile
        out = (steps.forward if torch.is_grad_enabled() else work)(None)[0]
        return _output_loss(model, op, out, y).unsqueeze(0), out.unsqueeze(0)

    return steps.params, forward, steps.compiled, steps.per_leaf


class _Trace:
    """The per-step rows of B inference runs (row k: the output after k updates, k = 1..steps) and
    the tail mean of the last ``average_last`` outputs, kept on the device until :meth:`results`."""

    def __init__(self, steps: int, truth: Tensor | None, average_last: int) -> None:
        self.steps, self.truth, self.average_last = steps, truth, average_last
        self.first_averaged = steps - average_last + 1  # the first row in the tail mean
        self.tail: Tensor | None = None  # sum of the outputs since row first_averaged
        self.losses: list[Tensor] = []
        self.errors: list[Tensor] = []
        self.errors_last: list[Tensor] = []

    def accumulate(self, k: int, out: Tensor) -> None:
        """Add row ``k``'s output to the tail mean (timed: part of the method)."""
        if self.average_last > 1 and k >= self.first_averaged:
            self.tail = out.detach().clone() if self.tail is None else self.tail.add_(out.detach())

    def record(self, k: int, loss: Tensor, out: Tensor) -> None:
        """Row ``k``'s loss and errors (untimed, no host sync)."""
        self.losses.append(loss.detach())
        if self.truth is not None:
            self.errors_last.append(mse(out.detach(), self.truth))
            mean = self.tail / (k - self.first_averaged + 1) if self.tail is not None else None
            self.errors.append(self.errors_last[-1] if mean is None else mse(mean, self.truth))

    def results(self, out: Tensor, seconds: list[float]) -> list[Reconstruction]:
        """One :class:`Reconstruction` per run, ``out`` the final outputs, ``seconds`` per row."""
        truth, tail = self.truth, self.tail
        loss_rows = torch.stack(self.losses, dim=1).tolist()  # (B, steps)
        error_rows = torch.stack(self.errors, dim=1) if truth is not None else None
        last_rows = torch.stack(self.errors_last, dim=1) if truth is not None and tail is not None else error_rows
        estimates = out.detach() if tail is None else tail / self.average_last
        results = []
        for b in range(out.shape[0]):
            trace = {"step": list(range(1, self.steps + 1)), "loss": loss_rows[b], "seconds": seconds}
            if error_rows is not None:
                quality = quality_trace(error_rows[b], truth[b])
                iterate = quality if tail is None else quality_trace(last_rows[b], truth[b])
                trace |= quality | {"psnr_last": iterate["psnr"], "nmse_last": iterate["nmse"]}
            est, last = estimates[b].contiguous().cpu(), out[b].detach().contiguous().cpu()
            results.append(Reconstruction(estimate=est, last=last, seconds=seconds[-1], trace=trace))
        return results


def _solve_together(
    model: MetaModel,
    op: Operator,
    ys: Tensor,
    steps: int,
    truth: Tensor | None,
    device: torch.device,
    show_progress: bool,
    average_last: int = 1,
    compiled: bool = False,
) -> list[Reconstruction]:
    """The inference loop on a batch of B ≥ 1 measurements on ``device`` (B > 1: vmapped); the
    estimate is the mean of the last ``average_last`` outputs (:func:`solve_batch`)."""
    params, forward, compiled, per_leaf = _inference_params(model, op, ys, compiled, device)
    state = [[torch.zeros_like(p) for p in params] for _ in range(2 if model.inner.update == "adam" else 1)]
    alpha_rows = step_size_schedule(model, op).map(per_leaf)
    scales = model.element_scales()
    if scales is not None:
        scales = per_leaf([t.detach() for t in scales])
    clock = StepClock(device)
    trace = _Trace(steps, truth, average_last)
    # iteration k evaluates (loss, output) at θ_k, then updates to θ_{k+1}; row k ≥ 1 is θ_k's
    for k in progress(range(steps), desc=f"MetaDIP {op.kind}", enabled=show_progress):
        clock.start()
        loss, out = forward()
        grads = torch.autograd.grad(loss.sum(), params)
        with torch.no_grad():
            _update_in_place(model.inner, params, grads, state, alpha_rows[k], k, scales)
            if k > 0:
                trace.accumulate(k, out)
        clock.stop()
        if k > 0:
            trace.record(k, loss, out)
    clock.start()
    with torch.no_grad():
        loss, out = forward()
        trace.accumulate(steps, out)
    clock.stop()
    trace.record(steps, loss, out)
    results = trace.results(out, [t / ys.shape[0] for t in clock.cumulative()[1:]])
    for r in results:
        r.compiled = compiled
    return results


def architecture(model: MetaModel) -> dict[str, Any]:
    """The description of the model's prior (:func:`metadip.models.build.describe_prior`)."""
    return describe_prior(model.prior)


def build_model(arch: dict[str, Any], inner: dict[str, Any]) -> MetaModel:
    """A freshly initialised :class:`MetaModel` of the described architecture and inner-loop settings."""
    return MetaModel(build_prior(arch), InnerSettings(**inner))
