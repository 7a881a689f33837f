"""Which images of a split an evaluation uses: spread across source photographs.

Crops of one photograph are not independent samples (they share content, exposure and camera), so
the evaluation takes its N images interleaved across photographs — one crop of every photograph,
then a second crop of each, and so on — and the intervals are taken over whole photographs.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from torch import Tensor

from metadip.core.errors import InputError


@dataclass
class EvaluationSet:
    """The images of one dataset an evaluation uses: ``images`` (N, C, S, S) in [0, 1], their crop
    ids and source photographs (``collection/file``), position i = image index i of the rows."""

    images: Tensor
    ids: list[str]
    sources: list[str]


def interleave_by_source(sources: Sequence[str]) -> list[int]:
    """Indices of ``sources`` (one source photograph per crop, in split order) reordered round-robin
    over the photographs, photographs in order of first appearance, crops of one photograph in split
    order: ``["a", "a", "b", "c", "b"]`` → ``[0, 2, 3, 1, 4]``."""
    groups: dict[str, list[int]] = {}
    for i, s in enumerate(sources):
        groups.setdefault(s, []).append(i)
    order: list[int] = []
    for rank in range(max((len(g) for g in groups.values()), default=0)):
        order.extend(g[rank] for g in groups.values() if rank < len(g))
    return order


def evaluation_indices(
    sources: Sequence[str],
    n: int,
    min_photos: int = 1,
    key: str = "evaluate.images",
    photos_key: str = "evaluate.min_photos",
) -> list[int]:
    """The first ``n`` indices of the interleaved order; raises InputError when the split has fewer
    than ``n`` crops or they come from fewer than ``min_photos`` photographs (``key``,
    ``photos_key``: the config keys that asked for ``n`` and ``min_photos``, named in the error)."""
    if len(sources) < n:
        raise InputError(f"the split has {len(sources)} images, {key} asks for {n}; curate more or lower {key}")
    picked = interleave_by_source(sources)[:n]
    photos = len({sources[i] for i in picked})
    if photos < min_photos:
        raise InputError(
            f"{n} images come from {photos} source photographs, {photos_key} asks for {min_photos}; "
            f"raise {key}, or give the split more photographs (curate split_fractions)"
        )
    return picked


def load_evaluation_set(
    root: str | os.PathLike,
    split: str,
    n: int,
    min_photos: int,
    size: int,
    *,
    key: str | None = None,
    photos_key: str = "evaluate.min_photos",
    crop_size: int | None = None,
) -> EvaluationSet:
    """The ``n`` images of ``split`` of the curated dataset at ``root``, interleaved across
    photographs (:func:`evaluation_indices`) and resized to ``size``.  ``key``: the config key of a
    reader other than the evaluation (an ablation, a tuning), which may open train and val only.
    ``crop_size``: the crop side the folder must have been curated at (``curate.crop_size``, px;
    None: any), checked with the rest of the folder by :class:`~metadip.datasets.store.CuratedSplit`."""
    from metadip.core.images import resize_images
    from metadip.datasets.store import CuratedSplit, training_split

    if key is None:
        images = CuratedSplit(root, split, crop_size=crop_size)
    else:
        images = training_split(root, split, key=key, crop_size=crop_size)
    sources = images.sources
    try:
        picked = evaluation_indices(sources, n, min_photos, key or "evaluate.images", photos_key)
    except InputError as err:
        raise InputError(f"{root}: {split} split: {err}") from None
    return EvaluationSet(
        resize_images(images.stack(picked), size), [images.ids[i] for i in picked], [sources[i] for i in picked]
    )
