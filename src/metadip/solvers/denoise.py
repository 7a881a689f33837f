"""A plain denoiser as a solver (Table 1's BM3D and DRUNet rows)."""

from __future__ import annotations

import time
from collections.abc import Callable

from torch import Tensor

from metadip.core.metrics import nmse, psnr
from metadip.solvers.result import Reconstruction


def run_denoiser(
    denoiser: Callable[[Tensor, float], Tensor], y: Tensor, sigma: float, x_true: Tensor | None = None
) -> Reconstruction:
    """A plain denoising baseline (Table 1) in the solvers' result format: one denoiser call on
    the noisy image ``y`` (C, H, W) at ``sigma``; the trace has one row (step 1)."""
    start = time.perf_counter()
    out = denoiser(y, sigma).clamp(0, 1).cpu()
    seconds = time.perf_counter() - start
    trace: dict[str, list[float]] = {"step": [1], "seconds": [seconds]}
    if x_true is not None:
        trace.update(psnr=[float(psnr(out, x_true))], nmse=[float(nmse(out, x_true))])
    return Reconstruction(estimate=out, last=out, seconds=seconds, trace=trace)
