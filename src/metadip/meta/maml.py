"""MAML meta-training of a DIP (MetaDIP) or SIREN (MetaSIREN) initialisation.

Each outer step samples a meta-batch of B clean training images and one measurement model
(from the configured task mixture: denoising, CS or PR, each with its own σ / ratio), measures
the images, adapts an independent copy of θ₀ to each task with K inner steps
(:mod:`metadip.meta.inner_loop`; the inner loss never sees the clean image), and moves θ₀ and the step
sizes α with Adam along the gradient of the mean outer loss ‖f_{θ_K}(z) − x‖² / numel.
``freeze_init`` keeps θ₀ at the network's seeded init and trains the step sizes alone (the control
with its own learned inner loop); θ₀'s meta-gradient is then never computed.

Everything random in outer step t is drawn from generators seeded by (seed, t), so a run that
is killed and resumed from its last checkpoint retraces the uninterrupted run exactly.
Checkpoints (safetensors: model, Adam state, step) are written atomically every
``checkpoint_every`` steps and resumed only by a run of the same configuration, data and code
(:mod:`metadip.core.checkpoints`); validation (mean PSNR after the test-time number of steps on held-out
images) is logged to a CSV metrics file and the progress bar.
"""

from __future__ import annotations

import logging
import math
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from time import monotonic
from typing import Any

import numpy as np
import torch
from torch import Tensor

from metadip.core.checkpoints import (
    code_sha256,
    resume_step,
    save_checkpoint,
    tensors_sha256,
)
from metadip.core.device import default_device
from metadip.core.errors import InputError
from metadip.core.hashing import config_hash, without_later_defaults
from metadip.core.metrics import psnr
from metadip.core.progress_bars import progress
from metadip.core.seeding import name_key, seeded_generator
from metadip.core.training_log import TrainingLog
from metadip.datasets.sampling import EvaluationSet, load_evaluation_set
from metadip.meta.ablation import VALIDATION_PURPOSE
from metadip.meta.data_parallel import Ranks, current_ranks
from metadip.meta.inner_loop import (
    InnerSettings,
    MetaModel,
    architecture,
    batched_task_loss,
    build_model,
    solve_batch,
    task_loss,
)
from metadip.models.build import architecture_from_config
from metadip.physics.operators import Operator
from metadip.physics.tasks import TaskSpec

log = logging.getLogger(__name__)

LOG_EVERY_S = 20.0  # the most seconds between two progress lines of meta-training in a log

LR_SCHEDULES = ("constant", "cosine")


@dataclass(frozen=True)
class OuterSettings:
    """Outer-loop settings of meta-training."""

    steps: int = 1000
    meta_batch: int = 4
    lr: float = 1e-3  # Adam on θ₀ (and on log α unless lr_step_sizes is set)
    lr_step_sizes: float | None = None  # Adam on the learned log α (None: lr)
    first_order: bool = False
    task_batching: str = "loop"  # "loop": one task after another; "vmap": all tasks of a batch in one vmapped call
    grad_clip: float | None = None  # max global gradient norm (None: no clipping)
    lr_schedule: str = "constant"  # both outer rates over the steps: constant, or cosine (half cosine to 1/100)
    freeze_init: bool = False  # θ₀ stays at its seeded init; only the learned step sizes train
    checkpoint_every: int = 50
    val_every: int = 50
    val_images: int = 8
    test_steps: int = 50  # inner steps at validation (the paper: 50 at test time)
    tasks: tuple[TaskSpec, ...] = field(default_factory=lambda: (TaskSpec(),))

    def __post_init__(self) -> None:
        if (
            self.steps < 1
            or self.meta_batch < 1
            or not self.lr > 0
            or self.checkpoint_every < 1
            or self.val_every < 1
            or (self.lr_step_sizes is not None and not self.lr_step_sizes > 0)
        ):
            raise ValueError(f"invalid outer-loop settings: {self}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {list(LR_SCHEDULES)}, got {self.lr_schedule!r}")
        if self.task_batching not in ("loop", "vmap"):
            raise ValueError(f"task_batching must be 'loop' or 'vmap', got {self.task_batching!r}")
        if not self.tasks:
            raise ValueError("at least one task spec is needed")
        if self.task_batching == "vmap" and not self.first_order:
            raise InputError(
                "outer.task_batching 'vmap' needs outer.first_order: true (second-order MAML loops over tasks); "
                "set first_order: true or task_batching: loop"
            )

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> OuterSettings:
        d = dict(d)
        d["tasks"] = tuple(TaskSpec(**t) for t in d.get("tasks", [{}]))
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        """The settings; ``lr_schedule`` only when not constant and ``freeze_init`` only when on, so that
        records and hashes written before those choices existed stay valid."""
        d = asdict(self)
        d["tasks"] = [asdict(t) for t in self.tasks]
        return without_later_defaults(d, {"lr_schedule": "constant", "freeze_init": False})

    def lr_factor(self, step: int) -> float:
        """The factor on both outer learning rates at outer step ``step`` (1-based): 1 throughout for
        ``constant``; for ``cosine`` a half cosine from 1 at step 1 to 1/100 after the last step."""
        if self.lr_schedule == "constant":
            return 1.0
        return 0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * (step - 1) / self.steps))


def model_for_method(method: Mapping[str, Any], image_shape: tuple[int, int, int]) -> tuple[MetaModel, OuterSettings]:
    """A fresh model and the outer settings of a ``meta.methods.<name>`` entry (defaults filled in)
    for images of ``image_shape`` ``(C, H, W)``; bad settings raise ``ValueError``/``TypeError`` here,
    before any work."""
    InnerSettings(**method["inner"])  # validates
    outer = OuterSettings.from_dict(method["outer"])
    arch = architecture_from_config(method["network"], method["arch"], tuple(image_shape))
    model = build_model(arch, method["inner"])
    check_trainable(model, outer)
    return model, outer


def check_trainable(model: MetaModel, settings: OuterSettings) -> None:
    """Refuse (InputError) outer settings that leave ``model`` nothing to learn: a frozen θ₀ without
    learned step sizes."""
    if settings.freeze_init and not model.inner.learn_lr:
        raise InputError(
            "outer.freeze_init: true needs inner.learn_lr: true (with θ₀ frozen only the learned step sizes "
            "train); set inner.learn_lr: true or drop outer.freeze_init"
        )


def sample_task(settings: OuterSettings, images: Tensor, seed: int, step: int) -> tuple[Operator, Tensor, Tensor]:
    """The meta-batch of outer step ``step``: (operator, measurements (B, ...), clean images (B, C, H, W))."""
    g = seeded_generator(seed, step, 1)
    weights = torch.tensor([t.weight for t in settings.tasks], dtype=torch.float64)
    spec = settings.tasks[int(torch.multinomial(weights, 1, generator=g))]
    idx = torch.randint(0, images.shape[0], (settings.meta_batch,), generator=g)
    xs = images[idx]
    op, ys = spec.simulate(xs, g)
    return op, ys, xs


def validation_set(settings: OuterSettings, images: Tensor, seed: int) -> tuple[Operator, Tensor, Tensor]:
    """Fixed validation problems: the first task spec applied to the first ``val_images`` images."""
    xs = images[: settings.val_images]
    op, ys = settings.tasks[0].simulate(xs, seeded_generator(seed, 2**31 - 1))
    return op, ys, xs


def image_psnrs(
    model: MetaModel, op: Operator, ys: Tensor, xs: Tensor, steps: int, device: torch.device
) -> list[float]:
    """PSNR (dB, 4 decimals) of the ``steps``-step reconstruction of each measurement in ``ys``."""
    results = solve_batch(model, op, ys, steps, device=device, show_progress=False, vectorise=False)
    return [round(psnr(r.estimate, x).item(), 4) for r, x in zip(results, xs, strict=True)]


def validate(model: MetaModel, op: Operator, ys: Tensor, xs: Tensor, steps: int, device: torch.device) -> float:
    """Mean PSNR (dB) of ``steps``-step reconstructions of the validation measurements."""
    return float(np.mean(image_psnrs(model, op, ys, xs, steps, device)))


def simulate_tasks(tasks: Mapping[str, Mapping[str, Any]], images: Tensor, seed: int, purpose: int) -> dict[str, tuple]:
    """Fixed problems per named task setting: name → (operator, measurements (N, ...), ``images``
    (N, C, H, W)); seeded by (seed, purpose, name), so they do not depend on what else is scored."""
    problems = {}
    for name, spec in tasks.items():
        op, ys = TaskSpec.from_setting(spec).simulate(images, seeded_generator(seed, purpose, name_key(name)))
        problems[name] = (op, ys, images)
    return problems


def ablation_problems(
    ablation: Mapping[str, Any], seed: int, main: EvaluationSet, transfer: EvaluationSet | None = None
) -> tuple[dict[str, tuple], dict[str, list[str]]]:
    """The ablation's validation problems (config ``ablation``: its ``tasks`` on ``main``, the images
    of the meta-training collection, and ``transfer.tasks`` on ``transfer``, named
    ``<transfer.dataset>:<task>``) and each problem's source photograph per image."""
    problems = simulate_tasks(ablation["tasks"], main.images, seed, VALIDATION_PURPOSE)
    photos = {k: list(main.sources) for k in problems}
    if transfer is not None:
        prefix = ablation["transfer"]["dataset"]
        more = simulate_tasks(ablation["transfer"]["tasks"], transfer.images, seed, VALIDATION_PURPOSE)
        problems |= {f"{prefix}:{k}": v for k, v in more.items()}
        photos |= {f"{prefix}:{k}": list(transfer.sources) for k in more}
    return problems, photos


def curated_ablation_problems(config: Mapping[str, Any]) -> tuple[dict[str, tuple], dict[str, list[str]]]:
    """:func:`ablation_problems` on the validation crops of the curated collections under
    ``paths.curated`` (``ablation.val_images`` of each), for scripts that take only a config."""
    ab, size, curated = config["ablation"], config["meta"]["image_size"], Path(config["paths"]["curated"])
    n = ab["val_images"]
    main = load_evaluation_set(curated / config["meta"]["train_dataset"], "val", n, 1, size, key="ablation.val_images")
    transfer = None
    if ab["transfer"]["dataset"]:
        transfer = load_evaluation_set(curated / ab["transfer"]["dataset"], "val", n, 1, size, key="ablation.transfer")
    return ablation_problems(ab, config["seed"], main, transfer)


def score_tasks(
    model: MetaModel, problems: Mapping[str, tuple], steps: int, device: torch.device | str | None = None
) -> dict[str, list[float]]:
    """Name → per-image PSNR (dB) of ``steps``-step reconstructions from the model's θ₀."""
    device = torch.device(device) if device is not None else default_device()
    return {name: image_psnrs(model, op, ys, xs, steps, device) for name, (op, ys, xs) in problems.items()}


# -- the trainer ------------------------------------------------------------------------------------


def _is_step_size(name: str) -> bool:
    """Whether a parameter of a :class:`MetaModel` is a learned step size (its own outer rate)."""
    return name in ("log_lr", "lr_noise_exponent") or name.startswith("log_lr_scale.")


def meta_train(
    model: MetaModel,
    settings: OuterSettings,
    train_images: Tensor,
    val_images: Tensor,
    seed: int,
    work_dir: str | os.PathLike,
    device: torch.device | str | None = None,
    show_progress: bool = True,
    stop_after: int | None = None,
    on_step: Callable[[int], None] | None = None,
    provenance: Mapping[str, str] | None = None,
    ranks: Ranks | None = None,
) -> MetaModel:
    """Meta-train ``model`` in place; resumes from ``work_dir/checkpoint.safetensors`` if that was
    written by a run of the same identity (:mod:`metadip.core.checkpoints`): the same configuration
    (outer and inner settings, prior, seed), the same initial weights, images and code.

    ``train_images`` / ``val_images``: ``(N, C, H, W)`` in [0, 1].  ``provenance``: more identity
    entries of the run from the caller, e.g. ``dataset_manifest_sha256``, or ``code_sha256`` of the
    calling stage (replacing the default, the code of :mod:`metadip.meta.maml` and :mod:`metadip.models.networks`).
    ``stop_after``: stop (after checkpointing) once this outer step is done — for tests of
    resumption.  ``ranks``: data-parallel ranks (:mod:`metadip.meta.data_parallel`; default: the
    initialised process group, else one process); each adapts its share of the meta-batch, the
    meta-gradient is summed over them, and rank 0 alone validates, writes and logs: a line at the
    start, one before the validation of θ₀, one per validation, and (without a progress bar on a
    terminal) the step, elapsed time and time left at most every ``LOG_EVERY_S`` seconds.  Returns the model.
    """
    check_trainable(model, settings)
    ranks = ranks or current_ranks()
    device = (
        torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    )
    if ranks.lead:
        log.info("%s", describe_run(model, settings, device, ranks))
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    identity = _run_identity(model, settings, train_images, val_images, seed, provenance)
    model.to(device)
    train_images = train_images.to(device)
    opt = _outer_optimiser(model, settings)
    base_lrs = [group["lr"] for group in opt.param_groups]
    ckpt = work / "checkpoint.safetensors"
    start_step = _resume(ckpt, model, opt, identity, device, ranks)
    val_op, val_ys, val_xs = validation_set(settings, val_images, seed)

    def val_psnr() -> float:
        return validate(model, val_op, val_ys, val_xs, settings.test_steps, device)

    if ranks.lead and start_step == 0:
        log.info("validating θ₀ before outer step 1 (%d images, %d inner steps each)", len(val_xs), settings.test_steps)
    training_log = TrainingLog(work, start_step, val_psnr, write=ranks.lead)
    steps = range(start_step + 1, settings.steps + 1)
    # a bar on a terminal; else the log's own lines (StepLog), not the plain progress lines as well
    drawn = show_progress and ranks.lead and sys.stderr.isatty()
    bar = progress(steps, desc="meta-train", enabled=drawn, initial=start_step, total=settings.steps)
    heartbeat = StepLog(start_step, settings.steps) if ranks.lead and getattr(bar, "disable", True) else None
    for step in bar:
        training_log.add_loss(_outer_step(model, settings, opt, base_lrs, train_images, seed, step, ranks, device))
        if ranks.lead and (step % settings.val_every == 0 or step == settings.steps):
            val = val_psnr()
            row = training_log.record(step, val)
            if hasattr(bar, "set_postfix"):
                bar.set_postfix(val_psnr=f"{val:.2f}")
            log.info("outer step %d: train loss %.5f, val PSNR %.2f dB", step, row["train_loss"], val)
        if ranks.lead and (step % settings.checkpoint_every == 0 or step == settings.steps or step == stop_after):
            save_checkpoint(ckpt, model, opt, step, identity)
            training_log.checkpointed(step)
        if heartbeat is not None:
            heartbeat.done(step)
        if on_step is not None:
            on_step(step)
        if stop_after is not None and step >= stop_after:
            break
    return model


def describe_run(model: MetaModel, settings: OuterSettings, device: torch.device, ranks: Ranks) -> str:
    """One line on what meta-training trains, for how long, on which tasks and where."""
    prior = architecture(model)["kind"].upper()
    weights = sum(p.numel() for p in model.prior.parameters())
    inner = model.inner
    order = "first" if settings.first_order else "second"
    tasks = ", ".join(_task_text(t) for t in settings.tasks)
    where = str(device) if ranks.size == 1 else f"{ranks.size} ranks ({device} here)"
    frozen = ", θ₀ frozen: step sizes only" if settings.freeze_init else ""
    return (
        f"meta-training a {prior} prior ({weights:,} weights; {inner.steps} {inner.update} inner steps, {order}-order "
        f"MAML{frozen}) for {settings.steps} outer steps of {settings.meta_batch} tasks from {tasks} on {where}"
    )


def _task_text(task: TaskSpec) -> str:
    """``denoising σ=25``, ``cs_fast σ=10 m/n=0.25``, with `` ×2`` for a weight of 2."""
    text = f"{task.kind} σ={task.sigma:g}" + (f" m/n={task.ratio:g}" if task.ratio is not None else "")
    return text + (f" ×{task.weight:g}" if task.weight != 1 else "")


def _run_identity(
    model: MetaModel,
    settings: OuterSettings,
    train_images: Tensor,
    val_images: Tensor,
    seed: int,
    provenance: Mapping[str, str] | None,
) -> dict[str, str]:
    """The identity a checkpoint must have been written with to be resumed (:mod:`metadip.core.checkpoints`)."""
    run = {
        "outer": settings.to_dict(),
        "inner": model.inner.to_dict(),
        "seed": seed,
        "prior": getattr(model.prior.config, "to_dict", dict)(),
    }
    return {
        "init_sha256": tensors_sha256(*model.state_dict().values()),
        "data_sha256": tensors_sha256(train_images, val_images),
        "code_sha256": code_sha256("metadip.meta.maml", "metadip.models.networks"),
        **(provenance or {}),
        "run_hash": config_hash(run),
    }


def _outer_optimiser(model: MetaModel, settings: OuterSettings) -> torch.optim.Adam:
    """Adam on θ₀ at ``lr`` (not with ``freeze_init``) and on the learned step sizes at ``lr_step_sizes``
    (default ``lr``)."""
    step_sizes = {
        "params": [p for n, p in model.named_parameters() if _is_step_size(n)],
        "lr": settings.lr_step_sizes or settings.lr,
    }
    if settings.freeze_init:
        return torch.optim.Adam([step_sizes], lr=settings.lr)
    init = {"params": [p for n, p in model.named_parameters() if not _is_step_size(n)]}
    return torch.optim.Adam([init, step_sizes], lr=settings.lr)


def _resume(
    ckpt: Path, model: MetaModel, opt: torch.optim.Adam, identity: Mapping[str, str], device: torch.device, ranks: Ranks
) -> int:
    """The outer step to resume after (0: a fresh start), the model and Adam loaded from ``ckpt``."""
    # rank 0 vets the checkpoint (and sets a corrupt one aside) before any other rank reads it
    start_step = resume_step(ckpt, model, opt, identity, device) if ranks.lead else 0
    start_step = ranks.broadcast_int(start_step, device)
    if not ranks.lead and start_step and resume_step(ckpt, model, opt, identity, device) != start_step:
        raise RuntimeError(f"{ckpt}: rank {ranks.rank} could not resume the step rank 0 resumed ({start_step})")
    if start_step and ranks.lead:
        log.info("resuming meta-training at outer step %d from %s", start_step, ckpt)
    return start_step


def _outer_step(
    model: MetaModel,
    settings: OuterSettings,
    opt: torch.optim.Adam,
    base_lrs: list[float],
    train_images: Tensor,
    seed: int,
    step: int,
    ranks: Ranks,
    device: torch.device,
) -> float:
    """Outer step ``step``: this rank's share of the meta-batch adapted, the meta-gradient summed
    over the ranks, one Adam step; returns the meta-batch's mean outer loss."""
    op, ys, xs = sample_task(settings, train_images, seed, step)
    op.to(device)
    opt.zero_grad(set_to_none=True)
    mine = ranks.share(settings.meta_batch)
    ys, xs = ys[mine.start : mine.stop].to(device), xs[mine.start : mine.stop]
    # a frozen θ₀ enters detached: the backward pass stops at it
    theta0 = {n: p.detach() for n, p in model.prior.named_parameters()} if settings.freeze_init else None
    loss_value = 0.0
    if settings.task_batching == "vmap" and len(mine):
        loss = batched_task_loss(model, op, ys, xs, model.inner.steps, settings.first_order, theta0)
        loss = loss * (len(mine) / settings.meta_batch)
        loss.backward()
        loss_value = float(loss.detach())
    elif settings.task_batching == "loop":
        for y, x in zip(ys, xs, strict=True):
            loss = task_loss(model, op, y, x, model.inner.steps, settings.first_order, theta0) / settings.meta_batch
            loss.backward()
            loss_value += float(loss.detach())
    trained = [p for n, p in model.named_parameters() if _is_step_size(n) or not settings.freeze_init]
    ranks.sum_gradients(trained)
    loss_value = ranks.sum_value(loss_value, device)
    if not np.isfinite(loss_value):
        raise FloatingPointError(
            f"meta-training loss became {loss_value} at outer step {step}; lower meta.outer.lr or inner.lr_init"
        )
    if settings.grad_clip:
        torch.nn.utils.clip_grad_norm_(trained, settings.grad_clip)
    for group, base in zip(opt.param_groups, base_lrs, strict=True):
        group["lr"] = base * settings.lr_factor(step)  # a function of the step: resumes as it ran
    opt.step()
    return loss_value


class StepLog:
    """Log lines of a loop's progress where no progress bar shows (a log file): outer step, elapsed
    time and time left, after a step once ``LOG_EVERY_S`` seconds have passed since the last line
    (or the start), and after the last step. Steps ``first + 1 .. last`` run in this session."""

    def __init__(self, first: int, last: int) -> None:
        self.first, self.last = first, last
        self.start = self.logged = monotonic()

    def done(self, step: int) -> None:
        """Outer step ``step`` is done: a line if it is time for one."""
        now = monotonic()
        if now - self.logged < LOG_EVERY_S and step < self.last:
            return
        self.logged = now
        elapsed = now - self.start
        left = elapsed / (step - self.first) * (self.last - step)
        log.info("outer step %d/%d: %s elapsed, about %s left", step, self.last, _duration(elapsed), _duration(left))


def _duration(seconds: float) -> str:
    """``42 s``, ``3 min 05 s``, ``2 h 07 min``."""
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"
