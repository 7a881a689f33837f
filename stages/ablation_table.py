"""Stage: the ablation table — every variant's PSNR after the test steps per task setting with its
paired difference to the reference variant, and the init gain over the control (untrained θ₀, same
learned inner loop), each with a 95% interval over photographs (Markdown and CSV)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from metadip.core.atomic import write_texts
from metadip.core.errors import InputError
from metadip.pipeline.config import ConfigError
from metadip.pipeline.stage import INPUT_ERRORS, fail, load_stage_config, stage_parser
from metadip.reporting.ablation_table import longest_reading, table_rows, to_csv, to_markdown


def main(argv: list[str] | None = None) -> int:
    p = stage_parser(__doc__)
    p.add_argument("--results", nargs="+", required=True, help="result.json files from stages/ablate.py")
    p.add_argument("--markdown", required=True, help="output: Markdown table")
    p.add_argument("--csv", required=True, help="output: CSV, one row per variant and task")
    p.add_argument("--dip", help="vanilla DIP's scores on the same problems (stages/ablate.py --dip)")
    p.add_argument("--reference", help="the variant the others are paired with (default: ablation.reference)")
    a = p.parse_args(argv)
    try:
        config = load_stage_config(a)
        results = []
        for path in a.results:
            try:
                record = json.loads(Path(path).read_text())
            except (OSError, ValueError) as err:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
                raise ConfigError(
                    f"{path}: not a readable ablation result ({err}); delete it and rerun the workflow"
                ) from None
            if not isinstance(record, dict) or not {"psnr_db", "photos"} <= set(record):
                raise ConfigError(
                    f"{path}: an ablation result without per-image scores (psnr_db, photos; written by an older "
                    "stages/ablate.py); delete it and rerun the workflow (training resumes from its checkpoint)"
                )
            results.append(record)
        dip = None
        if a.dip:
            try:
                dip = json.loads(Path(a.dip).read_text())
                longest_reading(dip)
            except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as err:
                raise ConfigError(
                    f"{a.dip}: not a readable DIP result of stages/ablate.py --dip ({err}); delete it and rerun"
                ) from None
    except INPUT_ERRORS as err:
        return fail("ablation_table", err)
    order = list(config["ablation"]["variants"])
    results.sort(key=lambda r: order.index(r["variant"]) if r["variant"] in order else len(order))
    ab = config["ablation"]
    caption = (
        f"Ablation of '{ab['method']}': mean PSNR after {ab['test_steps']} steps on {results[0]['val_images']} "
        f"validation images of '{results[0]['dataset']}' (tasks named <dataset>:<task>: of that dataset), "
        "interleaved across source photographs; each variant meta-trained for "
        f"{ab['outer_steps']} outer steps unless it sets outer.steps.\n\n"
    )
    reference = a.reference or ab["reference"]
    if a.reference and a.reference not in {r["variant"] for r in results}:
        return fail("ablation_table", f"--reference {a.reference}: no such variant among --results; name one of them")
    try:
        rows = table_rows(results, reference, dip)
    except InputError as err:
        return fail("ablation_table", f"{a.dip}: {err}; rerun stages/ablate.py --dip with this config")
    reading = f" ({longest_reading(dip).rsplit('_', 1)[1]} steps, EMA)" if dip is not None else ""
    try:
        write_texts({a.markdown: caption + to_markdown(rows, reference, reading), a.csv: to_csv(rows)})
    except OSError as err:
        return fail("ablation_table", err)
    print(f"ablation table of {len(results)} variants -> {a.markdown}, {a.csv}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
