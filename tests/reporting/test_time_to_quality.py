"""Time to quality from evaluation rows: steps from the traces, times from the interleaved step times."""

from __future__ import annotations

import pytest

from metadip.reporting.time_to_quality import image_speedups, setting_summaries, steps_to


def rows(image: int, photo: str, meta_psnr: list[float], ref_psnr: list[float]) -> list[dict]:
    common = {"task": "den_25", "dataset": "d", "role": "natural", "image_index": image, "source_file": photo}
    meta = common | {
        "method": "metadip",
        "ref_method": "dip_1000",
        "step_seconds": 0.5,
        "ref_step_seconds": 1.0,
        "trace_step": list(range(1, len(meta_psnr) + 1)),
        "trace_psnr": meta_psnr,
    }
    ref = common | {"method": "dip_1000", "trace_step": list(range(1, len(ref_psnr) + 1)), "trace_psnr": ref_psnr}
    return [meta, ref]


def test_steps_to_is_the_first_step_at_the_target():
    assert steps_to([1, 2, 3, 4], [10.0, 20.0, 19.0, 21.0], 20.0) == 2
    assert steps_to([1, 2], [10.0, 11.0], 12.0) == 2  # never reached (rounding): the last step


def test_speedup_uses_the_lower_final_psnr_and_each_methods_own_step_time():
    # MetaDIP ends at 30 after 4 steps, DIP ends lower (25) but passes 25 at step 6 of 10:
    # target 25; MetaDIP reaches it at step 2 (2 x 0.5 s), DIP at step 6 (6 x 1.0 s) -> 6x
    out = image_speedups(rows(0, "p", [20, 26, 28, 30], [10, 15, 20, 22, 24, 25.5, 27, 26, 25, 25]))
    (s,) = out
    assert (s.target_db, s.meta_steps, s.ref_steps) == (25, 2, 6) and s.speedup == pytest.approx(6.0)
    # DIP ends higher: target is MetaDIP's own final PSNR, which it reaches at its last step
    (s,) = image_speedups(rows(0, "p", [20, 26, 28, 29], [10, 20, 29.5, 31]))
    assert (s.target_db, s.meta_steps, s.ref_steps) == (29, 4, 3) and s.speedup == pytest.approx(1.5)


def test_setting_summary_is_a_geometric_mean_over_photographs():
    rs = rows(0, "a", [20, 30], [20, 30, 30, 30]) + rows(1, "b", [30, 30], [20, 20, 20, 30])
    summary, k_meta, k_ref = setting_summaries(image_speedups(rs))[("den_25", "natural")]
    # speed-ups 2 x 1.0 / (2 x 0.5) = 2 and 4 x 1.0 / (1 x 0.5) = 8: geometric mean 4
    assert summary.mean == pytest.approx(4.0) and summary.n_photos == 2 and (k_meta, k_ref) == (1.5, 3)


def test_rows_without_interleaved_step_times_or_a_reference_are_refused():
    meta, ref = rows(0, "p", [20.0], [20.0])
    with pytest.raises(ValueError, match="no interleaved reference step times"):
        image_speedups([meta | {"ref_step_seconds": None}, ref])
    with pytest.raises(ValueError, match="no 'dip_1000' row for den_25 / d image 0"):
        image_speedups([meta])
    with pytest.raises(ValueError, match="no rows of method 'metadip'"):
        image_speedups([ref])


def test_a_reference_run_on_the_first_images_pairs_on_those():
    first = rows(0, "a", [20, 30], [20, 30, 30, 30])
    second_meta, _ = rows(1, "b", [30, 30], [20, 20, 20, 30])
    (s,) = image_speedups([*first, second_meta])  # DIP ran on image 0 only
    assert s.image_index == 0 and s.speedup == pytest.approx(2.0)
