"""Compiled solver steps (metadip.models.compiled): the same arithmetic as the eager steps, up to
float rounding, on 8 photographs of each task family; the eager fallback when nothing compiles."""

from __future__ import annotations

import pytest
import torch
from conftest import gen

from metadip.core.images import BUNDLED, bundled_image
from metadip.core.metrics import psnr
from metadip.meta.inner_loop import InnerSettings, MetaModel, solve
from metadip.models import compiled as compiled_module
from metadip.models.compiled import compiler, eager, leaf_views, prepare, python_headers
from metadip.models.networks import DIPConfig, DIPPrior, SirenConfig, SirenPrior
from metadip.physics.tasks import TaskSpec
from metadip.solvers.dip import DIPSettings, fit_dip

needs_compiler = pytest.mark.skipif(
    compiler() is None or not python_headers(), reason="compiling needs a C++ compiler (g++) and Python's headers"
)

CPU = torch.device("cpu")
SIZE = 32
FAMILIES = {
    "denoising": {"kind": "denoising", "sigma": 25},
    "cs": {"kind": "cs_fast", "sigma": 25, "ratio": 0.25},
    "pr": {"kind": "pr_fast", "sigma": 25, "ratio": 0.25},
}


def small_prior(seed: int = 0) -> DIPPrior:
    """A skip net small enough to compile in seconds: RGB 32 px, width 8, depth 3."""
    cfg = DIPConfig(
        image_shape=(3, SIZE, SIZE),
        latent_channels=8,
        channels_down=(8,) * 3,
        channels_up=(8,) * 3,
        channels_skip=(2,) * 3,
    )
    return DIPPrior(cfg, seed)


@pytest.fixture(scope="module")
def photos() -> torch.Tensor:
    """The 8 bundled photographs at 32 px, RGB: (8, 3, 32, 32)."""
    return torch.stack([bundled_image(name, SIZE) for name in BUNDLED])


@needs_compiler
def test_a_compiled_step_computes_the_eager_step():
    x = bundled_image("astronaut", SIZE)
    op = TaskSpec.from_setting(FAMILIES["cs"]).operator(tuple(x.shape), 0)
    y = op.measure(x.unsqueeze(0), gen(1))[0]
    jitter = torch.randn(small_prior().latent_shape, generator=gen(2)) / 30
    grads, outputs = [], []
    for compiled in (False, True):
        prior = small_prior()
        steps = prepare(prior, CPU) if compiled else eager(prior)
        assert steps.compiled == compiled
        out = steps.forward(jitter)[0]
        op.data_loss(out, y).backward()
        outputs.append(out.detach())
        grads.append(leaf_views(steps.params[0].grad, steps.shapes) if compiled else [p.grad for p in steps.params])
    torch.testing.assert_close(outputs[1], outputs[0], rtol=1e-5, atol=1e-6)
    for compiled_grad, eager_grad in zip(grads[1], grads[0], strict=True):
        torch.testing.assert_close(compiled_grad, eager_grad, rtol=1e-4, atol=1e-6)


@needs_compiler
def test_compiled_steps_update_one_flat_leaf_that_the_prior_reads():
    prior = small_prior()
    before = [p.detach().clone() for p in prior.parameters()]
    with torch.no_grad():
        first_output = prior(None)
    steps = prepare(prior, CPU)
    (flat,) = steps.params
    assert flat.is_leaf and flat.requires_grad and flat.numel() == sum(p.numel() for p in before)
    assert all(torch.equal(p, b) for p, b in zip(prior.parameters(), before, strict=True))
    with torch.no_grad():
        # the views hold the same values (in another layout: the same output up to float rounding)
        torch.testing.assert_close(prior(None), first_output, rtol=1e-5, atol=1e-6)
        flat.add_(0.01)
        assert all(torch.equal(p, b + 0.01) for p, b in zip(prior.parameters(), before, strict=True))
    alphas = [float(i) for i in range(len(before))]
    (per_element,) = steps.per_leaf(alphas)
    assert [float(t.unique()) for t in leaf_views(per_element, steps.shapes)] == alphas
    (same,) = steps.per_leaf([p.detach() for p in prior.parameters()])
    assert torch.equal(same, flat.detach())  # tensors per parameter land where the flat leaf holds them


@needs_compiler
@pytest.mark.parametrize("family", FAMILIES)
def test_compiled_and_eager_runs_agree_within_a_hundredth_of_a_db(family, photos):
    """Every row of 10 MetaDIP inner steps and of 10 DIP steps (its EMA estimate, and its last
    iterate after the first update), on each of the 8 photographs. DIP's last iterate is not held
    to it beyond that: Adam's first updates are ±lr wherever a gradient element is tiny, so a
    rounding difference can flip an update's sign and move the iterate by a whole step (0.1 dB
    after two updates on one of these photographs); the EMA averages such flips out. Over whole
    runs every solver amplifies rounding: bench/compiled_numerics.py measures it against a control."""
    op = TaskSpec.from_setting(FAMILIES[family]).operator((3, SIZE, SIZE), 0)
    model = MetaModel(small_prior(), InnerSettings(steps=3, lr_init=0.1, momentum=0.5))
    worst = 0.0
    for i, x in enumerate(photos):
        y = op.measure(x.unsqueeze(0), gen(i))[0]
        rows = {}
        for compiled in (False, True):
            meta = solve(model, op, y, 10, x_true=x, device=CPU, show_progress=False, compiled=compiled)
            dip = fit_dip(
                small_prior(),
                op,
                y,
                DIPSettings(steps=10),
                gen(100 + i),
                x_true=x,
                device=CPU,
                show_progress=False,
                compiled=compiled,
            )
            assert meta.compiled == dip.compiled == compiled
            rows[compiled] = torch.tensor(meta.trace["psnr"] + dip.trace["psnr"] + dip.trace["psnr_last"][:1])
        assert torch.isfinite(rows[True]).all()
        worst = max(worst, float((rows[True] - rows[False]).abs().max()))
    assert worst <= 0.01, f"{family}: compiled and eager rows differ by up to {worst:.4f} dB"


@needs_compiler
def test_a_compiled_run_returns_contiguous_images_like_an_eager_one():
    x = bundled_image("coffee", SIZE)
    op = TaskSpec.from_setting(FAMILIES["denoising"]).operator(tuple(x.shape), 0)
    y = op.measure(x.unsqueeze(0), gen(1))[0]
    r = fit_dip(small_prior(), op, y, DIPSettings(steps=2), gen(2), device=CPU, show_progress=False, compiled=True)
    assert r.compiled and r.estimate.is_contiguous() and r.last.is_contiguous()
    assert float(psnr(r.estimate, x)) > 0


@pytest.mark.parametrize(
    ("missing", "said"), [("compiler", "no C++ compiler"), ("python_headers", "headers (Python.h) are missing")]
)
def test_without_a_compiler_the_solvers_run_eager_and_say_so_once(missing, said, monkeypatch, capsys):
    monkeypatch.setattr(compiled_module, missing, lambda: None)
    monkeypatch.setattr(compiled_module, "_warned", set())
    x = bundled_image("rocket", SIZE)
    op = TaskSpec.from_setting(FAMILIES["denoising"]).operator(tuple(x.shape), 0)
    y = op.measure(x.unsqueeze(0), gen(1))[0]
    eager = fit_dip(small_prior(), op, y, DIPSettings(steps=3), gen(2), device=CPU, show_progress=False)
    for _ in range(2):
        fallback = fit_dip(
            small_prior(), op, y, DIPSettings(steps=3), gen(2), device=CPU, show_progress=False, compiled=True
        )
        assert not fallback.compiled
        assert torch.equal(fallback.estimate, eager.estimate)  # the eager steps, bit for bit
    assert capsys.readouterr().err.count(said) == 1


def test_a_siren_prior_stays_eager():
    prior = SirenPrior(SirenConfig(image_shape=(3, 16, 16), width=16, depth=2), 0)
    steps = prepare(prior, CPU)
    assert steps.forward is prior and not steps.compiled and steps.params == list(prior.parameters())


@needs_compiler
@pytest.mark.parametrize("inner", [{"lr_per_element": True}, {"update": "adam", "lr_init": 0.01}], ids=str)
def test_per_element_step_sizes_and_adam_steps_compile_like_eager(inner, photos):
    """The flat leaf's per-element operands (learned factors on α, Adam's state) line up with the
    parameters they belong to: compiled rows equal eager ones within a hundredth of a dB."""
    op = TaskSpec.from_setting(FAMILIES["denoising"]).operator((3, SIZE, SIZE), 0)
    model = MetaModel(small_prior(), InnerSettings(steps=3, momentum=0.5, **({"lr_init": 1.0} | inner)))
    if inner.get("lr_per_element"):
        with torch.no_grad():  # distinct factors per element, so that a misplaced one would show
            for s in model.log_lr_scale:
                s.uniform_(-3.0, 1.0, generator=gen(3))
    x = photos[0]
    y = op.measure(x.unsqueeze(0), gen(4))[0]
    rows = [
        torch.tensor(solve(model, op, y, 8, x_true=x, device=CPU, show_progress=False, compiled=c).trace["psnr"])
        for c in (False, True)
    ]
    assert float((rows[1] - rows[0]).abs().max()) <= 0.01
