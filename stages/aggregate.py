"""Stage: gather the evaluation shards into one results table (parquet), the DVC metrics summary
(mean PSNR and seconds per task, dataset and method) and the convergence CSV of Figure 2."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from metadip.atomic import atomic_path, write_text
from metadip.config import ConfigError, default_config_path, load_config
from metadip.tables import convergence_csv, convergence_rows, metrics_summary


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--config", default=default_config_path(), help="config file (default: $METADIP_CONFIG or config/config.yaml: %(default)s)")
    p.add_argument("--shards", nargs="+", required=True, help="shard parquet files from stages/evaluate.py")
    p.add_argument("--results", required=True, help="output: all rows as one parquet file")
    p.add_argument("--summary", required=True, help="output: JSON metrics summary")
    p.add_argument("--convergence", required=True, help="output: convergence CSV (NMSE per iteration)")
    a = p.parse_args(argv)
    try:
        config = load_config(a.config)
        tables = []
        for path in a.shards:
            try:
                tables.append(pq.read_table(path))
            except (OSError, pa.ArrowInvalid) as err:
                raise ConfigError(f"{path}: not a readable shard ({err}); delete it and rerun the workflow") from None
    except ConfigError as err:
        print(f"aggregate: error: {err}", file=sys.stderr)
        return 1
    table = pa.concat_tables(tables, promote_options="default")
    order = sorted(range(table.num_rows), key=lambda i: (table["table"][i].as_py(), table["task"][i].as_py(), table["dataset"][i].as_py(),
                                                          table["method"][i].as_py(), table["image_index"][i].as_py()))
    table = table.take(order)
    rows = table.to_pylist()
    with atomic_path(a.results) as tmp:
        pq.write_table(table, tmp)
    write_text(a.summary, json.dumps(metrics_summary(rows), indent=2, sort_keys=True) + "\n")
    write_text(a.convergence, convergence_csv(convergence_rows(rows, config)))
    print(f"aggregated {len(a.shards)} shards, {len(rows)} rows -> {Path(a.results)}, {Path(a.summary)}, {Path(a.convergence)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
