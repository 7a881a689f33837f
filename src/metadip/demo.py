"""Demo: vanilla DIP on one bundled photograph for each measurement model.

Writes ``grid.png`` (ground truth | non-learned estimate | DIP reconstruction, one row per task),
``psnr.csv`` and ``psnr.md`` (per task: PSNR of the non-learned estimate, of DIP's EMA output and
last iterate, SSIM, seconds) and ``traces.csv`` (per step PSNR/NMSE) into an output folder.
"""

from __future__ import annotations

import itertools
import logging
import os
import platform
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from metadip.core.atomic import write_text
from metadip.core.csv_text import csv_text
from metadip.core.device import default_device
from metadip.core.images import bundled_image
from metadip.core.metrics import psnr, ssim
from metadip.models.networks import DIPConfig, DIPPrior
from metadip.physics.operators import Operator, build_operator
from metadip.reporting.figures import save_image_grid
from metadip.solvers.dip import DIPSettings, fit_dip
from metadip.solvers.result import Reconstruction

log = logging.getLogger(__name__)
PROBE_STEPS = 4  # DIP steps per task timed for the estimate logged at the start

#: (label, operator config without image_shape/seed, name of the non-learned estimate)
DEMO_TASKS = (
    ("denoising σ=25", {"kind": "denoising", "sigma": 25}, "noisy input"),
    ("CS m/n=1/4, σ=25", {"kind": "cs", "ratio": 0.25, "sigma": 25, "colour": "joint"}, "constant + least squares"),
    ("PR m/n=1/4, σ=25", {"kind": "pr", "ratio": 0.25, "sigma": 25, "colour": "joint"}, "flat, matched energy"),
)


@dataclass(frozen=True)
class DemoSettings:
    image: str = "astronaut"
    size: int = 64
    width: int = 32
    steps: int = 1000
    seed: int = 0
    structured: bool = False  # use the O(n log n) operator twins instead of dense Gaussians


@dataclass(frozen=True)
class _Task:
    label: str
    baseline_name: str
    op: Operator
    y: Tensor
    baseline: Tensor  # the non-learned estimate, (C, H, W) on the CPU
    seed: int  # of the operator; the measurement noise's is seed + 1, the jitter's seed + 2


def run_demo(settings: DemoSettings, out_dir: str | os.PathLike, show_progress: bool = True) -> list[dict]:
    """Run the demo and write its outputs; returns the table rows. Logs a line per phase (INFO)."""
    out = Path(out_dir)
    x = bundled_image(settings.image, settings.size)
    device = default_device()
    net = DIPConfig(image_shape=tuple(x.shape), channels_down=(settings.width,) * 5, channels_up=(settings.width,) * 5)
    log.info(
        "demo: vanilla DIP on '%s' %d×%d (skip net width %d), %d tasks × %d Adam steps on %s, to %s; "
        "timing a few steps first",
        settings.image,
        settings.size,
        settings.size,
        settings.width,
        len(DEMO_TASKS),
        settings.steps,
        device.type,
        out,
    )
    tasks = [_task(i, x, settings) for i in range(len(DEMO_TASKS))]
    seconds = [(low * settings.steps, high * settings.steps) for low, high in _seconds_per_step(tasks, net, x, device)]
    log.info("estimated time: %s in all", _duration(*map(sum, zip(*seconds, strict=True))))
    rows, grid, traces = [], [], []
    for i, task in enumerate(tasks):
        log.info("[%d/%d] %s: %d steps, %s", i + 1, len(tasks), task.label, settings.steps, _duration(*seconds[i]))
        result = fit_dip(
            DIPPrior(net, seed=settings.seed),
            task.op,
            task.y,
            DIPSettings(steps=settings.steps),
            torch.Generator().manual_seed(task.seed + 2),
            x_true=x,
            device=device,
            show_progress=show_progress,
        )
        row = _row(task, result, x, settings.steps)
        log.info(
            "[%d/%d] %s: DIP %.2f dB in %.0f s", i + 1, len(tasks), task.label, row["psnr_dip_ema"], result.seconds
        )
        rows.append(row)
        grid.append(
            [
                ("ground truth", x),
                (f"{task.baseline_name}, {row['psnr_baseline']:.1f} dB", task.baseline),
                (f"DIP ({settings.steps} it), {row['psnr_dip_ema']:.1f} dB", result.estimate),
            ]
        )
        for k, step in enumerate(result.trace["step"]):
            traces.append({"task": task.label, **{key: result.trace[key][k] for key in result.trace}, "step": step})
    title = (
        f"Vanilla DIP on '{settings.image}' {settings.size}×{settings.size}, skip net width {settings.width}, "
        f"{settings.steps} Adam steps ({device.type}, {platform.machine()})"
    )
    save_image_grid(grid, [t.label for t in tasks], out / "grid.png", title=title)
    write_text(out / "psnr.csv", csv_text(rows, list(rows[0])))
    write_text(out / "traces.csv", csv_text(traces, list(traces[0])))
    write_text(out / "psnr.md", _markdown(rows, title))
    return rows


def _task(i: int, x: Tensor, settings: DemoSettings) -> _Task:
    """The i-th task of :data:`DEMO_TASKS`: its operator and a measurement of ``x``."""
    label, op_cfg, baseline_name = DEMO_TASKS[i]
    seed = settings.seed + 100 * i
    cfg = dict(op_cfg, image_shape=tuple(x.shape), seed=seed)
    if settings.structured and cfg["kind"] != "denoising":
        cfg["kind"] += "_fast"
    op = build_operator(cfg)
    y = op.measure(x, torch.Generator().manual_seed(seed + 1))
    return _Task(label, baseline_name, op, y, op.initial_estimate(y).cpu(), seed)


def _seconds_per_step(tasks: list[_Task], net: DIPConfig, x: Tensor, device: torch.device) -> list[tuple[float, float]]:
    """(low, high) seconds per DIP step of each task, from a run of 1 + :data:`PROBE_STEPS` steps on a
    throwaway prior: the median optimisation step after the first (the pace on an idle device), and
    the run's wall time per step (setup and stalls on busy cores included)."""
    out = []
    for task in tasks:
        t = time.perf_counter()
        seconds = fit_dip(
            DIPPrior(net, seed=0),
            task.op,
            task.y,
            DIPSettings(steps=1 + PROBE_STEPS),
            torch.Generator(),
            x_true=x,
            device=device,
            show_progress=False,
        ).trace["seconds"]
        steps = [b - a for a, b in itertools.pairwise(seconds)]
        out.append((statistics.median(steps), (time.perf_counter() - t) / len(seconds)))
    return out


def _row(task: _Task, result: Reconstruction, x: Tensor, steps: int) -> dict:
    return {
        "task": task.label,
        "operator": task.op.kind,
        "baseline": task.baseline_name,
        "psnr_baseline": round(float(psnr(task.baseline, x)), 2),
        "psnr_dip_ema": round(float(psnr(result.estimate, x)), 2),
        "psnr_dip_last": round(float(psnr(result.last, x)), 2),
        "ssim_dip_ema": round(float(ssim(result.estimate, x)), 4),
        "steps": steps,
        "seconds": round(result.seconds, 2),
    }


def _duration(low: float, high: float) -> str:
    """A time range in words, e.g. ``40 s to 2.5 min``."""
    low_text, high_text = (f"{t:.0f} s" if t < 90 else f"{t / 60:.1f} min" for t in sorted((low, high)))
    return low_text if low_text == high_text else f"{low_text} to {high_text}"


def _markdown(rows: list[dict], title: str) -> str:
    head = (
        "| task | operator | non-learned estimate | PSNR (dB) | DIP EMA PSNR (dB) | DIP last PSNR (dB) | DIP SSIM "
        "| seconds |"
    )
    lines = [f"{title}\n", head, "|" + "---|" * 8]
    for r in rows:
        lines.append(
            f"| {r['task']} | {r['operator']} | {r['baseline']} | {r['psnr_baseline']:.2f} | {r['psnr_dip_ema']:.2f} | "
            f"{r['psnr_dip_last']:.2f} | {r['ssim_dip_ema']:.3f} | {r['seconds']:.1f} |"
        )
    return "\n".join(lines) + "\n"
