"""Stage: the PnP-ADMM tuning table — for every tuned task and denoiser the validation images it was
tuned on, every grid searched, the chosen point and whether it is interior (Markdown and CSV)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from metadip.core.atomic import write_texts
from metadip.pipeline.config import ConfigError
from metadip.pipeline.stage import INPUT_ERRORS, fail
from metadip.reporting.pnp_tuning import to_csv, to_markdown, tuning_rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--tuning", nargs="+", required=True, help="JSON files from stages/tune_pnp.py")
    p.add_argument("--markdown", required=True, help="output: Markdown table")
    p.add_argument("--csv", required=True, help="output: CSV, one row per task and denoiser")
    a = p.parse_args(argv)
    try:
        rows = []
        for path in a.tuning:
            try:
                rows += tuning_rows([json.loads(Path(path).read_text())])
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:  # JSONDecodeError: a ValueError
                raise ConfigError(
                    f"{path}: not a readable PnP tuning result of stages/tune_pnp.py ({err}); delete it and rerun"
                ) from None
    except INPUT_ERRORS as err:
        return fail("pnp_table", err)
    rows.sort(key=lambda r: (r["task"], r["denoiser"]))
    markdown, table = to_markdown(rows), to_csv(rows)  # both built before either is written
    try:
        write_texts({a.markdown: markdown, a.csv: table})
    except OSError as err:
        return fail("pnp_table", err)
    edge = [f"{r['task']}/{r['denoiser']}" for r in rows if not r["interior"]]
    print(
        f"PnP tuning table of {len(rows)} settings: {a.markdown}, {a.csv}"
        + (f"; on a grid edge: {', '.join(edge)}" if edge else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
