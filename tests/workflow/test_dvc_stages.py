"""DVC stages: their code dependencies cover what their stages import, and a Snakemake run is
recorded with `dvc commit` without recomputing (then `dvc repro` runs nothing); a code change then marks
the stages that use it. Slow: the documented sequence on the tiny pipeline, with its metrics and plots."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
import yaml
from workflow_helpers import BIN, ROOT, commit, copy_workflow, sh

from metadip.core.atomic import write_text
from metadip.core.checkpoints import code_files
from metadip.pipeline.config import DEFAULT_CONFIG, load_config
from metadip.reporting.claims import VERDICTS
from metadip.reporting.dvc_views import metrics_files
from metadip.reporting.settings import report_settings

STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def test_code_dependencies_cover_every_module_a_stage_imports():
    for name, stage in STAGES.items():
        deps = [d for d in stage["deps"] if not d.startswith("$")]
        scripts = [ROOT / d for d in deps if d.startswith("stages/")]
        assert scripts, name
        for label, path in code_files(*scripts).items():
            rel = path.relative_to(ROOT).as_posix()
            assert any(rel == d or rel.startswith(d.rstrip("/") + "/") for d in deps), (name, label)


def fake_outputs(repo: Path) -> None:
    """A stand-in for a finished Snakemake run of the tiny config: every DVC output present."""
    for d in ("data/curated/wallpapers", "data/curated/skimage"):
        (repo / d).mkdir(parents=True)
        (repo / d / "manifest.parquet").write_text("x")
    for d in ("meta", "denoisers", "pnp", "dip_stop", "eval", "tables", "figures"):
        (repo / "results" / d).mkdir(parents=True)
        (repo / "results" / d / "a").write_text("x")
    for f in ("results.parquet", "claims.json", "claims.md", "summary.json", "means.csv", "convergence.csv"):
        (repo / "results" / f).write_text("{}" if f.endswith(".json") else "step,nmse_mean\n")
    (repo / "results" / "plots").mkdir()
    (repo / "results" / "plots" / "den_25_faces.csv").write_text("step,method,psnr\n1,DIP,20.0\n")
    (repo / "results" / "metrics").mkdir()
    (repo / "results" / "metrics" / "all.json").write_text('{"checks": {"holds": 1, "fails": 0, "inconclusive": 0}}')


def mtimes(repo: Path) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for d in ("results", "data") for p in (repo / d).rglob("*") if p.is_file()}


def test_dvc_commit_records_a_snakemake_run_and_code_changes_rerun_their_stages(tmp_path):
    repo = copy_workflow(tmp_path / "repo")
    fake_outputs(repo)
    before = mtimes(repo)
    sh(BIN / "dvc", "commit", "-f", "--no-relink", cwd=repo)  # the documented recipe after a Snakemake run
    assert mtimes(repo) == before  # the outputs are not rewritten: Snakemake still finds them up to date
    assert "up to date" in sh(BIN / "dvc", "status", cwd=repo).stdout
    repro = sh(BIN / "dvc", "repro", cwd=repo).stdout  # runs no stage's command
    assert repro.count("didn't change, skipping") == len(STAGES), repro
    commit(repo, "record the run")

    metrics = repo / "src" / "metadip" / "core" / "metrics.py"
    metrics.write_text(metrics.read_text() + "\n# changed\n")
    status = sh(BIN / "dvc", "status", "--json", cwd=repo).stdout
    changed = set(yaml.safe_load(status))
    assert "evaluate" in changed and "curate" in changed  # both read metadip.core

    reporting = repo / "src" / "metadip" / "reporting" / "tables.py"
    sh("git", "checkout", "--", ".", cwd=repo)
    reporting.write_text(reporting.read_text() + "\n# changed\n")
    changed = set(yaml.safe_load(sh(BIN / "dvc", "status", "--json", cwd=repo).stdout))
    assert changed == {"evaluate"}


def test_the_metrics_of_the_default_config_are_a_screen_wide(tmp_path):
    """`dvc metrics show` on the default config's 12 settings, each with two-digit counts and a gap of -12.345 dB."""
    settings = report_settings(load_config(DEFAULT_CONFIG))
    checks = [
        {"task": t, "role": r, "verdict": v} for t in settings.tasks for r in settings.roles for v in VERDICTS * 10
    ]
    gaps = {t: {d: {"gap_db": -12.345} for d in settings.roles.values()} for t in settings.tasks}
    folder = tmp_path / "results" / "metrics"
    for name, metrics in metrics_files({"checks": checks}, gaps, settings).items():
        write_text(folder / f"{name}.json", json.dumps(metrics))
    sh(BIN / "dvc", "init", "-q", "--no-scm", cwd=tmp_path)
    (tmp_path / "dvc.yaml").write_text("metrics:\n  - results/metrics\n")
    lines = sh(BIN / "dvc", "metrics", "show", cwd=tmp_path).stdout.splitlines()
    print(f"dvc metrics show, default config: {len(lines)} lines, at most {max(map(len, lines))} characters")
    assert len(lines) == 2 + 2 * len(settings.tasks) and max(map(len, lines)) <= 120, lines


def timed(times: dict[str, float], label: str, *cmd, cwd: Path) -> str:
    """stdout + stderr of a command; its wall time goes to ``times[label]``."""
    t = time.perf_counter()
    proc = sh(*cmd, cwd=cwd)
    times[label] = time.perf_counter() - t
    return proc.stdout + proc.stderr


def check_views(repo: Path, times: dict[str, float], where: str) -> None:
    """`dvc metrics show`: a row per task setting and class (and all), a screen wide; `dvc plots show`:
    a plot per setting and class with a line per iterative method, drawn into the git-ignored dvc_plots/."""
    cfg = yaml.safe_load((repo / "config" / "config.yaml").read_text())
    settings = [f"{t}_{r}" for t in cfg["evaluate"]["tasks"] for r in cfg["evaluate"]["roles"]]
    lines = timed(times, f"{where}: dvc metrics show", BIN / "dvc", "metrics", "show", cwd=repo).splitlines()
    assert lines[0].split() == ["Path", "gap_db", "n.fails", "n.holds", "n.inconclusive", "n.underpowered"], lines
    assert [line.split()[0] for line in lines[1:]] == [f"results/metrics/{n}.json" for n in sorted(["all", *settings])]
    assert max(map(len, lines)) <= 120, lines
    print(f"{where}: dvc metrics show, {len(lines)} lines, at most {max(map(len, lines))} characters")
    timed(times, f"{where}: dvc plots show", BIN / "dvc", "plots", "show", cwd=repo)
    assert (repo / "dvc_plots" / "index.html").is_file() and not sh("git", "status", "--porcelain", cwd=repo).stdout
    plots = json.loads(sh(BIN / "dvc", "plots", "show", "--json", cwd=repo).stdout)["data"]
    assert sorted(plots) == [f"results/plots/{n}.csv" for n in sorted(settings)]
    lines_drawn = {
        "DIP (EMA)",
        "MetaDIP",
        "MetaSIREN",
        "Random init + MetaDIP inner loop",
        "Random init + its own step sizes",
    }
    for path, (plot,) in plots.items():
        assert plot["content"]["encoding"]["color"]["field"] == "method"
        cs_only = {"MetaDIP trained on CS"} if "/cs_" in path else set()  # an init run on its own family only
        assert {v["method"] for v in plot["content"]["data"]["values"]} == lines_drawn | cs_only, path


def assert_nothing_to_do(repo: Path, times: dict[str, float], where: str) -> None:
    """`dvc status` up to date, `dvc repro` runs no stage's command, `snakemake -n` plans nothing."""
    assert "up to date" in timed(times, f"{where}: dvc status", BIN / "dvc", "status", cwd=repo)
    repro = timed(times, f"{where}: dvc repro", BIN / "dvc", "repro", cwd=repo)
    assert repro.count("didn't change, skipping") == len(STAGES), repro
    assert "Nothing to be done" in sh(BIN / "snakemake", "-n", cwd=repo).stdout


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_the_documented_sequence_after_a_snakemake_run_and_in_a_fresh_clone(tiny_repo, tmp_path):
    """docs/sharing.md on the tiny pipeline, timed (`pytest -s` prints the times): a Snakemake run recorded
    with `dvc commit -f --no-relink` and pushed; a fresh clone that pulls it. In both, `dvc status` is up
    to date, `dvc repro` runs nothing, and the metrics and plots read as documented."""
    times: dict[str, float] = {}
    repo = tmp_path / "repo"
    shutil.copytree(tiny_repo, repo, symlinks=True)
    (repo / "dvc.lock").unlink()  # as after a plain Snakemake run: nothing recorded yet
    sh(BIN / "snakemake", "--cores", "2", cwd=repo)  # finishes what `dvc repro` left for Snakemake to redo
    timed(times, "run: dvc commit -f --no-relink", BIN / "dvc", "commit", "-f", "--no-relink", cwd=repo)
    assert_nothing_to_do(repo, times, "run")
    check_views(repo, times, "run")
    commit(repo, "Results")
    timed(times, "run: dvc push", BIN / "dvc", "push", cwd=repo)

    clone = tmp_path / "clone"  # beside the repository, like the default remote
    sh("git", "clone", "-q", repo, clone, cwd=tmp_path)
    timed(times, "clone: dvc pull", BIN / "dvc", "pull", cwd=clone)
    timed(times, "clone: snakemake --touch", BIN / "snakemake", "--touch", cwd=clone)
    assert_nothing_to_do(clone, times, "clone")
    check_views(clone, times, "clone")
    for label, seconds in times.items():
        print(f"{label}: {seconds:.1f} s")
