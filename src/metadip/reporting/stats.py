"""Confidence intervals that respect where the images come from: a cluster bootstrap over photographs.

Crops of one source photograph share content, exposure and camera, so they are not independent;
a bootstrap that resamples single images understates the uncertainty of a mean over them. Here
whole photographs (clusters, ``(dataset, source_file)`` of a result row) are resampled with
replacement, ``RESAMPLES`` times from a fixed seed (same input → same bytes), and the 95% interval
is the percentile interval of the resampled means. With fewer than two photographs there is
nothing to resample: the interval is None, and a claim on it is inconclusive.

Paired differences join two methods' rows on ``(task, dataset, image_index)`` — the same image,
noise draw and operator — and bootstrap the per-image differences. Numpy only.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

import numpy as np

from metadip.core.errors import InputError, ResultError

RESAMPLES = 2000
SEED = 0
LEVEL = 0.95

Key = tuple[str, str, int]  # (task, dataset, image_index)


@dataclass(frozen=True)
class Summary:
    """A mean over images with its 95% cluster-bootstrap interval (None with fewer than 2 photos)."""

    mean: float
    ci_low: float | None
    ci_high: float | None
    n_images: int
    n_photos: int

    def rounded(self, digits: int = 3) -> dict[str, Any]:
        """The fields as a JSON-ready dict, floats rounded to ``digits``."""
        return {k: round(v, digits) if isinstance(v, float) else v for k, v in asdict(self).items()}


class Observation(NamedTuple):
    """One image's value, its photograph (the cluster) and what must agree between paired rows."""

    value: float
    photo: Hashable
    ident: tuple  # (image_id, noise_seed, operator_seed): equal for the same image, noise and operator


def photo_of(row: dict[str, Any]) -> tuple[str, str | None]:
    """The cluster of a result row: ``(dataset, source_file)``. Rows without ``source_file`` (shards
    from before it was recorded) share one unknown photograph per dataset, so no interval is claimed."""
    return row["dataset"], row.get("source_file")


def _codes(clusters: Sequence[Hashable]) -> tuple[np.ndarray, int]:
    """Cluster ids → codes 0..C-1 in a fixed (sorted) order, so the draws do not depend on row order."""
    index = {c: i for i, c in enumerate(sorted(set(clusters), key=repr))}
    return np.array([index[c] for c in clusters], dtype=np.int64), len(index)


def bootstrap_means(
    values: np.ndarray | Sequence[float], clusters: Sequence[Hashable], resamples: int = RESAMPLES, seed: int = SEED
) -> np.ndarray:
    """Means of ``values`` (N,) or (N, K) over ``resamples`` cluster resamples: (B,) or (B, K).

    One draw of B × C cluster indices is shared by all K columns (a matrix product), so a whole
    convergence trace costs one bootstrap. A resample's mean is over all images of its clusters.
    """
    v = np.asarray(values, dtype=np.float64)
    if len(v) != len(clusters) or len(v) == 0:
        raise ValueError(f"bootstrap: {len(v)} values, {len(clusters)} cluster ids (need as many, at least one)")
    codes, c = _codes(clusters)
    flat = v.reshape(len(v), -1)
    sums = np.zeros((c, flat.shape[1]))
    np.add.at(sums, codes, flat)
    counts = np.bincount(codes, minlength=c).astype(np.float64)
    draws = np.random.default_rng(seed).integers(0, c, size=(resamples, c))
    weights = np.zeros((resamples, c))
    np.add.at(weights, (np.arange(resamples)[:, None], draws), 1.0)
    means = (weights @ sums) / (weights @ counts)[:, None]
    return means.reshape(resamples, *v.shape[1:])


def interval(
    values: np.ndarray | Sequence[float],
    clusters: Sequence[Hashable],
    level: float = LEVEL,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> tuple[np.ndarray, np.ndarray] | None:
    """Percentile ``level`` interval of the mean of ``values`` (N,) or (N, K): (low, high), each of
    shape () or (K,); None with fewer than two clusters."""
    if len(set(clusters)) < 2:
        return None
    boot = bootstrap_means(values, clusters, resamples, seed)
    low, high = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2], axis=0)
    return low, high


def interval_text(low: float | None, high: float | None) -> str:
    """`` [low, high]`` with signs and 2 decimals, for a table cell; empty without an interval."""
    return "" if low is None or high is None else f" [{low:+.2f}, {high:+.2f}]"


def summarize(
    values: Sequence[float], clusters: Sequence[Hashable], resamples: int = RESAMPLES, seed: int = SEED
) -> Summary:
    """Mean of ``values`` (one per image) with its cluster-bootstrap 95% interval."""
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1 or len(v) == 0:
        raise ValueError(f"summarize: need a non-empty 1-D array of values, got shape {v.shape}")
    ci = interval(v, clusters, resamples=resamples, seed=seed)
    return Summary(
        float(v.mean()),
        None if ci is None else float(ci[0]),
        None if ci is None else float(ci[1]),
        len(v),
        len(set(clusters)),
    )


def geometric_summary(
    ratios: Sequence[float], clusters: Sequence[Hashable], resamples: int = RESAMPLES, seed: int = SEED
) -> Summary:
    """Geometric mean of positive ``ratios`` with its interval: the bootstrap of the mean log ratio,
    exponentiated."""
    r = np.asarray(ratios, dtype=np.float64)
    if not np.all(np.isfinite(r) & (r > 0)):
        raise ResultError(
            "a speed ratio is zero, negative or not finite (a time of 0 s or below in the rows); "
            "delete the shards of the timed methods and rerun the workflow"
        )
    s = summarize(np.log(r), clusters, resamples, seed)
    return Summary(
        math.exp(s.mean),
        None if s.ci_low is None else math.exp(s.ci_low),
        None if s.ci_high is None else math.exp(s.ci_high),
        s.n_images,
        s.n_photos,
    )


def by_image(rows: Iterable[dict[str, Any]], field: str = "psnr") -> dict[Key, Observation]:
    """``rows`` of one method keyed by ``(task, dataset, image_index)``; raises on a repeated key."""
    out: dict[Key, Observation] = {}
    for r in rows:
        key = (r["task"], r["dataset"], int(r["image_index"]))
        if key in out:
            raise InputError(
                f"two rows of method '{r['method']}' for task '{key[0]}', dataset '{key[1]}', image {key[2]}; "
                "give each shard once (delete stray shards and rerun the workflow)"
            )
        out[key] = Observation(
            float(r[field]), photo_of(r), (r.get("image_id"), r.get("noise_seed"), r.get("operator_seed"))
        )
    return out


def join(a: dict[Key, Observation], b: dict[Key, Observation], what: str = "paired rows") -> list[Key]:
    """The common keys of ``a`` and ``b`` in sorted order; raises when the key sets differ or an
    image's photograph, id or noise/operator seed differ between them."""
    if a.keys() != b.keys():
        only_a, only_b = sorted(a.keys() - b.keys()), sorted(b.keys() - a.keys())
        raise InputError(
            f"{what}: the two methods were not run on the same images "
            f"(only in the first: {only_a[:3]}{'…' if len(only_a) > 3 else ''}; "
            f"only in the second: {only_b[:3]}{'…' if len(only_b) > 3 else ''}); "
            "evaluate both on the same images (rerun the workflow with one config)"
        )
    keys = sorted(a)
    for k in keys:
        if a[k].photo != b[k].photo or a[k].ident != b[k].ident:
            raise InputError(
                f"{what}: image {k} differs between the two methods "
                f"(photo {a[k].photo} vs {b[k].photo}; image id, noise, operator seed {a[k].ident} vs {b[k].ident}); "
                "evaluate both on the same images (rerun the workflow with one config)"
            )
    return keys


def average(replicates: Sequence[dict[str, Observation]], what: str = "replicates") -> dict[Key, Observation]:
    """Per image, the mean value over ``replicates`` (e.g. one method's meta-training seeds); they
    must cover the same images (:func:`join`)."""
    first = replicates[0]
    for other in replicates[1:]:
        join(first, other, what)
    return {k: o._replace(value=float(np.mean([rep[k].value for rep in replicates]))) for k, o in first.items()}


def photo_differences(
    a: dict[Key, Observation], b: dict[Key, Observation], what: str = "paired rows"
) -> list[dict[str, Any]]:
    """Per source photograph (:func:`photo_of`: ``source_file``, 'None' when unrecorded), the mean
    per-image difference ``a − b`` (dB) and its number of images, lowest mean first: which
    photographs pull a paired mean down."""
    groups: dict[Hashable, list[float]] = {}
    for k in join(a, b, what):
        groups.setdefault(a[k].photo, []).append(a[k].value - b[k].value)
    out = [
        {"photo": str(photo[1]), "mean": round(float(np.mean(d)), 3), "n_images": len(d)} for photo, d in groups.items()
    ]
    return sorted(out, key=lambda r: (r["mean"], r["photo"]))


def paired_difference(
    a: dict[Key, Observation],
    b: dict[Key, Observation],
    resamples: int = RESAMPLES,
    seed: int = SEED,
    what: str = "paired rows",
) -> Summary:
    """Mean per-image difference ``a − b`` over the images of both, with its cluster-bootstrap interval."""
    keys = join(a, b, what)
    return summarize([a[k].value - b[k].value for k in keys], [a[k].photo for k in keys], resamples, seed)
