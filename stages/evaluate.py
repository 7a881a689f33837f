"""Stage: evaluate one method on one shard of one (task setting, dataset) and write its result
rows (PSNR, SSIM, seconds, seeds, provenance, estimates, per-iteration traces) as one parquet file."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

from metadip.datasets.sampling import load_evaluation_set
from metadip.pipeline.config import ConfigError
from metadip.pipeline.evaluation import evaluate_shard, write_rows
from metadip.pipeline.plan import method_images, shard_indices
from metadip.pipeline.records import check_inputs
from metadip.pipeline.settings import shard_settings
from metadip.pipeline.stage import (
    INPUT_ERRORS,
    add_compute_args,
    fail,
    load_stage_config,
    stage_parser,
    thread_problem,
)
from metadip.pipeline.steps import Steps


def main(argv: list[str] | None = None) -> int:
    p = stage_parser(__doc__)
    p.add_argument("--task", required=True, help="name under evaluate.tasks (e.g. cs_4)")
    p.add_argument("--dataset", required=True, help="curated dataset name (its folder is --data)")
    p.add_argument("--data", required=True, help="curated dataset folder")
    p.add_argument("--method", required=True, help="name under evaluate.methods (e.g. metadip)")
    p.add_argument("--shard", type=int, default=0, help="shard index in [0, evaluate.shards)")
    p.add_argument("--meta-init", help="meta-init artifact (meta methods)")
    p.add_argument("--drunet", help="DRUNet artifact (DRUNet and PnP-ADMM + DRUNet)")
    p.add_argument("--pnp", help="tuned PnP-ADMM grid JSON from stages/tune_pnp.py (PnP methods)")
    p.add_argument("--dip-stop", help="stop record JSON from stages/dip_stop.py (dip methods with stop_on_val)")
    p.add_argument("--out", required=True, help="output parquet file")
    add_compute_args(p)
    a = p.parse_args(argv)
    if problem := thread_problem(a.threads):
        return fail("evaluate", problem)
    if a.threads:
        torch.set_num_threads(a.threads)
    try:
        config = load_stage_config(a)
        ev = config["evaluate"]
        try:
            settings = shard_settings(config, a.task, a.method, a.dataset)
        except ConfigError as err:
            raise ConfigError(f"{a.config}: {err}") from None
        steps = Steps(config)
        upstream = {
            u.rule: steps.hash(u)
            for u in steps.step("evaluate", task=a.task, dataset=a.dataset, method=a.method).upstream
        }
        inputs = {
            "curate": a.data,
            "meta_train": a.meta_init,
            "train_denoiser": a.drunet,
            "tune_pnp": a.pnp,
            "dip_stop": a.dip_stop,
        }
        check_inputs(
            {k: v for k, v in inputs.items() if v}, upstream, "rerun snakemake, or pass the artifact this config makes"
        )
        chosen = load_evaluation_set(
            a.data,
            ev["split"],
            ev["images"],
            ev["min_photos"],
            config["meta"]["image_size"],
            crop_size=config["curate"]["crop_size"],
        )
        indices = shard_indices(method_images(ev, a.method), ev["shards"], a.shard)
        given = (("meta_init", a.meta_init), ("drunet", a.drunet), ("pnp", a.pnp), ("dip_stop", a.dip_stop))
        artifacts = {k: v for k, v in given if v}
        t = time.perf_counter()
        rows = evaluate_shard(
            settings,
            a.dataset,
            chosen.images,
            chosen.ids,
            chosen.sources,
            indices,
            artifacts,
            a.device,
            show_progress=sys.stderr.isatty(),
        )
        write_rows(rows, a.out, step_hash=settings.config_hash)
    except INPUT_ERRORS as err:
        return fail("evaluate", err)
    by_method: dict[str, list[float]] = {}
    for r in rows:
        by_method.setdefault(r["label"], []).append(r["psnr"])
    summary = ", ".join(f"{k} {sum(v) / len(v):.2f} dB" for k, v in by_method.items())
    print(
        f"evaluated {a.method} on {a.task}/{a.dataset} shard {a.shard} ({len(indices)} images) in "
        f"{time.perf_counter() - t:.1f} s: {summary} -> {Path(a.out)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
