"""DVC stages: their code dependencies cover what their stages import, and a Snakemake run is
recorded with `dvc commit` without recomputing; a code change then marks the stages that use it."""

from __future__ import annotations

from pathlib import Path

import yaml
from workflow_helpers import BIN, ROOT, commit, copy_workflow, sh

from metadip.core.checkpoints import code_files

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
    for d in ("meta", "denoisers", "pnp", "eval", "tables", "figures"):
        (repo / "results" / d).mkdir(parents=True)
        (repo / "results" / d / "a").write_text("x")
    for f in ("results.parquet", "claims.json", "claims.md", "summary.json", "means.csv", "convergence.csv"):
        (repo / "results" / f).write_text("{}" if f.endswith(".json") else "step,nmse_mean\n")


def test_dvc_commit_records_a_snakemake_run_and_code_changes_rerun_their_stages(tmp_path):
    repo = copy_workflow(tmp_path / "repo")
    fake_outputs(repo)
    sh(BIN / "dvc", "commit", "-f", cwd=repo)  # the documented recipe after a Snakemake run
    assert "up to date" in sh(BIN / "dvc", "status", cwd=repo).stdout
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
