"""The default curation (config/config.yaml) on the embedded offline data (marked slow)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from metadip.config import load_config
from metadip.datasets import CuratedSplit

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


@pytest.mark.parametrize("dataset", ["wallpapers", "skimage"])
def test_default_curation(dataset, tmp_path):
    config = load_config(ROOT / "config" / "config.yaml")
    t = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(ROOT / "stages" / "curate.py"), "--dataset", dataset, "--out", str(tmp_path / dataset)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    print(f"{dataset}: curated in {time.perf_counter() - t:.1f} s")
    summary = json.loads((tmp_path / dataset / "summary.json").read_text())
    assert summary["crops"] == config["curate"]["datasets"][dataset]["crops"]
    assert summary["skipped"] == 0
    for split in ("train", "val", "test"):
        assert len(CuratedSplit(tmp_path / dataset, split)) == summary["crops"][split]


def test_real_data_brought_in_with_dvc_add(tmp_path):
    """The README's route for real data: a local copy tracked with `dvc add`, then curated."""
    from test_curate import make_celeba

    repo = tmp_path / "repo"
    repo.mkdir()
    dvc = str(Path(sys.executable).with_name("dvc"))
    run = lambda *cmd: subprocess.run(cmd, cwd=repo, capture_output=True, text=True, check=True)  # noqa: E731
    run("git", "init", "-q")
    run(dvc, "init", "-q")
    make_celeba(repo / "data" / "raw" / "celeba", n=8)
    run(dvc, "add", "data/raw/celeba")
    assert (repo / "data" / "raw" / "celeba.dvc").is_file()
    assert "/celeba" in (repo / "data" / "raw" / ".gitignore").read_text()
    (repo / "config.yaml").write_text(
        "curate:\n  datasets:\n    celeba:\n      crops: {train: 4, val: 2, test: 2}\n      sources:\n"
        "        - {type: celeba, name: celeba, root: data/raw/celeba, mode: center, center_crop: 178}\n"
    )
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "stages" / "curate.py"),
            "--config",
            "config.yaml",
            "--dataset",
            "celeba",
            "--out",
            "data/curated/celeba",
        ],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads((repo / "data" / "curated" / "celeba" / "summary.json").read_text())["crops"] == {
        "train": 4,
        "val": 2,
        "test": 2,
    }
