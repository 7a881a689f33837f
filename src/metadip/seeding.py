"""Derived seeds: independent, reproducible generators for a tuple of integer keys."""

from __future__ import annotations

import hashlib

import numpy as np
import torch


def seeded_generator(*keys: int) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded from ``keys`` (e.g. (run seed, step, purpose)) via SeedSequence."""
    seed = int(np.random.SeedSequence(list(keys)).generate_state(1, dtype=np.uint64)[0] >> 1)
    return torch.Generator().manual_seed(seed)


def name_key(name: str) -> int:
    """A stable 63-bit integer key for a name (task, dataset, method), for :func:`seeded_generator`."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big") >> 1
