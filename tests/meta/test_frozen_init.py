"""outer.freeze_init: θ₀ stays at the seeded init while the learned step sizes train (the control
with its own inner loop); off, meta-training is the outer loop it always was, bit for bit."""

from __future__ import annotations

import pytest
import torch
from builders import images, outer, state, tiny_model

from metadip.core.errors import InputError
from metadip.meta.inner_loop import task_loss
from metadip.meta.maml import OuterSettings, meta_train, model_for_method, sample_task
from metadip.pipeline.config import validate_definition


def train(model, settings, work, **kw):
    return meta_train(model, settings, images(), images(seed=1), 0, work, device="cpu", show_progress=False, **kw)


def prior_state(model) -> dict[str, torch.Tensor]:
    return {k: v for k, v in state(model).items() if k.startswith("prior.")}


@pytest.mark.parametrize(
    ("settings", "model"),
    [
        ({}, {}),  # second order, tasks looped
        ({"first_order": True, "task_batching": "vmap"}, {}),
        ({"first_order": True, "grad_clip": 0.01}, {"per_element": True, "noise_exponent": True}),
    ],
)
def test_frozen_init_stays_bit_identical_while_the_step_sizes_move(tmp_path, settings, model):
    trained = train(tiny_model(**model), outer(steps=4, freeze_init=True, lr_step_sizes=0.05, **settings), tmp_path)
    seeded = tiny_model(**model)
    for k, v in prior_state(seeded).items():
        assert torch.equal(prior_state(trained)[k], v), k
    assert not torch.equal(trained.log_lr, seeded.log_lr)
    if model:
        assert all(s.detach().abs().max() > 0 for s in trained.log_lr_scale)
        assert trained.lr_noise_exponent.item() != 0


def test_frozen_init_computes_no_meta_gradient_for_it(tmp_path, monkeypatch):
    """θ₀ enters the outer step detached: after an outer step none of its tensors holds a gradient,
    and Adam holds the step sizes alone."""
    seen = {}
    adam_step = torch.optim.Adam.step

    def record(self, *args, **kwargs):
        seen["grads"] = {n: p.grad for n, p in model.named_parameters()}
        seen["adam"] = [p for g in self.param_groups for p in g["params"]]
        return adam_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", record)
    model = tiny_model(per_element=True)
    train(model, outer(steps=1, freeze_init=True), tmp_path)
    step_sizes = {n for n, _ in model.named_parameters() if not n.startswith("prior.")}
    assert {n for n, g in seen["grads"].items() if g is not None} == step_sizes
    assert {id(p) for p in seen["adam"]} == {id(p) for n, p in model.named_parameters() if n in step_sizes}


def test_without_the_flag_both_theta0_and_the_step_sizes_train_as_before(tmp_path):
    """freeze_init off: the run is, bit for bit, Adam on θ₀ at lr and on log α at lr_step_sizes along
    the mean looped task loss of every outer step; its settings and run identity carry no new key."""
    settings = outer(steps=3, lr_step_sizes=0.05)
    ran = train(tiny_model(), settings, tmp_path)
    ref = tiny_model()
    opt = torch.optim.Adam(
        [{"params": list(ref.prior.parameters())}, {"params": [ref.log_lr], "lr": 0.05}], lr=settings.lr
    )
    for step in range(1, settings.steps + 1):
        op, ys, xs = sample_task(settings, images(), 0, step)
        opt.zero_grad(set_to_none=True)
        for y, x in zip(ys, xs, strict=True):
            (task_loss(ref, op, y, x, ref.inner.steps, settings.first_order) / settings.meta_batch).backward()
        opt.step()
    for k, v in state(ref).items():
        assert torch.equal(state(ran)[k], v), k
    assert not torch.equal(ran.prior.net.head.weight, tiny_model().prior.net.head.weight)
    assert "freeze_init" not in settings.to_dict()
    frozen = outer(freeze_init=True)
    assert frozen.to_dict()["freeze_init"] is True and OuterSettings.from_dict(frozen.to_dict()) == frozen


def test_a_checkpoint_with_the_other_freeze_setting_is_not_resumed(tmp_path, caplog):
    train(tiny_model(), outer(steps=4, freeze_init=True), tmp_path / "w", stop_after=2)
    with caplog.at_level("WARNING", logger="metadip.core.checkpoints"):
        rerun = train(tiny_model(), outer(steps=4), tmp_path / "w")
    assert "checkpoint of another run (configuration: " in caplog.text
    fresh = train(tiny_model(), outer(steps=4), tmp_path / "fresh")
    for k, v in state(fresh).items():
        assert torch.equal(state(rerun)[k], v), k


def test_a_frozen_init_without_learned_step_sizes_is_refused(tmp_path):
    with pytest.raises(InputError, match=r"^outer\.freeze_init: true needs inner\.learn_lr: true"):
        train(tiny_model(learn_lr=False), outer(freeze_init=True), tmp_path)
    assert not (tmp_path / "metrics.csv").exists()
    method = {"arch": "dip", "network": {"width": 4, "depth": 2}, "inner": {"steps": 2}, "outer": {"freeze_init": True}}
    validate_definition(method, "meta_method", source="test")  # the schema takes the key; defaults filled in
    model, settings = model_for_method(method, (1, 16, 16))
    assert settings.freeze_init and model.inner.learn_lr
    method["inner"]["learn_lr"] = False
    with pytest.raises(InputError, match=r"^outer\.freeze_init: true needs"):
        model_for_method(method, (1, 16, 16))


def test_the_start_line_says_the_init_is_frozen(tmp_path, caplog):
    with caplog.at_level("INFO", logger="metadip.meta.maml"):
        train(tiny_model(), outer(steps=1, first_order=True, freeze_init=True), tmp_path)
    assert "first-order MAML, θ₀ frozen: step sizes only) for 1 outer steps" in caplog.records[0].getMessage()
