"""A config change reruns exactly the steps that depend on it, whatever route produced the outputs:
a run with Snakemake's own records, a `dvc pull` + `snakemake --touch` into a fresh clone (no records
of Snakemake's), the evaluation-only route (curated data and meta-inits pulled); and two configs
that share the curated folder (the study beside the default run) leave each other up to date."""

from __future__ import annotations

import re
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from workflow_helpers import BIN, copy_workflow, job_stats, placeholder_outputs, sh

from metadip.pipeline.config import check_pipeline_config, load_config
from metadip.pipeline.records import METADATA_KEY
from metadip.pipeline.steps import Steps

SHARD = "results/eval/cs_4/wallpapers/metadip/shard-0.parquet"


def test_an_output_recording_another_step_hash_reruns_with_its_downstream(tmp_path):
    repo = copy_workflow(tmp_path / "repo", git=False)
    placeholder_outputs(repo)
    assert "Nothing to be done" in sh(BIN / "snakemake", "-n", cwd=repo).stdout
    steps = Steps(check_pipeline_config(load_config(repo / "config" / "config.yaml")))
    planned = steps.rule_hash("evaluate", task="cs_4", dataset="wallpapers", method="metadip")
    for recorded, stats in [
        ("0123456789abcdef", {"evaluate": 1, "aggregate": 1, "claims": 1, "render": 1, "all": 1}),
        (planned, {}),
    ]:
        pq.write_table(pa.table({"x": [1]}).replace_schema_metadata({METADATA_KEY: recorded}), repo / SHARD)
        sh(BIN / "snakemake", "--touch", "--cores", "1", cwd=repo)  # file times alone say: up to date
        plan = sh(BIN / "snakemake", "-n", cwd=repo).stdout
        assert job_stats(plan) == stats, plan[-3000:]
        if stats:
            reason = r"\s+reason: Updated input files: \S*\.snakemake/metadip-stamps/"
            assert re.search(rf"output: {SHARD}\n(?:.*\n)*?{reason}", plan), plan
    # a config change shows in the planned hash, hence in the stamps, with no records of Snakemake's
    shutil.rmtree(repo / ".snakemake")
    plan = sh(BIN / "snakemake", "-n", "--config", "evaluate={tasks: {cs_4: {ratio: 0.5}}}", cwd=repo).stdout
    assert job_stats(plan) == {"evaluate": 1, "aggregate": 1, "claims": 1, "render": 1, "all": 1}, plan[-3000:]


CHANGES = {
    "evaluate={images: 1}": lambda n: {"evaluate": n, "aggregate": 1, "claims": 1, "render": 1, "all": 1},
    "meta={methods: {metadip: {outer: {steps: 4}}}}": lambda n: {
        "meta_train": 1,
        "evaluate": 12,
        "aggregate": 1,
        "claims": 1,
        "render": 1,
        "all": 1,
    },
    "baselines={pnp: {grid: {cs_bm3d: {rho: [0.25]}}}}": lambda n: {
        "tune_pnp": 1,
        "evaluate": 2,
        "pnp_table": 1,
        "aggregate": 1,
        "render": 1,
        "all": 1,
    },
}


def settled_copy(repo, to):
    """A copy of ``repo`` (file times kept) after a plain `snakemake`, which leaves it up to date."""
    shutil.copytree(repo, to, symlinks=True)
    sh(BIN / "snakemake", "--cores", "2", cwd=to)
    return to


def plan(repo, *args) -> dict[str, int]:
    out = sh(BIN / "snakemake", "-n", *args, cwd=repo)
    return job_stats(out.stdout + out.stderr) if "Nothing to be done" not in out.stdout else {}


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_a_config_change_reruns_the_same_steps_after_a_run_and_after_a_pull(tiny_repo, tmp_path):
    # beside the tiny repository, like its default DVC remote; settled (`dvc repro` rewrote
    # results.parquet when it committed it, so the tables would be redrawn once)
    run = settled_copy(tiny_repo, tiny_repo.parent / "routes")
    sh(BIN / "dvc", "push", "-q", cwd=run)
    pulled = tiny_repo.parent / "routes-pulled"
    sh("git", "clone", "-q", tiny_repo, pulled, cwd=tmp_path)
    sh(BIN / "dvc", "pull", "-q", cwd=pulled)
    sh(BIN / "snakemake", "--touch", "--cores", "1", cwd=pulled)
    assert plan(pulled) == {}
    shards = sum(1 for _ in (run / "results" / "eval").rglob("*.parquet"))
    for change, expected in CHANGES.items():
        want = expected(shards)
        assert plan(run, "--config", change) == want, (change, "after the run")
        assert plan(pulled, "--config", change) == want, (change, "after dvc pull + snakemake --touch")
    assert plan(run) == plan(pulled) == {}
    # the evaluation-only route: curated data and meta-inits pulled, nothing else
    partial = tiny_repo.parent / "routes-evaluation-only"
    sh("git", "clone", "-q", tiny_repo, partial, cwd=tmp_path)
    sh(BIN / "dvc", "pull", "-q", "curate", "meta_init", cwd=partial)
    sh(BIN / "snakemake", "--touch", "--cores", "1", "curated", "meta_inits", cwd=partial)
    assert plan(partial, "meta_inits") == {}
    changed = plan(partial, "meta_inits", "--config", "meta={methods: {metadip: {outer: {steps: 4}}}}")
    assert changed == {"meta_train": 1, "meta_inits": 1}, changed


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_two_configs_sharing_the_curated_data_leave_each_other_up_to_date(tiny_repo, tmp_path):
    """Like config/study.yaml beside config/config.yaml: results of its own, the same curated folder."""
    repo = settled_copy(tiny_repo, tmp_path / "repo")
    overlay = tmp_path / "study.yaml"
    overlay.write_text(yaml.safe_dump({"paths": {"results": "results/study"}, "evaluate": {"images": 1}}))
    curated = {p: p.stat().st_mtime_ns for p in (repo / "data" / "curated").rglob("*")}
    assert plan(repo) == {}
    sh(BIN / "snakemake", "--cores", "2", "--configfile", overlay, cwd=repo)
    assert {p: p.stat().st_mtime_ns for p in (repo / "data" / "curated").rglob("*")} == curated  # not rewritten
    assert plan(repo) == {}, "the default run after the study's"
    assert plan(repo, "--configfile", overlay) == {}, "the study's after the default run's dry run"
