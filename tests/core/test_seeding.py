"""Derived seeds: reproducible, and distinct for distinct key tuples (also of different lengths)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from metadip.core.seeding import derived_seed, name_key, seeded_generator


def test_numpy_seed_sequence_ignores_trailing_zeros_which_derived_seeds_do_not():
    raw = [np.random.SeedSequence(k).generate_state(1)[0] for k in ([0, 3], [0, 3, 0])]
    assert raw[0] == raw[1]  # the pitfall
    assert derived_seed(0, 3) != derived_seed(0, 3, 0)


def test_derived_seeds_are_stable_distinct_and_63_bit():
    keys = [k for n in range(1, 4) for k in itertools.product(range(3), repeat=n)]
    seeds = [derived_seed(*k) for k in keys]
    assert len(set(seeds)) == len(keys)
    assert all(0 <= s < 2**63 for s in seeds)
    assert seeds == [derived_seed(*k) for k in keys]
    a, b = seeded_generator(5, 1, name_key("den_25")), seeded_generator(5, 1, name_key("den_25"))
    assert torch.equal(torch.rand(4, generator=a), torch.rand(4, generator=b))
    with pytest.raises(ValueError, match="non-negative"):
        derived_seed(-1)
