"""Stage: train DRUNet on a curated dataset's train split (random σ ∈ [0, sigma_max]) and write
it as safetensors + JSON sidecar; or, when baselines.drunet.official_weights is set, convert the
official KAIR file instead. Validation on the val split (the test split is refused). Resumes from
the checkpoint in <out>/work when that was written for the same config, data and code."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

from metadip.core.checkpoints import code_sha256
from metadip.datasets.store import training_images
from metadip.models.denoiser_training import DenoiserTraining, train_denoiser
from metadip.models.denoisers import DRUNet, DRUNetConfig, load_official_drunet
from metadip.pipeline.artifacts import file_sha256, save_denoiser
from metadip.pipeline.records import check_inputs
from metadip.pipeline.stage import INPUT_ERRORS, fail, load_stage_config, stage_parser
from metadip.pipeline.steps import Steps


def main(argv: list[str] | None = None) -> int:
    p = stage_parser(__doc__)
    p.add_argument(
        "--data", required=True, help="curated dataset folder (train split for training, val for validation)"
    )
    p.add_argument("--out", required=True, help="output folder: drunet.safetensors / .json, work/")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    out = Path(a.out)
    try:
        config = load_stage_config(a)
        cfg = config["baselines"]["drunet"]
        steps = Steps(config)
        step = steps.step("train_denoiser")
        step_hash = steps.hash(step)
        upstream = {u.rule: steps.hash(u) for u in step.upstream}
        check_inputs({"curate": a.data}, upstream, "rerun snakemake, or pass the curated folder this config makes")
        if cfg["official_weights"]:
            net = load_official_drunet(cfg["official_weights"], channels=3)
            source = f"official:{Path(cfg['official_weights']).name}"
            save_denoiser(net, out / "drunet", source=source, step_hash=step_hash)
            print(f"converted official DRUNet weights {cfg['official_weights']} -> {out / 'drunet.safetensors'}")
            return 0
        size = config["meta"]["image_size"]
        data = Path(a.data)
        crop = config["curate"]["crop_size"]
        train = training_images(data, "train", size, key="baselines.drunet.train", crop_size=crop)
        val = training_images(data, "val", size, key="baselines.drunet.train.val_images", crop_size=crop)
        manifest_sha256 = file_sha256(data / "manifest.parquet")
        settings = DenoiserTraining(**cfg["train"])
        net = DRUNet(
            DRUNetConfig(
                channels=train.shape[1],
                widths=tuple(cfg["network"]["widths"]),
                blocks=cfg["network"]["blocks"],
                residual=cfg["network"]["residual"],
            ),
            seed=cfg["network"]["seed"],
        )
    except INPUT_ERRORS as err:
        return fail("train_denoiser", err)
    t = time.perf_counter()
    try:  # checkpoints and outputs: a write error (disk full, read-only folder) is one line
        train_denoiser(
            net,
            settings,
            train,
            val,
            config["seed"],
            out / "work",
            device=a.device,
            provenance={"dataset_manifest_sha256": manifest_sha256, "code_sha256": code_sha256(__file__)},
        )
        save_denoiser(
            net,
            out / "drunet",
            source="trained",
            training_config={**cfg, "image_size": size, "dataset": data.name},
            dataset_manifest_sha256=manifest_sha256,
            seed=config["seed"],
            step_hash=step_hash,
        )
    except OSError as err:
        return fail("train_denoiser", err)
    last = (out / "work" / "metrics.csv").read_text().strip().splitlines()[-1].split(",")
    print(
        f"trained DRUNet in {time.perf_counter() - t:.0f} s: validation PSNR at sigma {settings.val_sigma:g} "
        f"{float(last[2]):.2f} dB "
        f"-> {out / 'drunet.safetensors'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
