"""The step clock: cumulative seconds of the timed sections only, one entry per section."""

from __future__ import annotations

import time

import pytest

from metadip.core.step_clock import StepClock


def test_counts_only_the_timed_sections():
    clock = StepClock("cpu")
    for _ in range(3):
        clock.start()
        time.sleep(0.01)
        clock.stop()
        time.sleep(0.2)  # untimed work between steps
    seconds = clock.cumulative()
    assert len(seconds) == 3 and seconds == sorted(seconds)
    assert 0.03 <= seconds[-1] < 0.3  # three 10 ms sections (with slack for a loaded machine), not the 0.6 s between


def test_stop_needs_a_start():
    with pytest.raises(RuntimeError, match="without a matching start"):
        StepClock("cpu").stop()
