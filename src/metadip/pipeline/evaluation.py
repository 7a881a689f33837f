"""Evaluation of one shard: every image of a (task setting, dataset, shard) reconstructed by one
method, one result row per image and reported variant (e.g. DIP read at 50 and at 1000 steps).

Seeds do not depend on the shard layout, so any shard count gives the same rows (up to timings):
the operator of a (task, dataset) is drawn from (seed, task, dataset), the noise of image i from
(seed, task, dataset, i), DIP's latent jitter from (seed, task, dataset, i, "dip").
"""

from __future__ import annotations

import json
import math
import os
import platform
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from torch import Tensor

from metadip.core.atomic import atomic_path
from metadip.core.device import default_device
from metadip.core.errors import InputError, ResultError
from metadip.core.hashing import file_sha256
from metadip.core.images import to_tensor, to_uint8
from metadip.core.metrics import psnr, ssim
from metadip.core.seeding import derived_seed, name_key
from metadip.meta.inner_loop import MetaModel, architecture, build_model, solve, solve_batch
from metadip.models.denoisers import DRUNetDenoiser, bm3d_denoise
from metadip.physics.operators import Operator
from metadip.physics.tasks import TaskSpec
from metadip.pipeline.artifacts import ArtifactError, git_commit, load_denoiser, load_meta_init
from metadip.pipeline.dip_stop import read_stop
from metadip.pipeline.plan import TABLE_OF_KIND, dip_method_id, stop_method_id
from metadip.pipeline.records import METADATA_KEY
from metadip.pipeline.settings import DenoiserMethod, DIPMethod, MetaMethod, PnPMethod, ShardSettings
from metadip.solvers.denoise import run_denoiser
from metadip.solvers.dip import DIPSettings, fit_dip
from metadip.solvers.pnp import PnPSettings, pnp_admm
from metadip.solvers.result import Reconstruction

_OPERATOR, _NOISE, _JITTER = 11, 12, 13  # purposes in derived_seed keys

#: the per-image numbers of a result row that the tables and claims read: never NaN or infinite
METRICS = ("psnr", "psnr_last", "ssim", "seconds")


def setting_operator(
    task: dict[str, Any], image_shape: tuple[int, int, int], seed: int, task_name: str, dataset: str
) -> tuple[Operator, int]:
    """The operator of a (task, dataset) setting and its seed; shared by all images and shards."""
    op_seed = derived_seed(seed, _OPERATOR, name_key(task_name), name_key(dataset))
    return TaskSpec.from_setting(task).operator(image_shape, op_seed), op_seed


def measure_image(op: Operator, x: Tensor, seed: int, task_name: str, dataset: str, index: int) -> tuple[Tensor, int]:
    """The measurement of image ``index`` ``x`` (C, H, W) and the seed of its noise."""
    noise_seed = derived_seed(seed, _NOISE, name_key(task_name), name_key(dataset), index)
    return op.measure(x.unsqueeze(0), torch.Generator().manual_seed(noise_seed))[0], noise_seed


@dataclass
class Outcome:
    """One reported variant of a method on one image."""

    method: str  # row id, e.g. "metadip", "dip_50"
    label: str  # table label, e.g. "DIP (50)"
    steps: int
    result: Reconstruction  # estimate / last of this variant, trace up to ``steps``
    seeds: dict[str, Any]
    speed: dict[str, Any] = field(default_factory=dict)  # step_seconds, ref_* (meta methods with a speed_reference)


Runner = Callable[[Operator, Tensor, Tensor, Sequence[int]], list[list[Outcome]]]
"""Reconstructs measurements ``(B, *measurement_shape)`` of images ``(B, C, H, W)`` with indices
``(B,)``, any B; one list of outcomes per image."""


class MethodRunner(NamedTuple):
    """A method ready to run on a shard's images."""

    run: Runner
    provenance: dict[str, Any]  # recorded in every row
    warm_up: Callable[[Operator, Tensor], None]  # untimed steps on one measurement, before the first image


@dataclass(frozen=True)
class RunContext:
    """What a runner is built from besides its method: the shard, the images' ``(C, H, W)`` shape,
    the artifact paths, the device of the solves."""

    settings: ShardSettings
    dataset: str
    image_shape: tuple[int, int, int]
    artifacts: dict[str, str]
    device: torch.device
    show_progress: bool

    def need(self, key: str) -> str:
        """The path of artifact ``key``; :class:`InputError` naming its command-line option if none."""
        if not self.artifacts.get(key):
            option = f"--{key.replace('_', '-')}"
            raise InputError(
                f"method '{self.settings.method.name}' needs the {option[2:]} artifact; give it with {option}"
            )
        return self.artifacts[key]


def _one_at_a_time(run: Callable[[Operator, Tensor, Tensor, int], list[Outcome]]) -> Runner:
    def runner(op: Operator, ys: Tensor, xs: Tensor, indices: Sequence[int]) -> list[list[Outcome]]:
        return [run(op, y, x, i) for y, x, i in zip(ys, xs, indices, strict=True)]

    return runner


def _truncate(trace: dict[str, list[float]], k: int) -> dict[str, list[float]]:
    return {key: v[:k] for key, v in trace.items()}


def _tuned_grid(path: str) -> dict[str, Any]:
    """The PnP-ADMM tuning record of ``stages/tune_pnp.py`` at ``path``: its ``best`` point holds
    ``sigma_d``, ``rho`` and ``iterations``; :class:`ArtifactError` naming the file otherwise."""
    try:
        tuned = json.loads(Path(path).read_text(encoding="utf-8"))
        best = tuned["best"]
        float(best["sigma_d"]), float(best["rho"]), int(best["iterations"])
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as err:
        raise ArtifactError(
            f"{path}: not a readable PnP tuning result of stages/tune_pnp.py ({type(err).__name__}: {err}); "
            "delete it and rerun stages/tune_pnp.py"
        ) from None
    return tuned


def _drunet(ctx: RunContext, self_ensemble: bool = False) -> tuple[DRUNetDenoiser, dict[str, Any]]:
    """The DRUNet of artifact ``drunet`` on the context's device, and its provenance."""
    path = ctx.need("drunet")
    denoiser = DRUNetDenoiser(load_denoiser(path, channels=3), device=ctx.device, self_ensemble=self_ensemble)
    provenance: dict[str, Any] = {"drunet_sha256": file_sha256(Path(path).with_suffix(".safetensors"))}
    if self_ensemble:
        provenance["self_ensemble"] = True
    return denoiser, provenance


def _denoiser_runner(method: DenoiserMethod, ctx: RunContext) -> MethodRunner:
    """One call of the denoiser at the task's true σ."""
    if method.denoiser == "drunet":
        denoiser, provenance = _drunet(ctx, method.self_ensemble)
    else:
        denoiser, provenance = bm3d_denoise, {}  # the package's default profile
    task = ctx.settings.task

    def one(op, y, x, index):
        return [Outcome(method.name, method.label, 1, run_denoiser(denoiser, y, task["sigma"], x), {})]

    def warm_up(op, y):
        run_denoiser(denoiser, y, task["sigma"])

    return MethodRunner(_one_at_a_time(one), provenance, warm_up)


def _pnp_runner(method: PnPMethod, ctx: RunContext) -> MethodRunner:
    """PnP-ADMM at the best point of the tuned grid (artifact ``pnp``)."""
    if method.denoiser == "drunet":
        denoiser, provenance = _drunet(ctx)
    else:
        denoiser = partial(bm3d_denoise, profile=method.bm3d_profile)
        provenance = {"bm3d_profile": method.bm3d_profile}
    grid_path = ctx.need("pnp")
    tuned = _tuned_grid(grid_path)
    tuned_profile = tuned.get("bm3d_profile", "np")  # grids from before it was recorded: np
    if method.denoiser == "bm3d" and tuned_profile != method.bm3d_profile:
        raise ArtifactError(
            f"{grid_path}: tuned with BM3D profile '{tuned_profile}' but "
            f"baselines.pnp.bm3d_profile is '{method.bm3d_profile}'; rerun stages/tune_pnp.py"
        )
    best = tuned["best"]
    pnp = PnPSettings(best["sigma_d"], best["rho"], int(best["iterations"]), method.pr_steps)
    provenance["pnp"] = {"sigma_d": pnp.sigma_d, "rho": pnp.rho, "iterations": pnp.iterations}

    def one(op, y, x, index):
        return [Outcome(method.name, method.label, pnp.iterations, pnp_admm(op, y, denoiser, pnp, x_true=x), {})]

    def warm_up(op, y):
        pnp_admm(op, y, denoiser, replace(pnp, iterations=1))

    return MethodRunner(_one_at_a_time(one), provenance, warm_up)


def _dip_runner(method: DIPMethod, ctx: RunContext) -> MethodRunner:
    """Vanilla DIP from the network's own init, one outcome per step count of ``report_at``; with
    ``stop_on_val``, one more at the step chosen on validation crops (artifact ``dip_stop``)."""
    arch = method.architecture(ctx.image_shape)
    s = ctx.settings
    stop = None
    if method.stop_on_val:
        stop = read_stop(ctx.need("dip_stop"), s.task_name, ctx.dataset, method.name, method.solver.settings.steps)
    keep_at = tuple(sorted({*method.report_at, *([stop] if stop else [])}))

    def read_at(full: Reconstruction, k: int, method_id: str, label: str, seeds: dict[str, Any]) -> Outcome:
        est, last = full.snapshots[k]
        result = Reconstruction(
            est, last, full.trace["seconds"][k - 1], _truncate(full.trace, k), compiled=full.compiled
        )
        return Outcome(method_id, label, k, result, seeds)

    def one(op, y, x, index):
        g_seed = derived_seed(s.seed, _JITTER, name_key(s.task_name), name_key(ctx.dataset), index)
        full = fit_dip(
            build_model(arch, method.solver.inner).prior,
            op,
            y,
            method.solver.settings,
            torch.Generator().manual_seed(g_seed),
            x_true=x,
            device=ctx.device,
            show_progress=ctx.show_progress,
            keep_at=keep_at,
            last_every=method.trace_last_every,
            last_dense=method.trace_last_dense,
            compiled="dip" in s.compile,
        )
        seeds = {"jitter_seed": g_seed}
        outs = [
            read_at(full, k, dip_method_id(method.name, k), f"{method.label} ({k})", seeds) for k in method.report_at
        ]
        if stop:
            label = f"{method.label} (stopped on val)"
            outs.append(read_at(full, stop, stop_method_id(method.name), label, {**seeds, "stop_step": stop}))
        return outs

    def warm_up(op, y):
        prior = build_model(arch, method.solver.inner).prior
        fit_dip(
            prior,
            op,
            y,
            DIPSettings(steps=2),
            torch.Generator().manual_seed(0),
            device=ctx.device,
            show_progress=False,
            compiled="dip" in s.compile,
        )

    return MethodRunner(_one_at_a_time(one), {"init_seed": arch["seed"]}, warm_up)


def _meta_runner(method: MetaMethod, ctx: RunContext) -> MethodRunner:
    """The inner loop of the meta-init (artifact ``meta_init``), in vmapped solves of the shard's
    batch size; with a ``speed_reference``, each image's outcome carries the interleaved timings."""
    path = ctx.need("meta_init")
    model = load_meta_init(path)
    provenance: dict[str, Any] = {"meta_init_sha256": file_sha256(Path(path).with_suffix(".safetensors"))}
    if method.random_init:
        # the control: the network's own initialisation (the point meta-training started from),
        # run through the meta-init's learned inner loop (step sizes, momentum, steps)
        fresh = build_model(architecture(model), model.inner.to_dict())
        model.prior.load_state_dict(fresh.prior.state_dict())
        provenance["random_init_seed"] = architecture(model)["seed"]
    batch, reference, compile_ = ctx.settings.batch, method.speed_reference, ctx.settings.compile
    compiled = "meta" in compile_ and batch == 1  # a vmapped batch runs eager: every group alike

    def solve_group(op, ys, xs):
        results = solve_batch(
            model,
            op,
            ys,
            method.steps,
            x_true=xs,
            device=ctx.device,
            show_progress=ctx.show_progress,
            average_last=method.average_last,
            compiled=compiled,
        )
        outs = [[Outcome(method.name, method.label, method.steps, r, {})] for r in results]
        if reference is not None:
            for (out,), y in zip(outs, ys, strict=True):
                out.speed = _interleaved_speed(
                    model, reference, op, y, method.speed_rounds, ctx.image_shape, ctx.device, compile_
                )
        return outs

    def run(op, ys, xs, indices):
        outcomes = []
        for j in range(0, len(ys), batch):
            outcomes += solve_group(op, ys[j : j + batch], xs[j : j + batch])
        return outcomes

    def warm_up(op, y):  # the batch size of the shard's solves: a vmapped solve has its own first-call costs
        ys = y.unsqueeze(0).expand(batch, *y.shape)
        solve_batch(model, op, ys, 2, device=ctx.device, show_progress=False, compiled=compiled)

    return MethodRunner(run, provenance, warm_up)


#: the runner of each kind of method settings (:data:`metadip.pipeline.settings.Method`)
RUNNERS: dict[type, Callable[[Any, RunContext], MethodRunner]] = {
    DenoiserMethod: _denoiser_runner,
    PnPMethod: _pnp_runner,
    DIPMethod: _dip_runner,
    MetaMethod: _meta_runner,
}


def build_runner(
    settings: ShardSettings,
    dataset: str,
    image_shape: tuple[int, int, int],
    artifacts: dict[str, str],
    device: torch.device,
    show_progress: bool = False,
) -> MethodRunner:
    """The shard's method (:data:`RUNNERS` of its settings type) ready to reconstruct images of
    ``image_shape`` on ``device``. Its warm-up takes two untimed steps so that no image's seconds
    include one-off start-up costs (CUDA context, kernel selection, first functional-transform calls).

    ``artifacts``: paths of what the method needs — ``meta_init`` (meta), ``drunet`` (DRUNet
    denoiser or PnP-ADMM + DRUNet), ``pnp`` (the tuned grid JSON of PnP-ADMM), ``dip_stop`` (the
    stop record of ``stages/dip_stop.py``, a dip method with ``stop_on_val``).
    """
    make = RUNNERS.get(type(settings.method))
    if make is None:
        raise ValueError(f"unknown method type {type(settings.method).__name__}")
    return make(settings.method, RunContext(settings, dataset, image_shape, artifacts, device, show_progress))


def evaluate_shard(
    settings: ShardSettings,
    dataset: str,
    images: Tensor,
    image_ids: Sequence[str],
    sources: Sequence[str],
    indices: Sequence[int],
    artifacts: dict[str, str],
    device: torch.device | str | None = None,
    show_progress: bool = False,
) -> list[dict[str, Any]]:
    """Result rows of the shard's method and task (:func:`metadip.pipeline.settings.shard_settings`)
    on images ``indices`` of ``dataset`` (into ``images`` (N, C, H, W), the whole evaluation set of
    the dataset, with crop ids ``image_ids`` and source photographs ``sources``)."""
    device = torch.device(device) if device is not None else default_device()
    shape = tuple(images.shape[1:])
    op, op_seed = setting_operator(settings.task, shape, settings.seed, settings.task_name, dataset)
    run, provenance, warm_up = build_runner(settings, dataset, shape, artifacts, device, show_progress)
    common = _shard_columns(settings, dataset, op_seed, device)
    # measure every image first, on the CPU (the solvers move the operator to their device)
    measured = [(i, *measure_image(op, images[i], settings.seed, settings.task_name, dataset, i)) for i in indices]
    if not measured:
        return []
    warm_up(op, measured[0][1])
    idx = [i for i, _, _ in measured]
    outcomes = run(op, torch.stack([y for _, y, _ in measured]), images[idx], idx)
    rows = [
        {
            **common,
            "image_id": image_ids[i],
            "source_file": sources[i],
            "image_index": int(i),
            **_outcome_columns(o, images[i], noise_seed, provenance),
        }
        for (i, _, noise_seed), image_outcomes in zip(measured, outcomes, strict=True)
        for o in image_outcomes
    ]
    check_finite(rows)
    return rows


def _shard_columns(settings: ShardSettings, dataset: str, op_seed: int, device: torch.device) -> dict[str, Any]:
    """The columns every row of a shard shares: the setting, the method, the machine, seeds and versions."""
    task = settings.task
    return {
        "dataset": dataset,
        "role": settings.roles.get(dataset),
        "task": settings.task_name,
        "kind": task["kind"],
        "table": TABLE_OF_KIND[task["kind"]],
        "sigma": float(task.get("sigma", 25.0)),
        "ratio": task.get("ratio"),
        "method_name": settings.method.name,
        "device": device.type if device.type == "cpu" else torch.cuda.get_device_name(device),
        "host": platform.node(),
        "threads": torch.get_num_threads(),
        "seed": settings.seed,
        "operator_seed": op_seed,
        "config_hash": settings.config_hash,
        "git_commit": git_commit(),
        "torch": torch.__version__,
    }


def _outcome_columns(o: Outcome, x: Tensor, noise_seed: int, provenance: dict[str, Any]) -> dict[str, Any]:
    """The columns of one outcome on image ``x`` (C, H, W): its metrics, estimates (uint8) and trace."""
    est, last = o.result.estimate.clamp(0, 1), o.result.last.clamp(0, 1)
    tr = o.result.trace
    return {
        "method": o.method,
        "label": o.label,
        "steps": o.steps,
        **{k: o.speed.get(k) for k in SPEED_FIELDS},
        "psnr": float(psnr(est, x)),
        "psnr_last": float(psnr(last, x)),
        "ssim": float(ssim(est, x)),
        "seconds": float(o.result.seconds),
        "compiled": o.result.compiled,
        "noise_seed": noise_seed,
        "provenance": json.dumps({**provenance, **o.seeds}, sort_keys=True),
        "estimate": _u8(est),
        "estimate_last": _u8(last),
        "height": int(x.shape[1]),
        "width": int(x.shape[2]),
        "trace_step": [int(s) for s in tr["step"]],
        "trace_nmse": tr.get("nmse", []),
        "trace_nmse_last": tr.get("nmse_last", tr.get("nmse", [])),
        "trace_psnr": tr.get("psnr", []),
        "trace_seconds": tr["seconds"],
    }


def check_finite(rows: list[dict[str, Any]]) -> None:
    """Raise :class:`ResultError` naming the first row (task, dataset, method, image id) whose
    :data:`METRICS` include NaN or an infinity."""
    for r in rows:
        bad = [f"{k} = {r[k]}" for k in METRICS if r.get(k) is not None and not math.isfinite(r[k])]
        if bad:
            raise ResultError(
                f"{r['task']}/{r['dataset']}/{r['method']} image {r['image_id']}: {', '.join(bad)}, not finite (a "
                "diverged solve, or an estimate equal to the clean image); fix the method's or task's settings "
                "and rerun"
            )


SPEED_FIELDS = ("step_seconds", "ref_method", "ref_step_seconds", "ref_steps")


def _interleaved_speed(
    model: MetaModel,
    ref: DIPMethod,
    op: Operator,
    y: Tensor,
    rounds: int,
    image_shape: tuple[int, int, int],
    device: torch.device,
    compile_: frozenset[str],
    steps: int = 4,
) -> dict[str, Any]:
    """Seconds per step of the meta method's inner loop and of the reference DIP's Adam loop on the
    same image and operator, timed in alternation (``rounds`` × ``steps`` steps each, after the
    first step of each run, which allocates state) so that both see the machine's load of the same
    moment; the median over rounds. The speed claim compares ``ref_steps · ref_step_seconds`` with
    ``steps · step_seconds`` of the same row. Each solver takes its steps as its rows do: compiled
    when its kind ("meta", "dip") is in ``compile_``."""
    arch = ref.architecture(image_shape)
    meta, dip = [], []
    for r in range(rounds):
        tr = solve(model, op, y, steps + 2, device=device, show_progress=False, compiled="meta" in compile_)
        tr = tr.trace["seconds"]
        meta.append((tr[-2] - tr[0]) / steps)  # rows 1..steps+1 are inner steps; the last row adds the final forward
        tr = fit_dip(
            build_model(arch, ref.solver.inner).prior,
            op,
            y,
            replace(ref.solver.settings, steps=steps + 1),
            torch.Generator().manual_seed(r),
            device=device,
            show_progress=False,
            compiled="dip" in compile_,
        ).trace["seconds"]
        dip.append((tr[-1] - tr[0]) / steps)
    return {
        "step_seconds": float(np.median(meta)),
        "ref_method": dip_method_id(ref.name, ref.solver.settings.steps),
        "ref_step_seconds": float(np.median(dip)),
        "ref_steps": ref.solver.settings.steps,
    }


def _u8(x: Tensor) -> bytes:
    """(C, H, W) in [0, 1] → uint8 bytes in (H, W, C) order."""
    return to_uint8(x).tobytes()


def decode_image(data: bytes, height: int, width: int) -> Tensor:
    """Inverse of the stored estimate encoding: (C, H, W) float in [0, 1]."""
    return to_tensor(np.frombuffer(data, dtype=np.uint8).reshape(height, width, -1))


def write_rows(rows: list[dict[str, Any]], path: str | os.PathLike, step_hash: str | None = None) -> None:
    """Write result rows as one parquet file, atomically, recording ``step_hash``
    (:mod:`metadip.pipeline.records`); :class:`ResultError` (nothing written) for a row with a
    non-finite metric (:func:`check_finite`)."""
    check_finite(rows)
    table = pa.Table.from_pylist(rows)
    if step_hash is not None:
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), METADATA_KEY: step_hash})
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def dip_scores(
    method: DIPMethod, problems: dict[str, tuple], seed: int, purpose: int, device: str | None = None
) -> dict[str, dict[str, list[float]]]:
    """Vanilla DIP on fixed problems (name → (operator, measurements (N, ...), images (N, C, H, W)),
    e.g. the ablation's validation problems): row id ("dip_1000") → problem → per-image PSNR (dB)
    of its reconstruction (EMA) after each of ``method.report_at`` steps; the jitter of image i of
    problem t is drawn from (seed, purpose, t, i)."""
    scores: dict[str, dict[str, list[float]]] = {dip_method_id(method.name, k): {} for k in method.report_at}
    for task, (op, ys, xs) in problems.items():
        arch = method.architecture(tuple(xs.shape[1:]))
        for i in range(len(xs)):
            g = torch.Generator().manual_seed(derived_seed(seed, purpose, name_key(task), i))
            fit = fit_dip(
                build_model(arch, dict(method.solver.inner)).prior,
                op,
                ys[i],
                method.solver.settings,
                g,
                device=device,
                show_progress=False,
                keep_at=method.report_at,
            )
            for k in method.report_at:
                scores[dip_method_id(method.name, k)].setdefault(task, []).append(
                    float(psnr(fit.snapshots[k][0], xs[i]))
                )
    return scores
