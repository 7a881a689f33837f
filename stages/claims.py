"""Stage: the verdicts on the paper's claims (config section ``claims``) from the evaluation shards
of the methods they name: holds, fails or inconclusive per setting, as PREFIX.json and PREFIX.md.
Needs only those methods' shards (MetaDIP, its control and replicates, DIP, the rivals), not the
baselines', so the verdict can be read before the whole evaluation has run."""

from __future__ import annotations

import json
import sys

from metadip.core.atomic import write_texts
from metadip.pipeline.config import ConfigError
from metadip.pipeline.records import JSON_KEY
from metadip.pipeline.stage import INPUT_ERRORS, fail, load_stage_config, stage_parser
from metadip.pipeline.steps import Steps
from metadip.reporting.claims import check_claims, claims_markdown
from metadip.reporting.results import read_shards
from metadip.reporting.settings import report_settings


def main(argv: list[str] | None = None) -> int:
    p = stage_parser(__doc__)
    p.add_argument("--shards", nargs="*", required=True, help="shard parquet files from stages/evaluate.py")
    p.add_argument("--out", required=True, help="output prefix: PREFIX.json and PREFIX.md")
    a = p.parse_args(argv)
    try:
        config = load_stage_config(a)
        settings = report_settings(config)
        if not settings.claims.enabled:
            raise ConfigError(f"{a.config}: claims.enabled is false; set it to true to check the claims")
        verdict = check_claims(read_shards(a.shards, config).to_pylist(), settings)
        verdict[JSON_KEY] = Steps(config).rule_hash("claims")
        write_texts(
            {
                f"{a.out}.json": json.dumps(verdict, indent=2) + "\n",
                f"{a.out}.md": claims_markdown(verdict, settings.tasks),
            }
        )
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
