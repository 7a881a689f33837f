"""Confidence intervals that respect where the images come from: a cluster-robust t interval over photographs.

Crops of one source photograph share content, exposure and camera, so they are not independent; an
interval that treats single images as independent understates the uncertainty of a mean over them.
The estimate is the mean over the N images; its standard error is the cluster-robust one over the G
photographs (clusters, ``(dataset, source_file)`` of a result row),

    SE² = G/(G−1) · Σ_g (Σ_{i∈g} (v_i − v̄))² / N²,

and the 95% interval is v̄ ± t_{G−1, 0.975} · SE (Student's t with G−1 degrees of freedom). With equal
numbers of images per photograph it is the t interval on the per-photograph means. It is a closed form
(same input, same bytes, no draws); its coverage on simulated data with the spread of this project's
runs is in ``tests/reporting/test_stats.py`` and ``bench/interval_coverage.py``. With fewer than two
photographs there is no interval (None), and a claim on it is inconclusive.

Paired differences join two methods' rows on ``(task, dataset, image_index)`` — the same image,
noise draw and operator — and take the interval of the per-image differences. Numpy only.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

import numpy as np

from metadip.core.errors import InputError, ResultError

LEVEL = 0.95
INFERENCE = "cluster-robust t interval over source photographs (G−1 df)"

Key = tuple[str, str, int]  # (task, dataset, image_index)


@dataclass(frozen=True)
class Summary:
    """A mean over images with its 95% interval over photographs (None with fewer than 2 photos)."""

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


def t_quantile(level: float, df: int) -> float:
    """The two-sided critical value of Student's t with integer ``df`` ≥ 1: P(|T| ≤ t) = ``level``.

    P(|T| ≤ t) has a closed form for integer df (Abramowitz & Stegun 26.7.3–4) in θ = atan(t/√df),
    increasing in θ ∈ (0, π/2); θ is found by bisection to double precision."""
    if df < 1 or not 0.0 < level < 1.0:
        raise ValueError(f"t_quantile: need df >= 1 and 0 < level < 1, got df={df}, level={level}")

    def coverage(theta: float) -> float:
        c2, term, total = math.cos(theta) ** 2, 1.0, 1.0
        if df % 2 == 0:
            for k in range(1, df // 2):
                term *= c2 * (2 * k - 1) / (2 * k)
                total += term
            return math.sin(theta) * total
        for k in range(1, (df - 1) // 2):
            term *= c2 * (2 * k) / (2 * k + 1)
            total += term
        return 2 / math.pi * (theta + (math.sin(theta) * math.cos(theta) * total if df > 1 else 0.0))

    low, high = 0.0, math.pi / 2
    for _ in range(200):
        mid = (low + high) / 2
        if mid in (low, high):
            break
        low, high = (mid, high) if coverage(mid) < level else (low, mid)
    return math.sqrt(df) * math.tan((low + high) / 2)


def interval(
    values: np.ndarray | Sequence[float], clusters: Sequence[Hashable], level: float = LEVEL
) -> tuple[np.ndarray, np.ndarray] | None:
    """Cluster-robust t ``level`` interval (module doc) of the mean of ``values`` (N,) or (N, K), each
    column on its own with the same ``clusters`` (N,): (low, high), each of shape () or (K,); None with
    fewer than two clusters."""
    v = np.asarray(values, dtype=np.float64)
    if len(v) != len(clusters) or len(v) == 0:
        raise ValueError(f"interval: {len(v)} values, {len(clusters)} cluster ids (need as many, at least one)")
    index = {c: i for i, c in enumerate(sorted(set(clusters), key=repr))}
    g = len(index)
    if g < 2:
        return None
    mean = v.mean(axis=0)
    totals = np.zeros((g, *v.shape[1:]))
    np.add.at(totals, np.array([index[c] for c in clusters]), v - mean)
    se = np.sqrt(g / (g - 1) * np.sum(totals**2, axis=0)) / len(v)
    half = t_quantile(level, g - 1) * se
    return mean - half, mean + half


def interval_text(low: float | None, high: float | None) -> str:
    """`` [low, high]`` with signs and 2 decimals, for a table cell; empty without an interval."""
    return "" if low is None or high is None else f" [{low:+.2f}, {high:+.2f}]"


def summarize(values: Sequence[float], clusters: Sequence[Hashable]) -> Summary:
    """Mean of ``values`` (one per image) with its 95% interval over ``clusters`` (:func:`interval`)."""
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1 or len(v) == 0:
        raise ValueError(f"summarize: need a non-empty 1-D array of values, got shape {v.shape}")
    ci = interval(v, clusters)
    return Summary(
        float(v.mean()),
        None if ci is None else float(ci[0]),
        None if ci is None else float(ci[1]),
        len(v),
        len(set(clusters)),
    )


def geometric_summary(ratios: Sequence[float], clusters: Sequence[Hashable]) -> Summary:
    """Geometric mean of positive ``ratios`` with its interval: the interval of the mean log ratio,
    exponentiated."""
    r = np.asarray(ratios, dtype=np.float64)
    if not np.all(np.isfinite(r) & (r > 0)):
        raise ResultError(
            "a speed ratio is zero, negative or not finite (a time of 0 s or below in the rows); "
            "delete the shards of the timed methods and rerun the workflow"
        )
    s = summarize(np.log(r), clusters)
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


def paired_difference(a: dict[Key, Observation], b: dict[Key, Observation], what: str = "paired rows") -> Summary:
    """Mean per-image difference ``a − b`` over the images of both, with its interval over photographs."""
    keys = join(a, b, what)
    return summarize([a[k].value - b[k].value for k in keys], [a[k].photo for k in keys])
