"""Measurement settings ("tasks"): one measurement model of a task distribution or an evaluation setting."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from metadip.core.errors import InputError
from metadip.physics.operators import Operator, build_operator


@dataclass(frozen=True)
class TaskSpec:
    """One measurement model of the task distribution (σ on the 0–255 scale)."""

    kind: str = "denoising"
    sigma: float = 25.0
    ratio: float | None = None
    colour: str = "joint"
    weight: float = 1.0

    def __post_init__(self) -> None:
        if self.kind != "denoising" and self.ratio is None:
            raise InputError(f"task kind {self.kind!r} needs a sampling ratio m/n; give the task a ratio")

    @classmethod
    def from_setting(cls, setting: Mapping[str, Any]) -> TaskSpec:
        """The measurement model of a named task setting (``evaluate.tasks`` / ``ablation.tasks``
        entry; its other keys are ignored)."""
        return cls(
            kind=setting["kind"],
            sigma=setting.get("sigma", 25.0),
            ratio=setting.get("ratio"),
            colour=setting.get("colour", "joint"),
        )

    def operator(self, image_shape: tuple[int, int, int], seed: int) -> Operator:
        cfg: dict[str, Any] = {"kind": self.kind, "image_shape": image_shape, "sigma": self.sigma, "seed": seed}
        if self.kind != "denoising":
            cfg.update(ratio=self.ratio, colour=self.colour)
        return build_operator(cfg)

    def simulate(self, images: Tensor, generator: torch.Generator) -> tuple[Operator, Tensor]:
        """An operator seeded from ``generator`` and the measurements of ``images`` (N, C, H, W),
        noise drawn from the same generator."""
        op = self.operator(tuple(images.shape[1:]), seed=int(torch.randint(0, 2**31 - 1, (1,), generator=generator)))
        return op, op.measure(images, generator)
