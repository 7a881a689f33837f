"""Solver steps captured in CUDA graphs against the library's eager ones, side by side in one process.

Groups (``--group``; bench/gpu_check.sh runs each in a process of its own):

- ``dip``: one DIP Adam step as in ``fit_dip`` (latent jitter, forward, loss, backward, Adam, EMA),
  eager against the whole step captured in one CUDA graph (``Adam(capturable=True)``, a static
  jitter buffer refilled before each replay); then the PSNR of N steps of ``fit_dip`` against N
  replays fed fit_dip's own jitter draws.
- ``metadip``: MetaDIP(N) on one image, ``solve`` against its inner step captured once and
  replayed N times (the step sizes α_k in a device buffer refilled between replays).
- ``metadip_batch``: the same for a vmapped batch of B images (``solve_batch(vectorise=True)``).
- ``maml1`` / ``maml2``: one MAML outer step (meta-batch 4, ``task_loss`` as in
  bench/paper_scale.py), first / second order: eager against the whole outer step captured (the K
  inner steps of every task, the outer backward and a capturable Adam step).

Every row is "| measurement | eager | captured | ratio | peak GiB (eager / captured) |"; ratio is
eager seconds over captured seconds. Warm-up is not timed; warm-up plus capture is a row of its own.
A row that fails prints "failed: <reason>" (tracebacks follow the group's table) and the others
still run. On a CPU nothing is captured ("n/a (CPU)"): the code a graph would hold runs eagerly and
its results are checked against the library's.

Run:  PYTHONPATH=src python3 bench/captured_steps.py --device cuda [--group dip] [--budget 380]
      PYTHONPATH=src .venv/bin/python bench/captured_steps.py --device cpu --quick   # CI, < 1 min
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import optional_stubs  # noqa: F401  (before the library: stand-ins for what a bare GPU image lacks)
import torch
from torch import Tensor
from torch.func import vmap

from metadip.core.metrics import psnr
from metadip.meta.inner_loop import (
    InnerSettings,
    MetaModel,
    _inner_loss,
    _update_in_place,
    solve_batch,
    task_loss,
)
from metadip.models.networks import DIPConfig, DIPPrior
from metadip.physics.operators import Denoising
from metadip.solvers.dip import DIPSettings, fit_dip

GROUPS = ("dip", "metadip", "metadip_batch", "maml1", "maml2")


@dataclass(frozen=True)
class Scale:
    """Problem size and repeat counts of one run."""

    size: int  # image side (px), RGB
    width: int  # skip-net channels at each of its 5 levels
    fourier: int  # Fourier-feature channels of the latent
    k: int  # K, MAML inner steps
    steps: int  # DIP steps of the PSNR check; MetaDIP steps
    timed: int  # timed DIP steps
    batch: int  # images of the vmapped MetaDIP batch
    meta_batch: int  # MAML tasks per outer step
    reps: int  # timed MetaDIP solves and MAML outer steps (median)
    warmup: int  # eager calls before a capture or a timing
    cost: float  # multiplies the paper-scale seconds a measurement needs (time budget)


PAPER = Scale(128, 128, 256, 20, 50, 20, 32, 4, 3, 3, 1.0)
QUICK = Scale(64, 16, 16, 2, 10, 5, 4, 4, 3, 1, 0.05)


@dataclass
class Measured:
    """One measurement: its value, or a note in its place (failure, skip, n/a); peak GPU GiB."""

    value: Any = None
    note: str | None = None
    peak: float | None = None


@dataclass
class Bench:
    """Device, scale and deadline of one group, and the tracebacks of its failed measurements."""

    dev: torch.device
    scale: Scale
    deadline: float
    errors: list[str] = field(default_factory=list)

    @property
    def cuda(self) -> bool:
        return self.dev.type == "cuda"

    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize(self.dev)

    def measure(self, what: str, need_s: float, fn: Callable[[], Any]) -> Measured:
        """``fn()`` with its peak GPU memory; a note instead when it fails or ``need_s`` paper-scale
        seconds are not left before the deadline."""
        if time.time() + need_s * self.scale.cost > self.deadline:
            return Measured(note="skipped: time budget")
        try:
            if self.cuda:
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats(self.dev)
            value = fn()
        except Exception as exc:  # noqa: BLE001 - one failed measurement must not lose the other rows
            self.errors.append(f"{what}:\n{traceback.format_exc()}")
            reason = " ".join(f"{type(exc).__name__}: {exc}".replace("|", "/").split())
            return Measured(note=f"failed: {reason[:200]}")
        peak = torch.cuda.max_memory_allocated(self.dev) / 2**30 if self.cuda else None
        return Measured(value, peak=peak)

    def not_captured(self) -> Measured:
        return Measured(note="n/a (CPU)")

    def timed(self, fn: Callable[[], object], n: int) -> float:
        """Mean wall seconds of ``fn()`` over ``n`` calls (the device synchronised around them)."""
        self.sync()
        t = time.perf_counter()
        for _ in range(n):
            fn()
        self.sync()
        return (time.perf_counter() - t) / n


# -- problem ---------------------------------------------------------------------------------------


def synthetic_image(shape: tuple[int, int, int], index: int) -> Tensor:
    """A smooth synthetic stand-in for a photograph in [0, 1]: gradients, a sinusoid and a disc, (C, H, W)."""
    c, h, w = shape
    r = torch.linspace(0, 1, h).view(h, 1)
    q = torch.linspace(0, 1, w).view(1, w)
    channels = []
    for ch in range(c):
        wave = 0.2 * torch.sin(2 * math.pi * (1.5 * r + q) + 0.7 * ch + 1.3 * index)
        disc = 0.25 * (((r - 0.4 - 0.1 * ch) ** 2 + (q - 0.6) ** 2) < 0.04).float()
        channels.append(0.5 + wave + 0.15 * (r - q) + disc)
    return torch.stack(channels).clamp(0, 1)


def problem(b: Bench, n: int) -> tuple[Denoising, Tensor, Tensor]:
    """Denoising at σ = 25 of ``n`` test images: (operator, clean ``(n, C, H, W)``, noisy), on the CPU."""
    shape = (3, b.scale.size, b.scale.size)
    op = Denoising(shape, 25, 0)
    xs = torch.stack([synthetic_image(shape, i) for i in range(n)])
    return op, xs, op.measure(xs, torch.Generator().manual_seed(1))


def prior(b: Bench) -> DIPPrior:
    """bench/paper_scale.py's network at this scale (seed 0: every call returns the same weights)."""
    w, s = b.scale.width, b.scale.size
    cfg = DIPConfig(
        image_shape=(3, s, s), channels_down=(w,) * 5, channels_up=(w,) * 5, fourier_features=b.scale.fourier
    )
    return DIPPrior(cfg, 0).to(b.dev)


def meta_model(b: Bench) -> MetaModel:
    return MetaModel(prior(b), InnerSettings(steps=b.scale.k, lr_init=1.0, momentum=0.5)).to(b.dev)


# -- capture ---------------------------------------------------------------------------------------


def graphed(step: Callable[[], Tensor], warmup: int) -> tuple[Callable[[], None], Tensor]:
    """``step`` captured in one CUDA graph after ``warmup`` (≥ 1) eager calls on the capture stream
    (lazy library handles and optimiser state exist before capture): (replay, static output)."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(warmup):
            step()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, stream=stream):
        out = step()
    torch.cuda.synchronize()
    return graph.replay, out


def restore(params: list[Tensor], initial: list[Tensor], opt: torch.optim.Optimizer | None = None) -> None:
    """Parameters back to ``initial`` (broadcast over a leading batch dimension) and the optimiser's
    state to zeros (a fresh start), in place: a captured graph keeps using the same tensors."""
    with torch.no_grad():
        for p, p0 in zip(params, initial, strict=True):
            p.copy_(p0)
        for state in opt.state.values() if opt is not None else ():
            for t in state.values():
                if torch.is_tensor(t):
                    t.zero_()


class DIPStep:
    """``fit_dip``'s step on static buffers: jitter (a buffer refilled before each call), forward,
    loss, backward, Adam, EMA ``ema`` ``(C, H, W)`` (weight 1 on the first step, 1 − decay after)."""

    def __init__(self, net: DIPPrior, op: Denoising, y: Tensor, settings: DIPSettings, capturable: bool) -> None:
        if settings.ema is None or settings.tv_weight:
            raise ValueError("DIPStep reproduces fit_dip with an EMA and without TV")
        self.net, self.op, self.y, self.decay = net, op, y, settings.ema
        self.params = list(net.parameters())
        self.initial = [p.detach().clone() for p in self.params]
        self.opt = torch.optim.Adam(self.params, lr=settings.lr, capturable=capturable)
        self.std = settings.jitter_std
        self.jitter = torch.zeros(net.latent_shape, device=y.device)
        self.noise = torch.Generator(device=y.device).manual_seed(3)
        self.ema = torch.zeros(op.image_shape, device=y.device)
        self.ema_weight = torch.ones((), device=y.device)

    def __call__(self) -> Tensor:
        self.opt.zero_grad(set_to_none=True)
        out = self.net(self.jitter)[0]
        loss = self.op.data_loss(out, self.y)
        loss.backward()
        self.opt.step()
        with torch.no_grad():
            self.ema.lerp_(out, self.ema_weight)
        return loss.detach()

    def refill(self) -> None:
        """Fresh jitter, drawn on the device."""
        self.jitter.normal_(0.0, self.std, generator=self.noise)

    def reset(self) -> None:
        restore(self.params, self.initial, self.opt)
        self.ema.zero_()
        self.ema_weight.fill_(1.0)

    def run(self, call: Callable[[], object], draws: list[Tensor]) -> Tensor:
        """``len(draws)`` steps from the start on the given jitter draws; the EMA on the CPU."""
        self.reset()
        for k, draw in enumerate(draws):
            self.jitter.copy_(draw)
            call()
            if k == 0:
                self.ema_weight.fill_(1 - self.decay)
        return self.ema.cpu()


class InnerStep:
    """``solve_batch``'s inner step on static buffers for the B measurements ``ys`` (B > 1: vmapped):
    forward, gradient, in-place heavy-ball update with the step sizes α_k read from a device buffer
    that :meth:`solve` refills before each call."""

    def __init__(self, model: MetaModel, op: Denoising, ys: Tensor, steps: int) -> None:
        if model.inner.update != "sgd" or model.inner.lr_per_element:
            raise ValueError("InnerStep reproduces the heavy-ball update without per-element step sizes")
        theta0, self.buffers = model.prior_state()
        self.model, self.op, self.ys, self.names = model, op, ys, model.param_names
        self.initial = [theta0[n].detach().clone() for n in self.names]
        lead = (ys.shape[0],) if ys.shape[0] > 1 else ()
        self.params = [t.expand(*lead, *t.shape).clone().requires_grad_(True) for t in self.initial]
        self.state = [[torch.zeros_like(p) for p in self.params]]
        alphas = model.step_sizes(op=op).detach()
        self.rows = torch.stack([model.step_size_at(alphas, k) for k in range(steps)])  # (steps, P)
        self.alpha = torch.zeros(len(self.names), device=ys.device)
        self.alpha_views = list(self.alpha.unbind(0))  # α_k per tensor, read by the graph at replay

    def _per_image(self, params: list[Tensor], y: Tensor) -> tuple[Tensor, Tensor]:
        return _inner_loss(self.model, self.op, dict(zip(self.names, params, strict=True)), self.buffers, y)

    def forward(self) -> tuple[Tensor, Tensor]:
        """(loss ``(B,)``, output ``(B, C, H, W)``) at the current parameters."""
        if self.ys.shape[0] > 1:
            return vmap(self._per_image)(self.params, self.ys)
        loss, out = self._per_image(self.params, self.ys[0])
        return loss.unsqueeze(0), out.unsqueeze(0)

    def __call__(self) -> Tensor:
        loss, _ = self.forward()
        grads = torch.autograd.grad(loss.sum(), self.params)
        with torch.no_grad():
            _update_in_place(self.model.inner, self.params, grads, self.state, self.alpha_views, 0)
        return loss.detach()

    def reset(self) -> None:
        restore(self.params, self.initial)
        for v in self.state[0]:
            v.zero_()

    def solve(self, call: Callable[[], object]) -> Tensor:
        """All steps (after :meth:`reset`) through ``call``, then the output ``(B, C, H, W)``."""
        for k in range(self.rows.shape[0]):
            self.alpha.copy_(self.rows[k])
            call()
        with torch.no_grad():
            return self.forward()[1]


def captured_call(b: Bench, step: Callable[[], Tensor], warmup: int) -> tuple[Callable[[], Tensor], float | None]:
    """On a GPU, ``step`` captured (its replay returns the static output) and the seconds of warm-up
    plus capture; on a CPU, ``step`` itself and None."""
    if not b.cuda:
        return step, None
    t = time.perf_counter()
    replay, out = graphed(step, warmup)
    seconds = time.perf_counter() - t

    def call() -> Tensor:
        replay()
        return out

    return call, seconds


# -- rows ------------------------------------------------------------------------------------------


def pick(m: Measured, key: str) -> Measured:
    """The entry ``key`` of a measured dict (the note as it is; None: not applicable on a CPU)."""
    if m.note:
        return m
    if m.value[key] is None:
        return Measured(note="n/a (CPU)")
    return Measured(m.value[key], peak=m.peak)


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.2f} ms"


def sec(seconds: float) -> str:
    return f"{seconds:.3f} s"


def per_solve(seconds: float) -> str:
    return f"{seconds:.4f} s ({1 / seconds:.1f} solves/s)"


def print_header() -> None:
    print("| measurement | eager | captured | ratio | peak GiB (eager / captured) |\n|---|---|---|---|---|", flush=True)


def print_row(name: str, eager: Measured, captured: Measured, fmt: Callable[[float], str]) -> None:
    """A row of two timings in seconds; ratio eager / captured."""
    cells = [m.note or fmt(m.value) for m in (eager, captured)]
    ratio = "—" if eager.note or captured.note else f"{eager.value / captured.value:.2f}×"
    peaks = " / ".join("—" if m.peak is None else f"{m.peak:.2f}" for m in (eager, captured))
    print(f"| {name} | {cells[0]} | {cells[1]} | {ratio} | {peaks} |", flush=True)


def print_capture(name: str, captured: Measured) -> None:
    cell = captured.note or sec(captured.value)
    print(f"| {name} | — | {cell} | — | — |", flush=True)


def print_quality(name: str, eager: Measured, captured: Measured, xs: Tensor, cuda: bool) -> None:
    """Mean PSNR (dB) of two estimates ``(B, C, H, W)`` of ``xs``; the ratio cell: their largest
    differences in PSNR and in any pixel."""
    cells = [m.note or f"{float(psnr(m.value, xs).mean()):.3f}" for m in (eager, captured)]
    ratio = "—"
    if not (eager.note or captured.note):
        cells[1] += "" if cuda else " (the graph's step code run eagerly)"
        dp = float((psnr(eager.value, xs) - psnr(captured.value, xs)).abs().max())
        dx = float((eager.value - captured.value).abs().max())
        ratio = f"Δ {dp:.4f} dB, max pixel Δ {dx:.1e}"
    print(f"| {name} | {cells[0]} | {cells[1]} | {ratio} | — |", flush=True)


# -- groups ----------------------------------------------------------------------------------------


def dip_group(b: Bench) -> None:
    """fit_dip against the captured DIP step: time per step, capture time, PSNR after N steps."""
    s, dev = b.scale, b.dev
    op, xs, ys = problem(b, 1)
    settings = DIPSettings(steps=s.steps)
    y = ys[0].to(dev)

    def library() -> dict[str, Any]:
        warm = replace(settings, steps=2)
        fit_dip(prior(b), op, ys[0], warm, torch.Generator().manual_seed(2), device=dev, show_progress=False)
        r = fit_dip(prior(b), op, ys[0], settings, torch.Generator().manual_seed(2), device=dev, show_progress=False)
        return {"step": r.seconds / s.steps, "estimate": r.estimate.unsqueeze(0)}

    def eager() -> float:
        step = DIPStep(prior(b), op, y, settings, capturable=False)

        def once() -> None:
            step.refill()
            step()

        for _ in range(s.warmup):
            once()
        return b.timed(once, s.timed)

    def captured() -> dict[str, Any]:
        step = DIPStep(prior(b), op, y, settings, capturable=b.cuda)
        gen = torch.Generator().manual_seed(2)  # fit_dip's draws, in its order
        shape = step.net.latent_shape
        draws = [(torch.randn(shape, generator=gen) * settings.jitter_std).to(dev) for _ in range(s.steps)]
        call, capture_s = captured_call(b, step, s.warmup)
        estimate = step.run(call, draws).unsqueeze(0)

        def once() -> None:
            step.refill()
            call()

        return {"capture": capture_s, "estimate": estimate, "step": b.timed(once, s.timed) if b.cuda else None}

    lib = b.measure("DIP: fit_dip", 5, library)
    same = b.measure("DIP: the step code, eager", 3, eager)
    cap = b.measure("DIP: the step captured", 10, captured)
    print_row("DIP Adam step: fit_dip vs the captured step", pick(lib, "step"), pick(cap, "step"), ms)
    print_row("DIP Adam step: the same step code, eager vs captured", same, pick(cap, "step"), ms)
    print_capture("DIP step: warm-up + capture", pick(cap, "capture"))
    name = f"DIP({s.steps}) PSNR (dB): fit_dip vs the captured step on fit_dip's jitter draws"
    print_quality(name, pick(lib, "estimate"), pick(cap, "estimate"), xs, b.cuda)


def metadip_group(b: Bench, batch: int) -> None:
    """solve_batch against the captured inner step replayed N times, for ``batch`` images."""
    s, dev = b.scale, b.dev
    op, xs, ys = problem(b, batch)
    model = meta_model(b)
    reps = s.reps if batch == 1 else 1
    label = f"MetaDIP({s.steps}), " + ("one image" if batch == 1 else f"vmapped batch of {batch}")

    def library() -> dict[str, Any]:
        solve_batch(model, op, ys, 2, device=dev, show_progress=False)  # warm-up
        runs = [solve_batch(model, op, ys, s.steps, device=dev, show_progress=False) for _ in range(reps)]
        return {"solve": min(r[0].seconds for r in runs), "estimate": torch.stack([r.last for r in runs[-1]])}

    def captured() -> dict[str, Any]:
        step = InnerStep(model, op, ys.to(dev), s.steps)
        call, capture_s = captured_call(b, step, s.warmup)
        times = []
        for _ in range(reps if b.cuda else 1):
            step.reset()
            b.sync()
            t = time.perf_counter()
            out = step.solve(call)
            b.sync()
            times.append(time.perf_counter() - t)
        solve_s = min(times) / batch if b.cuda else None
        return {"capture": capture_s, "solve": solve_s, "estimate": out.cpu()}

    need = 5 if batch == 1 else 20
    lib = b.measure(f"{label}: solve_batch", need, library)
    cap = b.measure(f"{label}: the inner step captured", need + 5, captured)
    print_row(f"{label}: seconds per solve (best of {reps})", pick(lib, "solve"), pick(cap, "solve"), per_solve)
    print_capture(f"{label}: warm-up + capture of the inner step", pick(cap, "capture"))
    print_quality(
        f"{label}: PSNR (dB), solve_batch vs captured", pick(lib, "estimate"), pick(cap, "estimate"), xs, b.cuda
    )


def outer_steps(b: Bench, op: Denoising, xs: Tensor, ys: Tensor, first_order: bool, capture: bool) -> dict[str, Any]:
    """``reps`` MAML outer steps from a fresh model (eager, or the whole step captured): median
    seconds, warm-up + capture seconds, the outer loss of each step."""
    model = meta_model(b)
    params = list(model.parameters())
    opt = torch.optim.Adam(params, lr=1e-3, capturable=capture)
    xs, ys = xs.to(b.dev), ys.to(b.dev)

    def step() -> Tensor:
        opt.zero_grad(set_to_none=True)
        loss = sum(task_loss(model, op, ys[i], xs[i], b.scale.k, first_order) for i in range(len(ys))) / len(ys)
        loss.backward()
        opt.step()
        return loss.detach()

    call, capture_s = step, None
    if capture:
        initial = [p.detach().clone() for p in params]
        call, capture_s = captured_call(b, step, 1)
        restore(params, initial, opt)
    times, losses = [], []
    for _ in range(b.scale.reps):
        b.sync()
        t = time.perf_counter()
        loss = call()
        b.sync()
        times.append(time.perf_counter() - t)
        losses.append(float(loss))
    return {"step": statistics.median(times), "capture": capture_s, "losses": losses}


def maml_group(b: Bench, first_order: bool) -> None:
    """One MAML outer step, eager against captured, with peak memory and the outer losses."""
    s = b.scale
    op, xs, ys = problem(b, s.meta_batch)
    op.to(b.dev)
    order = "first" if first_order else "second"
    label = f"MAML outer step, {order} order, meta-batch {s.meta_batch}, K {s.k}"
    need = 15 if first_order else 30
    eager = b.measure(f"{label}, eager", need, lambda: outer_steps(b, op, xs, ys, first_order, False))
    if b.cuda:
        cap = b.measure(f"{label}, captured", 1.5 * need, lambda: outer_steps(b, op, xs, ys, first_order, True))
    else:
        cap = b.not_captured()
    print_row(f"{label} (median of {s.reps})", pick(eager, "step"), pick(cap, "step"), sec)
    print_capture(f"{label}: warm-up + capture", pick(cap, "capture"))
    cells = [m.note or ", ".join(f"{v:.6f}" for v in m.value["losses"]) for m in (eager, cap)]
    ratio = "—"
    if not (eager.note or cap.note):
        rel = max(abs(e - c) / abs(e) for e, c in zip(eager.value["losses"], cap.value["losses"], strict=True))
        ratio = f"max relative Δ {rel:.1e}"
    print(f"| {label}: outer loss of steps 1–{s.reps} | {cells[0]} | {cells[1]} | {ratio} | — |", flush=True)


RUNNERS: dict[str, Callable[[Bench], None]] = {
    "dip": dip_group,
    "metadip": lambda b: metadip_group(b, 1),
    "metadip_batch": lambda b: metadip_group(b, b.scale.batch),
    "maml1": lambda b: maml_group(b, True),
    "maml2": lambda b: maml_group(b, False),
}


def describe(b: Bench) -> str:
    name = torch.cuda.get_device_name(b.dev) if b.cuda else "CPU"
    s = b.scale
    n = sum(p.numel() for p in prior(b).parameters())
    return (
        f"{name}, torch {torch.__version__} (CUDA {torch.version.cuda}), image (3, {s.size}, {s.size}), "
        f"width {s.width}, Fourier features {s.fourier}, {n:,} parameters, K {s.k}, {s.steps} steps"
    )


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=("cuda", "cpu"))
    p.add_argument("--quick", action="store_true", help="width 16, 64 px, few steps (a CPU runs it in about a minute)")
    p.add_argument("--group", default="all", choices=("all", *GROUPS))
    p.add_argument("--budget", type=float, default=380.0, help="seconds; a measurement that would not fit is skipped")
    for name in ("size", "width", "fourier", "k", "steps", "batch"):
        p.add_argument(f"--{name}", type=int, help=f"override the scale's {name}")
    return p.parse_args()


def main() -> int:
    a = parse()
    deadline = time.time() + a.budget
    dev = torch.device(a.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        print("captured_steps.py: --device cuda, but torch sees no GPU; run with --device cpu", file=sys.stderr)
        return 1
    overrides = {k: getattr(a, k) for k in ("size", "width", "fourier", "k", "steps", "batch") if getattr(a, k)}
    scale = replace(QUICK if a.quick else PAPER, **overrides)
    if dev.type == "cpu" and a.quick:
        torch.set_num_threads(1)  # small tensors: one thread is faster and steady on shared cores
    failed = False
    for group in GROUPS if a.group == "all" else (a.group,):
        b = Bench(dev, scale, deadline)
        print(f"\n## {group}: {describe(b)}\n", flush=True)
        print_header()
        RUNNERS[group](b)
        for error in b.errors:
            print(f"\n{error}", file=sys.stderr, flush=True)
        failed = failed or bool(b.errors)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
