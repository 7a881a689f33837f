"""The cluster bootstrap (metadip.reporting.stats): coverage on simulated clustered data, determinism, the
paired join and its failures."""

from __future__ import annotations

import math

import numpy as np
import pytest

from metadip.reporting.stats import (
    average,
    bootstrap_means,
    by_image,
    geometric_summary,
    interval,
    paired_difference,
    summarize,
)


def clustered(
    rng: np.random.Generator, photos: int = 12, per_photo: int = 3, mean: float = 25.0
) -> tuple[np.ndarray, list[int]]:
    """Strongly clustered values: a photo effect (std 1) + per-image noise (std 0.3)."""
    effect = rng.normal(0.0, 1.0, photos)
    values = mean + np.repeat(effect, per_photo) + rng.normal(0.0, 0.3, photos * per_photo)
    return values, list(np.repeat(np.arange(photos), per_photo))


def test_cluster_bootstrap_covers_the_mean_and_an_iid_bootstrap_does_not():
    rng = np.random.default_rng(1)
    covered = {"cluster": 0, "iid": 0}
    runs = 300
    for s in range(runs):
        values, photos = clustered(rng)
        for name, clusters in (("cluster", photos), ("iid", list(range(len(values))))):
            low, high = interval(values, clusters, seed=s)
            covered[name] += bool(low <= 25.0 <= high)
    assert 0.85 <= covered["cluster"] / runs <= 0.99, covered
    # images treated as independent: the interval is ~1.7x too narrow on these data
    assert covered["iid"] / runs < 0.8 and covered["iid"] < covered["cluster"] - 0.1 * runs, covered


def test_same_input_same_bytes_and_row_order_does_not_matter():
    values, photos = clustered(np.random.default_rng(0), photos=5)
    a, b = summarize(values, photos), summarize(values, photos)
    assert a == b and a.n_images == 15 and a.n_photos == 5 and a.ci_low < a.mean < a.ci_high
    order = np.random.default_rng(2).permutation(len(values))
    c = summarize(values[order], [photos[i] for i in order])
    assert c.ci_low == pytest.approx(a.ci_low, abs=1e-12) and c.ci_high == pytest.approx(a.ci_high, abs=1e-12)
    assert summarize(values, photos, seed=1) != a  # the seed is what fixes the draws


def test_vectorised_bootstrap_matches_column_by_column():
    values, photos = clustered(np.random.default_rng(3), photos=4)
    matrix = np.stack([values, 2 * values, values**2], axis=1)
    boot = bootstrap_means(matrix, photos, resamples=50)
    assert boot.shape == (50, 3)
    for k in range(3):
        np.testing.assert_allclose(boot[:, k], bootstrap_means(matrix[:, k], photos, resamples=50))
    # every resample's mean lies within the range of the cluster means
    means = [values[np.array(photos) == p].mean() for p in set(photos)]
    assert min(means) - 1e-9 <= boot[:, 0].min() and boot[:, 0].max() <= max(means) + 1e-9


def test_one_photo_gives_no_interval():
    s = summarize([1.0, 2.0, 3.0], ["p", "p", "p"])
    assert (s.mean, s.ci_low, s.ci_high, s.n_images, s.n_photos) == (2.0, None, None, 3, 1)
    with pytest.raises(ValueError, match="non-empty"):
        summarize([], [])


def test_geometric_summary_is_the_exponentiated_mean_log():
    s = geometric_summary([10.0, 1000.0, 100.0, 100.0], ["a", "b", "c", "d"])
    assert s.mean == pytest.approx(100.0) and 10.0 <= s.ci_low < 100.0 < s.ci_high <= 1000.0
    with pytest.raises(ValueError, match="zero, negative or not finite"):
        geometric_summary([1.0, 0.0], ["a", "b"])


def rows(method, psnr, photos=("p1", "p1", "p2"), task="den", dataset="d"):
    return [
        {
            "task": task,
            "dataset": dataset,
            "image_index": i,
            "image_id": f"{dataset}/{i}",
            "noise_seed": 100 + i,
            "method": method,
            "psnr": v,
            "source_file": photos[i],
        }
        for i, v in enumerate(psnr)
    ]


def test_paired_difference_joins_on_the_image():
    a = by_image(rows("a", [30.0, 31.0, 33.0]))
    b = by_image(list(reversed(rows("b", [29.0, 29.0, 30.0]))))  # order of rows does not matter
    s = paired_difference(a, b)
    assert s.mean == pytest.approx(2.0) and (s.n_images, s.n_photos) == (3, 2)
    assert s.ci_low == pytest.approx(1.5) and s.ci_high == pytest.approx(3.0)  # the two photos' mean differences


def test_replicates_are_averaged_per_image():
    avg = average([by_image(rows("s0", [30.0, 31.0, 32.0])), by_image(rows("s1", [32.0, 31.0, 30.0]))])
    assert [o.value for o in avg.values()] == [31.0, 31.0, 31.0]


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda r: r.pop(), "not run on the same images"),
        (lambda r: r[0].update(noise_seed=7), "differs between the two methods"),
        (lambda r: r[2].update(source_file="p9"), "differs between the two methods"),
    ],
)
def test_a_mismatched_join_raises(change, message):
    b = rows("b", [29.0, 29.0, 30.0])
    change(b)
    with pytest.raises(ValueError, match=message):
        paired_difference(by_image(rows("a", [30.0, 31.0, 33.0])), by_image(b))


def test_a_repeated_image_raises():
    with pytest.raises(ValueError, match="two rows of method 'a'"):
        by_image(rows("a", [1.0, 2.0]) + rows("a", [1.0]))


def test_rows_without_a_source_share_one_unknown_photo():
    legacy = [{k: v for k, v in r.items() if k != "source_file"} for r in rows("a", [1.0, 2.0, 3.0])]
    s = summarize([o.value for o in by_image(legacy).values()], [o.photo for o in by_image(legacy).values()])
    assert s.n_photos == 1 and s.ci_low is None and math.isclose(s.mean, 2.0)
