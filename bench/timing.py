"""Shared timing helper of the benchmark scripts."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

from metadip.models.build import architecture_from_config
from metadip.pipeline.config import load_config


def timed(fn: Callable[[], object], reps: int, warmup: int = 1) -> float:
    """Median wall seconds of ``fn()`` over ``reps`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def default_metadip(config_path: str) -> tuple[dict[str, Any], tuple[int, int, int], dict[str, Any]]:
    """The config's ``metadip`` entry, its RGB image shape and its architecture description."""
    meta = load_config(config_path)["meta"]
    method, size = meta["methods"]["metadip"], meta["image_size"]
    shape = (3, size, size)
    return method, shape, architecture_from_config(method["network"], method["arch"], shape)
