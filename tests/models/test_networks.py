"""Networks: architecture facts, seeding, Fourier features, functional_call and vmap."""

from __future__ import annotations

import pytest
import torch
from torch.func import functional_call, stack_module_state, vmap

from metadip.models.networks import (
    DIPConfig,
    DIPPrior,
    SirenConfig,
    SirenPrior,
    SkipConfig,
    SkipNet,
    count_parameters,
    fourier_features,
    skip_forward,
)


def small_dip(**kw) -> DIPPrior:
    cfg = {"image_shape": (3, 32, 32), "channels_down": (8,) * 3, "channels_up": (8,) * 3, "channels_skip": (2,) * 3}
    cfg.update(kw)
    return DIPPrior(DIPConfig(**cfg), seed=0)


def test_default_skip_net_matches_ulyanov_size():
    prior = DIPPrior(DIPConfig(), seed=0)
    assert 2.1e6 < count_parameters(prior) < 2.3e6  # the paper's network: about 2.2 M parameters
    bns = [m for m in prior.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and all(not m.track_running_stats and m.running_mean is None for m in bns)
    assert prior.z.shape == (1, 32, 128, 128) and prior.z.min() >= 0 and prior.z.max() <= 0.1


def test_output_shape_and_range():
    prior = small_dip()
    out = prior()
    assert out.shape == (1, 3, 32, 32) and out.min() > 0 and out.max() < 1


def test_same_seed_same_weights_and_no_global_rng_side_effect():
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a, b = small_dip(), small_dip()
    assert torch.equal(torch.rand(1), before)  # building a prior leaves the global RNG alone
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert ka == kb and torch.equal(va, vb)
    c = DIPPrior(a.config, seed=1)
    assert not torch.equal(c.z, a.z)


def test_jitter_touches_latent_channels_only():
    prior = small_dip(fourier_features=16)
    assert prior.z.shape[1] == 32 + 16
    out0 = prior()
    jitter = torch.randn(prior.latent_shape) / 30
    assert not torch.allclose(prior(jitter), out0)
    assert torch.equal(prior(torch.zeros(prior.latent_shape)), out0)


def test_fourier_features_shape_range_and_scale():
    g = torch.Generator().manual_seed(0)
    f = fourier_features(16, 24, 64, 10.0, g)
    assert f.shape == (64, 16, 24) and f.abs().max() <= 1
    sin, cos = f[:32], f[32:]
    torch.testing.assert_close(sin**2 + cos**2, torch.ones_like(sin))
    low = fourier_features(16, 24, 64, 0.01, torch.Generator().manual_seed(0))
    # tiny scale: almost constant across the image; large scale: oscillates
    assert low[:32].std(dim=(1, 2)).max() < 0.1 and f[:32].std(dim=(1, 2)).mean() > 0.3
    with pytest.raises(ValueError, match="positive even number"):
        fourier_features(8, 8, 7, 1.0, g)


def test_too_small_image_is_a_clear_error():
    net = SkipNet(SkipConfig.uniform(8, depth=5))
    for forward in (net, lambda x: skip_forward(net.config, list(net.parameters()), x)):
        with pytest.raises(ValueError, match="needs images of at least 64 px"):
            forward(torch.rand(1, 32, 32, 32))


@pytest.mark.parametrize(
    "options", [{}, {"norm": "group"}, {"norm": "none"}, {"activation": "silu"}, {"skip": 0}], ids=str
)
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last], ids=["nchw", "nhwc"])
def test_the_functional_skip_net_is_the_module_bit_for_bit(options, layout):
    torch.manual_seed(0)
    config = SkipConfig.uniform(8, depth=3, in_channels=5, **options)
    net = SkipNet(config)
    x = torch.rand(2, 5, 24, 24).contiguous(memory_format=layout)
    assert torch.equal(skip_forward(config, list(net.parameters()), x), net(x))
    with pytest.raises(ValueError, match="more parameter tensors"):
        skip_forward(config, [*net.parameters(), torch.zeros(1)], x)


def test_mismatched_channel_lists_raise():
    with pytest.raises(ValueError, match="equal length"):
        SkipConfig(channels_down=(8, 8), channels_up=(8,), channels_skip=(4, 4))


def test_config_round_trip():
    cfg = DIPConfig(image_shape=(1, 64, 64), fourier_features=8)
    assert DIPConfig.from_dict(cfg.to_dict()) == cfg
    scfg = SirenConfig(width=32)
    assert SirenConfig.from_dict(scfg.to_dict()) == scfg


def test_norm_choice_layers_and_hash_compatible_default():
    def norms(prior: DIPPrior) -> set[type]:
        kinds = (torch.nn.BatchNorm2d, torch.nn.GroupNorm)
        return {type(m) for m in prior.modules() if isinstance(m, kinds)}

    batch, group, none = (small_dip(norm=n) for n in ("batch", "group", "none"))
    assert norms(batch) == {torch.nn.BatchNorm2d} and norms(group) == {torch.nn.GroupNorm} and not norms(none)
    assert count_parameters(group) == count_parameters(batch) > count_parameters(none)
    # GroupNorm over gcd(C, 8) groups: the concat of 8 deeper + 2 skip channels has 2 groups
    assert sorted({m.num_groups for m in group.modules() if isinstance(m, torch.nn.GroupNorm)}) == [2, 8]
    # the default is not written, so descriptions and hashes from before the choice stay valid
    assert "norm" not in batch.config.to_dict() and group.config.to_dict()["norm"] == "group"
    assert DIPConfig.from_dict(group.config.to_dict()) == group.config
    for prior in (group, none):
        out = prior()
        assert out.shape == (1, 3, 32, 32) and torch.isfinite(out).all()
    with pytest.raises(ValueError, match="norm must be one of"):
        small_dip(norm="layer")


@pytest.mark.parametrize(
    "make",
    [
        lambda s: small_dip() if s == 0 else DIPPrior(small_dip().config, seed=s),
        lambda s: small_dip(norm="group") if s == 0 else DIPPrior(small_dip(norm="group").config, seed=s),
        lambda s: SirenPrior(SirenConfig(image_shape=(3, 16, 16), width=32, depth=3), seed=s),
    ],
    ids=["dip", "dip-groupnorm", "siren"],
)
def test_functional_call_and_vmap_match_module_calls(make):
    models = [make(s) for s in range(3)]
    base = models[0]
    params = dict(base.named_parameters())
    buffers = dict(base.named_buffers())
    torch.testing.assert_close(functional_call(base, (params, buffers), ()), base())
    # vmap over per-model parameter copies: one independent forward each (no shared BatchNorm batch)
    stacked_p, stacked_b = stack_module_state(models)

    def one(p, b):
        return functional_call(base, (p, b), ())

    out = vmap(one)(stacked_p, stacked_b)
    for i, m in enumerate(models):
        torch.testing.assert_close(out[i], m(), rtol=1e-4, atol=1e-5)
    # gradients through functional_call work
    loss = functional_call(base, (params, buffers), ()).square().mean()
    grads = torch.autograd.grad(loss, list(params.values()))
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_siren_init_and_range():
    prior = SirenPrior(SirenConfig(image_shape=(1, 32, 32), width=64, depth=3), seed=0)
    out = prior()
    assert out.shape == (1, 1, 32, 32)
    assert abs(out.mean().item() - 0.5) < 0.2  # starts near mid-grey
    first = prior.mlp[0].weight
    assert first.abs().max() <= 1 / 2  # Sitzmann: U(-1/fan_in, 1/fan_in) with fan_in = 2
