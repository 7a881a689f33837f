"""Stage: the verdicts on the paper's claims (config section ``claims``) from the evaluation shards
of the methods they name: holds, fails or inconclusive per setting, as PREFIX.json and PREFIX.md,
and the DVC metrics (per task setting and image class: the checks' verdict counts and the headline gap).
Needs only those methods' shards (MetaDIP, its control and replicates, DIP, the rivals), not the
baselines', so the verdict can be read before the whole evaluation has run."""

from __future__ import annotations

import json
import sys

from metadip.core.atomic import atomic_paths
from metadip.pipeline.config import ConfigError
from metadip.pipeline.records import JSON_KEY
from metadip.pipeline.stage import INPUT_ERRORS, fail, load_stage_config, stage_parser
from metadip.pipeline.steps import Steps
from metadip.reporting.claims import check_claims, claims_markdown, headline
from metadip.reporting.dvc_views import metrics_files, write_folder
from metadip.reporting.results import read_shards
from metadip.reporting.settings import report_settings


def main(argv: list[str] | None = None) -> int:
    p = stage_parser(__doc__)
    p.add_argument("--shards", nargs="*", required=True, help="shard parquet files from stages/evaluate.py")
    p.add_argument("--out", required=True, help="output prefix: PREFIX.json and PREFIX.md")
    p.add_argument("--metrics", required=True, help="output folder: <task>_<class>.json and all.json (DVC metrics)")
    a = p.parse_args(argv)
    try:
        config = load_stage_config(a)
        settings = report_settings(config)
        if not settings.claims.enabled:
            raise ConfigError(f"{a.config}: claims.enabled is false; set it to true to check the claims")
        rows = read_shards(a.shards, config).to_pylist()
        verdict = check_claims(rows, settings)
        verdict[JSON_KEY] = Steps(config).rule_hash("claims")
        metrics = {
            f"{name}.json": json.dumps(m, indent=2, sort_keys=True) + "\n"
            for name, m in metrics_files(verdict, headline(rows, settings), settings).items()
        }
        with atomic_paths(f"{a.out}.json", f"{a.out}.md") as (js, md):
            js.write_text(json.dumps(verdict, indent=2) + "\n", encoding="utf-8")
            md.write_text(claims_markdown(verdict, settings.tasks), encoding="utf-8")
            write_folder(a.metrics, metrics, ".json")
    except INPUT_ERRORS as err:
        return fail("claims", err)
    for v in verdict["verdicts"]:
        n = v["counts"]
        print(
            f"claim {v['claim']}: {v['verdict']} - holds in {n['holds']}, fails in {n['fails']}, inconclusive in "
            f"{n['inconclusive']} of {v['settings']} settings - {v['text']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
