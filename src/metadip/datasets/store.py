"""Read curated datasets: the manifest and the uint8 crops of a split, as tensors on demand.

The test split decides nothing: meta-training, DRUNet training, PnP tuning, ablations and sweeps
open their data with :func:`training_split`, which refuses anything but train and val with a
one-line error naming the config key of the reader.  :class:`CuratedSplit` itself opens any split;
only the evaluation (``stages/evaluate.py``, ``metadip.datasets.sampling``, ``stages/render.py`` for its
ground-truth panels) constructs it directly, which ``tests/core/test_provenance.py`` checks.

Nothing in a folder is trusted unchecked.  Curation records the folder in the schema metadata of
``manifest.parquet`` (key ``metadip.curated``, JSON): the crop size, the row count and, per shard,
its split, shape, dtype, size in bytes and sha256.  The record lives inside the manifest rather than
in a sidecar so that one file describes the folder: the manifest's sha256, which checkpoints and
artifacts keep as the dataset's identity, then covers the pixels too, and no second file can be
lost or left out of step.  :func:`open_curated` checks the manifest against its record and
:func:`check_shard` each shard against it (hashed once per process per file version) before any
reader uses them; a bad folder is a :class:`CuratedDataError` naming the file and the fix.
"""

from __future__ import annotations

import json
import math
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import torch
from torch import Tensor

from metadip.core.atomic import atomic_path
from metadip.core.errors import InputError
from metadip.core.hashing import file_sha256
from metadip.core.images import resize_images

#: the manifest's columns, one row per crop
MANIFEST_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("split", pa.string()),
        ("shard", pa.string()),
        ("index", pa.int32()),
        ("collection", pa.string()),
        ("source_file", pa.string()),
        ("source_sha256", pa.string()),
        ("box_x0", pa.float64()),
        ("box_y0", pa.float64()),
        ("box_x1", pa.float64()),
        ("box_y1", pa.float64()),
        ("scale", pa.float64()),
        ("texture_std", pa.float32()),
    ]
)
#: schema metadata key of the folder's record, and the record's format version
RECORD_KEY = b"metadip.curated"
RECORD_FORMAT = 1
#: what to do about a folder that fails a check
REFETCH = "re-curate it (snakemake --forcerun curate) or dvc pull a current one"

#: the splits a reader other than the evaluation may open
TRAINING_SPLITS = ("train", "val")


class CuratedDataError(InputError):
    """A curated dataset folder that is missing, from an earlier version, inconsistent or altered."""


class SplitError(InputError):
    """A reader other than the evaluation asked for the test split."""


# -- the record: written by curation --------------------------------------------------------------


_SHA256: dict[tuple[str, int, int, int], str] = {}


def shard_sha256(path: Path) -> str:
    """sha256 of ``path``, computed once per process per (path, size, mtime_ns, inode)."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ino)
    if key not in _SHA256:
        _SHA256[key] = file_sha256(path)
    return _SHA256[key]


def write_manifest(folder: Path, table: pa.Table, crop_size: int) -> None:
    """Write ``table`` (:data:`MANIFEST_SCHEMA`) atomically as ``folder/manifest.parquet`` with the
    record of the folder: ``crop_size`` (px), the row count and each shard the rows name (split,
    shape, dtype, bytes, sha256 of ``folder/<shard>``, which must already be written)."""
    shards: dict[str, dict[str, Any]] = {}
    for name, split in sorted(set(zip(table["shard"].to_pylist(), table["split"].to_pylist(), strict=True))):
        arr = np.load(folder / name, mmap_mode="r")
        shards[name] = {
            "split": split,
            "shape": list(arr.shape),
            "dtype": arr.dtype.name,
            "bytes": (folder / name).stat().st_size,
            "sha256": shard_sha256(folder / name),
        }
    record = {"format": RECORD_FORMAT, "crop_size": crop_size, "rows": table.num_rows, "shards": shards}
    table = table.replace_schema_metadata({RECORD_KEY: json.dumps(record, sort_keys=True)})
    with atomic_path(folder / "manifest.parquet") as tmp:
        pq.write_table(table, tmp)


# -- the checks: every reader ---------------------------------------------------------------------


@dataclass(frozen=True)
class CuratedFolder:
    """A curated folder whose manifest agrees with its record: ``table`` (the manifest's rows),
    ``crop_size`` (px) and ``shards`` (name → split, shape, dtype, bytes, sha256)."""

    root: Path
    table: pa.Table
    crop_size: int
    shards: dict[str, dict[str, Any]]

    @property
    def manifest(self) -> Path:
        return self.root / "manifest.parquet"


def open_curated(root: str | os.PathLike, crop_size: int | None = None) -> CuratedFolder:
    """The curated folder at ``root`` after checking its manifest: readable, written with a record,
    every column with its type and no missing key value, as many rows as recorded, each row in a
    recorded shard of its split at an index the shard holds (each index once).  ``crop_size``: the
    crop side the reader expects (``curate.crop_size``, px); None accepts the recorded one.  Raises
    :class:`CuratedDataError` naming the manifest.  The shards are checked by :func:`check_shard`."""
    root = Path(root)
    path = root / "manifest.parquet"
    if not path.is_file():
        raise CuratedDataError(f"{path}: no curated dataset here; run stages/curate.py (or dvc pull) first")
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as err:
        raise CuratedDataError(f"{path}: not a readable parquet manifest ({err}); {REFETCH}") from None
    record = _record(path, table.schema.metadata or {})
    if crop_size is not None and record["crop_size"] != crop_size:
        raise CuratedDataError(
            f"{path}: curated at crop size {record['crop_size']} px, but curate.crop_size is {crop_size}; {REFETCH}"
        )
    _check_columns(path, table)
    _check_rows(path, table, record)
    return CuratedFolder(root, table, record["crop_size"], record["shards"])


def _record(path: Path, metadata: dict[bytes, bytes]) -> dict[str, Any]:
    """The record in the manifest's schema metadata, its structure checked, each shard recorded
    as uint8 ``(N, S, S, 3)`` crops with S the recorded crop size."""
    if RECORD_KEY not in metadata:
        raise CuratedDataError(f"{path}: curated by an earlier version (no shard hashes recorded); {REFETCH}")
    try:
        record = json.loads(metadata[RECORD_KEY])
        ok = record["format"] == RECORD_FORMAT and _is_int(record["crop_size"]) and _is_int(record["rows"])
        for shard in record["shards"].values():
            ok = ok and shard["split"] in ("train", "val", "test") and _is_int(shard["bytes"])
            ok = ok and isinstance(shard["sha256"], str) and isinstance(shard["dtype"], str)
            ok = ok and isinstance(shard["shape"], list) and all(map(_is_int, shard["shape"]))
    except (ValueError, TypeError, KeyError, AttributeError):
        ok = False
    if not ok:
        raise CuratedDataError(
            f"{path}: malformed record of the folder (schema metadata {RECORD_KEY.decode()}); {REFETCH}"
        )
    s = record["crop_size"]
    for name, shard in record["shards"].items():
        if shard["dtype"] != "uint8" or shard["shape"][1:] != [s, s, 3]:
            raise CuratedDataError(
                f"{path}: records shard {name} as {shard['dtype']} {tuple(shard['shape'])}, "
                f"expected uint8 crops (N, {s}, {s}, 3); {REFETCH}"
            )
    return record


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _check_columns(path: Path, table: pa.Table) -> None:
    for field in MANIFEST_SCHEMA:
        if field.name not in table.column_names:
            raise CuratedDataError(f"{path}: no '{field.name}' column; {REFETCH}")
        have = table.schema.field(field.name).type
        if have != field.type:
            raise CuratedDataError(f"{path}: column '{field.name}' is {have}, expected {field.type}; {REFETCH}")
    for name in ("id", "split", "shard", "index"):
        if table[name].null_count:
            raise CuratedDataError(f"{path}: column '{name}' has missing values; {REFETCH}")


def _check_rows(path: Path, table: pa.Table, record: dict[str, Any]) -> None:
    if table.num_rows != record["rows"]:
        raise CuratedDataError(f"{path}: {table.num_rows} rows, but its record counts {record['rows']}; {REFETCH}")
    shards = record["shards"]
    indices: dict[str, list[int]] = defaultdict(list)
    for split, shard, index in zip(*(table[c].to_pylist() for c in ("split", "shard", "index")), strict=True):
        if shard not in shards:
            raise CuratedDataError(f"{path}: a row names shard {shard!r}, which its record does not list; {REFETCH}")
        if shards[shard]["split"] != split:
            raise CuratedDataError(
                f"{path}: a {split} row names shard {shard!r} of the {shards[shard]['split']} split; {REFETCH}"
            )
        indices[shard].append(index)
    for name, shard in shards.items():
        n = shard["shape"][0]
        if sorted(indices[name]) != list(range(n)):
            raise CuratedDataError(
                f"{path}: its rows name {len(indices[name])} crops of {name}, which holds {n} "
                f"(each index 0..{n - 1} once); {REFETCH}"
            )


def check_shard(folder: CuratedFolder, name: str) -> Path:
    """The path of shard ``name`` of ``folder`` after checking it: a file inside the folder, a
    ``.npy`` array of uint8 ``(N, S, S, 3)`` crops with the recorded shape, size and sha256.
    Raises :class:`CuratedDataError` naming the shard."""
    rec = folder.shards[name]
    pure = PurePosixPath(name)
    if pure.is_absolute() or ".." in pure.parts or pure.suffix != ".npy" or "\\" in name:
        raise CuratedDataError(f"{folder.manifest}: shard {name!r} is not a .npy file inside the folder; {REFETCH}")
    path = folder.root / name
    if not path.is_file():
        raise CuratedDataError(f"{path}: missing (the manifest lists it); {REFETCH}")
    shape, dtype, offset = _npy_header(path)
    s = folder.crop_size
    if dtype != np.uint8 or len(shape) != 4 or shape[1:] != (s, s, 3):
        raise CuratedDataError(
            f"{path}: {dtype} array of shape {shape}, expected uint8 crops (N, {s}, {s}, 3); {REFETCH}"
        )
    if list(shape) != rec["shape"]:
        raise CuratedDataError(f"{path}: holds {shape[0]} crops, the manifest records {rec['shape'][0]}; {REFETCH}")
    size, need = path.stat().st_size, offset + math.prod(shape) * dtype.itemsize
    if size != need or size != rec["bytes"]:
        raise CuratedDataError(
            f"{path}: {size} bytes, its {shape[0]} crops take {need} (truncated or padded); {REFETCH}"
        )
    if shard_sha256(path) != rec["sha256"]:
        raise CuratedDataError(f"{path}: content differs from the sha256 the manifest records; {REFETCH}")
    return path


def _npy_header(path: Path) -> tuple[tuple[int, ...], np.dtype, int]:
    """(shape, dtype, data offset in bytes) of the ``.npy`` file ``path``, read from its header."""
    readers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
    with path.open("rb") as f:
        try:
            version = np.lib.format.read_magic(f)
            shape, fortran, dtype = readers[version](f)
        except (ValueError, KeyError, EOFError, SyntaxError):
            raise CuratedDataError(f"{path}: not a .npy array file; {REFETCH}") from None
        if fortran:
            raise CuratedDataError(f"{path}: a Fortran-ordered array, not curated crops; {REFETCH}")
        return shape, dtype, f.tell()


def load_manifest(root: str | os.PathLike, crop_size: int | None = None) -> pa.Table:
    """The manifest of a curated dataset folder as a ``pyarrow.Table``, checked (:func:`open_curated`)."""
    return open_curated(root, crop_size).table


# -- reading splits -------------------------------------------------------------------------------


class CuratedSplit:
    """One split of a curated dataset; ``split[i]`` is a float32 ``(3, S, S)`` image in [0, 1].

    The manifest and the split's shards are checked first (:func:`open_curated`, :func:`check_shard`;
    ``crop_size``: the expected S, px); the shards are then memory-mapped, so images cost nothing
    until read.  ``sources[i]``: the source photograph of crop i (``collection/source_file``).  The
    evaluation's reader: everything else opens splits with :func:`training_split`.
    """

    def __init__(self, root: str | os.PathLike, split: str, *, crop_size: int | None = None) -> None:
        if split not in ("train", "val", "test"):
            raise ValueError(f"split must be train, val or test, got {split!r}")
        folder = open_curated(root, crop_size)
        self.root = folder.root
        rows = folder.table.filter(pc.equal(folder.table["split"], split))
        self.split = split
        self.ids: list[str] = rows["id"].to_pylist()
        self.sources = [
            f"{c}/{f}" for c, f in zip(*(rows[k].to_pylist() for k in ("collection", "source_file")), strict=True)
        ]
        self._loc = list(zip(rows["shard"].to_pylist(), rows["index"].to_pylist(), strict=True))
        self._shards = {
            name: np.load(check_shard(folder, name), mmap_mode="r", allow_pickle=False)
            for name in sorted(set(rows["shard"].to_pylist()))
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


def training_split(root: str | os.PathLike, split: str, *, key: str, crop_size: int | None = None) -> CuratedSplit:
    """Split ``split`` (train or val) of the curated dataset at ``root`` for a reader other than the
    evaluation; ``key`` is the config key of that reader (e.g. ``baselines.pnp.val_images``), named
    in the error; ``crop_size``: as for :class:`CuratedSplit`.  Raises :class:`SplitError` for the
    test split (or any other name): test images may be used for evaluation only, never to train,
    tune, select or ablate anything."""
    if split not in TRAINING_SPLITS:
        raise SplitError(
            f"{key}: may read only the train and val splits of {root}, not {split!r} "
            "(the test split is for evaluation only: evaluate.split)"
        )
    return CuratedSplit(root, split, crop_size=crop_size)


def training_images(
    root: str | os.PathLike, split: str, size: int, *, key: str, crop_size: int | None = None
) -> Tensor:
    """All images of :func:`training_split` ``split`` of ``root``, resized to ``size`` px:
    ``(N, 3, size, size)`` in [0, 1].  Raises :class:`CuratedDataError` naming ``root`` when the
    split is empty."""
    images = training_split(root, split, key=key, crop_size=crop_size).stack()
    if len(images) == 0:
        raise CuratedDataError(f"{root}: the {split} split is empty; curate the dataset with {split} crops ({key})")
    return resize_images(images, size)
