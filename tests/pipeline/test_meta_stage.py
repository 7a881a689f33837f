"""The meta-training stage: config in, meta-init (safetensors + sidecar) out, resumable."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml
from builders import curate, dataset_config, make_folder

from metadip.pipeline.artifacts import load_meta_init

ROOT = Path(__file__).resolve().parents[2]


def test_meta_train_stage_writes_a_loadable_meta_init(tmp_path):
    cfg = dataset_config(
        [{"type": "folder", "name": "photos", "root": str(make_folder(tmp_path / "photos"))}], crops=(8, 2, 2)
    )
    curate(cfg, tmp_path / "data")
    cfg["evaluate"] = {"roles": {"faces": "d", "natural": "d"}, "methods": {}}  # what the stages cross-check
    cfg["ablation"] = {"dip": None}
    cfg["meta"] = {
        "image_size": 32,
        "train_dataset": "d",
        "methods": {
            "tiny": {
                "arch": "dip",
                "network": {"width": 4, "depth": 2, "latent_channels": 4},
                "inner": {"steps": 2},
                "outer": {
                    "steps": 3,
                    "meta_batch": 2,
                    "val_every": 3,
                    "val_images": 2,
                    "test_steps": 2,
                    "first_order": True,
                    "task_batching": "vmap",
                },
            },
            "siren": {
                "arch": "siren",
                "network": {"width": 8, "depth": 2},
                "inner": {"steps": 2, "learn_lr": False, "lr_init": 0.01},
                "outer": {"steps": 2, "meta_batch": 1, "val_images": 1, "test_steps": 2, "first_order": True},
            },
        },
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    stage = [
        sys.executable,
        str(ROOT / "stages" / "meta_train.py"),
        "--config",
        str(tmp_path / "c.yaml"),
        "--data",
        str(tmp_path / "data"),
    ]
    for method in ("tiny", "siren"):
        proc = subprocess.run(
            [*stage, "--method", method, "--out", str(tmp_path / method)], capture_output=True, text=True, check=False
        )
        assert proc.returncode == 0, proc.stderr
        assert f"meta-trained '{method}'" in proc.stdout
        # the log (not a terminal: no bar) says what trains before the first validation, then the progress
        start = proc.stderr.index(f"INFO meta-training a {'DIP' if method == 'tiny' else 'SIREN'} prior")
        assert start < proc.stderr.index("INFO validating θ₀ before outer step 1") < proc.stderr.index("0 s left")
        side = json.loads((tmp_path / method / "meta_init.json").read_text())
        assert side["training_config"]["method"] == method and side["training_config"]["image_size"] == 32
        assert len(side["dataset_manifest_sha256"]) == 64
        model = load_meta_init(tmp_path / method / "meta_init")
        assert model.prior.config.image_shape == (3, 32, 32)
    rows = (tmp_path / "tiny" / "work" / "metrics.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["0", "3"]
    # rerun: resumes from the final checkpoint and only rewrites the artifact
    again = subprocess.run(
        [*stage, "--method", "tiny", "--out", str(tmp_path / "tiny")], capture_output=True, text=True, check=False
    )
    assert again.returncode == 0 and "resuming meta-training at outer step 3" in again.stderr
    bad = subprocess.run(
        [*stage, "--method", "nope", "--out", str(tmp_path / "x")], capture_output=True, text=True, check=False
    )
    assert bad.returncode == 1 and "no method 'nope'" in bad.stderr
