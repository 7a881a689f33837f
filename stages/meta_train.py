"""Stage: meta-train one method (MetaDIP or MetaSIREN) of the config on a curated dataset's train
split (validation on its val split; the test split is refused) and write its meta-init (safetensors
+ JSON sidecar). Resumes from the checkpoint in <out>/work when that was written for the same
config, data (dataset manifest and images) and code; otherwise starts over.

Under ``torchrun --nproc_per_node N`` the ranks share each meta-batch (data parallel, the
meta-gradient all-reduced; NCCL on GPUs, gloo on CPUs) and rank 0 writes the outputs."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

from metadip.core.checkpoints import code_sha256
from metadip.core.training_log import training_summary
from metadip.datasets.store import training_images
from metadip.meta.data_parallel import init_from_environment, leave
from metadip.meta.maml import meta_train, model_for_method
from metadip.pipeline.artifacts import file_sha256, save_meta_init
from metadip.pipeline.config import ConfigError
from metadip.pipeline.records import check_inputs
from metadip.pipeline.stage import INPUT_ERRORS, fail, load_stage_config, stage_parser
from metadip.pipeline.steps import Steps


def main(argv: list[str] | None = None) -> int:
    p = stage_parser(__doc__)
    p.add_argument("--method", required=True, help="name of a method under meta.methods (e.g. metadip, metasiren)")
    p.add_argument(
        "--data", required=True, help="curated dataset folder (train split for tasks, val split for validation)"
    )
    p.add_argument(
        "--out", required=True, help="output folder: meta_init.safetensors / .json, work/ (checkpoint, metrics.csv)"
    )
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    ranks, device = init_from_environment(a.device)
    try:
        config = load_stage_config(a)
        meta = config["meta"]
        if a.method not in meta["methods"]:
            raise ConfigError(
                f"{a.config}: no method '{a.method}' under meta.methods (have: {', '.join(meta['methods']) or 'none'})"
            )
        method = meta["methods"][a.method]
        data = Path(a.data)
        steps = Steps(config)
        upstream = {u.rule: steps.hash(u) for u in steps.step("meta_train", method=a.method).upstream}
        check_inputs({"curate": data}, upstream, "rerun snakemake, or pass the curated folder this config makes")
        size, crop = meta["image_size"], config["curate"]["crop_size"]
        train = training_images(data, "train", size, key="meta.train_dataset", crop_size=crop)
        val = training_images(data, "val", size, key=f"meta.methods.{a.method}.outer.val_images", crop_size=crop)
        manifest_sha256 = file_sha256(data / "manifest.parquet")
        model, outer = model_for_method(method, tuple(train.shape[1:]))
    except INPUT_ERRORS as err:
        return fail("meta_train", err)
    out = Path(a.out)
    t = time.perf_counter()
    seed = config["seed"] if method["seed"] is None else method["seed"]  # a replicate's own task draws
    try:  # checkpoints and outputs: a write error (disk full, read-only folder) is one line
        meta_train(
            model,
            outer,
            train,
            val,
            seed,
            out / "work",
            device=device,
            provenance={"dataset_manifest_sha256": manifest_sha256, "code_sha256": code_sha256(__file__)},
            ranks=ranks,
        )
        leave()
        if not ranks.lead:
            return 0
        training = {"method": a.method, **method, "image_size": meta["image_size"], "dataset": data.name}
        save_meta_init(
            model,
            out / "meta_init",
            training_config=training,
            dataset_manifest_sha256=manifest_sha256,
            seed=seed,
            extra={
                "training_summary": training_summary(out / "work"),
                "step_hash": steps.rule_hash("meta_train", method=a.method),
            },
        )
    except OSError as err:
        return fail("meta_train", err)
    s = training_summary(out / "work")
    print(
        f"meta-trained '{a.method}' in {time.perf_counter() - t:.0f} s: validation PSNR after "
        f"{outer.test_steps} steps {s['initial_val_psnr']:.2f} -> {s['final_val_psnr']:.2f} dB -> "
        f"{out / 'meta_init.safetensors'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
