"""Stage: gather the evaluation shards into one results table (parquet), the DVC metrics summary
(per task and dataset: the method's and DIP(1000)'s mean PSNR, their paired gap with its 95% interval
over photographs, the speed-up), every method's means (CSV) and the convergence CSV of Figure 2.
The claims' verdicts: stages/claims.py."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pyarrow.parquet as pq

from metadip.core.atomic import atomic_path, write_text
from metadip.pipeline.config import check_pipeline_config, load_config
from metadip.pipeline.stage import INPUT_ERRORS, fail, stage_parser
from metadip.reporting.claims import headline
from metadip.reporting.results import read_shards
from metadip.reporting.settings import report_settings
from metadip.reporting.tables import convergence_csv, convergence_rows, means_csv, method_means


def main(argv: list[str] | None = None) -> int:
    p = stage_parser(__doc__)
    p.add_argument("--shards", nargs="+", required=True, help="shard parquet files from stages/evaluate.py")
    p.add_argument("--results", required=True, help="output: all rows as one parquet file")
    p.add_argument("--summary", required=True, help="output: JSON headline metrics (DVC metrics)")
    p.add_argument("--means", required=True, help="output: CSV of every method's mean PSNR and seconds")
    p.add_argument("--convergence", required=True, help="output: convergence CSV (NMSE per iteration)")
    a = p.parse_args(argv)
    try:
        settings = report_settings(check_pipeline_config(load_config(a.config), a.config))
        table = read_shards(a.shards)
        rows = table.to_pylist()
        # everything is computed before anything is written: rows that do not pair up write nothing
        summary = headline(rows, settings)
    except INPUT_ERRORS as err:
        return fail("aggregate", err)
    with atomic_path(a.results) as tmp:
        pq.write_table(table, tmp)
    write_text(a.summary, json.dumps(summary, indent=2, sort_keys=True) + "\n")
    write_text(a.means, means_csv(method_means(rows)))
    write_text(a.convergence, convergence_csv(convergence_rows(rows, settings.methods)))
    print(
        f"aggregated {len(a.shards)} shards, {len(rows)} rows -> {Path(a.results)}, {Path(a.summary)}, "
        f"{Path(a.means)}, {Path(a.convergence)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
