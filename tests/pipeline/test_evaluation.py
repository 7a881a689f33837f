"""Evaluation shards: the plan, seeds independent of the shard layout, rows and their provenance."""

from __future__ import annotations

import math

import pytest
import torch
from builders import tiny_config
from hypothesis import given
from hypothesis import strategies as st

from metadip.core.errors import ResultError
from metadip.core.images import bundled_image
from metadip.core.metrics import psnr
from metadip.pipeline.config import (
    DEFAULT_CONFIG,
    ConfigError,
    check_pipeline_config,
    load_config,
    validate_config,
)
from metadip.pipeline.evaluation import decode_image, evaluate_shard, measure_image, setting_operator, write_rows
from metadip.pipeline.plan import applies, claim_jobs, evaluation_jobs, method_images, shard_indices, tables_of
from metadip.pipeline.settings import method_settings, shard_settings


@given(n=st.integers(0, 40), shards=st.integers(1, 12))
def test_shards_partition_the_images(n, shards):
    parts = [shard_indices(n, shards, s) for s in range(shards)]
    assert [i for p in parts for i in p] == list(range(n))  # disjoint, contiguous, in order, complete
    sizes = [len(p) for p in parts]
    assert max(sizes) - min(sizes) <= 1


def test_shard_out_of_range_is_refused():
    with pytest.raises(ValueError, match="out of range"):
        shard_indices(4, 2, 2)


def test_plan_pairs_methods_with_the_tasks_they_apply_to():
    assert applies({"kind": "denoiser"}, {"kind": "denoising"}) and not applies({"kind": "denoiser"}, {"kind": "cs"})
    assert applies({"kind": "pnp"}, {"kind": "pr_fast"}) and not applies({"kind": "pnp"}, {"kind": "denoising"})
    jobs = evaluation_jobs(tiny_config())
    # den: dip + bm3d, cs: dip only; 2 datasets, 2 shards
    assert len(jobs) == (2 + 1) * 2 * 2
    assert {(j["task"], j["method"]) for j in jobs} == {("den", "dip"), ("den", "bm3d"), ("cs", "dip")}
    assert tables_of(tiny_config()) == [1, 2]


def test_a_method_on_fewer_images_gets_fewer_shards_and_a_prefix_of_the_images():
    cfg = tiny_config()
    cfg["evaluate"]["methods"]["dip"]["images"] = 1  # of 3, in 2 shards
    jobs = evaluation_jobs(check_pipeline_config(cfg))
    assert sorted({j["shard"] for j in jobs if j["method"] == "dip"}) == [0]
    assert sorted({j["shard"] for j in jobs if j["method"] == "bm3d"}) == [0, 1]
    assert method_images(cfg["evaluate"], "dip") == 1 and method_images(cfg["evaluate"], "bm3d") == 3


@pytest.mark.parametrize("images, qualitative", [(4, 1), (0, 1), (1, 2)])
def test_a_method_image_count_outside_the_evaluation_set_is_refused(images, qualitative):
    cfg = tiny_config()
    cfg["evaluate"]["methods"]["dip"]["images"] = images
    cfg["evaluate"]["qualitative_images"] = qualitative  # the figures need the capped method's images too
    with pytest.raises(ConfigError, match=r"evaluate.methods.dip.images"):
        check_pipeline_config(validate_config(cfg))


def test_replicates_on_different_numbers_of_images_are_refused():
    cfg = load_config(DEFAULT_CONFIG)
    cfg["evaluate"]["images"] = 8
    cfg["evaluate"]["methods"]["metadip_s1"] = {**cfg["evaluate"]["methods"]["metadip"], "images": 4}
    cfg["evaluate"]["methods"]["metadip_s1"].pop("speed_reference")
    cfg["claims"]["replicates"] = {"metadip": ["metadip_s1"]}
    with pytest.raises(ConfigError, match=r"claims.replicates.metadip: its replicates run on different numbers"):
        check_pipeline_config(cfg)


def test_the_claims_read_the_shards_of_the_methods_they_name_only():
    config = load_config(DEFAULT_CONFIG)
    jobs = claim_jobs(config)
    # dip_1000 and dip_50 are one run of 'dip'; the controls and the target-physics inits; no BM3D, DRUNet or PnP-ADMM
    named = {"metadip", "metadip_random", "metadip_frozen", "metasiren", "dip", "metadip_cs", "metadip_pr"}
    assert {j["method"] for j in jobs} == named
    assert jobs == [j for j in evaluation_jobs(config) if j["method"] in named]
    config["claims"]["enabled"] = False
    assert claim_jobs(config) == []


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda c: c["evaluate"]["roles"].update(faces="missing"), "evaluate.roles.faces: no dataset 'missing'"),
        (lambda c: c["evaluate"]["methods"]["dip"].update(network_of="nope"), "network_of: no method 'nope'"),
        (lambda c: c["evaluate"]["methods"]["dip"].update(report_at=[5]), "report_at: steps beyond"),
        (
            lambda c: c["evaluate"]["methods"].update(p={"kind": "pnp", "denoiser": "bm3d", "label": "P"}),
            "no grid 'cs_bm3d'",
        ),
        (
            lambda c: c["evaluate"]["methods"]["bm3d"].update(self_ensemble=True),
            "bm3d.self_ensemble: only a denoiser method with denoiser drunet",
        ),
        (lambda c: c["evaluate"]["methods"]["dip"].update(average_last=2), "dip.average_last: only a meta method"),
        (
            lambda c: c["evaluate"]["methods"].update(
                m={"kind": "meta", "init": "md", "label": "M", "steps": 4, "average_last": 5}
            ),
            "m.average_last: 5 outputs exceed steps=4",
        ),
    ],
)
def test_cross_references_are_checked(change, message):
    cfg = tiny_config()
    change(cfg)
    with pytest.raises(ConfigError, match=message):
        check_pipeline_config(cfg)


def test_an_averaging_window_of_one_is_refused_by_the_schema():
    # one output is the plain iterate: written as a key it would only change the method's hash
    cfg = tiny_config()
    cfg["evaluate"]["methods"]["m"] = {"kind": "meta", "init": "md", "label": "M", "steps": 4, "average_last": 1}
    with pytest.raises(ConfigError, match=r"evaluate/methods/m/average_last"):
        validate_config(cfg)


def test_rows_do_not_depend_on_the_shard_layout(tmp_path):
    cfg = tiny_config()
    images = torch.stack([bundled_image(n, 64) for n in ("astronaut", "coffee", "chelsea")])
    ids = ["a/test/0", "a/test/1", "a/test/2"]
    whole = evaluate_shard(shard_settings(cfg, "cs", "dip", "a"), "a", images, ids, ids, [0, 1, 2], {}, "cpu")
    split = [
        r
        for part in ([0], [1, 2])
        for r in evaluate_shard(shard_settings(cfg, "cs", "dip", "a"), "a", images, ids, ids, part, {}, "cpu")
    ]
    key = lambda r: (r["image_index"], r["method"])  # noqa: E731
    strip = lambda r: {k: v for k, v in r.items() if "seconds" not in k}  # noqa: E731
    assert [strip(r) for r in sorted(whole, key=key)] == [strip(r) for r in sorted(split, key=key)]
    # two variants per image: DIP read at 1 and 3 steps, traces truncated to them
    assert sorted({r["method"] for r in whole}) == ["dip_1", "dip_3"]
    r3 = next(r for r in whole if r["method"] == "dip_3" and r["image_index"] == 0)
    assert r3["label"] == "DIP (3)" and r3["trace_step"] == [1, 2, 3] and len(r3["trace_nmse_last"]) == 3
    assert math.isfinite(r3["psnr"]) and r3["psnr_last"] != r3["psnr"]  # EMA vs last iterate
    assert decode_image(r3["estimate"], 64, 64).shape == (3, 64, 64)
    for field in ("seed", "operator_seed", "noise_seed", "config_hash", "git_commit", "device", "provenance"):
        assert r3[field] not in (None, "")
    # another task or dataset draws another operator and other noise
    op_a, seed_a = setting_operator(cfg["evaluate"]["tasks"]["cs"], (3, 64, 64), 3, "cs", "a")
    _op_b, seed_b = setting_operator(cfg["evaluate"]["tasks"]["cs"], (3, 64, 64), 3, "cs", "b")
    assert seed_a != seed_b and r3["operator_seed"] == seed_a
    assert measure_image(op_a, images[0], 3, "cs", "a", 0)[1] != measure_image(op_a, images[0], 3, "cs", "a", 1)[1]
    write_rows(whole, tmp_path / "shard.parquet")
    import pyarrow.parquet as pq

    assert pq.read_table(tmp_path / "shard.parquet").num_rows == len(whole)


def test_missing_artifact_and_wrong_task_are_clear_errors():
    cfg = tiny_config()
    cfg["evaluate"]["methods"]["m"] = {"kind": "meta", "init": "md", "label": "M", "steps": 2}
    cfg = validate_config(cfg)
    images = bundled_image("astronaut", 64).unsqueeze(0)
    with pytest.raises(ValueError, match="needs the meta-init artifact"):
        evaluate_shard(shard_settings(cfg, "den", "m", "a"), "a", images, ["x"], ["x"], [0], {}, "cpu")
    with pytest.raises(ValueError, match="does not apply to task 'cs'"):
        evaluate_shard(shard_settings(cfg, "cs", "bm3d", "a"), "a", images, ["x"], ["x"], [0], {}, "cpu")


def test_pnp_bm3d_uses_the_configured_profile_and_refuses_a_grid_tuned_with_another(tmp_path):
    import json

    cfg = tiny_config()
    cfg["evaluate"]["methods"]["p"] = {"kind": "pnp", "denoiser": "bm3d", "label": "P"}
    cfg = validate_config(cfg)
    assert cfg["baselines"]["pnp"]["bm3d_profile"] == "classic"
    images = bundled_image("astronaut", 64).unsqueeze(0)
    grid = tmp_path / "cs_bm3d.json"
    best = {"sigma_d": 25.0, "rho": 0.5, "iterations": 1, "mean_psnr": 0.0}
    for tuned_with in ("np", None):  # None: a grid from before the profile was recorded (np)
        grid.write_text(json.dumps({"best": best} | ({"bm3d_profile": tuned_with} if tuned_with else {})))
        with pytest.raises(ValueError, match=r"tuned with BM3D profile 'np'.*rerun stages/tune_pnp\.py"):
            evaluate_shard(
                shard_settings(cfg, "cs", "p", "a"), "a", images, ["x"], ["x"], [0], {"pnp": str(grid)}, "cpu"
            )
    grid.write_text(json.dumps({"best": best, "bm3d_profile": "classic"}))
    (row,) = evaluate_shard(
        shard_settings(cfg, "cs", "p", "a"), "a", images, ["x"], ["x"], [0], {"pnp": str(grid)}, "cpu"
    )
    assert json.loads(row["provenance"])["bm3d_profile"] == "classic" and math.isfinite(row["psnr"])


def test_drunet_rows_with_and_without_the_self_ensemble(tmp_path):
    import json

    from metadip.models.denoisers import DRUNet, DRUNetConfig, DRUNetDenoiser
    from metadip.pipeline.artifacts import save_denoiser

    net = DRUNet(DRUNetConfig(channels=3, widths=(4, 8, 8, 8), blocks=1), seed=1)
    save_denoiser(net, tmp_path / "drunet", source="trained")
    cfg = tiny_config()
    cfg["evaluate"]["methods"]["d1"] = {"kind": "denoiser", "denoiser": "drunet", "label": "D"}
    cfg["evaluate"]["methods"]["d8"] = {"kind": "denoiser", "denoiser": "drunet", "label": "D8", "self_ensemble": True}
    cfg = check_pipeline_config(validate_config(cfg))
    images = bundled_image("astronaut", 64).unsqueeze(0)
    art = {"drunet": str(tmp_path / "drunet.safetensors")}
    (one,) = evaluate_shard(shard_settings(cfg, "den", "d1", "a"), "a", images, ["x"], ["x"], [0], art, "cpu")
    (x8,) = evaluate_shard(shard_settings(cfg, "den", "d8", "a"), "a", images, ["x"], ["x"], [0], art, "cpu")
    op, _ = setting_operator(cfg["evaluate"]["tasks"]["den"], tuple(images.shape[1:]), cfg["seed"], "den", "a")
    y, _ = measure_image(op, images[0], cfg["seed"], "den", "a", 0)
    expected = psnr(DRUNetDenoiser(net, "cpu", self_ensemble=True)(y, 25), images[0]).item()
    assert x8["psnr"] == pytest.approx(expected, abs=1e-4) and x8["psnr"] != pytest.approx(one["psnr"], abs=1e-4)
    assert json.loads(x8["provenance"])["self_ensemble"] is True and "self_ensemble" not in json.loads(
        one["provenance"]
    )


def _perturbed_meta_init(cfg: dict, path) -> None:
    """A 'meta-init' of method md whose weights and step sizes differ from the network's own init."""
    from metadip.meta.inner_loop import build_model
    from metadip.models.build import architecture_from_config
    from metadip.pipeline.artifacts import save_meta_init

    md = cfg["meta"]["methods"]["md"]
    model = build_model(architecture_from_config(md["network"], "dip", (3, 64, 64)), md["inner"])
    with torch.no_grad():
        for p in model.prior.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
        model.log_lr.add_(torch.linspace(-0.5, 0.5, model.log_lr.numel()).reshape(model.log_lr.shape))
    save_meta_init(model, path, training_config=md, dataset_manifest_sha256="0" * 64, seed=0)


def test_control_row_is_a_fresh_network_through_the_learned_inner_loop(tmp_path):
    """random_init: the network's own initialisation (not the meta-init's weights) with the meta-init's
    learned step sizes; without it, the meta-init's weights."""
    from metadip.meta.inner_loop import build_model, solve
    from metadip.models.build import architecture_from_config
    from metadip.pipeline.artifacts import load_meta_init
    from metadip.pipeline.evaluation import measure_image, setting_operator

    cfg = tiny_config()
    cfg["evaluate"]["methods"].update(
        m={
            "kind": "meta",
            "init": "md",
            "label": "M",
            "steps": 2,
            "random_init": False,
            "speed_reference": None,
            "speed_rounds": 1,
        },
        c={
            "kind": "meta",
            "init": "md",
            "label": "C",
            "steps": 2,
            "random_init": True,
            "speed_reference": None,
            "speed_rounds": 1,
        },
    )
    _perturbed_meta_init(cfg, tmp_path / "init.safetensors")
    images = bundled_image("astronaut", 64).unsqueeze(0)
    art = {"meta_init": str(tmp_path / "init.safetensors")}
    meta = evaluate_shard(shard_settings(cfg, "den", "m", "a"), "a", images, ["x"], ["p"], [0], art, "cpu")[0]
    control = evaluate_shard(shard_settings(cfg, "den", "c", "a"), "a", images, ["x"], ["p"], [0], art, "cpu")[0]
    assert meta["psnr"] != control["psnr"] and control["method"] == "c" and control["source_file"] == "p"
    # the control equals solving from the network's own init with the meta-init's step sizes
    loaded = load_meta_init(tmp_path / "init.safetensors")
    md = cfg["meta"]["methods"]["md"]
    fresh = build_model(architecture_from_config(md["network"], "dip", (3, 64, 64)), md["inner"])
    loaded.prior.load_state_dict(fresh.prior.state_dict())
    assert not torch.equal(loaded.log_lr, fresh.log_lr)  # learned step sizes are kept
    op, _ = setting_operator(cfg["evaluate"]["tasks"]["den"], (3, 64, 64), cfg["seed"], "den", "a")
    y, _ = measure_image(op, images[0], cfg["seed"], "den", "a", 0)
    expected = solve(loaded, op, y, 2, x_true=images[0], device="cpu", show_progress=False)
    assert control["psnr"] == pytest.approx(float(psnr(expected.estimate.clamp(0, 1), images[0])), abs=1e-4)


def test_an_averaged_meta_row_keeps_the_last_iterate_beside_its_mean(tmp_path):
    """average_last: the row's estimate is the mean of the last outputs; its psnr_last and last-iterate
    trace are the plain row's."""
    cfg = tiny_config()
    base = {"kind": "meta", "init": "md", "steps": 3, "random_init": False, "speed_reference": None, "speed_rounds": 1}
    cfg["evaluate"]["methods"].update(m={**base, "label": "M"}, a={**base, "label": "M avg", "average_last": 2})
    _perturbed_meta_init(cfg, tmp_path / "init.safetensors")
    images = bundled_image("astronaut", 64).unsqueeze(0)
    art = {"meta_init": str(tmp_path / "init.safetensors")}
    plain = evaluate_shard(shard_settings(cfg, "den", "m", "a"), "a", images, ["x"], ["p"], [0], art, "cpu")[0]
    avg = evaluate_shard(shard_settings(cfg, "den", "a", "a"), "a", images, ["x"], ["p"], [0], art, "cpu")[0]
    assert avg["method"] == "a" and avg["psnr"] != plain["psnr"]
    assert avg["psnr_last"] == pytest.approx(plain["psnr"], abs=1e-4)
    assert avg["trace_nmse_last"] == pytest.approx(plain["trace_nmse"], rel=1e-4)
    assert avg["trace_psnr"][0] == pytest.approx(plain["trace_psnr"][0], abs=1e-4)
    assert avg["trace_psnr"][-1] == pytest.approx(avg["psnr"], abs=1e-3)


def test_batched_meta_solves_give_the_rows_of_one_at_a_time(tmp_path):
    """evaluate.batch: 2 solves three images as a vmapped pair and a single; rows equal batch 1's up to
    float rounding (and timings), in the same order."""
    cfg = tiny_config()
    cfg["evaluate"]["methods"]["m"] = {
        "kind": "meta",
        "init": "md",
        "label": "M",
        "steps": 3,
        "random_init": False,
        "speed_reference": None,
        "speed_rounds": 1,
    }
    _perturbed_meta_init(cfg, tmp_path / "init.safetensors")
    art = {"meta_init": str(tmp_path / "init.safetensors")}
    images = torch.stack([bundled_image(n, 64) for n in ("astronaut", "coffee", "chelsea")])
    ids = ["a/test/0", "a/test/1", "a/test/2"]
    single = evaluate_shard(shard_settings(cfg, "den", "m", "a"), "a", images, ids, ids, [0, 1, 2], art, "cpu")
    cfg["evaluate"]["batch"] = 2
    batched = evaluate_shard(shard_settings(cfg, "den", "m", "a"), "a", images, ids, ids, [0, 1, 2], art, "cpu")
    assert [r["image_index"] for r in batched] == [0, 1, 2]
    for a, b in zip(single, batched, strict=True):
        # float32 rounding of a grouped vs a single convolution, grown by the steps (in float64 the
        # two agree to 1e-13 dB)
        assert a["psnr"] == pytest.approx(b["psnr"], abs=5e-3)
        assert a["trace_psnr"] == pytest.approx(b["trace_psnr"], abs=5e-3)
        assert a["noise_seed"] == b["noise_seed"] and a["image_id"] == b["image_id"]


def test_speed_reference_times_both_solvers_in_the_same_process(tmp_path):
    cfg = tiny_config()
    cfg["evaluate"]["methods"]["m"] = {
        "kind": "meta",
        "init": "md",
        "label": "M",
        "steps": 2,
        "random_init": False,
        "speed_reference": "dip",
        "speed_rounds": 2,
    }
    _perturbed_meta_init(cfg, tmp_path / "init.safetensors")
    images = bundled_image("astronaut", 64).unsqueeze(0)
    row = evaluate_shard(
        shard_settings(cfg, "cs", "m", "a"),
        "a",
        images,
        ["x"],
        ["p"],
        [0],
        {"meta_init": str(tmp_path / "init.safetensors")},
        "cpu",
    )[0]
    assert row["ref_method"] == "dip_3" and row["ref_steps"] == 3
    assert row["step_seconds"] > 0 and row["ref_step_seconds"] > 0
    dip = evaluate_shard(shard_settings(cfg, "cs", "dip", "a"), "a", images, ["x"], ["p"], [0], {}, "cpu")[0]
    assert dip["step_seconds"] is None and dip["ref_method"] is None


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda m: m.update(speed_reference="bm3d"), "speed_reference: needs a meta method and a dip method"),
        (lambda m: m.update(speed_reference="nope"), "speed_reference"),
    ],
)
def test_speed_reference_must_name_a_dip_method(change, message):
    cfg = tiny_config()
    cfg["evaluate"]["methods"]["m"] = {"kind": "meta", "init": "md", "label": "M", "steps": 2}
    change(cfg["evaluate"]["methods"]["m"])
    with pytest.raises(ConfigError, match=message):
        check_pipeline_config(cfg)


def test_a_dip_method_may_override_the_network_it_borrows():
    method = {"arch": "dip", "network": {"width": 8, "depth": 2, "fourier_features": 16}}
    dips = {"same": {"network_of": "m"}, "plain": {"network_of": "m", "network": {"fourier_features": 0}}}
    methods = {k: {"kind": "dip", "label": k, **v} for k, v in dips.items()}
    config = validate_config({"meta": {"methods": {"m": method}}, "evaluate": {"methods": methods}})
    same = method_settings(config, "same").architecture((3, 16, 16))
    plain = method_settings(config, "plain").architecture((3, 16, 16))
    assert same["config"]["fourier_features"] == 16 and plain["config"]["fourier_features"] == 0
    assert plain["seed"] == same["seed"] and plain["config"]["channels_down"] == same["config"]["channels_down"]


def test_a_row_with_a_non_finite_metric_is_refused_and_never_written(tmp_path, monkeypatch):
    import metadip.pipeline.evaluation as evaluation

    cfg = tiny_config()
    images = bundled_image("astronaut", 64).unsqueeze(0)
    monkeypatch.setattr(evaluation, "psnr", lambda est, x: torch.tensor(float("nan")))  # as from a diverged solve
    with pytest.raises(
        ResultError, match=r"^den/a/dip_1 image a/test/0: psnr = nan, psnr_last = nan, not finite .* rerun$"
    ):
        evaluate_shard(shard_settings(cfg, "den", "dip", "a"), "a", images, ["a/test/0"], ["p"], [0], {}, "cpu")
    monkeypatch.undo()
    rows = evaluate_shard(shard_settings(cfg, "den", "dip", "a"), "a", images, ["a/test/0"], ["p"], [0], {}, "cpu")
    rows[-1]["ssim"] = math.inf
    with pytest.raises(ResultError, match=r"^den/a/dip_3 image a/test/0: ssim = inf"):
        write_rows(rows, tmp_path / "shard.parquet")
    assert not list(tmp_path.iterdir())


def test_every_kind_of_method_settings_has_a_runner():
    from typing import get_args

    from metadip.pipeline.evaluation import RUNNERS
    from metadip.pipeline.settings import Method

    assert set(RUNNERS) == set(get_args(Method))


def test_a_method_kind_is_a_settings_type_and_its_runner(monkeypatch):
    """evaluate_shard asks nothing of the method but its runner (from RUNNERS); an unknown type is refused."""
    from dataclasses import dataclass, replace

    import metadip.pipeline.evaluation as evaluation
    from metadip.pipeline.evaluation import MethodRunner, Outcome
    from metadip.solvers.result import Reconstruction

    @dataclass(frozen=True)
    class Identity:  # the measurement as the estimate (denoising)
        name: str = "id"
        label: str = "Identity"

    def identity_runner(method, ctx):
        def run(op, ys, xs, indices):
            return [
                [Outcome(method.name, method.label, 1, Reconstruction(y, y, 0.5, {"step": [1], "seconds": [0.5]}), {})]
                for y in ys
            ]

        return MethodRunner(run, {"kind": "identity"}, lambda op, y: None)

    cfg = tiny_config()
    settings = replace(shard_settings(cfg, "den", "bm3d", "a"), method=Identity())
    images = torch.stack([bundled_image(n, 64) for n in ("astronaut", "coffee")])
    with pytest.raises(ValueError, match="unknown method type Identity"):
        evaluate_shard(settings, "a", images, ["x0", "x1"], ["p0", "p1"], [1, 0], {}, "cpu")
    monkeypatch.setitem(evaluation.RUNNERS, Identity, identity_runner)
    rows = evaluate_shard(settings, "a", images, ["x0", "x1"], ["p0", "p1"], [1, 0], {}, "cpu")
    op, _ = setting_operator(cfg["evaluate"]["tasks"]["den"], (3, 64, 64), cfg["seed"], "den", "a")
    assert [(r["method"], r["image_id"], r["method_name"], r["seconds"]) for r in rows] == [
        ("id", "x1", "id", 0.5),
        ("id", "x0", "id", 0.5),
    ]
    y1, _ = measure_image(op, images[1], cfg["seed"], "den", "a", 1)
    assert rows[0]["psnr"] == pytest.approx(float(psnr(y1.clamp(0, 1), images[1])))
    assert rows[0]["provenance"] == '{"kind": "identity"}'
    assert evaluate_shard(settings, "a", images, ["x0", "x1"], ["p0", "p1"], [], {}, "cpu") == []


def test_meta_solves_come_in_groups_of_the_batch_size(tmp_path, monkeypatch):
    import metadip.pipeline.evaluation as evaluation

    cfg = tiny_config(batch=2)
    base = {"kind": "meta", "init": "md", "steps": 2, "random_init": False, "speed_reference": None, "speed_rounds": 1}
    cfg["evaluate"]["methods"]["m"] = {**base, "label": "M"}
    _perturbed_meta_init(cfg, tmp_path / "init.safetensors")
    sizes, solve_batch = [], evaluation.solve_batch

    def recorded(model, op, ys, steps, **kw):
        sizes.append(len(ys))
        return solve_batch(model, op, ys, steps, **kw)

    monkeypatch.setattr(evaluation, "solve_batch", recorded)
    images = torch.stack([bundled_image(n, 64) for n in ("astronaut", "coffee", "chelsea")])
    ids = ["a/test/0", "a/test/1", "a/test/2"]
    art = {"meta_init": str(tmp_path / "init.safetensors")}
    rows = evaluate_shard(shard_settings(cfg, "den", "m", "a"), "a", images, ids, ids, [2, 0, 1], art, "cpu")
    assert sizes == [2, 2, 1]  # the warm-up at the batch size, then the images in order
    assert [r["image_index"] for r in rows] == [2, 0, 1]
