"""Shared fixtures: small images and a quiet, deterministic torch."""

from __future__ import annotations

import pytest
import torch

from metadip.images import bundled_image

torch.set_num_threads(1)  # small tensors: one thread is faster and steady when cores are shared


@pytest.fixture(scope="session")
def astronaut64() -> torch.Tensor:
    """The bundled astronaut photograph, (3, 64, 64) in [0, 1]."""
    return bundled_image("astronaut", 64)


@pytest.fixture(scope="session")
def camera32() -> torch.Tensor:
    """The bundled cameraman photograph, grey, (1, 32, 32) in [0, 1]."""
    return bundled_image("camera", 32, channels=1)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)
