"""Stage: curate one dataset of square crops (shards + manifest + previews) from the config."""

from __future__ import annotations

import logging
import sys
import time

from metadip.datasets.curate import curate_dataset
from metadip.pipeline.config import ConfigError
from metadip.pipeline.stage import INPUT_ERRORS, fail, load_stage_config, stage_parser
from metadip.pipeline.steps import Steps


def main(argv: list[str] | None = None) -> int:
    p = stage_parser(__doc__)
    p.add_argument("--dataset", required=True, help="name of a dataset under curate.datasets")
    p.add_argument("--out", required=True, help="output folder (replaced atomically)")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        config = load_stage_config(a)
        cur = config["curate"]
        if a.dataset not in cur["datasets"]:
            raise ConfigError(
                f"{a.config}: no dataset '{a.dataset}' under curate.datasets (have: "
                f"{', '.join(cur['datasets']) or 'none'})"
            )
        t = time.perf_counter()
        summary = curate_dataset(
            a.dataset,
            cur["datasets"][a.dataset],
            cur["crop_size"],
            config["seed"],
            cur["shard_size"],
            cur["preview_crops"],
            a.out,
            step_hash=Steps(config).rule_hash("curate", dataset=a.dataset),
        )
    except INPUT_ERRORS as err:
        return fail("curate", err)
    print(
        f"curated '{a.dataset}' in {time.perf_counter() - t:.1f} s: crops {summary['crops']}, "
        f"source images {summary['source_images']}, skipped {summary['skipped']} "
        f"{summary['skipped_by_reason'] or ''} -> {a.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
