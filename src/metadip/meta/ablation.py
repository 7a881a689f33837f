"""Ablations of a meta-learned initialisation: one variant = the configured method with some settings
overridden, meta-trained for the same number of outer steps, then scored as the mean PSNR after
``test_steps`` inner steps on fixed validation problems of several task settings.

The validation images are interleaved across source photographs and the problems of a task setting
depend only on (seed, task name, image index), so every variant is scored on the very same
measurements, and variants are compared by paired per-image differences with a cluster-robust t
interval over photographs (:mod:`metadip.reporting.ablation_table`). Each variant is scored three
ways: the meta-init (θ₀ and step sizes learned); the control, its untrained θ₀ (the point meta-
training started from) through the same learned inner loop, so meta-init − control is what the
initialisation itself buys; and the untrained θ₀ with the initial step sizes. Torch-free (the
workflow's config check imports it); the training and scoring of a variant is
:func:`metadip.meta.ablation_runs.run_variant`.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

VALIDATION_PURPOSE = 7  # seed key of the ablation's validation measurements (stages/ablate.py, bench/)


def deep_merge(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``overrides`` applied: mappings merge key by key, anything else replaces."""
    out = copy.deepcopy(dict(base))
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def variant_method(
    method: Mapping[str, Any], overrides: Mapping[str, Any], outer_steps: int, test_steps: int
) -> dict[str, Any]:
    """The method config of one variant: overrides merged in, trained for ``outer_steps`` (unless the
    variant sets ``outer.steps`` itself: the training-length ablation) and validated after
    ``test_steps`` inner steps."""
    merged = deep_merge(method, overrides)
    steps = overrides.get("outer", {}).get("steps", outer_steps)
    merged["outer"] = {
        **merged["outer"],
        "steps": steps,
        "test_steps": test_steps,
        "val_every": steps,
        "checkpoint_every": min(merged["outer"]["checkpoint_every"], steps),
    }
    return merged


def overrides_text(overrides: Mapping[str, Any], prefix: str = "") -> str:
    """``{'inner': {'momentum': 0}}`` → ``inner.momentum=0`` (comma separated, sorted)."""
    parts = []
    for key, value in sorted(overrides.items()):
        if isinstance(value, Mapping) and value:
            parts.append(overrides_text(value, f"{prefix}{key}."))
        else:
            parts.append(f"{prefix}{key}={_compact(value)}")
    return ", ".join(parts)


def _compact(value: Any) -> str:
    if isinstance(value, list):
        return "[" + "; ".join(_compact(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + " ".join(f"{k}:{_compact(v)}" for k, v in value.items()) + "}"
    if value is None:
        return "null"
    return str(value).lower() if isinstance(value, bool) else str(value)
