"""Ablations of a meta-learned initialisation: one variant = the configured method with some
settings overridden, meta-trained for the same number of outer steps, then scored as the mean
PSNR after ``test_steps`` inner steps on fixed validation problems of several task settings.

The validation problems of a task setting depend only on (seed, task name, image index), so every
variant is scored on the very same measurements; the un-meta-trained init of each variant (its
random θ₀ with the initial step sizes) is scored too, so a table row shows what meta-training
bought, next to what the variant's settings give from the start. Torch-free (the workflow's config
check imports it); the scoring is :func:`metadip.maml.score_problems`.
"""

from __future__ import annotations

import copy
import csv
import io
from collections.abc import Mapping
from typing import Any


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


FIELDS = ["variant", "overrides", "task", "psnr_init_db", "psnr_meta_db", "gain_db", "train_seconds"]


def table_rows(results: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Flat rows (one per variant and task) from the variants' result records."""
    rows = []
    for r in results:
        for task, meta in r["psnr_meta_db"].items():
            init = r["psnr_init_db"][task]
            rows.append(
                {
                    "variant": r["variant"],
                    "overrides": r["overrides_text"],
                    "task": task,
                    "psnr_init_db": init,
                    "psnr_meta_db": meta,
                    "gain_db": round(meta - init, 4),
                    "train_seconds": r["train_seconds"],
                }
            )
    return rows


def to_csv(rows: list[Mapping[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def to_markdown(results: list[Mapping[str, Any]], reference: str) -> str:
    """One row per variant: PSNR after the test steps per task (meta-trained, and in brackets the
    variant's un-meta-trained init), the difference to the reference variant, training time."""
    tasks = list(results[0]["psnr_meta_db"])
    ref = next((r for r in results if r["variant"] == reference), None)
    head = ["variant", "settings changed"] + [f"{t} (dB)" for t in tasks]
    head += [f"Δ{t} vs {reference}" for t in tasks] if ref else []
    lines = ["| " + " | ".join([*head, "meta-training (s)"]) + " |", "|" + "---|" * (len(head) + 1)]
    for r in results:
        cells = [r["variant"], r["overrides_text"] or "—"]
        cells += [f"{r['psnr_meta_db'][t]:.2f} ({r['psnr_init_db'][t]:.2f})" for t in tasks]
        if ref:
            cells += [f"{r['psnr_meta_db'][t] - ref['psnr_meta_db'][t]:+.2f}" for t in tasks]
        lines.append("| " + " | ".join([*cells, f"{r['train_seconds']:.0f}"]) + " |")
    return "\n".join(lines) + "\n"


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
