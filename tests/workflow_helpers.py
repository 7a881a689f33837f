"""Helpers shared by the workflow tests: run a command with the project's tools on PATH, copy the
workflow into a scratch repository, read a table's PSNR cells, start and stop a loopback service."""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ENV = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
WORKFLOW_FILES = [
    "Snakefile",
    "rules",
    "stages",
    "src",
    "report",
    "profiles",
    "slurm",
    "envs",
    "config",
    "dvc.yaml",
    ".test",
    "scripts",
]
GIT_USER = ["-c", "user.name=t", "-c", "user.email=t@t"]


def sh(*cmd, cwd, check=True, timeout=1800, env=None) -> subprocess.CompletedProcess:
    """Run a command, captured; on failure (when `check`) raise with the tail of its output."""
    proc = subprocess.run(
        [str(c) for c in cmd], check=False, cwd=cwd, env=env or ENV, capture_output=True, text=True, timeout=timeout
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(map(str, cmd))} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return proc


def copy_workflow(repo: Path, *, git: bool = True) -> Path:
    """The workflow files with the tiny `.test/` config as the default config, optionally as a git +
    DVC repository (one commit; default DVC remote as in the project: a sibling directory)."""
    repo.mkdir(parents=True)
    for name in WORKFLOW_FILES:
        src = ROOT / name
        if src.is_symlink():  # `slurm` -> profiles/slurm: stays a link to the copy's profile
            (repo / name).symlink_to(src.readlink())
        elif src.is_dir():
            shutil.copytree(src, repo / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy(src, repo / name)
    shutil.copy(ROOT / ".test" / "config.yaml", repo / "config" / "config.yaml")
    for name in (".gitignore", ".dvcignore"):
        shutil.copy(ROOT / name, repo / name)
    if git:
        sh("git", "init", "-q", cwd=repo)
        sh(BIN / "dvc", "init", "-q", cwd=repo)  # writes its own .dvcignore: the project's goes back
        for name in (".dvcignore", ".dvc/config"):
            shutil.copy(ROOT / name, repo / name)
        shutil.copytree(ROOT / ".dvc" / "plots", repo / ".dvc" / "plots")  # the plots' template
        commit(repo, "init")
    return repo


def job_stats(out: str) -> dict[str, int]:
    """Job counts of a Snakemake run or dry run (its "Job stats" table)."""
    if "Job stats:" not in out:
        return {}
    block = out.split("Job stats:")[1].split("\n\n")[0]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", block, re.MULTILINE) if m[1] != "total"}


def commit(repo: Path, message: str) -> None:
    sh("git", "add", "-A", cwd=repo)
    sh("git", *GIT_USER, "commit", "-q", "--allow-empty", "-m", message, cwd=repo)


def psnr_cells(path: Path) -> dict[tuple, float]:
    """(method, variant, task, role) → PSNR of a table CSV (time cells left out)."""
    return {
        (r["method"], r["variant"], r["task"], r["role"]): float(r["psnr_db"])
        for r in csv.DictReader(path.open())
        if r["role"] != "time"
    }


def assert_same_tables(res: Path, ref: Path) -> None:
    """Tables 1-3 of two runs agree: every PSNR cell equal (BM3D included: it runs single-threaded)."""
    for n in ("table1", "table2", "table3"):
        got, want = psnr_cells(res / "tables" / f"{n}.csv"), psnr_cells(ref / "tables" / f"{n}.csv")
        assert got == want, n


def start_service(script: str, state: Path) -> bool:
    """Start scripts/<script> in `state`; True when this call started it (False: already running)."""
    proc = sh("bash", ROOT / "scripts" / script, "start", state, cwd=ROOT, timeout=900)
    return "already running" not in proc.stdout


def stop_service(script: str, state: Path) -> None:
    """Stop scripts/<script> in `state` and check that every process it had started is gone."""
    pids = [int(p.read_text()) for p in state.rglob("*.pid") if p.read_text().strip().isdigit()]
    sh("bash", ROOT / "scripts" / script, "stop", state, cwd=ROOT, timeout=120)
    alive = [p for p in pids if Path(f"/proc/{p}").exists() and "zombie" not in _state_of(p)]
    assert not alive, f"{script} stop left processes {alive} running"


def _state_of(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split("\n")[0].lower()
    except (OSError, IndexError):
        return "zombie"


def config_reads_env(log: Path) -> dict[str, str]:
    """Environment entries under which every stage appends the config keys it reads to ``log``
    (tests/config_reads/sitecustomize.py)."""
    path = os.pathsep.join(p for p in (str(ROOT / "tests" / "config_reads"), os.environ.get("PYTHONPATH")) if p)
    return {"PYTHONPATH": path, "METADIP_CONFIG_READS": str(log)}


def placeholder_outputs(repo: Path) -> None:
    """Every output of the workflow in ``repo`` as an empty file (a folder for a curated dataset),
    marked up to date with `snakemake --touch`: no output records a step hash."""
    plan = sh(BIN / "snakemake", "-n", cwd=repo).stdout
    for block in plan.split("\n\n"):
        rule = re.search(r"^(?:local)?rule (\w+):", block, re.MULTILINE)
        outputs = re.search(r"^    output: (.+)$", block, re.MULTILINE)
        for out in outputs[1].split(", ") if rule and outputs else []:
            path = repo / out
            if rule[1] == "curate":
                path.mkdir(parents=True)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.touch()
    sh(BIN / "snakemake", "--touch", "--cores", "1", cwd=repo)
