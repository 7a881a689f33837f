"""The result every solver returns: the reconstruction, its timing and its per-step trace."""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor


@dataclass
class Reconstruction:
    """A reconstruction by any solver (DIP, MetaDIP, PnP-ADMM, a denoiser): ``estimate`` (DIP: the
    EMA or the last iterate) and ``last``, both ``(C, H, W)`` on the CPU; ``trace`` has one entry
    per step: step (1-based), loss (at the pre-update output), optimisation seconds since start and,
    when the ground truth was given, psnr / nmse of the estimate and psnr_last / nmse_last of the
    last iterate; ``snapshots`` maps a step to its (estimate, last iterate) when asked for;
    ``compiled``: whether the steps ran with a compiled forward (:mod:`metadip.models.compiled`)."""

    estimate: Tensor
    last: Tensor
    seconds: float
    trace: dict[str, list[float]] = field(default_factory=dict)
    snapshots: dict[int, tuple[Tensor, Tensor]] = field(default_factory=dict)
    compiled: bool = False
