"""Derived seeds: independent, reproducible generators for a tuple of integer keys."""

from __future__ import annotations

import hashlib

import numpy as np
import torch


def derived_seed(*keys: int) -> int:
    """A 63-bit seed derived from integer ``keys`` (e.g. (run seed, purpose, step)) via numpy's
    SeedSequence.  The number of keys goes in first: SeedSequence ignores trailing zeros
    (``[0, 3]`` and ``[0, 3, 0]`` give one stream), so without it keys of different lengths could
    collide; with it they cannot."""
    if any(k < 0 for k in keys):
        raise ValueError(f"seed keys must be non-negative integers, got {keys}")
    return int(np.random.SeedSequence([len(keys), *keys]).generate_state(1, dtype=np.uint64)[0] >> 1)


def seeded_generator(*keys: int) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with :func:`derived_seed` of ``keys``."""
    return torch.Generator().manual_seed(derived_seed(*keys))


def name_key(name: str) -> int:
    """A stable 63-bit integer key for a name (task, dataset, method), for :func:`seeded_generator`."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big") >> 1
