"""Baseline stages: DRUNet training stage and the PnP grid search (validation only, deterministic)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml
from builders import curate, dataset_config, make_folder

from metadip.pipeline.artifacts import load_denoiser

ROOT = Path(__file__).resolve().parents[2]


def setup(tmp_path):
    cfg = dataset_config(
        [{"type": "folder", "name": "photos", "root": str(make_folder(tmp_path / "photos"))}], crops=(8, 3, 2)
    )
    curate(cfg, tmp_path / "data")
    cfg["meta"] = {"image_size": 32, "methods": {}}
    cfg["ablation"] = {"dip": None}
    cfg["baselines"] = {
        "drunet": {
            "network": {"widths": [4, 8, 8, 8], "blocks": 1},
            "train": {"steps": 3, "batch": 2, "patch": 16, "val_images": 2, "checkpoint_every": 2, "val_every": 2},
        },
        "pnp": {
            "val_images": 2,
            "max_moves": 0,  # the moves are tested in test_baselines.py
            "grid": {
                "cs_bm3d": {"sigma_d": [20, 50], "rho": [0.5], "iterations": [1, 2]},
                "pr_drunet": {"sigma_d": [25], "rho": [0.5, 1.0], "iterations": [1, 3]},
            },
        },
    }
    cfg["evaluate"] = {
        "roles": {"faces": "d", "natural": "d"},
        "methods": {},
        "tasks": {
            "cs": {"kind": "cs_fast", "ratio": 0.5},
            "pr": {"kind": "pr_fast", "ratio": 0.5},
            "den": {"kind": "denoising"},
        },
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    return [sys.executable, "--config", str(tmp_path / "c.yaml"), "--data", str(tmp_path / "data")]


def run(stage, args, cwd=None):
    return subprocess.run(
        [args[0], str(ROOT / "stages" / stage), *args[1:]], capture_output=True, text=True, cwd=cwd, check=False
    )


def test_train_denoiser_and_tune_pnp_stages(tmp_path):
    base = setup(tmp_path)
    trained = run("train_denoiser.py", [*base, "--out", str(tmp_path / "drunet")])
    assert trained.returncode == 0, trained.stderr
    assert load_denoiser(tmp_path / "drunet" / "drunet", channels=3).config.widths == (4, 8, 8, 8)
    side = json.loads((tmp_path / "drunet" / "drunet.json").read_text())
    assert side["source"] == "trained" and len(side["dataset_manifest_sha256"]) == 64

    gap = run(
        "denoiser_gap.py",
        [
            *base,
            "--weights",
            f"tiny={tmp_path / 'drunet' / 'drunet'}",
            "--images",
            "3",
            "--sigmas",
            "15",
            "25",
            "--self-ensemble",
            "--out",
            str(tmp_path / "gap.json"),
            "--markdown",
            str(tmp_path / "gap.md"),
        ],
    )
    assert gap.returncode == 0, gap.stderr
    rows = json.loads((tmp_path / "gap.json").read_text())["rows"]
    assert [(r["denoiser"], r["sigma"]) for r in rows] == [
        ("tiny", 15.0),
        ("tiny", 25.0),
        ("tiny+x8", 15.0),
        ("tiny+x8", 25.0),
    ]
    assert all(r["difference"]["n_images"] == 3 and r["difference"]["n_photos"] >= 2 for r in rows)
    assert all(abs(r["difference"]["mean"] - (r["psnr"] - r["bm3d_psnr"])) < 2e-3 for r in rows)
    assert "| bm3d |" in (tmp_path / "gap.md").read_text()
    unlabelled = run(
        "denoiser_gap.py",
        [
            *base,
            "--weights",
            str(tmp_path / "drunet" / "drunet"),
            "--out",
            str(tmp_path / "g2.json"),
            "--markdown",
            str(tmp_path / "g2.md"),
        ],
    )
    assert unlabelled.returncode == 1 and unlabelled.stderr.count("\n") == 1 and "LABEL=PATH" in unlabelled.stderr
    assert not (tmp_path / "g2.json").exists()
    unknown = run(
        "denoiser_gap.py",
        [
            *base,
            "--weights",
            f"tiny={tmp_path / 'drunet' / 'drunet'}",
            "--reference",
            "nope",
            "--out",
            str(tmp_path / "g2.json"),
            "--markdown",
            str(tmp_path / "g2.md"),
        ],
    )
    assert unknown.returncode == 1 and "--reference 'nope': not one of the denoisers (bm3d, tiny)" in unknown.stderr
    assert not (tmp_path / "g2.json").exists()

    outs = []
    for k in range(2):
        tuned = run(
            "tune_pnp.py", [*base, "--task", "cs", "--denoiser", "bm3d", "--out", str(tmp_path / f"cs{k}.json")]
        )
        assert tuned.returncode == 0, tuned.stderr
        outs.append(json.loads((tmp_path / f"cs{k}.json").read_text()))
    result = outs[0]
    assert result["validation_images"] and all(
        i.startswith("d/val/") for i in result["validation_images"]
    )  # validation only
    assert len(result["results"]) == 2 * 1 * 2 and result["best"] in result["results"]
    assert result["grids"] == [result["grid"]] and result["interior"] is False  # sigma_d 50 or 20: an edge
    assert len(set(result["validation_photos"])) == 2
    assert result["bm3d_profile"] == "classic"  # baselines.pnp.bm3d_profile, checked by the evaluation
    assert result["flat_db"] == 0.0 and result["grid_max"] == result["best"]  # the schema's default: the best point
    assert result["best"]["mean_psnr"] == max(r["mean_psnr"] for r in result["results"])
    # BM3D runs single-threaded, so it is deterministic: the rerun's grid is the same to the bit
    assert outs[1]["results"] == result["results"] and outs[1]["best"] == result["best"]

    prs = []
    for k in range(2):  # DRUNet is deterministic: byte-identical output
        pr = run(
            "tune_pnp.py",
            [
                *base,
                "--task",
                "pr",
                "--denoiser",
                "drunet",
                "--weights",
                str(tmp_path / "drunet" / "drunet"),
                "--out",
                str(tmp_path / f"pr{k}.json"),
            ],
        )
        assert pr.returncode == 0, pr.stderr
        prs.append((tmp_path / f"pr{k}.json").read_text())
    assert prs[0] == prs[1] and len(json.loads(prs[0])["results"]) == 4

    missing = run("tune_pnp.py", [*base, "--task", "pr", "--denoiser", "drunet", "--out", str(tmp_path / "x.json")])
    assert missing.returncode == 1 and "needs --weights" in missing.stderr
    nogrid = run("tune_pnp.py", [*base, "--task", "pr", "--denoiser", "bm3d", "--out", str(tmp_path / "x.json")])
    assert nogrid.returncode == 1 and "no grid 'pr_bm3d'" in nogrid.stderr
    denoising = run("tune_pnp.py", [*base, "--task", "den", "--denoiser", "bm3d", "--out", str(tmp_path / "x.json")])
    assert denoising.returncode == 1 and "no CS or PR task 'den'" in denoising.stderr
    assert not (tmp_path / "x.json").exists()

    # the tuning table: one row per tuned task and denoiser, with every grid searched
    dest = ["--markdown", str(tmp_path / "pnp.md"), "--csv", str(tmp_path / "pnp.csv")]
    table = run(
        "pnp_table.py", [sys.executable, "--tuning", str(tmp_path / "pr0.json"), str(tmp_path / "cs0.json"), *dest]
    )
    assert table.returncode == 0, table.stderr
    assert "on a grid edge: cs/bm3d" in table.stdout  # the cs grid above ends on an edge
    md = (tmp_path / "pnp.md").read_text()
    assert md.index("| cs | bm3d | 2 (2) | 1 |") < md.index("| pr | drunet |")
    (tmp_path / "broken.json").write_text('{"task_name": "cs"}')
    for name in ("pnp.md", "pnp.csv"):
        (tmp_path / name).unlink()
    broken = run(
        "pnp_table.py", [sys.executable, "--tuning", str(tmp_path / "cs0.json"), str(tmp_path / "broken.json"), *dest]
    )
    assert broken.returncode == 1 and broken.stderr.count("\n") == 1
    assert "broken.json: not a readable PnP tuning result" in broken.stderr
    assert not (tmp_path / "pnp.md").exists() and not (tmp_path / "pnp.csv").exists()


def test_official_drunet_is_converted_when_configured(tmp_path):
    import torch

    from metadip.models.denoisers import DRUNet, DRUNetConfig

    base = setup(tmp_path)
    torch.save(DRUNet(DRUNetConfig(channels=3)).state_dict(), tmp_path / "drunet_color.pth")
    cfg = yaml.safe_load((tmp_path / "c.yaml").read_text())
    cfg["baselines"]["drunet"]["official_weights"] = str(tmp_path / "drunet_color.pth")
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    proc = run("train_denoiser.py", [*base, "--out", str(tmp_path / "official")])
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "official" / "drunet.json").read_text())["source"] == "official:drunet_color.pth"
    (tmp_path / "drunet_color.pth").write_bytes(b"truncated")
    bad = run("train_denoiser.py", [*base, "--out", str(tmp_path / "official2")])
    assert bad.returncode == 1 and "not a readable DRUNet weights file" in bad.stderr
