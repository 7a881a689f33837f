"""The claims verdict (metadip.claims): margins, bounds and failures per setting, the Markdown
rendering, and the config cross-check of the method names."""

from __future__ import annotations

import copy

import pytest

from metadip.claims import check_claims, claims_markdown
from metadip.config import ConfigError, check_pipeline_config, default_config_path, load_config


@pytest.fixture(scope="module")
def config():
    cfg = copy.deepcopy(load_config(default_config_path()))
    cfg["evaluate"]["tasks"] = {"den_25": {"kind": "denoising", "sigma": 25}, "cs_8": {"kind": "cs_fast", "sigma": 25, "ratio": 0.125}}
    return cfg


def means(config, meta=30.0, long=30.5, short=(20.0, 28.0), rival=29.0, meta_s=1.0, long_s=20.0):
    out = {}
    for task in config["evaluate"]["tasks"]:
        for ds in config["evaluate"]["roles"].values():
            out[(task, ds, "metadip")] = {"psnr": meta, "psnr_last": meta, "seconds": meta_s}
            out[(task, ds, "dip_1000")] = {"psnr": long, "psnr_last": long - 2, "seconds": long_s}
            out[(task, ds, "dip_50")] = {"psnr": short[0], "psnr_last": short[1], "seconds": 1.0}
            out[(task, ds, "metasiren")] = {"psnr": rival, "psnr_last": rival, "seconds": 0.5}
    return out


def verdict(result, claim):
    return next(v for v in result["verdicts"] if v["claim"] == claim)


def test_all_claims_hold_with_margins(config):
    result = check_claims(means(config), config)
    assert result["all_hold"]
    assert [v["claim"] for v in result["verdicts"]] == ["1-quality", "1-speed", "2", "3"]
    assert all(v["held"] == v["settings"] == 4 for v in result["verdicts"])
    c = next(ch for ch in result["checks"] if ch["claim"] == "1-quality")
    assert c["value"] == pytest.approx(-0.5) and c["bound"] == -1.0
    assert next(ch for ch in result["checks"] if ch["claim"] == "1-speed")["value"] == pytest.approx(20.0)


def test_claim_2_uses_the_stronger_of_ema_and_last_iterate(config):
    # DIP(50)'s last iterate (29.5) is within 1 dB of MetaDIP (30) although its EMA (20) is far below
    result = check_claims(means(config, short=(20.0, 29.5)), config)
    assert not verdict(result, "2")["holds"] and verdict(result, "2")["worst"]["value"] == pytest.approx(0.5)
    assert verdict(result, "1-quality")["holds"] and not result["all_hold"]


@pytest.mark.parametrize("kwargs, claim", [({"long": 31.01}, "1-quality"), ({"long_s": 9.9}, "1-speed"), ({"rival": 30.01}, "3")])
def test_each_bound_is_enforced(config, kwargs, claim):
    result = check_claims(means(config, **kwargs), config)
    failed = {v["claim"] for v in result["verdicts"] if not v["holds"]}
    assert failed == {claim}


def test_one_failing_setting_is_named(config):
    m = means(config)
    m[("cs_8", config["evaluate"]["roles"]["faces"], "metadip")]["psnr"] = 28.0  # 2.5 dB below DIP(1000) there
    result = check_claims(m, config)
    v = verdict(result, "1-quality")
    assert (v["held"], v["settings"]) == (3, 4) and v["worst"] == {"task": "cs_8", "role": "faces", "value": -2.5, "bound": -1.0}
    md = claims_markdown(result, config)
    assert "| 3/4 | CS m/n=1/8 faces (-2.50, ≥ -1) |" in md and "-2.50 ✗" in md


def test_a_missing_method_fails_its_claim(config):
    m = {k: v for k, v in means(config).items() if k[2] != "metasiren"}
    result = check_claims(m, config)
    assert verdict(result, "3")["held"] == 0 and verdict(result, "3")["worst"]["value"] is None
    assert "—" in claims_markdown(result, config)


def test_config_names_an_unknown_method(config):
    bad = copy.deepcopy(config)
    bad["claims"]["long"] = "dip_2000"
    with pytest.raises(ConfigError, match=r"claims.long: no method 'dip_2000' among the evaluated ids \(bm3d, dip_1000, dip_50"):
        check_pipeline_config(bad)
    bad["claims"]["enabled"] = False
    check_pipeline_config(bad)
