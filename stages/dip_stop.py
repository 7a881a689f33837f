"""Stage: the step at which a dip method's runs on one (task setting, class) are also read — the
step of the highest mean PSNR of the same DIP on validation crops of the class (the val split of
--data, interleaved across its photographs; the test split is refused), with validation noise,
operators and jitter of their own. Writes the step, the mean validation trace and the images as JSON."""

from __future__ import annotations

import json
import sys
import time

import torch

from metadip.core.atomic import write_text
from metadip.datasets.sampling import load_evaluation_set
from metadip.pipeline.config import ConfigError
from metadip.pipeline.dip_stop import stop_record
from metadip.pipeline.plan import stop_dataset, stops_on_val
from metadip.pipeline.records import JSON_KEY, check_inputs
from metadip.pipeline.settings import dip_solver
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
    p.add_argument("--task", required=True, help="name under evaluate.tasks (e.g. den_25)")
    p.add_argument("--dataset", required=True, help="the evaluated dataset of the class (a value of evaluate.roles)")
    p.add_argument("--method", required=True, help="a dip method under evaluate.methods with stop_on_val")
    p.add_argument("--data", required=True, help="curated folder of the dataset whose val split chooses the step")
    p.add_argument("--out", required=True, help="output JSON file")
    add_compute_args(p)
    a = p.parse_args(argv)
    if problem := thread_problem(a.threads):
        return fail("dip_stop", problem)
    if a.threads:
        torch.set_num_threads(a.threads)
    try:
        config = load_stage_config(a)
        ev = config["evaluate"]
        _check_names(config, a.config, a.task, a.dataset, a.method)
        solver = dip_solver(config, a.method)
        stop = ev["methods"][a.method]["stop_on_val"]
        val_dataset = stop_dataset(config, a.method, a.dataset)
        steps = Steps(config)
        step = steps.step("dip_stop", task=a.task, dataset=a.dataset, method=a.method)
        upstream = {u.rule: steps.hash(u) for u in step.upstream}
        check_inputs({"curate": a.data}, upstream, "rerun snakemake, or pass the folder this config makes")
        key = f"evaluate.methods.{a.method}.stop_on_val"
        val = load_evaluation_set(
            a.data,
            "val",
            stop["images"],
            stop["min_photos"],
            config["meta"]["image_size"],
            key=f"{key}.images",
            photos_key=f"{key}.min_photos",
            crop_size=config["curate"]["crop_size"],
        )
    except INPUT_ERRORS as err:
        return fail("dip_stop", err)
    t = time.perf_counter()
    task = ev["tasks"][a.task]
    compiled = "dip" in ev["compile"]
    record = stop_record(
        a.method, solver, a.task, task, a.dataset, val, val_dataset, config["seed"], a.device, compiled
    )
    record[JSON_KEY] = steps.hash(step)
    try:
        write_text(a.out, json.dumps(record, indent=2) + "\n")
    except OSError as err:
        return fail("dip_stop", err)
    print(
        f"{a.method} on {a.task}/{a.dataset}: stop at step {record['step']} of {record['steps']} "
        f"({record['mean_psnr_db']:.2f} dB, {record['last_psnr_db']:.2f} dB at the last) on {record['images']} "
        f"val crops of {record['photos']} '{val_dataset}' photographs in {time.perf_counter() - t:.0f} s ({a.out})"
    )
    return 0


def _check_names(config: dict, path: str, task: str, dataset: str, method: str) -> None:
    """ConfigError unless ``task`` is a task, ``dataset`` an evaluated dataset and ``method`` a dip
    method with stop_on_val of the config at ``path``."""
    ev = config["evaluate"]
    if task not in ev["tasks"]:
        raise ConfigError(f"{path}: no '{task}' under evaluate.tasks (have: {', '.join(ev['tasks'])})")
    if dataset not in ev["roles"].values():
        raise ConfigError(f"{path}: '{dataset}' plays no class of evaluate.roles; give one of its datasets")
    methods = ev["methods"]
    if method not in methods or not stops_on_val(methods[method]):
        have = [m for m, spec in methods.items() if stops_on_val(spec)]
        raise ConfigError(
            f"{path}: no dip method '{method}' with stop_on_val under evaluate.methods "
            f"(have: {', '.join(have) or 'none'})"
        )


if __name__ == "__main__":
    sys.exit(main())
