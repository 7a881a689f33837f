"""Intervals over photographs (metadip.reporting.stats): coverage on simulated clustered data at the
project's numbers of photographs, the t quantile, determinism, the paired join and its failures."""

from __future__ import annotations

import math

import numpy as np
import pytest

from metadip.reporting.stats import (
    average,
    by_image,
    geometric_summary,
    interval,
    paired_difference,
    summarize,
    t_quantile,
)

# Spread of paired per-image differences (dB) in a default run (commit 6fd5e4b, results/results.parquet:
# 4 test images from 4 photographs per class, 12 settings): SD over photographs, root mean square over the
# 12 cells, 1.3 for metadip − metadip_random, 3.0 for metadip − dip_1000, 3.7 for metadip − dip_50. With one
# image per photograph that run cannot tell the spread between photographs from the spread of crops within
# one, so the within-photograph SD is taken as half the between one. Coverage does not depend on the scale.
BETWEEN_SD = 1.3
WITHIN_SD = 0.65
# Skewness of the photograph effect: in that run, pooled over the 12 cells (mean third moment over mean
# SD cubed), 0.7 (− dip_1000), 0.9 (− metasiren), 1.2 (− dip_50), 1.7 (− metadip_random); per cell 0.4 on
# average. A shifted lognormal with σ = 0.3143 has skewness 1 (heavier skew: bench/interval_coverage.py).
LOG_SIGMA = 0.3143
# Image layouts of the runs, images interleaved over photographs: the default run (4 over 4), the study
# (24 per class over 9 or 4 photographs; DIP on the first 12 of them) and 24 over 6, 12 and 24.
LAYOUTS = [(4, 4), (12, 4), (24, 4), (24, 6), (24, 9), (12, 9), (24, 12), (24, 24)]
SIMS = 40_000  # Monte-Carlo SE of a coverage near 0.94: sqrt(0.94 · 0.06 / 40000) = 0.0012


def photo_effects(shape: str, rng: np.random.Generator, photos: int) -> np.ndarray:
    """(photos, SIMS) photograph effects with mean 0 and SD ``BETWEEN_SD``: normal; a shifted lognormal
    with its long tail down (skewness −1); or one photograph in four (on average) 2.5 SDs of the rest
    below them, as when one photograph pulls a paired mean down."""
    if shape == "normal":
        z = rng.normal(size=(photos, SIMS))
    elif shape == "lognormal":
        x = np.exp(LOG_SIGMA * rng.normal(size=(photos, SIMS)))
        z = -(x - math.exp(LOG_SIGMA**2 / 2)) / math.sqrt((math.exp(LOG_SIGMA**2) - 1) * math.exp(LOG_SIGMA**2))
    else:
        down = 2.5 * (rng.random((photos, SIMS)) < 0.25)
        z = (rng.normal(size=(photos, SIMS)) - down + 2.5 * 0.25) / math.sqrt(1 + 2.5**2 * 0.25 * 0.75)
    return BETWEEN_SD * z


def simulate(shape: str, images: int, photos: int, seed: int = 0) -> tuple[np.ndarray, list[int]]:
    """(images, SIMS) paired differences with true mean 0 — photograph effect + image noise — and the
    photograph of each image, interleaved (image i from photograph i mod ``photos``)."""
    rng = np.random.default_rng(seed)
    clusters = [i % photos for i in range(images)]
    values = photo_effects(shape, rng, photos)[clusters] + rng.normal(0.0, WITHIN_SD, (images, SIMS))
    return values, clusters


def coverage(bounds: tuple[np.ndarray, np.ndarray] | None) -> float:
    """Fraction of simulations whose interval holds the true mean 0."""
    assert bounds is not None
    return float(np.mean((bounds[0] <= 0.0) & (bounds[1] >= 0.0)))


@pytest.mark.parametrize("shape", ["normal", "lognormal", "one photograph down"])
def test_the_interval_covers_the_mean_from_four_photographs_up(shape):
    covered = {}
    for images, photos in LAYOUTS:
        values, clusters = simulate(shape, images, photos)
        covered[f"{images}/{photos}"] = coverage(interval(values, clusters))
    assert min(covered.values()) >= 0.93, covered
    assert max(covered.values()) <= 0.96, covered  # not bought with needlessly wide intervals


def test_the_coverage_check_can_fail():
    """Normal quantiles instead of t with G−1 df, and intervals that treat images as independent,
    under-cover on the same draws."""
    values, clusters = simulate("normal", 24, 4)
    low, high = interval(values, clusters)
    centre, half = (low + high) / 2, (high - low) / 2 * 1.959964 / t_quantile(0.95, 3)
    assert coverage((centre - half, centre + half)) < 0.90
    # one cluster per image: ~4x too narrow on these data
    assert coverage(interval(values, list(range(24)))) < 0.80


def test_t_quantile_matches_the_tables():
    expected = {1: 12.706205, 2: 4.302653, 3: 3.182446, 8: 2.306004, 11: 2.200985, 23: 2.068658, 120: 1.979930}
    for df, t in expected.items():
        assert t_quantile(0.95, df) == pytest.approx(t, abs=1e-6)
    assert t_quantile(0.90, 5) == pytest.approx(2.015048, abs=1e-6)
    with pytest.raises(ValueError, match="df >= 1"):
        t_quantile(0.95, 0)


def test_equal_photographs_give_the_t_interval_on_photograph_means():
    values = [0.5, 1.5, 2.0, 2.0, 2.0, 4.0, 7.0, 5.0]  # photograph means 1, 2, 3, 6
    s = summarize(values, ["a", "a", "b", "b", "c", "c", "d", "d"])
    half = 3.182446 * math.sqrt(14 / 3) / 2  # t(3) · SD of the 4 means / sqrt(4)
    assert s.mean == pytest.approx(3.0)
    assert (s.ci_low, s.ci_high) == pytest.approx((3.0 - half, 3.0 + half), abs=1e-6)


def test_same_input_same_bytes_and_row_order_does_not_matter():
    values, photos = simulate("normal", 15, 5)
    values = values[:, 0] + 25.0
    a, b = summarize(values, photos), summarize(values, photos)
    assert a == b and a.n_images == 15 and a.n_photos == 5 and a.ci_low < a.mean < a.ci_high
    order = np.random.default_rng(2).permutation(len(values))
    c = summarize(values[order], [photos[i] for i in order])
    assert c.ci_low == pytest.approx(a.ci_low, abs=1e-12) and c.ci_high == pytest.approx(a.ci_high, abs=1e-12)


def test_vectorised_interval_matches_column_by_column():
    values, photos = simulate("lognormal", 9, 4)
    matrix = values[:, :3]
    low, high = interval(matrix, photos)
    assert low.shape == high.shape == (3,)
    for k in range(3):
        lk, hk = interval(matrix[:, k], photos)
        assert lk.shape == () and (lk, hk) == pytest.approx((low[k], high[k]), abs=1e-12)


def test_one_photo_gives_no_interval():
    s = summarize([1.0, 2.0, 3.0], ["p", "p", "p"])
    assert (s.mean, s.ci_low, s.ci_high, s.n_images, s.n_photos) == (2.0, None, None, 3, 1)
    assert interval(np.ones((3, 2)), ["p", "p", "p"]) is None
    with pytest.raises(ValueError, match="non-empty"):
        summarize([], [])
    with pytest.raises(ValueError, match="3 values, 2 cluster ids"):
        interval([1.0, 2.0, 3.0], ["p", "q"])


def test_geometric_summary_is_the_exponentiated_mean_log():
    s = geometric_summary([10.0, 1000.0, 100.0, 100.0], ["a", "b", "c", "d"])
    log_half = 3.182446 * math.sqrt(2 / 3) * math.log(10) / 2  # t(3) · SD of the logs / sqrt(4)
    assert s.mean == pytest.approx(100.0)
    assert (s.ci_low, s.ci_high) == pytest.approx((100 * math.exp(-log_half), 100 * math.exp(log_half)), rel=1e-6)
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
    # differences 1, 2 (p1) and 3 (p2): photo totals of deviations −1, +1, SE² = 2 · 2 / 9, t(1) = 12.706
    half = 12.706205 * 2 / 3
    assert (s.ci_low, s.ci_high) == pytest.approx((2.0 - half, 2.0 + half), abs=1e-5)


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
