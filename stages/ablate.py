"""Stage: one ablation variant — meta-train the configured method with the variant's settings
overridden (config `ablation`), then score, per image of the validation split (interleaved across
photographs) and task setting, the PSNR after `ablation.test_steps` inner steps of: the meta-init;
the control (the untrained θ₀ through the learned inner loop); the untrained θ₀ with the initial
step sizes. Resumes from
the checkpoint in <out>/work.  With `ablation.transfer` also scored on the validation split of another
curated dataset (`--transfer-data`), under the keys <dataset>:<task>. The test split is refused.
A checkpoint is resumed only when written for the same config, data and code.

With ``--dip`` instead of ``--variant``: score vanilla DIP (the method ``ablation.dip`` of
evaluate.methods, read at each of its ``report_at`` steps, e.g. DIP(50) and DIP(1000)) on the very
same validation problems, so that the ablation table can pair every variant with DIP(1000) (claim
1-quality) on validation data."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from metadip.core.atomic import write_text
from metadip.core.checkpoints import code_sha256
from metadip.core.training_log import training_summary
from metadip.datasets.sampling import load_evaluation_set
from metadip.datasets.store import training_images
from metadip.meta.ablation import overrides_text, variant_method
from metadip.meta.maml import ablation_problems, meta_train, model_for_method, score_tasks
from metadip.pipeline.artifacts import file_sha256
from metadip.pipeline.config import (
    ConfigError,
    validate_definition,
)
from metadip.pipeline.evaluation import dip_scores
from metadip.pipeline.settings import DIPMethod, method_settings
from metadip.pipeline.stage import INPUT_ERRORS, fail, load_stage_config, stage_parser

DIP_JITTER_PURPOSE = 8  # seed key of vanilla DIP's input jitter on those measurements


def main(argv: list[str] | None = None) -> int:
    p = stage_parser(__doc__)
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--variant", help="name of a variant under ablation.variants")
    who.add_argument("--dip", action="store_true", help="score vanilla DIP (ablation.dip) instead of a variant")
    p.add_argument("--data", required=True, help="curated dataset folder (train split for tasks, val split for scores)")
    p.add_argument("--transfer-data", help="curated dataset folder of ablation.transfer.dataset (val split scored)")
    p.add_argument("--out", required=True, help="output folder: result.json, work/ (checkpoint, metrics.csv)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        config = load_stage_config(a)
        ab = config["ablation"]
        if a.variant is not None and a.variant not in ab["variants"]:
            raise ConfigError(
                f"{a.config}: no variant '{a.variant}' under ablation.variants (have: {', '.join(ab['variants'])})"
            )
        dip = None
        if a.dip:
            if not ab["dip"]:
                raise ConfigError(f"{a.config}: ablation.dip is null; name a dip method of evaluate.methods there")
            dip = method_settings(config, ab["dip"])
            if not isinstance(dip, DIPMethod):
                raise ConfigError(f"{a.config}: ablation.dip '{ab['dip']}' is not a method of kind dip")
        overrides = ab["variants"][a.variant] if a.variant else {}
        method = variant_method(config["meta"]["methods"][ab["method"]], overrides, ab["outer_steps"], ab["test_steps"])
        validate_definition(method, "meta_method", source=f"{a.config}: ablation.variants.{a.variant}")
        data = Path(a.data)
        size, crop = config["meta"]["image_size"], config["curate"]["crop_size"]
        train = training_images(data, "train", size, key="meta.train_dataset", crop_size=crop)
        val_set = load_evaluation_set(data, "val", ab["val_images"], 1, size, key="ablation.val_images", crop_size=crop)
        transfer = ab["transfer"]
        if bool(transfer["dataset"]) != bool(a.transfer_data):
            raise ConfigError(
                f"{a.config}: ablation.transfer.dataset is {transfer['dataset']!r} but --transfer-data is "
                f"{a.transfer_data!r}; give both or neither"
            )
        transfer_set = (
            load_evaluation_set(
                a.transfer_data, "val", ab["val_images"], 1, size, key="ablation.transfer", crop_size=crop
            )
            if a.transfer_data
            else None
        )
        manifest_sha256 = file_sha256(data / "manifest.parquet")
        model, outer = model_for_method(method, tuple(train.shape[1:]))
    except (*INPUT_ERRORS, TypeError) as err:
        return fail("ablate", err)
    out = Path(a.out)
    problems, photos = ablation_problems(ab, config["seed"], val_set, transfer_set)
    if dip is not None:
        record = {
            "method": ab["dip"],
            "val_images": len(val_set.images),
            "dataset": data.name,
            "photos": photos,
            "psnr_db": dip_scores(dip, problems, config["seed"], DIP_JITTER_PURPOSE, a.device),
        }
        try:
            write_text(out / "result.json", json.dumps(record, indent=2) + "\n")
        except OSError as err:
            return fail("ablate", err)
        print(f"vanilla DIP on the ablation's problems: {', '.join(record['psnr_db'])} -> {out / 'result.json'}")
        return 0
    untrained = {k: v.clone() for k, v in model.prior.state_dict().items()}
    before = score_tasks(model, problems, ab["test_steps"], a.device)
    try:  # checkpoints: a write error (disk full, read-only folder) is one line
        meta_train(
            model,
            outer,
            train,
            val_set.images,
            config["seed"],
            out / "work",
            device=a.device,
            provenance={"dataset_manifest_sha256": manifest_sha256, "code_sha256": code_sha256(__file__)},
        )
    except OSError as err:
        return fail("ablate", err)
    seconds = training_summary(out / "work")["seconds"]  # the whole training, also when it was resumed
    after = score_tasks(model, problems, ab["test_steps"], a.device)
    model.prior.load_state_dict(untrained)  # the control: untrained θ₀, learned inner loop
    control = score_tasks(model, problems, ab["test_steps"], a.device)
    record = {
        "variant": a.variant,
        "overrides": overrides,
        "overrides_text": overrides_text(overrides),
        "method": ab["method"],
        "outer_steps": outer.steps,
        "test_steps": ab["test_steps"],
        "val_images": len(val_set.images),
        "dataset": data.name,
        "photos": photos,
        "psnr_db": {"meta": after, "control": control, "init": before},
        "train_seconds": round(seconds, 4),
    }
    try:
        write_text(out / "result.json", json.dumps(record, indent=2) + "\n")
    except OSError as err:
        return fail("ablate", err)
    mean = {k: {t: sum(v) / len(v) for t, v in d.items()} for k, d in record["psnr_db"].items()}
    print(
        f"ablation '{a.variant}' ({record['overrides_text'] or 'reference'}): "
        + ", ".join(
            f"{k} {mean['init'][k]:.2f} -> {mean['meta'][k]:.2f} dB (control {mean['control'][k]:.2f})" for k in after
        )
        + f" ({seconds:.0f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
