"""Stage: one ablation variant — meta-train the configured method with the variant's settings
overridden (config `ablation`), then score its init and the un-meta-trained one as the mean PSNR
after `ablation.test_steps` inner steps on the validation split, per task setting. Resumes from
the checkpoint in <out>/work.  With `ablation.transfer` also scored on the validation split of another
curated dataset (`--transfer-data`), under the keys <dataset>:<task>. The test split is refused.
A checkpoint is resumed only when written for the same config, data and code."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from metadip.ablation import overrides_text, variant_method
from metadip.adapt import InnerSettings
from metadip.artifacts import architecture_from_config, build_model, file_sha256
from metadip.atomic import write_text
from metadip.checkpoints import code_sha256
from metadip.config import (
    ConfigError,
    default_config_path,
    load_config,
    validate_definition,
)
from metadip.datasets.store import training_split
from metadip.images import resize_images
from metadip.maml import (
    OuterSettings,
    meta_train,
    named_problems,
    score_problems,
    training_summary,
)

VALIDATION_PURPOSE = 7  # seed key of the ablation's validation measurements


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument(
        "--config",
        default=default_config_path(),
        help="config file (default: $METADIP_CONFIG or config/config.yaml: %(default)s)",
    )
    p.add_argument("--variant", required=True, help="name of a variant under ablation.variants")
    p.add_argument("--data", required=True, help="curated dataset folder (train split for tasks, val split for scores)")
    p.add_argument("--transfer-data", help="curated dataset folder of ablation.transfer.dataset (val split scored)")
    p.add_argument("--out", required=True, help="output folder: result.json, work/ (checkpoint, metrics.csv)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        config = load_config(a.config)
        ab = config["ablation"]
        if a.variant not in ab["variants"]:
            raise ConfigError(
                f"{a.config}: no variant '{a.variant}' under ablation.variants (have: {', '.join(ab['variants'])})"
            )
        overrides = ab["variants"][a.variant]
        method = variant_method(config["meta"]["methods"][ab["method"]], overrides, ab["outer_steps"], ab["test_steps"])
        validate_definition(method, "meta_method", source=f"{a.config}: ablation.variants.{a.variant}")
        data = Path(a.data)
        size = config["meta"]["image_size"]
        train = resize_images(training_split(data, "train", key="meta.train_dataset").stack(), size)
        val = resize_images(training_split(data, "val", key="ablation.val_images").stack(), size)[: ab["val_images"]]
        if len(train) == 0 or len(val) == 0:
            raise ConfigError(f"{data}: the ablation needs non-empty train and val splits")
        transfer = ab["transfer"]
        if bool(transfer["dataset"]) != bool(a.transfer_data):
            raise ConfigError(
                f"{a.config}: ablation.transfer.dataset is {transfer['dataset']!r} but --transfer-data is "
                f"{a.transfer_data!r}; give both or neither"
            )
        transfer_val = (
            resize_images(training_split(Path(a.transfer_data), "val", key="ablation.transfer").stack(), size)[
                : ab["val_images"]
            ]
            if a.transfer_data
            else None
        )
        manifest_sha256 = file_sha256(data / "manifest.parquet")
        arch = architecture_from_config(method["network"], method["arch"], tuple(train.shape[1:]))
        model = build_model(arch, method["inner"])
        outer = OuterSettings.from_dict(method["outer"])
        InnerSettings(**method["inner"])  # validates
    except (ConfigError, FileNotFoundError, ValueError, TypeError) as err:
        print(f"ablate: error: {err}", file=sys.stderr)
        return 1
    out = Path(a.out)
    problems = named_problems(ab["tasks"], val, config["seed"], VALIDATION_PURPOSE)
    if transfer_val is not None:
        name = transfer["dataset"]
        problems |= {
            f"{name}:{k}": v
            for k, v in named_problems(transfer["tasks"], transfer_val, config["seed"], VALIDATION_PURPOSE).items()
        }
    before = score_problems(model, problems, ab["test_steps"], a.device)
    meta_train(
        model,
        outer,
        train,
        val,
        config["seed"],
        out / "work",
        device=a.device,
        provenance={"dataset_manifest_sha256": manifest_sha256, "code_sha256": code_sha256(__file__)},
    )
    seconds = training_summary(out / "work")["seconds"]  # the whole training, also when it was resumed
    after = score_problems(model, problems, ab["test_steps"], a.device)
    record = {
        "variant": a.variant,
        "overrides": overrides,
        "overrides_text": overrides_text(overrides),
        "method": ab["method"],
        "outer_steps": outer.steps,
        "test_steps": ab["test_steps"],
        "val_images": len(val),
        "dataset": data.name,
        "psnr_init_db": before,
        "psnr_meta_db": after,
        "train_seconds": round(seconds, 1),
    }
    write_text(out / "result.json", json.dumps(record, indent=2) + "\n")
    print(
        f"ablation '{a.variant}' ({record['overrides_text'] or 'reference'}): "
        + ", ".join(f"{k} {before[k]:.2f} -> {after[k]:.2f} dB" for k in after)
        + f" ({seconds:.0f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
