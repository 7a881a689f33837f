"""One inner update rule for both loops: meta-training's functional, differentiable steps and
inference's in-place multi-tensor steps take the same elementwise operations, bit for bit."""

from __future__ import annotations

import itertools

import pytest
import torch
from builders import tiny_model
from conftest import gen

from metadip.meta.inner_loop import InnerSettings, _update_in_place, adapt, inner_update, reconstruct, solve
from metadip.physics.operators import StructuredCompressiveSensing

KINDS = [("sgd", False), ("sgd", True), ("adam", False), ("adam", True)]  # (update, per-element step sizes)


@pytest.mark.parametrize(("update", "per_element"), KINDS)
def test_the_in_place_rule_is_the_functional_rule_bit_for_bit(update, per_element):
    """Five steps on batched parameters (inference's vmapped layout: a leading batch dimension, the
    per-element factors broadcast over it) against the functional rule on each image's tensors."""
    inner = InnerSettings(update=update, momentum=0.7, lr_per_element=per_element)
    shapes = [(2, 3, 3, 3), (2, 3), (2,)]  # batch of 2, then each tensor's own shape
    params = [torch.randn(s, generator=gen(i)) for i, s in enumerate(shapes)]
    scales = [torch.rand(s[1:], generator=gen(10 + i)) + 0.5 for i, s in enumerate(shapes)] if per_element else None
    alpha = [0.3, 0.05, 1.7]
    n_state = 2 if update == "adam" else 1
    state = [[torch.zeros_like(p) for p in params] for _ in range(n_state)]
    # image b's tensor i: (θ, optimiser state) of the functional loop
    functional = [[(p[b].clone(), (torch.zeros_like(p[b]),) * n_state) for p in params] for b in range(2)]
    for step in range(5):
        grads = tuple(torch.randn(p.shape, generator=gen(100 + 10 * step + i)) for i, p in enumerate(params))
        _update_in_place(inner, params, grads, state, alpha, step, scales)
        for b, i in itertools.product(range(2), range(len(params))):
            theta, opt_state = functional[b][i]
            scale = None if scales is None else scales[i]
            delta, opt_state = inner_update(inner, grads[i][b], opt_state, torch.tensor(alpha[i]), step, scale)
            functional[b][i] = (theta - delta, opt_state)
            assert torch.equal(params[i][b], theta - delta), (step, b, i)
            assert all(torch.equal(state[j][i][b], opt_state[j]) for j in range(n_state)), (step, b, i)


@pytest.mark.parametrize(("update", "per_element"), KINDS)
def test_inference_ends_where_the_meta_training_loop_ends_bit_for_bit(update, per_element):
    """One measurement, 6 steps (K = 3: beyond K too), learned per-tensor step sizes, per-element
    factors and noise exponent away from their start: the inference loop's output is the functional
    loop's exactly."""
    model = tiny_model(steps=3, update=update, per_element=per_element, noise_exponent=True)
    with torch.no_grad():
        model.log_lr.add_((torch.rand(model.log_lr.shape, generator=gen(3)) + 0.5).log())
        model.lr_noise_exponent.fill_(0.3)
        for i, s in enumerate(model.log_lr_scale if per_element else ()):
            s.copy_(torch.rand(s.shape, generator=gen(10 + i)) - 0.5)
    op = StructuredCompressiveSensing((1, 16, 16), 0.5, 15, 0)
    y = op.measure(torch.rand(1, 1, 16, 16, generator=gen(0)), gen(1))[0]
    result = solve(model, op, y, steps=6, device="cpu", show_progress=False)
    with torch.no_grad():
        functional = reconstruct(model, adapt(model, op, y, 6, first_order=True))
    assert torch.equal(result.last, functional)
