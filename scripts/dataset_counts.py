"""Print the source photographs and crops per split of every dataset in a config as a markdown table.

.venv/bin/python scripts/dataset_counts.py                          from the sources (no crop drawn)
.venv/bin/python scripts/dataset_counts.py --curated data/curated   from the curated folders' manifests
.venv/bin/python scripts/dataset_counts.py --write docs/datasets.md the table between its markers there
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from metadip.core.atomic import write_text
from metadip.core.errors import InputError
from metadip.datasets.counts import counts_table, curated_counts, planned_counts, with_table
from metadip.pipeline.config import load_config


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="config/config.yaml", help="config file (default: %(default)s)")
    p.add_argument("--curated", help="count the folders <CURATED>/<dataset> instead (curated from this config)")
    p.add_argument("--write", metavar="MARKDOWN", help="put the table between the counts markers of this file")
    a = p.parse_args(argv)
    try:
        config = load_config(a.config)
        datasets = config["curate"]["datasets"]
        counts = {
            name: curated_counts(Path(a.curated) / name)
            if a.curated
            else planned_counts(name, ds, config["curate"]["crop_size"], config["seed"])
            for name, ds in datasets.items()
        }
        table = counts_table(counts, {name: [s["name"] for s in ds["sources"]] for name, ds in datasets.items()})
        if a.write:
            write_text(a.write, with_table(Path(a.write).read_text(), table, a.write))
    except (InputError, OSError) as err:
        print(f"dataset_counts: {err}", file=sys.stderr)
        return 1
    print(table, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
