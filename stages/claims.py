"""Stage: the verdicts on the paper's claims (config section ``claims``) from the evaluation shards
of the methods they name: holds, fails or inconclusive per setting, as PREFIX.json and PREFIX.md.
Needs only those methods' shards (MetaDIP, its control and replicates, DIP, the rivals), not the
baselines', so the verdict can be read before the whole evaluation has run."""

from __future__ import annotations

import json
import sys

from metadip.core.atomic import write_text
from metadip.pipeline.config import ConfigError, check_pipeline_config, load_config
from metadip.pipeline.stage import INPUT_ERRORS, fail, stage_parser
from metadip.reporting.claims import check_claims, claims_markdown
from metadip.reporting.results import read_shards
from metadip.reporting.settings import report_settings


def main(argv: list[str] | None = None) -> int:
    p = stage_parser(__doc__)
    p.add_argument("--shards", nargs="*", required=True, help="shard parquet files from stages/evaluate.py")
    p.add_argument("--out", required=True, help="output prefix: PREFIX.json and PREFIX.md")
    a = p.parse_args(argv)
    try:
        settings = report_settings(check_pipeline_config(load_config(a.config), a.config))
        if not settings.claims.enabled:
            raise ConfigError(f"{a.config}: claims.enabled is false; set it to true to check the claims")
        verdict = check_claims(read_shards(a.shards).to_pylist(), settings)
    except INPUT_ERRORS as err:
        return fail("claims", err)
    write_text(f"{a.out}.json", json.dumps(verdict, indent=2) + "\n")
    write_text(f"{a.out}.md", claims_markdown(verdict, settings.tasks))
    for v in verdict["verdicts"]:
        n = v["counts"]
        print(
            f"claim {v['claim']}: {v['verdict']} - holds in {n['holds']}, fails in {n['fails']}, inconclusive in "
            f"{n['inconclusive']} of {v['settings']} settings - {v['text']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
