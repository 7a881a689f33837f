"""Time to quality from evaluation rows: how much sooner MetaDIP reaches the PSNR DIP(1000) ends at.

Per image, the target is the lower of the two methods' final PSNRs (DIP: its reported estimate, the
EMA); each method's steps to quality are the first step of its trace whose estimate reaches the
target, and its time to quality those steps times its own step time, measured interleaved with the
other solver's step on the same image (the rows' ``step_seconds`` and ``ref_step_seconds``, written
when a meta method names a ``speed_reference``). Step times taken side by side on one image are
insensitive to load from other processes, unlike cumulative solve clocks.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from metadip.core.errors import InputError
from metadip.reporting.stats import Summary, geometric_summary, photo_of


@dataclass(frozen=True)
class ImageSpeedup:
    """One image: the target PSNR (dB), each method's steps to reach it and DIP's time over MetaDIP's."""

    task: str
    dataset: str
    role: str
    image_index: int
    photo: tuple[str, str | None]
    target_db: float
    meta_steps: int
    ref_steps: int
    speedup: float


def steps_to(trace_step: Sequence[int], trace_psnr: Sequence[float], target: float) -> int:
    """The first step whose PSNR reaches ``target`` (the trace's last step when rounding leaves it short)."""
    for step, p in zip(trace_step, trace_psnr, strict=True):
        if p >= target:
            return int(step)
    return int(trace_step[-1])


def image_speedups(rows: Iterable[dict[str, Any]], meta: str = "metadip") -> list[ImageSpeedup]:
    """Time-to-quality speed-up of method ``meta`` over its speed reference on every image that has
    both rows (a reference run on the first N images only, ``evaluate.methods.<m>.images``, pairs on
    those). Raises ``ValueError`` when ``meta``'s rows carry no interleaved step times or the
    reference row of an image within the reference's images is missing."""
    rows = list(rows)
    metas = [r for r in rows if r["method"] == meta]
    if not metas:
        raise InputError(f"no rows of method '{meta}'; evaluate it first")
    if any(r.get("ref_method") is None or not r.get("ref_step_seconds") for r in metas):
        raise InputError(f"rows of '{meta}' carry no interleaved reference step times (set its speed_reference)")
    refs = {(r["method"], r["task"], r["dataset"], r["image_index"]): r for r in rows}
    covered: dict[tuple[str, str, str], int] = {}  # the reference's images per setting: the first N
    for key in refs:
        covered[key[:3]] = max(covered.get(key[:3], -1), key[3])
    out = []
    for m in metas:
        key = (m["ref_method"], m["task"], m["dataset"], m["image_index"])
        if key[:3] in covered and key[3] > covered[key[:3]]:
            continue  # beyond the images the reference ran on
        if key not in refs:
            raise InputError(f"no '{key[0]}' row for {m['task']} / {m['dataset']} image {m['image_index']}")
        ref = refs[key]
        target = min(m["trace_psnr"][-1], ref["trace_psnr"][-1])
        k_meta = steps_to(m["trace_step"], m["trace_psnr"], target)
        k_ref = steps_to(ref["trace_step"], ref["trace_psnr"], target)
        speedup = (k_ref * m["ref_step_seconds"]) / (k_meta * m["step_seconds"])
        where = (m["task"], m["dataset"], m["role"], m["image_index"], photo_of(m))
        out.append(ImageSpeedup(*where, target, k_meta, k_ref, speedup))
    return out


def setting_summaries(speedups: Sequence[ImageSpeedup]) -> dict[tuple[str, str], tuple[Summary, float, float]]:
    """Per (task, role): the geometric-mean speed-up with its 95% interval over photographs, and the
    median steps to quality of MetaDIP and of the reference."""
    groups: dict[tuple[str, str], list[ImageSpeedup]] = {}
    for s in speedups:
        groups.setdefault((s.task, s.role), []).append(s)
    return {
        key: (
            geometric_summary([s.speedup for s in group], [s.photo for s in group]),
            statistics.median(s.meta_steps for s in group),
            statistics.median(s.ref_steps for s in group),
        )
        for key, group in groups.items()
    }
