"""Stage: PnP-ADMM grid search for one CS or PR task and denoiser on a curated dataset's
*validation* split (the test split is refused), images interleaved across its photographs; the
grid moves until its chosen point is interior (``baselines.pnp.max_moves``, ``flat_db``); writes every grid
searched, every result and the chosen values as JSON."""

from __future__ import annotations

import json
import sys
import time
from functools import partial

from metadip.core.atomic import write_text
from metadip.datasets.sampling import load_evaluation_set
from metadip.models.denoisers import DRUNetDenoiser, bm3d_denoise
from metadip.physics.tasks import TaskSpec
from metadip.pipeline.artifacts import load_denoiser
from metadip.pipeline.config import ConfigError
from metadip.pipeline.plan import pnp_grid_key
from metadip.pipeline.records import check_inputs
from metadip.pipeline.stage import INPUT_ERRORS, fail, load_stage_config, stage_parser
from metadip.pipeline.steps import Steps
from metadip.solvers.pnp_tuning import grid_search


def main(argv: list[str] | None = None) -> int:
    p = stage_parser(__doc__)
    p.add_argument("--data", required=True, help="curated dataset folder (only its val split is read)")
    p.add_argument("--task", required=True, help="a CS or PR task under evaluate.tasks (e.g. cs_4)")
    p.add_argument("--denoiser", required=True, choices=["bm3d", "drunet"])
    p.add_argument("--weights", help="DRUNet artifact (stem, .safetensors or .json) for --denoiser drunet")
    p.add_argument("--out", required=True, help="output JSON file")
    a = p.parse_args(argv)
    try:
        config = load_stage_config(a)
        pnp = config["baselines"]["pnp"]
        tasks = config["evaluate"]["tasks"]
        if a.task not in tasks or tasks[a.task]["kind"] == "denoising":
            raise ConfigError(
                f"{a.config}: no CS or PR task '{a.task}' under evaluate.tasks "
                f"(have: {', '.join(t for t in tasks if tasks[t]['kind'] != 'denoising') or 'none'})"
            )
        steps = Steps(config)
        upstream = {u.rule: steps.hash(u) for u in steps.step("tune_pnp", task=a.task, denoiser=a.denoiser).upstream}
        inputs = {"curate": a.data, **({"train_denoiser": a.weights} if a.weights else {})}
        check_inputs(inputs, upstream, "rerun snakemake, or pass the artifact this config makes")
        task = TaskSpec(**tasks[a.task])
        key = pnp_grid_key(task.kind, a.denoiser)
        if key not in pnp["grid"]:
            raise ConfigError(f"{a.config}: no grid '{key}' under baselines.pnp.grid")
        val = load_evaluation_set(
            a.data,
            "val",
            pnp["val_images"],
            pnp["min_photos"],
            config["meta"]["image_size"],
            key="baselines.pnp.val_images",
            photos_key="baselines.pnp.min_photos",
            crop_size=config["curate"]["crop_size"],
        )
        images = val.images
        if a.denoiser == "drunet":
            if not a.weights:
                raise ConfigError("--denoiser drunet needs --weights (a DRUNet artifact from stages/train_denoiser.py)")
            denoiser = DRUNetDenoiser(load_denoiser(a.weights, channels=images.shape[1]))
        else:
            denoiser = partial(bm3d_denoise, profile=pnp["bm3d_profile"])
    except INPUT_ERRORS as err:
        return fail("tune_pnp", err)
    t = time.perf_counter()
    result = grid_search(
        task,
        denoiser,
        pnp["grid"][key],
        images,
        val.ids,
        config["seed"],
        pnp["pr_steps"],
        pnp["max_moves"],
        pnp["flat_db"],
    )
    result["validation_photos"] = val.sources
    result.update(task_name=a.task, denoiser=a.denoiser, image_size=config["meta"]["image_size"])
    result["step_hash"] = steps.rule_hash("tune_pnp", task=a.task, denoiser=a.denoiser)
    if a.denoiser == "bm3d":
        result["bm3d_profile"] = pnp["bm3d_profile"]
    try:
        write_text(a.out, json.dumps(result, indent=2) + "\n")
    except OSError as err:
        return fail("tune_pnp", err)
    b = result["best"]
    print(
        f"tuned PnP-ADMM+{a.denoiser} for {a.task} on {len(images)} validation images from "
        f"{len(set(val.sources))} photographs in {time.perf_counter() - t:.0f} s, {len(result['grids'])} grids: "
        f"sigma_d {b['sigma_d']:g}, rho {b['rho']:g}, {b['iterations']} iterations -> {b['mean_psnr']:.2f} dB"
        + ("" if result["interior"] else " (on a grid edge: baselines.pnp.max_moves ran out)")
        + f" ({a.out})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
