"""Inference step sizes are read per step from K + 1 rows, never laid out for every step."""

from __future__ import annotations

import time
import tracemalloc

import pytest
import torch
from builders import tiny_model
from conftest import gen

import metadip.meta.inner_loop as inner_loop
from metadip.meta.inner_loop import InnerSettings, MetaModel, solve, step_size_schedule
from metadip.physics.operators import Denoising

STEPS = 10**9


@pytest.mark.parametrize("rule", ["last", "mean"])
def test_the_schedule_matches_the_beyond_k_rule_exactly(rule):
    model = MetaModel(tiny_model().prior, InnerSettings(steps=3, beyond_k=rule))
    with torch.no_grad():
        model.log_lr.copy_(torch.rand(model.log_lr.shape, generator=gen(0)).log())
    alphas = model.step_sizes().detach()
    schedule = step_size_schedule(model)
    for k in (0, 1, 2, 3, 4, 50, STEPS - 1):
        assert schedule[k] == model.step_size_at(alphas, k).tolist()


def test_a_schedule_for_a_billion_steps_is_built_in_bounded_memory_and_time():
    model = tiny_model()
    tracemalloc.start()
    t = time.perf_counter()
    schedule = step_size_schedule(model)
    rows = [schedule[k] for k in (*range(5), STEPS - 1)]
    seconds, (_, peak) = time.perf_counter() - t, tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert rows[-1] == rows[3] and seconds < 1 and peak < 1 << 20


class _Stop(Exception):
    pass


def test_a_solve_of_a_billion_steps_starts_stepping_at_once(monkeypatch):
    done = []

    def first_steps(iterable, **_):
        for k in iterable:
            if k == 3:
                raise _Stop
            done.append(k)
            yield k

    monkeypatch.setattr(inner_loop, "progress", first_steps)
    x = torch.rand(1, 16, 16, generator=gen(1))
    op = Denoising((1, 16, 16), 25, 0)
    y = op.measure(x, gen(2))
    t = time.perf_counter()
    with pytest.raises(_Stop):
        solve(tiny_model(), op, y, steps=STEPS, device="cpu", show_progress=False)
    assert done == [0, 1, 2] and time.perf_counter() - t < 10
