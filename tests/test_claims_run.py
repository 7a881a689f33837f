"""The claims verdict on a reduced run of the default config (marked slow; `.ci/run` runs it).

The run is the default config (config/config.yaml: networks, inner and outer loops, DIP and
MetaSIREN recipes, the control row, the claims' thresholds) with the data and the evaluation cut
down: 128 training crops, two test images (from two photographs) per class, and one task setting
per table where the default has two (σ=25, m/n=1/8).

What the claims say is a measured result, reported in the docs, not something this test keeps
green: it asserts that the verdict is well formed — every check present for every setting, the
interval around its mean, the counts of images and photographs, each verdict the one its interval
and bound imply, the interleaved speed timings recorded — and prints the verdicts.
"""

from __future__ import annotations

import json
import time

import pytest
import yaml
from workflow_helpers import BIN, ROOT, copy_workflow, sh

REDUCED = {
    "curate": {
        "preview_crops": 4,
        "datasets": {
            "wallpapers": {"crops": {"train": 128, "val": 8, "test": 4}},
            "skimage": {"crops": {"train": 0, "val": 2, "test": 4}},
        },
    },
    "evaluate": {"images": 2, "min_photos": 2, "qualitative_images": 1},
}
TASKS = ("den_25", "cs_8", "pr_8")
METHODS = ("dip", "metasiren", "metadip", "metadip_random")  # what the claims compare; no BM3D, DRUNet or PnP


def reduced_config() -> dict:
    from metadip.ablation import deep_merge

    cfg = deep_merge(yaml.safe_load((ROOT / "config" / "config.yaml").read_text()), REDUCED)
    cfg["evaluate"]["methods"] = {k: v for k, v in cfg["evaluate"]["methods"].items() if k in METHODS}
    cfg["evaluate"]["tasks"] = {k: v for k, v in cfg["evaluate"]["tasks"].items() if k in TASKS}
    cfg["meta"]["methods"]["metadip"]["outer"]["val_images"] = 4
    cfg["meta"]["methods"]["metasiren"]["outer"]["val_images"] = 4
    return cfg


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_claims_verdict_on_a_reduced_default_run(tmp_path):
    repo = copy_workflow(tmp_path / "repo", git=False)
    cfg = reduced_config()
    (repo / "config" / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    t = time.perf_counter()
    sh(BIN / "snakemake", "--cores", "2", "all", cwd=repo, timeout=1700)
    print(f"reduced default run: {time.perf_counter() - t:.0f} s")
    verdict = json.loads((repo / "results" / "claims.json").read_text())
    print((repo / "results" / "claims.md").read_text())
    assert [v["claim"] for v in verdict["verdicts"]] == ["1-quality", "1-speed", "2", "2-control", "3", "4"]
    checks = verdict["checks"]
    # 5 checks in each of 3 settings x 2 classes; claim 4 wherever task or class differ from meta-training
    # (denoising on the wallpapers): every setting but den_25 natural
    assert len([c for c in checks if c["claim"] != "4"]) == 5 * 3 * 2
    assert sorted((c["task"], c["role"]) for c in checks if c["claim"] == "4") == sorted(
        (t, r) for t in TASKS for r in ("faces", "natural") if (t, r) != ("den_25", "natural")
    )
    for c in checks:
        assert (c["n_images"], c["n_photos"]) == (2, 2), c
        assert c["ci_low"] <= c["mean"] <= c["ci_high"], c
        expected = "holds" if c["ci_low"] >= c["bound"] else "fails" if c["ci_high"] < c["bound"] else "inconclusive"
        assert c["verdict"] == expected and (c["reason"] is None) == (expected != "inconclusive"), c
    speed = [c for c in checks if c["claim"] == "1-speed"]
    assert all(c["ref_method"] == "dip_1000" and c["mean"] > 1 for c in speed), speed
