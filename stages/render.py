"""Stage: render Tables 1–3 (Markdown, LaTeX, CSV with the paper's numbers beside ours), Figure 2
and Figures 3–5 from the aggregated results."""

from __future__ import annotations

import sys
from pathlib import Path

from metadip.datasets.sampling import load_evaluation_set
from metadip.pipeline.records import METADATA_KEY
from metadip.pipeline.stage import INPUT_ERRORS, fail, load_stage_config, stage_parser
from metadip.pipeline.steps import Steps
from metadip.reporting.report import render
from metadip.reporting.results import read_shards
from metadip.reporting.settings import report_settings


def main(argv: list[str] | None = None) -> int:
    p = stage_parser(__doc__)
    p.add_argument("--results", required=True, help="results parquet from stages/aggregate.py")
    p.add_argument("--curated", required=True, help="folder holding the curated datasets (ground truth of the figures)")
    p.add_argument("--tables", required=True, help="output folder of table{1,2,3}.{md,tex,csv}")
    p.add_argument("--figures", required=True, help="output folder of figure{2,3,4,5}.png")
    a = p.parse_args(argv)
    try:
        config = load_stage_config(a)
        settings = report_settings(config)
        rows = read_shards([a.results]).to_pylist()
        ev = config["evaluate"]
        # the images the evaluation used, in its order (image_index i = position i)
        truth = {
            d: load_evaluation_set(
                Path(a.curated) / d,
                ev["split"],
                ev["images"],
                ev["min_photos"],
                config["meta"]["image_size"],
                crop_size=config["curate"]["crop_size"],
            ).images
            for d in set(ev["roles"].values())
        }
        record = {METADATA_KEY: Steps(config).rule_hash("render")}
        written = render(settings, rows, truth, a.tables, a.figures, metadata=record)
    except INPUT_ERRORS as err:
        return fail("render", err)
    print(f"rendered {len(written)} files: {', '.join(str(w) for w in written)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
