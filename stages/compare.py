"""Stage: paired comparisons beyond the paper's claims, read like them (holds, fails or
inconclusive per setting and class), e.g. the trained DRUNet within 1 dB of BM3D, or MetaDIP within
2 dB of BM3D at σ=25, from evaluation shards (or a gathered results.parquet), as PREFIX.json and
PREFIX.md. A method's replicates (``claims.replicates``) are averaged per image first (not with
``--no-replicates``).

    stages/compare.py --config results/study/config.yaml --shards results/study/results.parquet \\
        --pair drunet:bm3d:-1 --tasks den_15 den_25 --out results/study/comparisons
"""

from __future__ import annotations

import json
import sys

from metadip.core.atomic import write_texts
from metadip.core.errors import InputError
from metadip.pipeline.stage import INPUT_ERRORS, fail, load_stage_config, stage_parser
from metadip.reporting.claims import check_comparisons, claims_markdown
from metadip.reporting.results import read_shards
from metadip.reporting.settings import report_settings


def pair(text: str) -> tuple[str, str, float]:
    """'METHOD:VERSUS:BOUND' → (method, versus, bound in dB; negative: 'within |bound| dB')."""
    parts = text.split(":")
    try:
        if len(parts) != 3:
            raise ValueError
        return parts[0], parts[1], float(parts[2])
    except ValueError:
        raise InputError(f"--pair {text!r}: expected METHOD:VERSUS:BOUND_DB, e.g. drunet:bm3d:-1") from None


def main(argv: list[str] | None = None) -> int:
    p = stage_parser(__doc__)
    p.add_argument("--shards", nargs="+", required=True, help="shard parquet files (or results.parquet)")
    p.add_argument("--pair", nargs="+", required=True, help="METHOD:VERSUS:BOUND_DB (method − versus ≥ bound)")
    p.add_argument("--tasks", nargs="+", required=True, help="task settings of evaluate.tasks, e.g. den_15 den_25")
    p.add_argument("--out", required=True, help="output prefix: PREFIX.json and PREFIX.md")
    p.add_argument(
        "--no-replicates",
        action="store_true",
        help="read each method from its own rows alone (claims.replicates not averaged in, e.g. seeds not run)",
    )
    a = p.parse_args(argv)
    try:
        pairs = [pair(t) for t in a.pair]
        config = load_stage_config(a)
        if a.no_replicates:
            config["claims"]["replicates"] = {}
        settings = report_settings(config)
        result = check_comparisons(read_shards(a.shards).to_pylist(), settings, pairs, a.tasks)
        write_texts(
            {
                f"{a.out}.json": json.dumps(result, indent=2) + "\n",
                f"{a.out}.md": claims_markdown(result, settings.tasks, paper=False),
            }
        )
    except INPUT_ERRORS as err:
        return fail("compare", err)
    for v in result["verdicts"]:
        n = v["counts"]
        print(
            f"{v['claim']}: {v['verdict']} - holds in {n['holds']}, fails in {n['fails']}, inconclusive in "
            f"{n['inconclusive']} of {v['settings']} settings - {v['text']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
