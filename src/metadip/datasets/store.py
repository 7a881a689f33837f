"""Read curated datasets: the manifest and the uint8 crops of a split, as tensors on demand.

The test split decides nothing: meta-training, DRUNet training, PnP tuning, ablations and sweeps
open their data with :func:`training_split`, which refuses anything but train and val with a
one-line error naming the config key of the reader.  :class:`CuratedSplit` itself opens any split;
only the evaluation (``stages/evaluate.py``, ``metadip.datasets.sampling``, ``stages/render.py`` for its
ground-truth panels) constructs it directly, which ``tests/test_provenance.py`` checks.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import torch
from torch import Tensor

from metadip.core.errors import InputError
from metadip.core.images import resize_images


def load_manifest(root: str | os.PathLike):
    """The manifest of a curated dataset folder as a ``pyarrow.Table``."""
    path = Path(root) / "manifest.parquet"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no curated dataset here; run stages/curate.py (or dvc pull) first")
    return pq.read_table(path)


#: the splits a reader other than the evaluation may open
TRAINING_SPLITS = ("train", "val")


class SplitError(InputError):
    """A reader other than the evaluation asked for the test split."""


class CuratedSplit:
    """One split of a curated dataset; ``split[i]`` is a float32 ``(3, S, S)`` image in [0, 1].

    Shards are memory-mapped, so opening a split costs nothing until images are read.  The
    evaluation's reader: everything else opens splits with :func:`training_split`.
    """

    def __init__(self, root: str | os.PathLike, split: str) -> None:
        if split not in ("train", "val", "test"):
            raise ValueError(f"split must be train, val or test, got {split!r}")
        self.root = Path(root)
        table = load_manifest(self.root)
        rows = table.filter(pc.equal(table["split"], split))
        self.split = split
        self.ids: list[str] = rows["id"].to_pylist()
        self._loc = list(zip(rows["shard"].to_pylist(), rows["index"].to_pylist(), strict=True))
        self._shards = {
            name: np.load(self.root / name, mmap_mode="r") for name in sorted(set(rows["shard"].to_pylist()))
        }

    def __len__(self) -> int:
        return len(self.ids)

    def uint8(self, i: int) -> np.ndarray:
        shard, index = self._loc[i]
        return np.asarray(self._shards[shard][index])

    def __getitem__(self, i: int) -> Tensor:
        return torch.from_numpy(self.uint8(i).astype(np.float32) / 255.0).permute(2, 0, 1).contiguous()

    def stack(self, indices: list[int] | None = None) -> Tensor:
        """Images ``indices`` (default: all) as one ``(N, 3, S, S)`` tensor."""
        idx = range(len(self)) if indices is None else indices
        return torch.stack([self[i] for i in idx]) if len(idx) else torch.empty(0)


def training_split(root: str | os.PathLike, split: str, *, key: str) -> CuratedSplit:
    """Split ``split`` (train or val) of the curated dataset at ``root`` for a reader other than the
    evaluation; ``key`` is the config key of that reader (e.g. ``baselines.pnp.val_images``), named
    in the error.  Raises :class:`SplitError` for the test split (or any other name): test images
    may be used for evaluation only, never to train, tune, select or ablate anything."""
    if split not in TRAINING_SPLITS:
        raise SplitError(
            f"{key}: may read only the train and val splits of {root}, not {split!r} "
            "(the test split is for evaluation only: evaluate.split)"
        )
    return CuratedSplit(root, split)


def training_images(root: str | os.PathLike, split: str, size: int, *, key: str) -> Tensor:
    """All images of :func:`training_split` ``split`` of ``root``, resized to ``size`` px:
    ``(N, 3, size, size)`` in [0, 1].  Raises ``ValueError`` naming ``root`` when the split is empty."""
    images = training_split(root, split, key=key).stack()
    if len(images) == 0:
        raise ValueError(f"{root}: the {split} split is empty; curate the dataset with {split} crops ({key})")
    return resize_images(images, size)
