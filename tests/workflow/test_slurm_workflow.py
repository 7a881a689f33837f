"""The SLURM profile against a real cluster (scripts/slurm_cluster.sh: slurmctld + slurmd on
loopback, two fake GPUs; marked slow). The profile is used as shipped, with its two EDIT lines
edited as a user would (partition) and two test-local flags: `squeue` status (the test cluster has no
accounting daemon for `sacct`) and a 2 s first status check."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml
from safetensors.numpy import load_file
from workflow_helpers import BIN, ROOT, assert_same_tables, copy_workflow, job_stats, sh

pytestmark = pytest.mark.slow
TEST_FLAGS = ["--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "2"]
GPU_RULES = {"meta_train", "train_denoiser", "dip_stop"}


def edited_profile(dest: Path) -> Path:
    """A copy of profiles/slurm with its partition line edited by the README's command."""
    shutil.copytree(ROOT / "profiles" / "slurm", dest)
    sh("sed", "-i", 's/slurm_partition: "gpu"/slurm_partition: "debug"/', dest / "config.yaml", cwd=dest)
    assert 'slurm_partition: "debug"' in (dest / "config.yaml").read_text()
    return dest


def submissions(workdir: Path) -> dict[str, dict[str, str]]:
    """SLURM job id → {rule, wildcards, gres, log} for every job the executor says it submitted
    (its Snakemake log), as SLURM recorded it (`scontrol show job`; the test cluster keeps finished
    jobs for an hour)."""
    ids = []
    for log in sorted((workdir / ".snakemake" / "log").glob("*.snakemake.log")):
        ids += re.findall(r"submitted with SLURM jobid (\d+)", log.read_text())
    jobs = {}
    for jid in ids:
        info = subprocess.run(["scontrol", "show", "job", jid], capture_output=True, text=True, check=True).stdout
        comment = re.search(r"Comment=rule_(\w+?)(?:_wildcards_(\S+))?\s", info)
        jobs[jid] = {
            "rule": comment[1],
            "wildcards": comment[2] or "",
            "gres": (re.search(r"TresPer(?:Job|Node|Task)=(\S+)", info) or [None, ""])[1],
            "log": re.search(r"StdOut=(\S+)", info)[1],
        }
    return jobs


def test_a_failing_job_is_retried_once_then_reported(slurm_cluster, tmp_path):
    (tmp_path / "Snakefile").write_text("""
rule flaky:  # fails on its first attempt only
    output: "flaky.done"
    shell: "test -e flaky.failed-once || {{ touch flaky.failed-once; exit 3; }}; touch {output}"

rule broken:  # always fails
    output: "broken.done"
    shell: "echo broken on purpose >&2; exit 4"
""")
    profile = edited_profile(tmp_path / "profile")
    base = [BIN / "snakemake", "--profile", profile, *TEST_FLAGS, "-s", tmp_path / "Snakefile", "-d", tmp_path]
    sh(*base, "flaky.done", cwd=tmp_path, timeout=300)
    jobs = submissions(tmp_path)
    assert [j["rule"] for j in jobs.values()] == ["flaky", "flaky"]  # failed, resubmitted (retries: 1), done
    assert (tmp_path / "flaky.done").exists()

    failed = sh(*base, "broken.done", cwd=tmp_path, check=False, timeout=300)  # reported, not hung
    out = failed.stdout + failed.stderr
    assert failed.returncode != 0
    assert "Error in rule broken" in out and "broken on purpose" in out  # show-failed-logs
    assert [j["rule"] for j in submissions(tmp_path).values()].count("broken") == 2
    assert not (tmp_path / "broken.done").exists()


@pytest.mark.timeout(2400)
def test_tiny_pipeline_on_slurm_equals_the_local_run(slurm_cluster, tiny_repo, tmp_path):
    repo = copy_workflow(tmp_path / "repo", git=False)
    # as docs/cluster.md says: edit the partition in place, run the profile by its bare name from the root
    sh("sed", "-i", 's/slurm_partition: "gpu"/slurm_partition: "debug"/', "profiles/slurm/config.yaml", cwd=repo)
    run = sh(BIN / "snakemake", "--profile", "slurm", *TEST_FLAGS, cwd=repo, timeout=2000)
    out = run.stdout + run.stderr
    stats = job_stats(out)
    local = {"all", "aggregate", "claims", "pnp_table", "render"}  # localrules: the target and the light report steps
    # every job but the local target went through sbatch, GPU rules with a GPU request
    jobs = submissions(repo)
    by_rule = {}
    for j in jobs.values():
        by_rule[j["rule"]] = by_rule.get(j["rule"], 0) + 1
    assert by_rule == {r: n for r, n in stats.items() if r not in local and r != "total"}, (by_rule, stats)
    cfg = yaml.safe_load((repo / "config" / "config.yaml").read_text())
    gpu_methods = {m for m, spec in cfg["evaluate"]["methods"].items() if spec["kind"] in ("dip", "meta")}
    for jid, j in jobs.items():
        wants_gpu = j["rule"] in GPU_RULES or (
            j["rule"] == "evaluate" and any(re.search(rf"_{m}_\d+$", j["wildcards"]) for m in gpu_methods)
        )
        assert ("gpu:1" in j["gres"]) == wants_gpu, (jid, j)
        assert j["log"].startswith(str(repo / "results" / "logs" / "slurm")), j
    assert sum("gpu:1" in j["gres"] for j in jobs.values()) >= 3

    # the outputs equal those of the local run (the shared tiny pipeline, same config): crops byte
    # for byte, every tensor of the weights and checkpoints (a safetensors header's metadata has no
    # fixed key order), the tuned PnP parameters and scores, every table cell
    ref = tiny_repo
    for sub in ("data/curated", "results/meta", "results/denoisers"):
        files = sorted(p.relative_to(repo) for p in (repo / sub).rglob("*") if p.suffix in (".npy", ".safetensors"))
        assert files and files == sorted(
            p.relative_to(ref) for p in (ref / sub).rglob("*") if p.suffix in (".npy", ".safetensors")
        )
        for f in files:
            if f.suffix == ".npy":
                assert (repo / f).read_bytes() == (ref / f).read_bytes(), f
            else:
                got, want = load_file(repo / f), load_file(ref / f)
                assert got.keys() == want.keys() and all(np.array_equal(got[k], want[k]) for k in got), f
    for p in sorted((ref / "results" / "pnp").glob("*.json")):
        got, want = json.loads((repo / "results" / "pnp" / p.name).read_text()), json.loads(p.read_text())
        assert got["best"] == want["best"] and got["results"] == want["results"], p.name
    assert_same_tables(repo / "results", ref / "results")
