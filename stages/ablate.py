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

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from metadip.core.atomic import write_text
from metadip.core.checkpoints import code_sha256
from metadip.meta.ablation import variant_method
from metadip.meta.ablation_runs import dip_record, load_ablation_data, run_variant, variant_summary
from metadip.meta.maml import model_for_method
from metadip.pipeline.config import ConfigError, validate_definition
from metadip.pipeline.evaluation import dip_scores
from metadip.pipeline.records import JSON_KEY, check_inputs
from metadip.pipeline.settings import DIPMethod, method_settings
from metadip.pipeline.stage import INPUT_ERRORS, fail, load_stage_config, stage_parser
from metadip.pipeline.steps import Step, Steps

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
        ab, seed = config["ablation"], config["seed"]
        dip, overrides, method = _checked_settings(config, a)
        steps = Steps(config)
        step = steps.step("ablation_dip") if a.dip else steps.step("ablate", variant=a.variant)
        upstream = {u.name: steps.hash(u) for u in step.upstream}
        transfer = steps.step("curate", dataset=ab["transfer"]["dataset"]).name if a.transfer_data else None
        inputs = {steps.step("curate", dataset=config["meta"]["train_dataset"]).name: a.data, transfer: a.transfer_data}
        check_inputs(
            {k: v for k, v in inputs.items() if k}, upstream, "rerun snakemake, or pass the folder this config makes"
        )
        data = load_ablation_data(
            ab, a.data, a.transfer_data, config["meta"]["image_size"], config["curate"]["crop_size"]
        )
        model, outer = (None, None) if method is None else model_for_method(method, tuple(data.train.shape[1:]))
    except INPUT_ERRORS as err:
        return fail("ablate", err)
    out = Path(a.out)
    try:  # checkpoints and the record: a write error (disk full, read-only folder) is one line
        if dip is not None:
            problems, photos = data.problems(ab, seed)
            record = dip_record(ab["dip"], data, photos, dip_scores(dip, problems, seed, DIP_JITTER_PURPOSE, a.device))
            summary = f"vanilla DIP on the ablation's problems: {', '.join(record['psnr_db'])} -> {out / 'result.json'}"
        else:
            record = run_variant(
                a.variant, overrides, ab, model, outer, data, seed, out / "work", a.device, code_sha256(__file__)
            )
            summary = variant_summary(record)
        record[JSON_KEY] = steps.hash(step)
        write_text(out / "result.json", json.dumps(record, indent=2) + "\n")
    except INPUT_ERRORS as err:
        return fail("ablate", err)
    print(summary)
    return 0


def _check_data(steps: Steps, step: Step, a: argparse.Namespace) -> None:
    """Refuse a curated folder that records another step hash than the config gives it (RecordError)."""
    config = steps.config
    upstream = {u.name: steps.hash(u) for u in step.upstream}
    inputs = {steps.step("curate", dataset=config["meta"]["train_dataset"]).name: a.data}
    if a.transfer_data:
        inputs[steps.step("curate", dataset=config["ablation"]["transfer"]["dataset"]).name] = a.transfer_data
    check_inputs(inputs, upstream, "rerun snakemake, or pass the folder this config makes")


def _checked_settings(
    config: dict[str, Any], a: argparse.Namespace
) -> tuple[DIPMethod | None, dict[str, Any], dict[str, Any] | None]:
    """(vanilla DIP's settings with --dip, else None; the variant's overrides and method config, with
    --variant; else {} and None),
    checked against the config and the command line (ConfigError)."""
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
    overrides, method = {}, None
    if a.variant:
        overrides = ab["variants"][a.variant]
        method = variant_method(config["meta"]["methods"][ab["method"]], overrides, ab["outer_steps"], ab["test_steps"])
        validate_definition(method, "meta_method", source=f"{a.config}: ablation.variants.{a.variant}")
    if bool(ab["transfer"]["dataset"]) != bool(a.transfer_data):
        raise ConfigError(
            f"{a.config}: ablation.transfer.dataset is {ab['transfer']['dataset']!r} but --transfer-data is "
            f"{a.transfer_data!r}; give both or neither"
        )
    return dip, overrides, method


if __name__ == "__main__":
    sys.exit(main())
