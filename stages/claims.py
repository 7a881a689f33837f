"""Stage: the verdicts on the paper's claims from the evaluation shards of the methods they name, as the
protocol file says (--protocol; the config's ``claims`` section names who plays each role): holds,
fails, inconclusive or underpowered per setting, as PREFIX.json and PREFIX.md (both carry the
protocol's SHA-256), and the DVC metrics (per task setting and image class: the checks' verdict counts
and the headline gap). Needs only those methods' shards, not the baselines', so the verdict can be
read before the whole evaluation has run. With ``claims.confirmatory`` the read is recorded in the
ledger (--ledger) and labelled confirmatory or exploratory (:mod:`metadip.reporting.ledger`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from metadip.core.atomic import atomic_paths
from metadip.pipeline.config import ConfigError
from metadip.pipeline.records import JSON_KEY
from metadip.pipeline.stage import INPUT_ERRORS, fail, load_stage_config, stage_parser
from metadip.pipeline.steps import Steps
from metadip.reporting.claims import check_claims, claims_markdown, headline
from metadip.reporting.dvc_views import metrics_files, write_folder
from metadip.reporting.ledger import append_read, label_read, preamble
from metadip.reporting.protocol import load_protocol, verdict_hash
from metadip.reporting.results import read_shards
from metadip.reporting.settings import report_settings

PROTOCOL = Path(__file__).resolve().parents[1] / "config" / "protocol.yaml"  # the project's, versioned


def main(argv: list[str] | None = None) -> int:
    p = stage_parser(__doc__)
    p.add_argument("--shards", nargs="*", required=True, help="shard parquet files from stages/evaluate.py")
    p.add_argument("--out", required=True, help="output prefix: PREFIX.json and PREFIX.md")
    p.add_argument("--metrics", required=True, help="output folder: <task>_<class>.json and all.json (DVC metrics)")
    p.add_argument("--protocol", default=str(PROTOCOL), help="the claims protocol (default: %(default)s)")
    p.add_argument("--ledger", help="the confirmatory ledger (docs/confirmatory-ledger.tsv); needed when confirmatory")
    a = p.parse_args(argv)
    try:
        config = load_stage_config(a)
        settings = report_settings(config)
        if not settings.claims.enabled:
            raise ConfigError(f"{a.config}: claims.enabled is false; set it to true to check the claims")
        protocol = load_protocol(a.protocol)
        if settings.claims.confirmatory and not a.ledger:
            raise ConfigError(f"{a.config}: claims.confirmatory is true but no --ledger was given; pass the ledger")
        rows = read_shards(a.shards, config).to_pylist()
        verdict = check_claims(rows, settings, protocol)
        recipe = Steps(config).rule_hash("claims")
        verdict[JSON_KEY] = verdict_hash(recipe, protocol.sha256)
        metrics = {
            f"{name}.json": json.dumps(m, indent=2, sort_keys=True) + "\n"
            for name, m in metrics_files(verdict, headline(rows, settings), settings).items()
        }
        read, new = None, False
        if settings.claims.confirmatory:
            read, new = label_read(a.ledger, rows, protocol.sha256, recipe, f"{a.out}.json")
            verdict["read"] = {"label": read.label, "date": read.date, "recipe_hash": recipe, "ledger": a.ledger}
        with atomic_paths(f"{a.out}.json", f"{a.out}.md") as (js, md):
            js.write_text(json.dumps(verdict, indent=2) + "\n", encoding="utf-8")
            md.write_text(claims_markdown(verdict, settings.tasks, preamble=preamble(read) if read else ""), "utf-8")
            write_folder(a.metrics, metrics, ".json")
        if new:
            append_read(a.ledger, read)  # after the documents it names are written
    except INPUT_ERRORS as err:
        return fail("claims", err)
    for v in verdict["verdicts"]:
        n = v["counts"]
        print(
            f"claim {v['claim']} ({v['reading']}): {v['verdict']} - holds in {n['holds']}, fails in {n['fails']}, "
            f"inconclusive in {n['inconclusive']}, underpowered in {n['underpowered']} of {v['settings']} settings "
            f"- {v['text']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
