"""Stage: gather the evaluation shards into one results table (parquet), the headline summary
(per task and dataset: the method's and DIP(1000)'s mean PSNR, their paired gap with its 95% interval
over photographs, the speed-up), every method's means (CSV), the convergence CSV of Figure 2 and
the DVC plots (PSNR against step, a CSV per task setting and image class).
The claims' verdicts and the DVC metrics: stages/claims.py."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pyarrow.parquet as pq

from metadip.core.atomic import atomic_paths
from metadip.pipeline.records import METADATA_KEY
from metadip.pipeline.stage import INPUT_ERRORS, fail, load_stage_config, stage_parser
from metadip.pipeline.steps import Steps
from metadip.reporting.claims import headline
from metadip.reporting.dvc_views import plot_csv, psnr_curves, write_folder
from metadip.reporting.results import read_shards
from metadip.reporting.settings import report_settings
from metadip.reporting.tables import convergence_csv, convergence_rows, means_csv, method_means


def main(argv: list[str] | None = None) -> int:
    p = stage_parser(__doc__)
    p.add_argument("--shards", nargs="+", required=True, help="shard parquet files from stages/evaluate.py")
    p.add_argument("--results", required=True, help="output: all rows as one parquet file")
    p.add_argument("--summary", required=True, help="output: JSON headline per task and dataset")
    p.add_argument("--means", required=True, help="output: CSV of every method's mean PSNR and seconds")
    p.add_argument("--convergence", required=True, help="output: convergence CSV (NMSE per iteration)")
    p.add_argument("--plots", required=True, help="output folder: <task>_<class>.csv, mean PSNR per step (DVC plots)")
    a = p.parse_args(argv)
    try:
        config = load_stage_config(a)
        settings = report_settings(config)
        table = read_shards(a.shards, config)
        rows = table.to_pylist()
        # everything is computed before anything is written: rows that do not pair up write nothing
        texts = [
            json.dumps(headline(rows, settings), indent=2, sort_keys=True) + "\n",
            means_csv(method_means(rows)),
            convergence_csv(convergence_rows(rows, settings.methods)),
        ]
        plots = {f"{name}.csv": plot_csv(curve) for name, curve in psnr_curves(rows, settings).items()}
        with atomic_paths(a.results, a.summary, a.means, a.convergence) as (results, *tmps):
            record = {
                **(table.schema.metadata or {}),
                METADATA_KEY.encode(): Steps(config).rule_hash("aggregate").encode(),
            }
            pq.write_table(table.replace_schema_metadata(record), results)
            for tmp, text in zip(tmps, texts, strict=True):
                tmp.write_text(text, encoding="utf-8")
            write_folder(a.plots, plots, ".csv")
    except INPUT_ERRORS as err:
        return fail("aggregate", err)
    print(
        f"aggregated {len(a.shards)} shards, {len(rows)} rows -> {Path(a.results)}, {Path(a.summary)}, "
        f"{Path(a.means)}, {Path(a.convergence)}, {len(plots)} plots in {Path(a.plots)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
