"""Vanilla DIP stopped early on validation crops: the step at which a DIP run is also read.

At CPU scale DIP's reconstruction peaks and then fits the noise, so the paper's fixed 1000 steps
understate DIP at its best. For each (task setting, image class) the same DIP as the evaluation's
(network, initial weights, optimiser, EMA) runs on validation crops of the class, interleaved across
the val split's photographs, with operators, noise and latent jitter from seeds of their own (the
purposes below; the test's are those of :mod:`metadip.pipeline.evaluation`). The stop step is the
step of the highest mean PSNR of the reported estimate over those crops, on the trace's every-step
grid; among equal means (4 decimals) the earliest step. The evaluation then reads each test run at
that step too (row ``<name>_val``, :func:`metadip.pipeline.plan.stop_method_id`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from metadip.core.seeding import derived_seed, name_key
from metadip.datasets.sampling import EvaluationSet
from metadip.meta.inner_loop import build_model
from metadip.physics.operators import Operator
from metadip.physics.tasks import TaskSpec
from metadip.pipeline.artifacts import ArtifactError
from metadip.pipeline.settings import DIPSolver
from metadip.solvers.dip import fit_dip

_OPERATOR, _NOISE, _JITTER = 21, 22, 23  # purposes in derived_seed keys (the test's: 11, 12, 13)

#: how :func:`choose_stop` breaks ties, as recorded
TIE_RULE = "the earliest of the steps with the highest mean PSNR (means rounded to 4 decimals)"


def validation_seeds(seed: int, task_name: str, dataset: str, n: int) -> dict[str, Any]:
    """The seeds of the validation problems of (task setting, val ``dataset``): one operator, and per
    image ``i < n`` its noise and its latent jitter."""
    key = (name_key(task_name), name_key(dataset))
    return {
        "operator": derived_seed(seed, _OPERATOR, *key),
        "noise": [derived_seed(seed, _NOISE, *key, i) for i in range(n)],
        "jitter": [derived_seed(seed, _JITTER, *key, i) for i in range(n)],
    }


def validation_problems(task: Mapping[str, Any], images: Tensor, seeds: Mapping[str, Any]) -> tuple[Operator, Tensor]:
    """The operator of ``seeds["operator"]`` and the measurements ``(N, *measurement_shape)`` of
    ``images`` ``(N, C, H, W)``, image i's noise from ``seeds["noise"][i]``."""
    op = TaskSpec.from_setting(task).operator(tuple(images.shape[1:]), seeds["operator"])
    ys = [
        op.measure(x.unsqueeze(0), torch.Generator().manual_seed(s))[0]
        for x, s in zip(images, seeds["noise"], strict=True)
    ]
    return op, torch.stack(ys)


def validation_trace(
    solver: DIPSolver,
    task_name: str,
    task: Mapping[str, Any],
    images: Tensor,
    dataset: str,
    seed: int,
    device: torch.device | str | None = None,
    compiled: bool = False,
) -> list[float]:
    """Mean PSNR (dB, 4 decimals) over ``images`` ``(N, C, H, W)`` (val crops of ``dataset``) of the
    reported estimate of a dip method's ``solver`` (EMA, or the last iterate without one) after
    each of its ``settings.steps`` steps, one entry per step."""
    seeds = validation_seeds(seed, task_name, dataset, len(images))
    op, ys = validation_problems(task, images, seeds)
    arch = solver.architecture(tuple(images.shape[1:]))
    steps = solver.settings.steps
    traces = [
        fit_dip(
            build_model(arch, dict(solver.inner)).prior,
            op,
            y,
            solver.settings,
            torch.Generator().manual_seed(g),
            x_true=x,
            device=device,
            show_progress=False,
            last_every=steps,  # the last iterate's trace is not used: no extra forward passes
            compiled=compiled,
        ).trace["psnr"]
        for y, x, g in zip(ys, images, seeds["jitter"], strict=True)
    ]
    return [round(float(v), 4) for v in np.mean(np.asarray(traces, dtype=np.float64), axis=0)]


def choose_stop(mean_psnr: Sequence[float]) -> int:
    """The stop step (1-based) of a mean PSNR trace with one entry per step: the step of its highest
    value, the earliest among equal values (:data:`TIE_RULE`)."""
    if not mean_psnr or not all(math.isfinite(v) for v in mean_psnr):
        raise ValueError(f"a stop step needs a non-empty, finite PSNR trace, got {list(mean_psnr)[:5]}...")
    return int(np.argmax(np.asarray(mean_psnr))) + 1  # argmax returns the first maximum


def stop_record(
    method: str,
    solver: DIPSolver,
    task_name: str,
    task: Mapping[str, Any],
    dataset: str,
    val: EvaluationSet,
    val_dataset: str,
    seed: int,
    device: torch.device | str | None = None,
    compiled: bool = False,
) -> dict[str, Any]:
    """The stop step of dip method ``method`` (its ``solver``) on (``task_name``, the class ``dataset``
    plays), chosen on ``val`` (val crops of ``val_dataset``), with the mean validation trace it was
    chosen on and what it was computed from."""
    trace = validation_trace(solver, task_name, task, val.images, val_dataset, seed, device, compiled)
    step = choose_stop(trace)
    return {
        "method": method,
        "task": task_name,
        "dataset": dataset,
        "val_dataset": val_dataset,
        "step": step,
        "steps": solver.settings.steps,
        "mean_psnr_db": trace[step - 1],
        "last_psnr_db": trace[-1],
        "estimate": "EMA" if solver.settings.ema is not None else "last iterate",
        "tie_rule": TIE_RULE,
        "images": len(val.ids),
        "photos": len(set(val.sources)),
        "validation_images": list(val.ids),
        "validation_photos": list(val.sources),
        "seed": seed,
        "seeds": validation_seeds(seed, task_name, val_dataset, len(val.ids)),
        "trace_psnr_db": trace,
    }


def read_stop(path: str | Path, task: str, dataset: str, method: str, steps: int) -> int:
    """The stop step recorded at ``path`` by ``stages/dip_stop.py`` for (``task``, ``dataset``,
    ``method``), within ``[1, steps]``; :class:`ArtifactError` naming the file otherwise."""
    try:
        record = json.loads(Path(path).read_text(encoding="utf-8"))
        got = (record["task"], record["dataset"], record["method"])
        step = record["step"]
    except (OSError, json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as err:
        raise ArtifactError(
            f"{path}: not a readable stop record of stages/dip_stop.py ({type(err).__name__}: {err}); "
            "delete it and rerun stages/dip_stop.py"
        ) from None
    if got != (task, dataset, method) or not isinstance(step, int) or not 1 <= step <= steps:
        raise ArtifactError(
            f"{path}: a stop record of {'/'.join(map(str, got))} at step {step}, not of {task}/{dataset}/{method} "
            f"within its {steps} steps; pass the record of this setting, or rerun stages/dip_stop.py"
        )
    return step
