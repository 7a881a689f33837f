"""Every workflow stage reads only config keys its step declares (metadip.pipeline.steps): each stage
of the tiny pipeline and of a tiny ablation runs with a config that records every key read
(tests/config_reads/sitecustomize.py); a key outside the step's closure fails, naming the stage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from workflow_helpers import BIN, ENV, config_reads_env, copy_workflow, sh

from metadip.pipeline.config import check_pipeline_config, load_config
from metadip.pipeline.steps import DECLARATIONS, Steps, undeclared

#: stage script -> (rule, {wildcard: command-line flag})
STAGES = {
    "curate": ("curate", {"dataset": "--dataset"}),
    "meta_train": ("meta_train", {"method": "--method"}),
    "train_denoiser": ("train_denoiser", {}),
    "tune_pnp": ("tune_pnp", {"task": "--task", "denoiser": "--denoiser"}),
    "dip_stop": ("dip_stop", {"task": "--task", "dataset": "--dataset", "method": "--method"}),
    "evaluate": ("evaluate", {"task": "--task", "dataset": "--dataset", "method": "--method"}),
    "aggregate": ("aggregate", {}),
    "claims": ("claims", {}),
    "render": ("render", {}),
    "ablate": ("ablate", {"variant": "--variant"}),
    "ablation_table": ("ablation_table", {}),
}


def flag(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def check_reads(log: Path, workdir: Path) -> tuple[set[str], list[str]]:
    """(rules seen, one line per stage run that read an undeclared key) of the records in ``log``."""
    seen, problems = set(), []
    for line in log.read_text().splitlines():
        record = json.loads(line)
        argv = record["argv"]
        stage = Path(argv[0]).stem
        if stage not in STAGES or "--config" not in argv:
            continue
        rule, flags = STAGES[stage]
        if stage == "ablate" and "--dip" in argv:
            rule, flags = "ablation_dip", {}
        config = check_pipeline_config(load_config(workdir / flag(argv, "--config")))
        steps = Steps(config)
        step = steps.step(rule, **{w: flag(argv, f) for w, f in flags.items()})
        seen.add(rule)
        if missing := undeclared(steps, step, record["reads"]):
            problems.append(f"{step.name} reads {missing}, not declared in metadip.pipeline.steps")
    return seen, problems


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_every_stage_reads_only_what_its_step_declares(tiny_repo, tmp_path):
    seen, problems = check_reads(tiny_repo.parent / "config-reads.jsonl", tiny_repo)
    # a tiny ablation: one variant and its DIP reference on one validation image per task
    repo = copy_workflow(tmp_path / "ablation", git=False)
    cfg = yaml.safe_load((repo / "config" / "config.yaml").read_text())
    cfg["ablation"] = {
        "enabled": True,
        "outer_steps": 1,
        "test_steps": 2,
        "val_images": 1,
        "tasks": {"den_25": {"kind": "denoising", "sigma": 25}},
        "transfer": {"dataset": "skimage", "tasks": {"den_25": {"kind": "denoising", "sigma": 25}}},
        "variants": {"reference": {}},
    }
    (repo / "config" / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    log = tmp_path / "ablation-reads.jsonl"
    env = {**ENV, **config_reads_env(log)}
    sh(BIN / "snakemake", "--cores", "2", "results/ablation/ablation.md", cwd=repo, env=env)
    seen_ablation, problems_ablation = check_reads(log, repo)
    assert not problems + problems_ablation, "\n".join(problems + problems_ablation)
    assert seen | seen_ablation == set(DECLARATIONS), set(DECLARATIONS) - seen - seen_ablation
