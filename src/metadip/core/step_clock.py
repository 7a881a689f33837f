"""Timing of an optimiser's steps without a host sync inside the loop.

On a CUDA device each timed section is bracketed by two CUDA events, whose elapsed times are read
once, after the loop (one synchronisation); on the CPU, where work is synchronous, by
``time.perf_counter``. Work between sections (metrics, untimed read-outs) is not counted.
"""

from __future__ import annotations

import time
from itertools import accumulate

import torch


class StepClock:
    """Cumulative seconds of timed sections: ``start()`` … ``stop()`` once per step, then
    :meth:`cumulative` (one host sync on a GPU)."""

    def __init__(self, device: torch.device | str) -> None:
        self.cuda = torch.device(device).type == "cuda"
        self._marks: list = []
        self._open = None

    def start(self) -> None:
        if self.cuda:
            self._open = torch.cuda.Event(enable_timing=True)
            self._open.record()
        else:
            self._open = time.perf_counter()

    def stop(self) -> None:
        if self._open is None:
            raise RuntimeError("StepClock.stop() without a matching start()")
        if self.cuda:
            end = torch.cuda.Event(enable_timing=True)
            end.record()
            self._marks.append((self._open, end))
        else:
            self._marks.append(time.perf_counter() - self._open)
        self._open = None

    def cumulative(self) -> list[float]:
        """Seconds of all timed sections up to and including each one, one entry per ``stop()``."""
        if self.cuda:
            torch.cuda.synchronize()
            durations = [start.elapsed_time(end) / 1e3 for start, end in self._marks]
        else:
            durations = list(self._marks)
        return list(accumulate(durations))
