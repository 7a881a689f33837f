"""The dataset counts table: planned from the sources, equal to a curation's, current in docs/datasets.md."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
from builders import curate, dataset_config, make_celeba, make_folder

from metadip.core.errors import InputError
from metadip.datasets.counts import BEGIN, END, counts_table, curated_counts, planned_counts, with_table
from metadip.datasets.curate import CurationError
from metadip.datasets.store import CuratedDataError
from metadip.pipeline.config import load_config

ROOT = Path(__file__).resolve().parents[2]
FIX = ".venv/bin/python scripts/dataset_counts.py --write docs/datasets.md"


def _planned(cfg: dict, name: str = "d") -> dict:
    c = cfg["curate"]
    return planned_counts(name, c["datasets"][name], c["crop_size"], cfg["seed"])


def test_docs_table_is_the_default_configs():
    config = load_config(ROOT / "config" / "config.yaml")
    datasets = config["curate"]["datasets"]
    roots = [Path(s["root"]) for ds in datasets.values() for s in ds["sources"] if s.get("root")]
    if missing := [r for r in roots if not r.is_dir()]:
        pytest.skip(f"{missing[0]} is missing (scripts/setup.sh installs lomiri-wallpapers-16.04 as root)")
    table = counts_table(
        {name: _planned(config, name) for name in datasets},
        {name: [s["name"] for s in ds["sources"]] for name, ds in datasets.items()},
    )
    docs = (ROOT / "docs" / "datasets.md").read_text()
    assert with_table(docs, table, "docs/datasets.md") == docs, f"docs/datasets.md's counts are stale: run {FIX}"


def test_planned_counts_are_the_curations(tmp_path):
    """Patches and center crops, weights, a missing file, a split with no crops: as curated."""
    make_celeba(tmp_path / "celeba", n=12)  # 8 / 2 / 2 by its partition file, one listed file missing
    folder = make_folder(tmp_path / "folder", n=7, seed=4)
    cfg = dataset_config(
        [
            {"type": "celeba", "name": "celeba", "root": str(tmp_path / "celeba"), "mode": "center", "weight": 3},
            {"type": "folder", "name": "folder", "root": str(folder)},
        ],
        crops=(30, 0, 9),
    )
    planned = _planned(cfg)
    curate(cfg, tmp_path / "out")
    assert planned == curated_counts(tmp_path / "out")
    assert planned["crops"]["val"] == 0 and planned["photographs"]["val"] > 0
    assert planned["crops"]["train"] < 30  # the center source runs out of photographs
    (tmp_path / "out" / "summary.json").write_text("{}")
    with pytest.raises(CuratedDataError, match=r"summary.json: no readable source_images record"):
        curated_counts(tmp_path / "out")


def test_a_split_without_photographs_is_the_curations_error(tmp_path):
    cfg = dataset_config([{"type": "folder", "name": "f", "root": str(make_folder(tmp_path / "f", n=1))}])
    with pytest.raises(CurationError, match="no usable source image for split"):
        _planned(cfg)


def test_table_between_markers():
    table = counts_table(
        {"a": {"photographs": {"train": 5, "val": 1, "test": 2}, "crops": {"train": 40, "val": 8, "test": 0}}},
        {"a": ["x", "y"]},
    )
    assert table.splitlines()[-1] == "| `a` | x, y | 8 | 5 / 1 / 2 | 40 / 8 / 0 |"
    text = f"intro\n{BEGIN}\nold\n{END}\noutro\n"
    assert with_table(text, table, "f.md") == f"intro\n{BEGIN}\n{table}{END}\noutro\n"
    for bad in ("no markers\n", text + text):
        with pytest.raises(InputError, match=r"^f\.md: needs one"):
            with_table(bad, table, "f.md")


def test_script_prints_and_writes_the_table(tmp_path, capsys):
    cfg = tmp_path / "config.yaml"
    cfg.write_text(
        "curate:\n  datasets:\n    skimage:\n      crops: {train: 0, val: 4, test: 4}\n"
        "      split_fractions: {train: 0, val: 0.5, test: 0.5}\n      sources: [{type: skimage, name: skimage}]\n"
        "meta: {train_dataset: skimage}\nevaluate: {roles: {faces: skimage, natural: skimage}}\n"
    )
    md = tmp_path / "x.md"
    md.write_text(f"{BEGIN}\n{END}\n")
    run = [sys.executable, str(ROOT / "scripts" / "dataset_counts.py"), "--config", str(cfg), "--write", str(md)]
    proc = subprocess.run(run, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "| `skimage` | skimage | 12 | 0 / 6 / 6 | 0 / 4 / 4 |"
    assert md.read_text() == f"{BEGIN}\n{proc.stdout}{END}\n"
    md.write_text("no markers\n")
    spec = importlib.util.spec_from_file_location("dataset_counts", ROOT / "scripts" / "dataset_counts.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.main(run[2:]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{md}: needs one" in err and md.read_text() == "no markers\n"
