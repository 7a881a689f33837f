"""The claims verdicts (metadip.reporting.claims) on constructed rows: holds / fails / inconclusive at the
bound, the paper-calibrated bound per setting, replicates, the control and transfer checks, the
Markdown rendering, and the config cross-check of the method names."""

from __future__ import annotations

import copy
import dataclasses
import json
import time

import pytest
import yaml
from workflow_helpers import BIN, ROOT, copy_workflow, sh

from metadip.pipeline.config import (
    DEFAULT_CONFIG,
    ConfigError,
    check_pipeline_config,
    load_config,
)
from metadip.reporting.claims import (
    check_claims,
    check_comparisons,
    claims_markdown,
    headline,
    quality_bound,
    transfer_settings,
    verdict,
)
from metadip.reporting.settings import report_settings
from metadip.reporting.stats import Summary

SPEED = {"step_seconds": 0.01, "ref_method": "dip_1000", "ref_step_seconds": 0.01, "ref_steps": 1000}  # 1000 / 50 = 20x


@pytest.fixture(scope="module")
def config():
    cfg = copy.deepcopy(load_config(DEFAULT_CONFIG))
    cfg["evaluate"]["tasks"] = {
        "den_25": {"kind": "denoising", "sigma": 25},
        "cs_8": {"kind": "cs_fast", "sigma": 25, "ratio": 0.125},
    }
    cfg["claims"].update(replicates={})
    return cfg


def make_rows(config, psnr=None, images=4, photos=4, noise=None, speed=SPEED):
    """Rows of every (task, class, image, method): PSNR = the method's base + an image difficulty shared
    by all methods (+ ``noise[method](i)``), so paired differences are exactly base differences."""
    psnr = {
        "metadip": 30.0,
        "dip_1000": 30.5,
        "dip_50": (20.0, 28.0),
        "metasiren": 29.0,
        "metadip_random": 28.0,
        **(psnr or {}),
    }
    out = []
    for task, spec in config["evaluate"]["tasks"].items():
        for role, ds in config["evaluate"]["roles"].items():
            for i in range(images):
                for method, base in psnr.items():
                    ema, last = base if isinstance(base, tuple) else (base, base)
                    extra = (noise or {}).get(method, lambda i: 0.0)(i)
                    out.append(
                        {
                            "task": task,
                            "dataset": ds,
                            "role": role,
                            "kind": spec["kind"],
                            "method": method,
                            "method_name": method.split("_")[0] if method.startswith("dip") else method,
                            "label": method,
                            "steps": 50,
                            "image_index": i,
                            "image_id": f"{ds}/test/{i}",
                            "source_file": f"photo{i % photos}.jpg",
                            "noise_seed": 1000 + i,
                            "psnr": ema - 0.5 * i + extra,
                            "psnr_last": last - 0.5 * i + extra,
                            "seconds": 1.0,
                            **(speed if method == "metadip" else {}),
                        }
                    )
    return out


def summary(result, claim):
    return next(v for v in result["verdicts"] if v["claim"] == claim)


def checks(result, claim):
    return [ch for ch in result["checks"] if ch["claim"] == claim]


def test_all_claims_hold_with_margins(config):
    result = check_claims(make_rows(config), report_settings(config))
    assert result["all_hold"]
    assert [v["claim"] for v in result["verdicts"]] == ["1-quality", "1-speed", "2", "2-control", "3", "4"]
    assert all(v["verdict"] == "holds" and v["counts"]["holds"] == v["settings"] for v in result["verdicts"])
    c = checks(result, "1-quality")[0]
    assert (c["mean"], c["ci_low"], c["ci_high"], c["n_images"], c["n_photos"], c["bound"]) == (
        -0.5,
        -0.5,
        -0.5,
        4,
        4,
        -1.0,
    )
    speed = checks(result, "1-speed")[0]
    assert speed["mean"] == pytest.approx(20.0) and speed["ref_method"] == "dip_1000"
    assert checks(result, "2-control")[0]["mean"] == 2.0 and checks(result, "2-control")[0]["bound"] == 1.0


def test_verdict_at_the_bound():
    def s(lo: float, hi: float) -> Summary:
        return Summary((lo + hi) / 2, lo, hi, 4, 4)

    assert verdict(s(-1.0, 0.5), -1.0) == ("holds", None)  # interval touching the bound from above holds
    assert verdict(s(-1.5, -1.0001), -1.0) == ("fails", None)
    assert verdict(s(-1.5, -1.0), -1.0)[0] == "inconclusive"  # the upper end on the bound: not below it
    assert verdict(s(-1.2, -0.8), -1.0) == ("inconclusive", "95% interval straddles the bound")
    assert verdict(Summary(3.0, None, None, 3, 1), 0.0) == ("inconclusive", "fewer than 2 photographs (1): no interval")
    assert verdict(None, 0.0, "no rows of x") == ("inconclusive", "no rows of x")


@pytest.mark.parametrize("metadip, expect", [(29.5, "holds"), (29.49, "fails")])
def test_exactly_at_and_just_below_the_bound(config, metadip, expect):
    result = check_claims(
        make_rows(config, {"metadip": metadip}), report_settings(config)
    )  # den_25: bound −1.0 (the paper's gap +0.1)
    c = next(ch for ch in checks(result, "1-quality") if ch["task"] == "den_25")
    assert c["verdict"] == expect and c["ci_low"] == c["ci_high"] == round(metadip - 30.5, 3)


def test_an_interval_straddling_the_bound_is_inconclusive_and_said_so(config):
    wobble = {"metadip": lambda i: (-1.0, 1.0)[i % 2]}  # differences -2, 0, -2, 0 around the bound -1 (den_25)
    result = check_claims(make_rows(config, {"metadip": 29.5}, noise=wobble), report_settings(config))
    c = next(ch for ch in checks(result, "1-quality") if ch["task"] == "den_25")
    assert c["verdict"] == "inconclusive" and c["ci_low"] < -1.0 < c["ci_high"] and "straddles" in c["reason"]
    assert not result["all_hold"] and summary(result, "1-quality")["verdict"] == "inconclusive"
    md = claims_markdown(result, config["evaluate"]["tasks"])
    assert "Inconclusive:" in md and "- 1-quality at den σ=25 faces: 95% interval straddles the bound" in md


def test_the_quality_bound_is_calibrated_to_the_paper_per_setting(config):
    c = report_settings(config).claims
    assert quality_bound(c, 1, 15.0, "natural") == (-1.0, 1.0)  # the paper: MetaDIP 1.0 dB above DIP(1000)
    assert quality_bound(c, 2, 0.125, "faces") == pytest.approx((-2.3, -1.3))
    assert quality_bound(c, 2, 0.125, "natural") == pytest.approx((-2.6, -1.6))
    assert quality_bound(c, 3, 0.25, "natural") == pytest.approx((-1.6, -0.6))
    assert quality_bound(c, 1, 50.0, "faces") == (-1.0, None)  # no paper number: -within_db
    assert quality_bound(dataclasses.replace(c, quality_bound="fixed"), 2, 0.125, "faces") == (-1.0, None)
    # 2 dB below DIP(1000) on CS 1/8: within the paper's own gap + 1 dB, not within a fixed 1 dB
    rows = make_rows(config, {"metadip": 28.5})
    by_setting = {
        (ch["task"], ch["role"]): (ch["bound"], ch["verdict"])
        for ch in checks(check_claims(rows, report_settings(config)), "1-quality")
    }
    assert by_setting[("cs_8", "faces")] == (-2.3, "holds") and by_setting[("den_25", "faces")] == (-1.0, "fails")
    fixed = copy.deepcopy(config)
    fixed["claims"]["quality_bound"] = "fixed"
    assert {ch["verdict"] for ch in checks(check_claims(rows, report_settings(fixed)), "1-quality")} == {"fails"}


def test_claim_2_uses_the_stronger_of_ema_and_last_iterate(config):
    # DIP(50)'s last iterate (29.5) is within 1 dB of MetaDIP (30) although its EMA (20) is far below
    result = check_claims(make_rows(config, {"dip_50": (20.0, 29.5)}), report_settings(config))
    c = checks(result, "2")[0]
    assert c["short_field"] == "psnr_last" and c["mean"] == 0.5 and c["verdict"] == "fails"
    assert summary(result, "2")["verdict"] == "fails" and summary(result, "1-quality")["verdict"] == "holds"


def test_control_and_transfer_checks(config):
    # the random init reaches 29.5 with the same inner loop: 0.5 dB is not the 1 dB claimed, but positive
    # (transfer holds)
    result = check_claims(make_rows(config, {"metadip_random": 29.5}), report_settings(config))
    assert summary(result, "2-control")["verdict"] == "fails" and summary(result, "4")["verdict"] == "holds"
    # meta-trained on denoising of wallpapers: every other (task, class) is a transfer setting
    assert transfer_settings(report_settings(config)) == {
        ("den_25", "skimage"),
        ("cs_8", "skimage"),
        ("cs_8", "wallpapers"),
    }
    assert {(ch["task"], ch["dataset"]) for ch in checks(result, "4")} == transfer_settings(report_settings(config))
    md = claims_markdown(result, config["evaluate"]["tasks"])
    assert (
        "| 4 vs metadip_random | 0.50 [0.5, 0.5] ✓ | · |" in md
    )  # den_25 on the meta-training class: not a transfer setting
    no_control = copy.deepcopy(config)
    no_control["claims"]["control"] = None
    assert {v["claim"] for v in check_claims(make_rows(config), report_settings(no_control))["verdicts"]} == {
        "1-quality",
        "1-speed",
        "2",
        "3",
    }


def test_replicates_are_averaged_per_image_and_their_spread_reported(config):
    cfg = copy.deepcopy(config)
    cfg["claims"]["replicates"] = {"metadip": ["metadip_s1", "metadip_s2"]}
    rows = make_rows(cfg, {"metadip_s1": 31.0, "metadip_s2": 29.6})  # seeds 30.0, 31.0, 29.6: mean 30.2
    c = checks(check_claims(rows, report_settings(cfg)), "1-quality")[0]
    assert c["mean"] == pytest.approx(-0.3) and c["seed_means"] == {
        "metadip": -0.5,
        "metadip_s1": 0.5,
        "metadip_s2": -0.9,
    }
    assert c["seed_std"] == pytest.approx(0.721, abs=1e-3)
    assert checks(check_claims(rows, report_settings(cfg)), "3")[0]["mean"] == pytest.approx(
        1.2
    )  # every difference uses the seed mean
    missing = check_claims([r for r in rows if r["method"] != "metadip_s2"], report_settings(cfg))
    c = checks(missing, "1-quality")[0]
    assert c["verdict"] == "inconclusive" and c["reason"] == "no rows of metadip_s2" and "seed_std" not in c


def test_one_photo_is_inconclusive(config):
    result = check_claims(make_rows(config, images=3, photos=1), report_settings(config))
    assert {ch["verdict"] for ch in result["checks"]} == {"inconclusive"}
    assert all(
        ch["reason"] == "fewer than 2 photographs (1): no interval" and ch["mean"] is not None
        for ch in result["checks"]
    )
    md = claims_markdown(result, config["evaluate"]["tasks"])
    assert "-0.50 [no CI] ?" in md and "| n images / photos | 3/1 |" in md


def test_missing_methods_and_timings_are_inconclusive_with_a_reason(config):
    rows = [r for r in make_rows(config, speed={}) if r["method"] != "metasiren"]
    result = check_claims(rows, report_settings(config))
    rival, speed = checks(result, "3")[0], checks(result, "1-speed")[0]
    assert (rival["verdict"], rival["reason"], rival["mean"]) == ("inconclusive", "no rows of metasiren", None)
    assert speed["verdict"] == "inconclusive" and "step timings" in speed["reason"]
    assert summary(result, "3")["counts"] == {"holds": 0, "fails": 0, "inconclusive": 4}
    assert "| 3 vs metasiren | — ? |" in claims_markdown(result, config["evaluate"]["tasks"])


def test_each_difference_is_broken_down_by_photograph(config):
    # MetaDIP 3 dB worse on the images of photo0 (images 0 and 2): the control gap is -1 there, +2 on photo1
    rows = make_rows(config, images=4, photos=2, noise={"metadip": lambda i: -3.0 if i % 2 == 0 else 0.0})
    result = check_claims(rows, report_settings(config))
    control = checks(result, "2-control")[0]
    assert control["mean"] == pytest.approx(0.5) and control["verdict"] == "inconclusive"
    assert control["by_photo"] == [
        {"photo": "photo0.jpg", "mean": -1.0, "n_images": 2},
        {"photo": "photo1.jpg", "mean": 2.0, "n_images": 2},
    ]
    assert "by_photo" not in checks(result, "1-speed")[0]  # a ratio of step times, not a paired difference
    md = claims_markdown(result, config["evaluate"]["tasks"])
    assert (
        "- 2-control at den σ=25 faces: 95% interval straddles the bound; "
        "by photograph (mean, images): photo0.jpg -1.00 (2), photo1.jpg +2.00 (2)" in md
    )


def test_markdown_cells_and_counts(config):
    rows = make_rows(config, noise={"metadip": lambda i: 0.2 * i})
    m = [r for r in rows if not (r["task"] == "cs_8" and r["role"] == "faces" and r["method"] == "metadip")]
    m += [
        dict(r, psnr=r["psnr"] - 2.5)
        for r in rows
        if r["task"] == "cs_8" and r["role"] == "faces" and r["method"] == "metadip"
    ]
    result = check_claims(m, report_settings(config))
    v = summary(result, "1-quality")
    assert (
        v["verdict"] == "fails"
        and v["counts"] == {"holds": 3, "fails": 1, "inconclusive": 0}
        and v["where"]["fails"] == ["cs_8 faces"]
    )
    md = claims_markdown(result, config["evaluate"]["tasks"])
    assert "| **fails** | 3/4 | 1 | 0 | fails cs_8 faces |" in md
    assert "-2.70 [-2.9, -2.5] ✗" in md and "| ↳ 1-quality bound | ≥ -1 | ≥ -1 | ≥ -2.3 | ≥ -2.6 |" in md
    assert "| n images / photos | 4/4 | 4/4 | 4/4 | 4/4 |" in md


def test_comparisons_beyond_the_paper_read_like_the_claims(config):
    """method − versus ≥ bound per setting and class, replicates averaged; unknown names refused."""
    cfg = copy.deepcopy(config)
    cfg["claims"]["replicates"] = {"metadip": ["metadip_random"]}  # any second id: averaged per image
    rows = make_rows(cfg, psnr={"bm3d": 31.0, "drunet": 30.6})
    settings = report_settings(cfg)
    result = check_comparisons(rows, settings, [("drunet", "bm3d", -1.0), ("metadip", "bm3d", -2.0)], ["den_25"])
    by = {v["claim"]: v for v in result["verdicts"]}
    assert by["drunet − bm3d"]["verdict"] == "holds" and by["drunet − bm3d"]["settings"] == 2
    assert by["drunet − bm3d"]["text"] == "drunet within 1 dB of bm3d"
    # (30 + 28) / 2 − 31 = −2: at the bound exactly, so it holds; at −1.5 it fails
    assert by["metadip − bm3d"]["verdict"] == "holds"
    assert all(ch["mean"] == pytest.approx(-2.0) for ch in checks(result, "metadip − bm3d"))
    strict = check_comparisons(rows, settings, [("metadip", "bm3d", -1.5)], ["den_25"])
    assert strict["verdicts"][0]["verdict"] == "fails" and strict["verdicts"][0]["counts"]["fails"] == 2
    md = claims_markdown(result, cfg["evaluate"]["tasks"], paper=False)
    assert "| drunet − bm3d vs bm3d | -0.40 [-0.4, -0.4] ✓ |" in md and "claim 4" not in md
    no_drunet = check_comparisons(
        [r for r in rows if r["method"] != "drunet"], settings, [("drunet", "bm3d", -1.0)], ["den_25"]
    )
    assert no_drunet["verdicts"][0]["verdict"] == "inconclusive"
    assert no_drunet["checks"][0]["reason"] == "no rows of drunet"
    with pytest.raises(ValueError, match="no method drunet_big among the evaluated ids"):
        check_comparisons(rows, settings, [("drunet_big", "bm3d", -1.0)], ["den_25"])
    with pytest.raises(ValueError, match="unknown task setting"):
        check_comparisons(rows, settings, [("drunet", "bm3d", -1.0)], ["den_50"])


def test_compare_stage_writes_the_verdicts_and_refuses_a_bad_pair(config, tmp_path):
    import subprocess
    import sys

    import pyarrow as pa
    import pyarrow.parquet as pq

    cfg_file = tmp_path / "config.yaml"
    cfg_file.write_text(yaml.safe_dump(config))
    rows = make_rows(config, psnr={"bm3d": 31.0, "drunet": 29.0})
    pq.write_table(pa.Table.from_pylist([r | {"table": 1} for r in rows]), tmp_path / "r.parquet")
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "no_table.parquet")

    def compare(*args):
        cmd = [sys.executable, str(ROOT / "stages" / "compare.py"), "--config", str(cfg_file)]
        cmd += ["--shards", str(tmp_path / "r.parquet"), "--tasks", "den_25", "--out", str(tmp_path / "c"), *args]
        return subprocess.run(cmd, check=False, capture_output=True, text=True, cwd=ROOT)

    ok = compare("--pair", "drunet:bm3d:-1")
    assert ok.returncode == 0, ok.stderr
    assert "drunet − bm3d: fails - holds in 0, fails in 2" in ok.stdout
    assert json.loads((tmp_path / "c.json").read_text())["checks"][0]["mean"] == pytest.approx(-2.0)
    (tmp_path / "c.json").unlink()
    bad = compare("--pair", "drunet-bm3d")
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "METHOD:VERSUS:BOUND_DB" in bad.stderr
    assert not (tmp_path / "c.json").exists()
    other = compare("--pair", "drunet:bm3d:-1", "--shards", str(tmp_path / "no_table.parquet"))
    assert other.returncode == 1 and other.stderr.count("\n") == 1 and "no column table" in other.stderr
    # a replicate without rows leaves the pair unread, unless each method is read from its own rows
    cfg_file.write_text(
        yaml.safe_dump(config | {"claims": config["claims"] | {"replicates": {"drunet": ["drunet_x8"]}}})
    )
    unrun = tmp_path / "no_x8.parquet"
    pq.write_table(pa.Table.from_pylist([r | {"table": 1} for r in rows if r["method"] != "drunet_x8"]), unrun)
    averaged = compare("--pair", "drunet:bm3d:-1", "--shards", str(unrun))
    assert averaged.returncode == 0 and "inconclusive in 2 of 2" in averaged.stdout, averaged.stderr
    alone = compare("--pair", "drunet:bm3d:-1", "--shards", str(unrun), "--no-replicates")
    assert alone.returncode == 0 and "fails in 2" in alone.stdout, alone.stderr


def test_rows_that_do_not_pair_up_raise(config):
    rows = [r for r in make_rows(config) if not (r["method"] == "dip_1000" and r["image_index"] == 2)]
    with pytest.raises(ValueError, match="not run on the same images"):
        check_claims(rows, report_settings(config))


def test_a_baseline_run_on_the_first_images_pairs_on_those(config):
    cheaper = copy.deepcopy(config)
    cheaper["evaluate"]["methods"]["dip"]["images"] = 4  # of 8: the first four, one per photograph
    cheaper["evaluate"]["images"] = 8
    noise = {"dip_1000": lambda i: 3.0 if i >= 4 else 0.0}  # would shift the gap if the extra images paired
    rows = [
        r
        for r in make_rows(cheaper, images=8, photos=4, noise=noise)
        if not (r["method"].startswith("dip") and r["image_index"] >= 4)
    ]
    result = check_claims(rows, report_settings(cheaper))
    quality = checks(result, "1-quality")[0]
    assert (quality["n_images"], quality["n_photos"]) == (4, 4) and quality["mean"] == pytest.approx(-0.5)
    control = checks(result, "2-control")[0]
    assert control["n_images"] == 8  # methods that ran on every image pair on all of them
    h = headline(rows, report_settings(cheaper))["cs_8"]["wallpapers"]
    assert h["images"] == 4 and h["metadip_db"] - h["dip_1000_db"] == pytest.approx(-0.5)
    missing = [r for r in rows if not (r["method"] == "dip_1000" and r["image_index"] == 2)]
    with pytest.raises(ValueError, match="not run on the same images"):
        check_claims(missing, report_settings(cheaper))


def test_config_names_an_unknown_method(config):
    bad = copy.deepcopy(config)
    bad["claims"]["long"] = "dip_2000"
    with pytest.raises(
        ConfigError, match=r"claims.long: no method 'dip_2000' among the evaluated ids \(bm3d, dip_1000, dip_50"
    ):
        check_pipeline_config(bad)
    bad["claims"]["enabled"] = False
    check_pipeline_config(bad)


def test_headline_is_the_method_against_dip_1000_per_setting(config):
    rows = make_rows(config, psnr={"metadip": 31.0, "dip_1000": 30.5}, images=8, photos=4)
    h = headline(rows, report_settings(config))
    assert set(h) == set(config["evaluate"]["tasks"])
    for task in h:
        assert set(h[task]) == set(config["evaluate"]["roles"].values())
        s = h[task]["wallpapers"]
        assert s["metadip_db"] - s["dip_1000_db"] == pytest.approx(0.5, abs=1e-6)
        assert s["gap_db"] == pytest.approx(0.5) and s["gap_ci_low_db"] == pytest.approx(
            0.5
        )  # identical per-image gaps
        assert s["speedup"] == pytest.approx(20.0) and (s["images"], s["photos"]) == (8, 4)
        assert set(s) == {
            "metadip_db",
            "dip_1000_db",
            "gap_db",
            "gap_ci_low_db",
            "gap_ci_high_db",
            "speedup",
            "images",
            "photos",
        }
    without_long = [r for r in rows if r["method"] != "dip_1000"]
    assert headline(without_long, report_settings(config)) == {}


# --- slow (`pytest -m slow`; .ci/run runs them) ----------
# The claims verdict on a reduced run of the default config. The run is the default config
# (config/config.yaml: networks, inner loops, DIP and MetaSIREN recipes, the control row, the claims'
# thresholds) with the data, the meta-training and the evaluation cut down: 128 training crops, a quarter
# of the outer steps, two test images (from two photographs) per class, and one task setting per table where
# the default has two (σ=25, m/n=1/8). What the
# claims say is a measured result, reported in the docs, not something this test keeps green: it asserts that
# the verdict is well formed — every check present for every setting, the interval around its mean, the counts
# of images and photographs, each verdict the one its interval and bound imply, the interleaved speed timings
# recorded — and prints the verdicts.

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
    from metadip.meta.ablation import deep_merge

    cfg = deep_merge(yaml.safe_load((ROOT / "config" / "config.yaml").read_text()), REDUCED)
    cfg["evaluate"]["methods"] = {k: v for k, v in cfg["evaluate"]["methods"].items() if k in METHODS}
    cfg["evaluate"]["tasks"] = {k: v for k, v in cfg["evaluate"]["tasks"].items() if k in TASKS}
    for method in ("metadip", "metasiren"):
        # a quarter of the outer steps (MetaDIP's 100 took ~10 min of one core): the verdicts' form, not their values
        outer = cfg["meta"]["methods"][method]["outer"]
        outer.update(steps=outer["steps"] // 4, val_images=4, val_every=outer["steps"] // 4)
    return cfg


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_claims_verdict_on_a_reduced_default_run(tmp_path):
    repo = copy_workflow(tmp_path / "repo", git=False)
    cfg = reduced_config()
    (repo / "config" / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    t = time.perf_counter()
    sh(BIN / "snakemake", "--cores", "2", "claims", cwd=repo, timeout=1700)  # what the verdicts read, no tables
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
