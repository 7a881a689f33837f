"""The workflow: lint, dry runs of the shipped configs (no GPU, network or cluster needed), and a
tiny end-to-end run through DVC (marked slow): tables and figures, metrics, push/pull into a fresh
clone with nothing left to do (after `snakemake --touch`), and an interrupted evaluation that resumes with only
missing shards."""

from __future__ import annotations

import csv
import json
import math
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from workflow_helpers import (
    BIN,
    ENV,
    ROOT,
    WORKFLOW_FILES,
    assert_same_tables,
    copy_workflow,
    job_stats,
    placeholder_outputs,
    psnr_cells,
    sh,
)

from metadip.core.hashing import content_sha
from metadip.reporting.protocol import load_protocol


def test_lint_is_clean():
    proc = sh(BIN / "snakemake", "--lint", cwd=ROOT, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--configfile", ROOT / "config/study.yaml"],
        ["--configfile", ROOT / "config/paper.yaml"],
        ["--configfile", ROOT / ".test/config.yaml", "--replace-workflow-config"],
    ],
)
def test_dry_run_needs_nothing(args, tmp_path):
    proc = sh(BIN / "snakemake", "-n", "-d", tmp_path, *args, cwd=ROOT)
    out = proc.stdout + proc.stderr
    rules = ("curate", "meta_train", "train_denoiser", "tune_pnp", "dip_stop", "evaluate", "aggregate", "render")
    for rule in (*rules, "pnp_table"):
        assert f"rule {rule}:" in out or f"localrule {rule}:" in out, rule
    assert ("rule claims:" in out) == ("paper.yaml" not in str(args)), args  # the paper config checks no claims


def test_the_more_photos_overlay_curates_its_own_data_and_ablates_one_variant(tmp_path):
    target = "results/more-photos/ablation/more_photos/result.json"
    overlay = ROOT / "config" / "more-photos.yaml"
    out = sh(BIN / "snakemake", target, "-n", "-d", tmp_path, "--configfile", overlay, cwd=ROOT)
    stats = job_stats(out.stdout)
    assert stats == {"curate": 2, "ablate": 1}, stats
    assert "data/curated-more-photos/wallpapers" in out.stdout and "output: data/curated/" not in out.stdout


def test_the_claims_target_plans_only_the_shards_the_claims_read(tmp_path):
    """`snakemake claims` plans no baseline: no DRUNet training, no PnP tuning, and only the
    evaluation shards of the methods the claims name (with the study's replicates), and the stop
    step of the DIP they read (chosen on validation crops) per setting and class."""
    base, study = (yaml.safe_load((ROOT / "config" / f).read_text()) for f in ("config.yaml", "study.yaml"))
    study_yaml = ROOT / "config" / "study.yaml"
    out = sh(BIN / "snakemake", "claims", "-n", "-d", tmp_path, "--configfile", study_yaml, cwd=ROOT).stdout
    stats = job_stats(out)
    assert set(stats) == {"curate", "meta_train", "dip_stop", "evaluate", "claims"}, stats
    assert stats["dip_stop"] == len(base["evaluate"]["tasks"]) * 2  # one per setting and class, not per shard
    shards = set(re.findall(r"results/study/eval/\w+/\w+/(\w+)/shard-\d+\.parquet", out))
    claims = base["claims"]
    replicates = {r for v in study["claims"]["replicates"].values() for r in v}
    named = {claims["method"], claims["control_same_loop"], *claims["rivals"], *claims["transfer"].values()}
    controls = {claims["control"]} - {None}
    assert replicates and shards == named | controls | replicates | {"dip"}, shards
    # one job per task, class, method and shard ('dip' reports dip_50 and dip_1000 from one run); the inits
    # meta-trained on CS or PR run on their own family's two settings only
    family = {m: base["evaluate"]["methods"][m].get("families") for m in shards if m in base["evaluate"]["methods"]}
    per_class = sum(2 if family.get(m) else len(base["evaluate"]["tasks"]) for m in shards)
    assert stats["evaluate"] == per_class * 2 * study["evaluate"]["shards"]


def test_ablation_is_off_by_default_and_one_job_per_variant_when_on(tmp_path):
    off = sh(BIN / "snakemake", "-n", "-d", tmp_path, cwd=ROOT).stdout
    assert "rule ablate:" not in off
    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    cfg["ablation"]["enabled"] = True
    (tmp_path / "on.yaml").write_text(yaml.safe_dump(cfg))
    on = sh(BIN / "snakemake", "-n", "-d", tmp_path, "--configfile", tmp_path / "on.yaml", cwd=ROOT).stdout
    assert on.count("rule ablate:") == len(cfg["ablation"]["variants"]) and "rule ablation_table:" in on


def test_command_line_config_is_honoured_and_validated(tmp_path):
    base = job_stats(sh(BIN / "snakemake", "-n", "-d", tmp_path / "a", cwd=ROOT).stdout)
    proc = sh(BIN / "snakemake", "-n", "-d", tmp_path / "b", "--config", "evaluate={images: 3, shards: 1}", cwd=ROOT)
    merged = yaml.safe_load(snapshot_of(proc.stdout, tmp_path / "b").read_text())
    assert merged["evaluate"]["images"] == 3 and merged["evaluate"]["shards"] == 1  # numbers, not strings
    shards = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())["evaluate"]["shards"]
    assert job_stats(proc.stdout)["evaluate"] * shards == base["evaluate"]

    for args, named in (
        (["no_such_key=1"], "'no_such_key' was unexpected"),
        (["evaluate={no_such: 1}"], "'no_such' was unexpected"),
        (["evaluate={images: many}"], "evaluate/images: 'many' is not of type 'integer'"),
    ):
        bad = sh(BIN / "snakemake", "-n", "-d", tmp_path / "c", "--config", *args, cwd=ROOT, check=False)
        assert bad.returncode != 0 and named in bad.stdout + bad.stderr, bad.stdout + bad.stderr
        assert "Traceback" not in bad.stdout + bad.stderr


def snapshot_of(plan: str, workdir) -> Path:
    """The config snapshot every stage of a dry run's plan reads (--config with its hash, --config-sha)."""
    found = set(re.findall(r"--config (results/configs/(\w+)\.yaml) --config-sha (\w+)", plan))
    assert len(found) == 1 and all(name == sha for _, name, sha in found), found
    path = workdir / found.pop()[0]
    assert content_sha(path.read_bytes()) == path.stem
    return path


def test_meta_training_on_several_gpus_runs_under_torchrun_in_one_job(tmp_path):
    one = sh(BIN / "snakemake", "-n", "-d", tmp_path / "a", cwd=ROOT).stdout
    assert "torch.distributed.run" not in one
    two = sh(BIN / "snakemake", "-n", "-d", tmp_path / "b", "--config", "meta={gpus: 2}", cwd=ROOT).stdout
    launches = [line for line in two.splitlines() if "stages/meta_train.py" in line]
    assert launches and all("-m torch.distributed.run --standalone --nproc_per_node 2 " in x for x in launches)
    assert "gpu=2" in two  # the SLURM executor asks for both GPUs in the job's one task


def test_overlay_removes_default_entries_set_to_null(tmp_path):
    (tmp_path / "o.yaml").write_text("evaluate:\n  methods:\n    pnp_bm3d: null\n")
    proc = sh(BIN / "snakemake", "-n", "-d", tmp_path, "--configfile", tmp_path / "o.yaml", cwd=ROOT)
    assert "pnp_bm3d" not in proc.stdout and "tune_pnp" in proc.stdout


def test_overlay_keys_follow_the_default_configs_order(tmp_path):
    # Snakemake merges the overlays first; the merged config keeps config/config.yaml's key order (the
    # tables' row order), an overlay's new method after the default ones
    extra = "extra: {kind: meta, init: metadip, label: X, steps: 5}"
    (tmp_path / "o.yaml").write_text(f"evaluate:\n  methods:\n    {extra}\n")
    proc = sh(BIN / "snakemake", "-n", "-d", tmp_path, "--configfile", tmp_path / "o.yaml", cwd=ROOT)
    merged = yaml.safe_load(snapshot_of(proc.stdout, tmp_path).read_text())
    default = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    assert list(merged) == [k for k in default if k in merged] + [k for k in merged if k not in default]
    assert list(merged["evaluate"]["methods"]) == [*default["evaluate"]["methods"], "extra"]


def test_bad_config_stops_the_workflow_with_one_line(tmp_path):
    cfg = yaml.safe_load((ROOT / ".test" / "config.yaml").read_text())
    cfg["evaluate"]["roles"]["faces"] = "celeba"
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(cfg))
    proc = sh(BIN / "snakemake", "-n", "-d", tmp_path, "--configfile", tmp_path / "bad.yaml", cwd=ROOT, check=False)
    assert proc.returncode != 0
    assert "evaluate.roles.faces: no dataset 'celeba' under curate.datasets" in proc.stdout + proc.stderr


def test_a_duplicate_key_in_a_config_file_stops_the_workflow_with_one_line(tmp_path):
    (tmp_path / "dup.yaml").write_text("seed: 1\nevaluate:\n  images: 4\nseed: 2\n")
    proc = sh(BIN / "snakemake", "-n", "-d", tmp_path, "--configfile", tmp_path / "dup.yaml", cwd=ROOT, check=False)
    assert proc.returncode != 0
    assert "dup.yaml: duplicate key 'seed' at line 4 (first at line 1); keep one" in proc.stdout + proc.stderr


def test_a_dry_run_leaves_the_latest_runs_config_link_alone(tmp_path):
    """<results>/config.yaml points at the snapshot of the latest real run only."""
    sh(BIN / "snakemake", "-n", "-d", tmp_path, cwd=ROOT)
    assert not (tmp_path / "results" / "config.yaml").exists()


def spaced_config(repo, curated: str, results: str, **extra) -> None:
    """The repository's (tiny) config with paths.curated and paths.results replaced."""
    cfg = yaml.safe_load((repo / "config" / "config.yaml").read_text())
    cfg["paths"] = {"curated": curated, "results": results}
    cfg.update(extra)
    (repo / "config" / "config.yaml").write_text(yaml.safe_dump(cfg))


def test_every_path_in_every_shell_command_is_quoted(tmp_path):
    """Paths with spaces reach every stage as one argument each, the log redirection included
    (unquoted, `> my results/logs/x.log` wrote a file `my` and passed the rest on)."""
    repo = copy_workflow(tmp_path / "repo", git=False)
    ablation = {
        "enabled": True,
        "transfer": {"dataset": "skimage", "tasks": {"den_15": {"kind": "denoising", "sigma": 15}}},
        "variants": {"reference": {}, "fixed_lr": {"inner": {"learn_lr": False}}},
    }
    spaced_config(repo, str(tmp_path / "shared data" / "cur ated"), "my results", ablation=ablation)
    out = sh(BIN / "snakemake", "-n", "--printshellcmds", cwd=repo).stdout
    commands = re.findall(r"^Shell command: (.+)$", out, re.MULTILINE)
    commands = [c for c in commands if c != "None"]
    rules = {r for r in re.findall(r"^(?:local)?rule (\w+):", out, re.MULTILINE) if r != "all"}
    assert rules == {
        "curate",
        "meta_train",
        "train_denoiser",
        "tune_pnp",
        "dip_stop",
        "evaluate",
        "aggregate",
        "claims",
        "pnp_table",
        "render",
        "ablate",
        "ablation_dip",
        "ablation_table",
    }
    assert len(commands) == sum(job_stats(out).values()) - 1  # every job but `all`
    for cmd in commands:
        args = shlex.split(cmd)
        assert not {"my", "data", str(tmp_path / "shared")} & set(args), cmd  # no path split at its space
        assert args[-3] == ">" and args[-2].startswith("my results/logs/") and args[-1] == "2>&1", cmd
        for flag in (
            "--out",
            "--data",
            "--results",
            "--curated",
            "--tables",
            "--figures",
            "--summary",
            "--convergence",
            "--meta-init",
            "--drunet",
            "--pnp",
            "--dip-stop",
            "--tuning",
            "--weights",
            "--transfer-data",
            "--markdown",
            "--csv",
        ):
            for i in (i for i, a in enumerate(args) if a == flag):
                assert args[i + 1].startswith(("my results/", f"{tmp_path}/shared data/cur ated")), (flag, cmd)


def test_a_deleted_shard_or_results_parquet_is_rebuilt_with_its_downstream(tmp_path):
    """Every output in place and up to date (created empty, then `snakemake --touch`): deleting a
    shard and results.parquet plans exactly that shard, aggregate, claims and render. (Snakemake >= 7.7
    rebuilds a missing file only when it is a target or a job downstream of it has to run anyway,
    so `all` lists the intermediate files; before, this was "Nothing to be done".)"""
    repo = copy_workflow(tmp_path / "repo", git=False)
    placeholder_outputs(repo)
    assert "Nothing to be done" in sh(BIN / "snakemake", "-n", cwd=repo).stdout
    shard = repo / "results" / "eval" / "cs_4" / "wallpapers" / "metadip" / "shard-0.parquet"
    shard.unlink()
    (repo / "results" / "results.parquet").unlink()
    plan = sh(BIN / "snakemake", "-n", cwd=repo).stdout
    assert job_stats(plan) == {"evaluate": 1, "aggregate": 1, "claims": 1, "render": 1, "all": 1}, plan[-3000:]
    assert (
        re.search(r"output: (\S+)\n(?:.*\n)*?\s+reason: Missing output files", plan.split("rule evaluate:")[1])[1]
        == "results/eval/cs_4/wallpapers/metadip/shard-0.parquet"
    )
    # a deleted results.parquet alone: aggregate and render only
    shard.touch()
    (repo / "results" / "results.parquet").touch()
    sh(BIN / "snakemake", "--touch", "--cores", "1", cwd=repo)
    (repo / "results" / "results.parquet").unlink()
    assert job_stats(sh(BIN / "snakemake", "-n", cwd=repo).stdout) == {"aggregate": 1, "render": 1, "all": 1}


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_tiny_pipeline_with_spaces_in_its_paths_then_a_deleted_shard_is_rebuilt(tmp_path):
    """The tiny pipeline with paths.results = "my results" (relative) and paths.curated a folder
    with spaces outside the project: every step runs, its outputs land there, no stray file
    appears. Then a deleted shard and results.parquet are rebuilt by a plain `snakemake`, with
    aggregate, claims and render and nothing else; the other shards are kept and the tables agree.
    A changed claims setting replans the steps that read it, a changed meta-training those downstream of
    it but not vanilla DIP."""
    repo = copy_workflow(tmp_path / "repo", git=False)
    curated = tmp_path / "shared data" / "cur ated"
    spaced_config(repo, str(curated), "my results")
    run = sh(BIN / "snakemake", "--cores", "2", cwd=repo, check=False)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    res = repo / "my results"
    for n in (1, 2, 3):
        assert (res / "tables" / f"table{n}.csv").stat().st_size > 200
    assert (res / "results.parquet").is_file() and (res / "logs" / "render.log").is_file()
    assert {p.name for p in curated.iterdir()} == {"skimage", "wallpapers"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["repo", "shared data"]  # nothing outside the project
    allowed = {*WORKFLOW_FILES, ".gitignore", ".dvcignore", ".snakemake", "my results"}
    assert {p.name for p in repo.iterdir()} <= allowed, {p.name for p in repo.iterdir()} - allowed
    assert {p.name for p in (tmp_path / "shared data").iterdir()} == {"cur ated"}

    shutil.copytree(res / "tables", tmp_path / "before" / "tables")
    shards = {p: p.stat().st_mtime_ns for p in (res / "eval").rglob("*.parquet")}
    shard = res / "eval" / "cs_4" / "wallpapers" / "metadip" / "shard-0.parquet"
    shard.unlink()
    (res / "results.parquet").unlink()
    rerun = sh(BIN / "snakemake", "--cores", "2", cwd=repo)
    assert job_stats(rerun.stdout + rerun.stderr) == {"evaluate": 1, "aggregate": 1, "claims": 1, "render": 1, "all": 1}
    assert shard.is_file() and (res / "results.parquet").is_file()
    assert all(p.stat().st_mtime_ns == t for p, t in shards.items() if p != shard)
    assert_same_tables(res, tmp_path / "before")
    assert "Nothing to be done" in sh(BIN / "snakemake", "-n", cwd=repo).stdout
    # a changed bound (the protocol file) reruns the claims only; a changed headline method the steps that
    # read the reporting settings; no evaluation
    protocol = repo / "config" / "protocol.yaml"
    protocol.write_text(protocol.read_text().replace("bound: -1.0", "bound: -0.5", 1))
    bound = sh(BIN / "snakemake", "-n", cwd=repo).stdout
    assert job_stats(bound) == {"claims": 1, "all": 1}, bound[-3000:]
    long = sh(BIN / "snakemake", "-n", "--config", "claims={long: dip_10}", cwd=repo).stdout
    assert job_stats(long) == {"aggregate": 1, "claims": 1, "render": 1, "all": 1}, long[-3000:]
    # a changed meta-training reruns MetaDIP and its control (3 settings x 2 classes each), not vanilla DIP,
    # which borrows only MetaDIP's network
    meta = sh(BIN / "snakemake", "-n", "--config", "meta={methods: {metadip: {outer: {lr: 0.002}}}}", cwd=repo).stdout
    planned = {"meta_train": 1, "evaluate": 12, "aggregate": 1, "claims": 1, "render": 1, "all": 1}
    assert job_stats(meta) == planned, meta[-3000:]
    outputs = [line for line in meta.splitlines() if line.strip().startswith("output:")]
    assert not [o for o in outputs if "/dip/" in o] and [o for o in outputs if "/metadip_random/" in o], outputs


def without_time(md: str) -> str:
    """A Markdown table without its time columns and without BM3D rows (see the assertion below)."""
    out, keep = [], None
    for line in md.splitlines():
        if not line.startswith("|"):
            out.append(line)
            continue
        cells = line.strip().strip("|").split("|")
        if keep is None:  # the header row
            keep = [i for i, h in enumerate(cells) if "time" not in h]
        if "BM3D" not in cells[0]:
            out.append("|".join(cells[i] for i in keep))
    return "\n".join(out)


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_tiny_pipeline_end_to_end_with_dvc(tiny_repo, tmp_path):
    repo = tiny_repo
    res = repo / "results"
    cfg = yaml.safe_load((repo / "config" / "config.yaml").read_text())
    methods = cfg["evaluate"]["methods"]
    everywhere = {"dip_10", "dip_30", "dip_val", "metasiren", "metadip", "metadip_random", "metadip_frozen"}
    own = {t: {m for m, spec in methods.items() if spec.get("families") == [f]} for t, f in ((2, "cs"), (3, "pr"))}
    assert own[2] == {"metadip_cs"} and not own[3]  # the tiny config trains no init on PR
    expected = {  # an init trained on a task family's physics runs in that family's table only
        1: everywhere | {"bm3d", "drunet"},
        2: everywhere | {"pnp_bm3d", "pnp_drunet"} | own[2],
        3: everywhere | {"pnp_bm3d", "pnp_drunet"} | own[3],
    }
    for table, ids in expected.items():
        for ext in ("md", "tex", "csv"):
            assert (res / "tables" / f"table{table}.{ext}").stat().st_size > 200
        cells = psnr_cells(res / "tables" / f"table{table}.csv")
        assert {m for m, _, _, _ in cells} == ids
        assert all(math.isfinite(v) and 3 < v < 60 for v in cells.values()), cells
    for n in (2, 3, 4, 5):
        assert (res / "figures" / f"figure{n}.png").stat().st_size > 20_000
    means = {(r["task"], r["dataset"], r["method"]): r for r in csv.DictReader((res / "means.csv").open())}
    # every task setting and dataset: the meta-init row and its control (the same inner loop from the
    # network's own initialisation) ran different networks. Whether the meta-init wins is science, not
    # plumbing: 3 outer steps and 2 images cannot say (tests/meta/test_meta.py and the claims do)
    steps = methods["metadip"]["steps"]
    assert methods["metadip_random"]["steps"] == steps
    for task in cfg["evaluate"]["tasks"]:
        for dataset in cfg["evaluate"]["roles"].values():
            meta, control = means[(task, dataset, "metadip")], means[(task, dataset, "metadip_random")]
            assert meta["psnr_db"] != control["psnr_db"], (task, dataset, meta, control)
            assert meta["images"] == control["images"] == means[(task, dataset, f"dip_{steps}")]["images"]
    rows = sh(
        sys.executable,
        "-c",
        "import pyarrow.parquet as pq; t = pq.read_table('results/results.parquet'); "
        "print(t.num_rows, sorted(set(t.column('git_commit').to_pylist())), "
        "len(set(t.column('config_hash').to_pylist())))",
        cwd=repo,
    ).stdout.split()
    assert int(rows[0]) > 0
    # the headline per setting (MetaDIP, DIP(1000), their gap with its interval, the speed-up), not every method
    summary = json.loads((res / "summary.json").read_text())
    long = cfg["claims"]["long"]
    assert {"metadip_db", f"{long}_db", "gap_ci_low_db", "speedup"} <= set(summary["cs_4"]["wallpapers"])
    metrics = sh(BIN / "dvc", "metrics", "show", cwd=repo).stdout  # the gap and verdict counts per setting
    assert "gap_db" in metrics and "n.holds" in metrics and "pnp_bm3d" not in metrics
    claims = json.loads((res / "claims.json").read_text())  # the verdict is written (this tiny run need not pass it)
    protocol = load_protocol(repo / "config" / "protocol.yaml")  # every check: the tiny config sets every role
    assert list(dict.fromkeys(v["claim"] for v in claims["verdicts"])) == [c.id for c in protocol.checks]
    assert claims["protocol"]["sha256"] == protocol.sha256
    assert {c["verdict"] for c in claims["checks"]} <= {"holds", "fails", "inconclusive", "underpowered"}
    assert "| claim | reading | verdict |" in (res / "claims.md").read_text()
    assert (repo / "dvc.lock").is_file()

    # share: push to the default (local directory) remote, pull into a fresh clone -> nothing to do
    sh(BIN / "dvc", "push", "-q", cwd=repo)
    clone = repo.parent / "clone"  # beside the repository, like the default remote
    sh("git", "clone", "-q", repo, clone, cwd=tmp_path)
    sh(BIN / "dvc", "pull", "-q", cwd=clone)
    assert (clone / "results" / "meta" / "metadip" / "meta_init.safetensors").read_bytes() == (
        res / "meta" / "metadip" / "meta_init.safetensors"
    ).read_bytes()
    sh(BIN / "snakemake", "--touch", cwd=clone)  # DVC checks files out with checkout times
    dry = sh(BIN / "snakemake", "-n", cwd=clone)
    assert "Nothing to be done" in dry.stdout + dry.stderr, dry.stdout[-3000:]

    # a config change reruns exactly the steps downstream of it (here: the PnP grids)
    changed = yaml.safe_load((repo / "config" / "config.yaml").read_text())
    changed["baselines"]["pnp"]["grid"]["cs_bm3d"]["rho"] = [0.25]
    (tmp_path / "changed.yaml").write_text(yaml.safe_dump(changed))
    plan = sh(BIN / "snakemake", "-n", "--configfile", tmp_path / "changed.yaml", cwd=repo).stdout
    stats = job_stats(plan)
    cs_tasks = [t for t, spec in cfg["evaluate"]["tasks"].items() if spec["kind"].startswith("cs")]
    assert (
        stats.get("tune_pnp") == len(cs_tasks)
        and stats.get("evaluate") == len(cs_tasks) * 2 * cfg["evaluate"]["shards"]
    )
    assert "meta_train" not in stats and "curate" not in stats and "train_denoiser" not in stats

    # interrupt the evaluation (in a copy, with file times kept), rerun: only the missing shards are
    # computed, the tables are the same
    repo = tmp_path / "interrupted"
    shutil.copytree(tiny_repo, repo, symlinks=True)
    res = repo / "results"
    before = {n: (res / "tables" / n).read_text() for n in ("table1.md", "table2.md", "table3.md")}
    for p in ("eval", "tables", "figures", "results.parquet", "summary.json", "convergence.csv"):
        target = res / p
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    # SIGINT back to its default in the child: a test run started in the background of a
    # non-interactive shell inherits SIGINT ignored, and Python then never raises KeyboardInterrupt
    proc = subprocess.Popen(
        [BIN / "snakemake", "--cores", "2", "all"],
        cwd=repo,
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # noqa: PLW1509 - the test is single-threaded
    )
    deadline = time.time() + 600
    while len(list((res / "eval").rglob("*.parquet"))) < 6 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGINT)
    proc.wait(timeout=120)
    kept = {p: p.stat().st_mtime_ns for p in (res / "eval").rglob("*.parquet")}
    assert len(kept) >= 6 and not (res / "results.parquet").exists()
    # what the rerun will do: shards that are missing, and those whose jobs were running when the
    # run was cut (marked incomplete; with rerun-incomplete they show as "Forced execution")
    plan = sh(BIN / "snakemake", "-n", "all", cwd=repo).stdout
    scheduled = {}
    for block in plan.split("rule evaluate:")[1:]:
        out = re.search(r"output: (\S+)", block)[1]
        scheduled[repo / out] = re.search(r"reason: (.*)", block)[1]
    incomplete = {p for p, r in scheduled.items() if r.startswith(("Incomplete output files", "Forced execution"))}
    assert all(r.startswith("Missing output files") for p, r in scheduled.items() if p not in incomplete), scheduled
    assert len(incomplete) <= 2  # at most one job per core was running
    rerun = sh(BIN / "snakemake", "--cores", "2", "all", cwd=repo)
    total = len(list((res / "eval").rglob("*.parquet")))
    assert all(p.stat().st_mtime_ns == m for p, m in kept.items() if p not in incomplete)  # finished shards were kept
    assert (rerun.stdout + rerun.stderr).count("rule evaluate:") == len(scheduled)
    assert len(scheduled) == total - len(kept) + len(incomplete & set(kept))
    assert_same_tables(res, tiny_repo / "results")
    for n in ("table1", "table2", "table3"):
        assert without_time((res / "tables" / f"{n}.md").read_text()) == without_time(before[f"{n}.md"])
