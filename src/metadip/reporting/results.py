"""The evaluation shards of a run gathered into one results table."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from metadip.core.errors import InputError, ResultError
from metadip.pipeline.config import ConfigError
from metadip.pipeline.evaluation import METRICS
from metadip.pipeline.settings import check_shard_rows

#: the results table's row order: by table, task setting, dataset, method id and image
ORDER = ("table", "task", "dataset", "method", "image_index")


def _check_finite(table: pa.Table, path: str | os.PathLike) -> None:
    """Raise :class:`ResultError` naming ``path`` and the first column of :data:`METRICS` holding
    NaN or an infinity (nulls pass)."""
    for name in METRICS:
        if name in table.column_names and pa.types.is_floating(table[name].type):
            finite = pc.is_finite(table[name])
            if pc.any(pc.invert(finite)).as_py():
                row = pc.index(finite, False).as_py()
                raise ResultError(
                    f"{path}: {name} = {table[name][row].as_py()} in row {row}, not a finite number; "
                    "delete the file and rerun the workflow"
                )


#: the columns that say which config a shard's rows were computed under
PLAN_COLUMNS = ("task", "dataset", "method_name", "config_hash")


def read_shards(paths: Sequence[str | os.PathLike], config: Mapping[str, Any] | None = None) -> pa.Table:
    """The rows of every shard parquet file in one table sorted by :data:`ORDER` (columns a shard
    lacks are null); :class:`InputError` naming the first unreadable file, :class:`ResultError` the first
    holding a non-finite metric. With ``config``, ConfigError naming the first shard with a row computed
    under another config (:func:`metadip.pipeline.settings.check_shard_rows`)."""
    tables = []
    for path in paths:
        try:
            tables.append(pq.read_table(path))
        except (OSError, pa.ArrowInvalid) as err:
            raise InputError(f"{path}: not a readable shard ({err}); delete it and rerun the workflow") from None
        _check_finite(tables[-1], path)
        if config is not None:
            _check_plan(path, tables[-1], config)
    if not tables:
        raise InputError("no shards to gather; give at least one shard of stages/evaluate.py")
    table = pa.concat_tables(tables, promote_options="default")
    missing = [k for k in ORDER if k not in table.column_names]
    if missing:
        raise InputError(
            f"{paths[0]}{' ...' * (len(paths) > 1)}: no column {', '.join(missing)}; not evaluation shards "
            "(stages/evaluate.py writes them)"
        )
    keys = [table[k].to_pylist() for k in ORDER]
    return table.take(sorted(range(table.num_rows), key=lambda i: tuple(k[i] for k in keys)))


def _check_plan(path: str | os.PathLike, table: pa.Table, config: Mapping[str, Any]) -> None:
    """ConfigError unless every row of shard ``path`` (``table``) was computed under ``config``."""
    missing = [k for k in PLAN_COLUMNS if k not in table.column_names]
    if missing:
        raise ConfigError(
            f"{path}: no column {', '.join(missing)}: cannot tell which config its rows were computed under; "
            "delete the shard and rerun snakemake"
        )
    check_shard_rows(str(path), list(zip(*(table[k].to_pylist() for k in PLAN_COLUMNS), strict=True)), config)
