"""Baselines: BM3D, DRUNet (official layout, strict loading, brief training, artifacts), PnP-ADMM."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from builders import TINY, training_images
from conftest import gen

from metadip.core.metrics import psnr
from metadip.models.denoiser_training import DenoiserTraining, train_denoiser
from metadip.models.denoisers import DRUNet, DRUNetConfig, DRUNetDenoiser, bm3d_denoise, load_official_drunet
from metadip.models.networks import count_parameters
from metadip.physics.operators import CompressiveSensing, StructuredCompressiveSensing, StructuredPhaseRetrieval
from metadip.pipeline.artifacts import ArtifactError, load_denoiser, save_denoiser
from metadip.solvers.pnp import DataProx, PnPSettings, pnp_admm


def noisy(x, sigma=25.0, seed=0):
    return x + sigma / 255 * torch.randn(x.shape, generator=gen(seed))


@pytest.mark.parametrize("image", ["camera32", "astronaut64"])
def test_bm3d_denoises(image, request):
    x = request.getfixturevalue(image)
    y = noisy(x)
    out = bm3d_denoise(y, 25)
    assert out.dtype == torch.float32 and out.shape == x.shape
    assert psnr(out, x).item() > psnr(y, x).item() + 3.0
    assert bm3d_denoise(y.unsqueeze(0), 25).shape == (1, *x.shape)
    assert torch.equal(bm3d_denoise(y, 25), out)  # single-threaded: bitwise reproducible
    classic = bm3d_denoise(y, 25, "classic")  # the original white-noise BM3D
    assert psnr(classic, x).item() > psnr(y, x).item() + 3.0 and torch.equal(bm3d_denoise(y, 25, "classic"), classic)
    assert abs(psnr(classic, x).item() - psnr(out, x).item()) < 0.5


def test_plain_denoising_baselines_share_the_solver_result_format(camera32):
    from metadip.solvers.denoise import run_denoiser

    y = noisy(camera32)
    for den in (bm3d_denoise, DRUNetDenoiser(DRUNet(TINY), "cpu")):
        r = run_denoiser(den, y, 25, x_true=camera32)
        assert (
            r.estimate.shape == camera32.shape and r.seconds > 0 and set(r.trace) == {"step", "seconds", "psnr", "nmse"}
        )
        assert r.trace["psnr"][0] == pytest.approx(psnr(r.estimate, camera32).item())


def test_denoiser_bad_input():
    for sigma in (-1, 300, float("nan")):
        with pytest.raises(ValueError, match=r"sigma must lie in \[0, 255\]"):
            bm3d_denoise(torch.rand(1, 16, 16), sigma)
        with pytest.raises(ValueError, match=r"sigma must lie in \[0, 255\]"):
            DRUNetDenoiser(DRUNet(TINY), "cpu")(torch.rand(1, 16, 16), sigma)
    with pytest.raises(ValueError, match="1 or 3 channels"):
        bm3d_denoise(torch.rand(2, 16, 16), 25)
    with pytest.raises(ValueError, match="BM3D profile must be one of"):
        bm3d_denoise(torch.rand(1, 16, 16), 25, "fast")
    with pytest.raises(ValueError, match="denoises 1-channel images"):
        DRUNetDenoiser(DRUNet(TINY), "cpu")(torch.rand(3, 16, 16), 25)


def test_drunet_self_ensemble_is_equivariant_and_averages_eight_passes():
    net = DRUNet(TINY, seed=3)
    x = torch.rand(2, 1, 16, 24, generator=gen(0))  # not square: rotations change the shape
    plain, x8 = DRUNetDenoiser(net, "cpu"), DRUNetDenoiser(net, "cpu", self_ensemble=True)
    out = x8(x, 25)
    assert out.shape == x.shape and not torch.allclose(out, plain(x, 25), atol=1e-4)  # a random net is not equivariant
    # the ensemble commutes with every rotation and flip of its input, which a single pass does not
    torch.testing.assert_close(x8(torch.rot90(x, 1, dims=(-2, -1)), 25), torch.rot90(out, 1, dims=(-2, -1)))
    torch.testing.assert_close(x8(torch.flip(x, dims=(-2,)), 25), torch.flip(out, dims=(-2,)))
    single = torch.rot90(plain(torch.rot90(x, 1, dims=(-2, -1)), 25), -1, dims=(-2, -1))
    assert not torch.allclose(single, plain(x, 25), atol=1e-4)
    manual = (
        sum(
            torch.rot90(plain(torch.rot90(x, k, dims=(-2, -1)), 25), -k, dims=(-2, -1))
            + torch.rot90(
                torch.flip(plain(torch.flip(torch.rot90(x, k, dims=(-2, -1)), dims=(-1,)), 25), dims=(-1,)),
                -k,
                dims=(-2, -1),
            )
            for k in range(4)
        )
        / 8
    )
    torch.testing.assert_close(out, manual)


def test_drunet_has_the_official_layout_and_size():
    net = DRUNet(DRUNetConfig(channels=3))
    assert 32.5e6 < count_parameters(net) < 32.7e6  # the official DRUNet: about 32.6 M
    sd = net.state_dict()
    assert sd["m_head.weight"].shape == (64, 4, 3, 3)  # RGB + noise-level map
    assert sd["m_down1.4.weight"].shape == (128, 64, 2, 2) and sd["m_up3.0.weight"].shape == (512, 256, 2, 2)
    assert {"m_down1.0.res.0.weight", "m_down1.0.res.2.weight", "m_body.3.res.2.weight", "m_tail.weight"} <= set(sd)
    assert not any(k.endswith("bias") for k in sd)
    out = DRUNet(TINY)(torch.rand(2, 1, 20, 28), 25.0)  # pads to a multiple of 8 and crops back
    assert out.shape == (2, 1, 20, 28)


def test_official_weights_load_strictly(tmp_path):
    official = DRUNet(DRUNetConfig(channels=1))
    torch.save(official.state_dict(), tmp_path / "drunet_gray.pth")  # the KAIR file's layout
    net = load_official_drunet(tmp_path / "drunet_gray.pth", channels=1)
    assert all(torch.equal(v, official.state_dict()[k]) for k, v in net.state_dict().items())
    with pytest.raises(ValueError, match=r"wrong architecture: m_head\.weight"):
        load_official_drunet(tmp_path / "drunet_gray.pth", channels=3)
    renamed = {k.replace("m_body", "body"): v for k, v in official.state_dict().items()}
    torch.save(renamed, tmp_path / "renamed.pth")
    with pytest.raises(ValueError, match="not a DRUNet"):
        load_official_drunet(tmp_path / "renamed.pth", channels=1)
    raw = (tmp_path / "drunet_gray.pth").read_bytes()
    (tmp_path / "truncated.pth").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="not a readable DRUNet weights file"):
        load_official_drunet(tmp_path / "truncated.pth", channels=1)
    with pytest.raises(FileNotFoundError, match="DRUNet weights not found"):
        load_official_drunet(tmp_path / "none.pth", channels=1)


def test_briefly_trained_drunet_denoises_held_out_images(tmp_path):
    train, val = training_images()
    s = DenoiserTraining(steps=80, batch=8, patch=32, lr=2e-3, checkpoint_every=40, val_every=40, val_images=2)
    net = train_denoiser(DRUNet(TINY), s, train, val, 0, tmp_path, device="cpu", show_progress=False)
    y = noisy(val, seed=3)
    out = DRUNetDenoiser(net, "cpu")(y, 25)
    assert psnr(out, val).mean().item() > psnr(y, val).mean().item() + 3.0  # measured: 20.2 -> ~25.5 dB


def test_cosine_schedule_decays_from_lr_to_a_hundredth():
    from metadip.models.denoiser_training import learning_rate

    s = DenoiserTraining(steps=100, lr=1e-3, schedule="cosine")
    lrs = [learning_rate(s, t) for t in range(1, 101)]
    assert lrs[0] == pytest.approx(1e-3) and lrs[-1] == pytest.approx(1e-5, rel=0.05)
    assert all(a > b for a, b in itertools.pairwise(lrs))
    assert learning_rate(DenoiserTraining(steps=100, lr=1e-3), 50) == 1e-3
    with pytest.raises(ValueError, match="schedule must be"):
        DenoiserTraining(schedule="step")


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_denoiser_training_resumes_exactly(tmp_path, schedule):
    train, val = training_images()
    s = DenoiserTraining(
        steps=4, batch=2, patch=16, lr=1e-3, schedule=schedule, checkpoint_every=2, val_every=2, val_images=1
    )
    full = train_denoiser(DRUNet(TINY), s, train, val, 0, tmp_path / "full", device="cpu", show_progress=False)

    def crash(step):
        if step == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_denoiser(
            DRUNet(TINY), s, train, val, 0, tmp_path / "run", device="cpu", show_progress=False, on_step=crash
        )
    resumed = train_denoiser(DRUNet(TINY), s, train, val, 0, tmp_path / "run", device="cpu", show_progress=False)
    for k, v in full.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[k], v)


def test_denoiser_artifact_round_trip_and_tampering(tmp_path):
    net = DRUNet(TINY)
    save_denoiser(net, tmp_path / "drunet", source="trained", training_config={"steps": 1}, seed=0)
    back = load_denoiser(tmp_path / "drunet", channels=1)
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in back.state_dict().items())
    with pytest.raises(ArtifactError, match="3-channel images"):
        load_denoiser(tmp_path / "drunet", channels=3)
    raw = bytearray((tmp_path / "drunet.safetensors").read_bytes())
    raw[-3] ^= 0xFF
    (tmp_path / "drunet.safetensors").write_bytes(bytes(raw))
    with pytest.raises(ArtifactError, match="sha256 does not match"):
        load_denoiser(tmp_path / "drunet")
    with pytest.raises(ArtifactError, match="not found"):
        load_denoiser(tmp_path / "missing")


# -- PnP-ADMM -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [CompressiveSensing, StructuredCompressiveSensing])
@pytest.mark.parametrize("colour", ["joint", "shared"])
@pytest.mark.parametrize("rho", [0.05, 1.0, 20.0])
def test_cs_x_update_solves_its_normal_equations(cls, colour, rho):
    op = cls((3, 16, 16), 0.25, 25, 0, colour)
    x = torch.rand(3, 16, 16, generator=gen(0))
    y = op.measure(x, gen(1))
    prox = DataProx(op, y, rho)
    v = torch.rand(3, 16, 16, generator=gen(2))
    assert prox.normal_equation_residual(prox(v, v), v) < 1e-4
    if (
        cls is CompressiveSensing
    ):  # the factorisation is the operator's, shared by every image and the pseudo-inverse's AAᵀ
        assert DataProx(op, op.measure(x, gen(3)), rho).chol is prox.chol


def test_pnp_admm_bm3d_beats_least_squares_on_cs(camera32):
    op = CompressiveSensing(camera32.shape, 0.25, 10, seed=0)
    y = op.measure(camera32, gen(1))
    result = pnp_admm(op, y, bm3d_denoise, PnPSettings(sigma_d=50, rho=0.5, iterations=8), x_true=camera32)
    assert (
        psnr(result.estimate, camera32).item() > psnr(op.A_dagger(y), camera32).item() + 5.0
    )  # measured: 21.5 vs 7.0 dB
    assert len(result.trace["psnr"]) == 8 and result.seconds > 0


def test_pnp_admm_phase_retrieval_beats_its_initial_estimate(camera32):
    op = StructuredPhaseRetrieval(camera32.shape, 0.5, 10, seed=0)
    y = op.measure(camera32, gen(1))
    result = pnp_admm(op, y, bm3d_denoise, PnPSettings(sigma_d=50, rho=0.5, iterations=8), x_true=camera32)
    assert psnr(result.estimate, camera32).item() > psnr(op.initial_estimate(y), camera32).item() + 3.0


def test_pnp_rejects_denoising_operators_and_bad_settings(camera32):
    from metadip.physics.operators import Denoising

    with pytest.raises(TypeError, match="supports CS and PR"):
        DataProx(Denoising(camera32.shape, 25, 0), camera32, 1.0)
    with pytest.raises(ValueError, match="invalid PnP-ADMM settings"):
        PnPSettings(sigma_d=20, rho=0, iterations=5)


def test_grid_moves_recentre_an_edge_optimum_and_stop_at_the_axis_range():
    from metadip.solvers.pnp_tuning import _moved

    assert _moved([20.0, 35.0, 50.0], 35.0, "sigma_d") is None  # interior
    assert _moved([20.0, 35.0, 50.0], 50.0, "sigma_d") == [35.0, 50.0, 71.4286]
    assert _moved([0.1, 0.5, 2.0], 0.1, "rho") == [0.02, 0.1, 0.5]
    assert _moved([5.0, 10.0, 20.0], 20.0, "iterations") == [10.0, 20.0, 40.0]
    assert _moved([1.0, 2.0, 4.0], 1.0, "iterations") is None  # no fewer than one iteration
    assert _moved([100.0, 150.0, 200.0], 200.0, "sigma_d") is None  # 266 > 255
    assert _moved([0.5], 0.5, "rho") is None
    assert _moved([0.0, 10.0, 20.0], 0.0, "sigma_d") is None  # σ_d = 0 (no denoising): no ratio to step by


def test_grid_search_moves_until_the_best_point_is_interior(camera32):
    from metadip.core.seeding import seeded_generator
    from metadip.physics.tasks import TaskSpec
    from metadip.solvers.pnp_tuning import grid_search

    calls = []

    def smoother(x, sigma):  # a denoiser whose best strength lies far above the first grid
        calls.append(sigma)
        c = x.shape[-3]
        k = torch.ones(c, 1, 3, 3) / 9
        out = torch.nn.functional.conv2d(x.reshape(1, c, *x.shape[-2:]), k, padding=1, groups=c).reshape(x.shape)
        w = min(sigma / 400.0, 1.0)
        return (1 - w) * x + w * out

    images = camera32.unsqueeze(0).expand(2, -1, -1, -1).contiguous()
    grid = {"sigma_d": [1.0, 2.0, 4.0], "rho": [0.5], "iterations": [1, 2, 3]}
    problem = TaskSpec(kind="cs_fast", sigma=25, ratio=0.5)
    moved = grid_search(problem, smoother, grid, images, ["a", "b"], seed=0, max_moves=6)
    fixed = grid_search(problem, smoother, grid, images, ["a", "b"], seed=0, max_moves=0)
    assert fixed["grids"] == [fixed["grid"]] and fixed["grid"]["sigma_d"] == [1.0, 2.0, 4.0]
    assert len(moved["grids"]) > 1 and moved["grids"][0] == fixed["grid"]
    for before, after in zip(moved["grids"], moved["grids"][1:], strict=False):
        assert before != after
    best = moved["best"]
    assert best["mean_psnr"] >= fixed["best"]["mean_psnr"]
    assert best in moved["results"] and best["mean_psnr"] == max(r["mean_psnr"] for r in moved["results"])
    last = moved["grids"][-1]
    if moved["interior"]:
        assert last["sigma_d"][0] < best["sigma_d"] < last["sigma_d"][-1] or best["sigma_d"] == 255
    else:
        assert len(moved["grids"]) == 7
    points = {(r["sigma_d"], r["rho"], r["iterations"]) for r in moved["results"]}
    assert len(points) == len(moved["results"])  # every point once
    # each (σ_d, ρ) run is extended, not restarted, when a move raises the iteration count: one
    # denoiser call per image and iteration up to the most iterations any grid asked of it
    calls.clear()
    again = grid_search(problem, smoother, grid, images, ["a", "b"], seed=0, max_moves=6)
    assert again == moved
    most: dict[tuple[float, float], int] = {}
    for g in moved["grids"]:
        for pair in itertools.product(g["sigma_d"], g["rho"]):
            most[pair] = max(most.get(pair, 0), g["iterations"][-1])
    assert len(calls) == 2 * sum(most.values())
    # and its scores are those of a fresh PnP-ADMM run at that point
    op, ys = problem.simulate(images, seeded_generator(0, 3))
    settings = PnPSettings(best["sigma_d"], best["rho"], best["iterations"])
    fresh = [pnp_admm(op, y, smoother, settings, x_true=x).trace["psnr"][-1] for y, x in zip(ys, images, strict=True)]
    assert best["mean_psnr"] == round(float(np.mean(fresh)), 4)


def test_residual_drunet_adds_its_input_back_and_round_trips(tmp_path):
    from dataclasses import replace

    net = DRUNet(replace(TINY, channels=3, residual=True))
    torch.nn.init.zeros_(net.m_tail.weight)  # the branch outputs zero: the network is the identity
    x = torch.rand(2, 3, 24, 24, generator=gen(1))
    torch.testing.assert_close(net(x, 25.0), x)
    save_denoiser(net, tmp_path / "r", source="trained")
    back = load_denoiser(tmp_path / "r", channels=3)
    assert back.config.residual is True
    torch.testing.assert_close(back(x, 25.0), x)


def test_a_flat_edge_is_settled_inside_the_grid_not_moved():
    """Where the mean PSNR is flat within flat_db (ADMM at its fixed point), the chosen point is the
    one on the fewest movable edges, then with the fewest iterations; flat_db = 0 keeps the best."""
    from metadip.solvers.pnp_tuning import choose

    current = {"sigma_d": [17.15, 24.5, 35.0], "rho": [0.5, 2.0, 8.0], "iterations": [80.0, 160.0, 320.0]}
    points = list(itertools.product(current["sigma_d"], current["rho"], [80, 160, 320]))
    scores = dict.fromkeys(points, 20.0)  # a grid like PnP + BM3D's near its fixed point
    scores |= {(17.15, 2.0, 320): 33.88, (24.5, 2.0, 160): 33.85, (24.5, 2.0, 320): 33.85, (35.0, 2.0, 160): 33.40}
    assert choose(points, scores, current) == (17.15, 2.0, 320)  # the best: on the σ_d and iteration edges
    assert choose(points, scores, current, flat_db=0.05) == (24.5, 2.0, 160)  # interior, the fewest iterations
    assert choose(points, scores, current, flat_db=0.02) == (17.15, 2.0, 320)  # 0.03 dB is not flat at 0.02
    scores[(24.5, 2.0, 160)] = 33.80  # now only the edge point (24.5, 2, 320) is within 0.05 dB
    assert choose(points, scores, current, flat_db=0.05) == (24.5, 2.0, 320)  # one edge beats two
    scores[(24.5, 2.0, 80)] = 33.84  # among points on one edge each: the fewest iterations, not the highest mean
    assert choose(points, scores, current, flat_db=0.05) == (24.5, 2.0, 80)
    scores[(24.5, 2.0, 80)] = scores[(24.5, 2.0, 320)] = 20.0
    scores[(24.5, 0.5, 160)], scores[(35.0, 2.0, 160)] = 33.84, 33.85  # one edge, 160 iterations each:
    assert choose(points, scores, current, flat_db=0.05) == (35.0, 2.0, 160)  # the higher mean...
    scores[(24.5, 0.5, 160)] = 33.85
    assert choose(points, scores, current, flat_db=0.05) == (24.5, 0.5, 160)  # ...and on a tie the earlier
    lone = {**scores, (17.15, 2.0, 320): 33.95}  # nothing else within 0.05 dB: the best point, edges and all
    assert choose(points, lone, current, flat_db=0.05) == (17.15, 2.0, 320)
    ties = dict.fromkeys(points, 1.0)
    assert choose(points, ties, current) == points[0]  # flat_db = 0: ties go to the earlier point
    assert choose(points, ties, current, flat_db=0.05) == (24.5, 2.0, 160)  # the one point on no edge


def test_grid_search_with_a_flat_tolerance_stops_moving_where_the_gain_is_flat(camera32):
    from metadip.physics.tasks import TaskSpec
    from metadip.solvers.pnp_tuning import _moved, grid_search

    def smoother(x, sigma):
        c = x.shape[-3]
        k = torch.ones(c, 1, 3, 3) / 9
        out = torch.nn.functional.conv2d(x.reshape(1, c, *x.shape[-2:]), k, padding=1, groups=c).reshape(x.shape)
        return (1 - sigma / 400.0) * x + sigma / 400.0 * out

    images = camera32.unsqueeze(0).expand(2, -1, -1, -1).contiguous()
    grid = {"sigma_d": [20.0, 40.0, 80.0], "rho": [0.5, 1.0, 2.0], "iterations": [2, 4, 8]}
    problem = TaskSpec(kind="cs_fast", sigma=25, ratio=0.5)
    exact = grid_search(problem, smoother, grid, images, ["a", "b"], seed=0, max_moves=3)
    flat = grid_search(problem, smoother, grid, images, ["a", "b"], seed=0, max_moves=3, flat_db=0.5)
    assert exact["flat_db"] == 0 and exact["best"] == {**exact["grid_max"]}
    assert flat["flat_db"] == 0.5 and flat["best"] in flat["results"]
    assert 0 <= flat["grid_max"]["mean_psnr"] - flat["best"]["mean_psnr"] <= 0.5
    last = flat["grids"][-1]
    in_last = [r for r in flat["results"] if all(r[k] in last[k] for k in last)]
    assert len(in_last) == 27 and flat["grid_max"] == max(in_last, key=lambda r: r["mean_psnr"])
    # the exact search chases a falling ρ and doubling iterations until its moves run out; within
    # 0.5 dB the surface is flat, and the tolerant search settles inside its third grid
    assert not exact["interior"] and len(exact["grids"]) == 4
    assert flat["interior"] and len(flat["grids"]) == 3
    assert all(_moved([float(v) for v in last[k]], float(flat["best"][k]), k) is None for k in last)
    for bad in ({"flat_db": -1}, {"max_moves": -1}):
        with pytest.raises(ValueError, match="flat_db must be >= 0 dB and max_moves >= 0"):
            grid_search(problem, smoother, grid, images, ["a", "b"], seed=0, **bad)
