"""Typed settings of an evaluation shard, parsed once from the validated config.

:func:`shard_settings` reads everything one (task, method) evaluation needs — the seed, the task
setting, the method with what it borrows from other sections (a DIP method's network, a meta
method's speed reference, PnP's phase-retrieval steps) and the batch size — so that
:func:`metadip.pipeline.evaluation.evaluate_shard`'s signature says what it uses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from metadip.core.errors import InputError
from metadip.models.build import architecture_from_config
from metadip.pipeline.config import ConfigError
from metadip.pipeline.plan import applies, report_steps
from metadip.pipeline.steps import COMPILED_KINDS, Steps
from metadip.solvers.dip import DIPSettings


@dataclass(frozen=True)
class DenoiserMethod:
    """One call of a denoiser at the true σ (denoising only)."""

    name: str
    label: str
    denoiser: str  # "bm3d" | "drunet"
    self_ensemble: bool = False  # drunet: mean over the 8 rotations / flips of the input (KAIR's x8)


@dataclass(frozen=True)
class PnPMethod:
    """PnP-ADMM with the tuned grid point (CS and PR only)."""

    name: str
    label: str
    denoiser: str  # "bm3d" | "drunet"
    pr_steps: int  # gradient steps of the phase-retrieval x-update (baselines.pnp.pr_steps)
    bm3d_profile: str | None  # "np" | "classic": the BM3D of PnP-ADMM + BM3D (baselines.pnp.bm3d_profile); None: DRUNet


@dataclass(frozen=True)
class DIPSolver:
    """What a run of a dip method computes with: its optimiser settings and its random init's network."""

    settings: DIPSettings
    network: Mapping[str, Any]  # network_of's network with the method's own keys merged over it
    arch: str
    inner: Mapping[str, Any]

    def architecture(self, image_shape: tuple[int, int, int]) -> dict[str, Any]:
        """The random init's architecture description for images of ``image_shape``."""
        return architecture_from_config(dict(self.network), self.arch, image_shape)


@dataclass(frozen=True)
class DIPMethod:
    """Vanilla DIP from a random init of a meta method's network, read off at ``report_at`` steps."""

    name: str
    label: str
    solver: DIPSolver
    report_at: tuple[int, ...]
    trace_last_every: int
    trace_last_dense: int
    stop_on_val: Mapping[str, Any] | None = None  # images, min_photos, datasets: a row stopped on validation crops

    def architecture(self, image_shape: tuple[int, int, int]) -> dict[str, Any]:
        """The random init's architecture description for images of ``image_shape``."""
        return self.solver.architecture(image_shape)


@dataclass(frozen=True)
class MetaMethod:
    """Inner-loop steps from a meta-init (or, ``random_init``, from the network's own init)."""

    name: str
    label: str
    init: str  # name under meta.methods
    steps: int
    random_init: bool
    speed_reference: DIPMethod | None  # DIP run whose step is timed interleaved with the inner step
    speed_rounds: int
    average_last: int = 1  # estimate: the mean of the last N outputs (1: the last iterate, the paper's)


Method = DenoiserMethod | PnPMethod | DIPMethod | MetaMethod


@dataclass(frozen=True)
class ShardSettings:
    """What one (task, method) evaluation uses; ``task`` is the evaluate.tasks entry."""

    seed: int
    task_name: str
    task: Mapping[str, Any]
    method: Method
    roles: Mapping[str, str]  # dataset -> role ("faces" / "natural")
    batch: int  # images per vmapped meta solve
    compile: frozenset[str]  # the solver kinds ("dip", "meta") that take compiled steps (dip and meta methods only)
    config_hash: str  # of every config value the rows depend on


def dip_solver(config: Mapping[str, Any], name: str) -> DIPSolver:
    """The solver of dip method ``name``, read from its network_of, network, steps, lr, jitter_std
    and ema only (not its label, readings or images)."""
    m = config["evaluate"]["methods"][name]
    source = config["meta"]["methods"][m["network_of"]]
    return DIPSolver(
        settings=DIPSettings(steps=m["steps"], lr=m["lr"], jitter_std=m["jitter_std"], ema=m["ema"]),
        network={**source["network"], **m.get("network", {})},
        arch=source["arch"],
        inner=source["inner"],
    )


def _dip_method(config: Mapping[str, Any], name: str) -> DIPMethod:
    m = config["evaluate"]["methods"][name]
    return DIPMethod(
        name=name,
        label=m["label"],
        solver=dip_solver(config, name),
        report_at=tuple(report_steps(m)),
        trace_last_every=m["trace_last_every"],
        trace_last_dense=m["trace_last_dense"],
    )


def method_settings(config: Mapping[str, Any], name: str) -> Method:
    """The typed settings of method ``name`` under evaluate.methods of a validated config."""
    methods = config["evaluate"]["methods"]
    if name not in methods:
        raise ConfigError(f"no '{name}' under evaluate.methods (have: {', '.join(methods)})")
    m = methods[name]
    kind = m["kind"]
    if kind == "denoiser":
        return DenoiserMethod(name, m["label"], m["denoiser"], m.get("self_ensemble", False))
    if kind == "pnp":
        pnp = config["baselines"]["pnp"]
        profile = pnp["bm3d_profile"] if m["denoiser"] == "bm3d" else None
        return PnPMethod(name, m["label"], m["denoiser"], pnp["pr_steps"], profile)
    if kind == "dip":  # its stop_on_val here only: a speed reference's rows do not depend on it
        return replace(_dip_method(config, name), stop_on_val=m.get("stop_on_val"))
    ref = m["speed_reference"]
    return MetaMethod(
        name=name,
        label=m["label"],
        init=m["init"],
        steps=m["steps"],
        random_init=m["random_init"],
        speed_reference=None if ref is None else _dip_method(config, ref),
        speed_rounds=m["speed_rounds"],
        average_last=m.get("average_last", 1),
    )


def shard_settings(config: Mapping[str, Any], task_name: str, method_name: str, dataset: str) -> ShardSettings:
    """The settings of evaluating ``method_name`` on ``task_name`` (both names in the config) on the
    curated ``dataset`` (a name under curate.datasets)."""
    ev = config["evaluate"]
    if task_name not in ev["tasks"]:
        raise ConfigError(f"no '{task_name}' under evaluate.tasks (have: {', '.join(ev['tasks'])})")
    if dataset not in config["curate"]["datasets"]:
        raise ConfigError(f"no '{dataset}' under curate.datasets (have: {', '.join(config['curate']['datasets'])})")
    method = method_settings(config, method_name)
    task = ev["tasks"][task_name]
    if not applies(ev["methods"][method_name], task):
        raise InputError(
            f"method '{method_name}' ({ev['methods'][method_name]['kind']}) does not apply to task "
            f"'{task_name}' ({task['kind']}); pick a task setting it applies to"
        )
    return ShardSettings(
        seed=config["seed"],
        task_name=task_name,
        task=task,
        method=method,
        roles={dataset: role for role, dataset in ev["roles"].items()},
        batch=ev["batch"],
        compile=frozenset(ev["compile"]) if ev["methods"][method_name]["kind"] in COMPILED_KINDS else frozenset(),
        config_hash=shard_config_hash(config, task_name, dataset, method_name),
    )


def shard_config_hash(config: Mapping[str, Any], task_name: str, dataset: str, method_name: str) -> str:
    """The hash of the evaluate step of (task, dataset, method) (:mod:`metadip.pipeline.steps`): of every
    config value its rows depend on, upstream steps' included. The workflow's evaluate rule and the
    shard's record carry the same hash, so a change that moves it reruns the shard."""
    return Steps(config).rule_hash("evaluate", task=task_name, dataset=dataset, method=method_name)


def check_shard_rows(path: str, keys: Sequence[tuple[str, str, str, str]], config: Mapping[str, Any]) -> None:
    """Raise ConfigError unless every row of shard ``path``, given as (task, dataset, method_name,
    config_hash), was computed under ``config`` (:func:`shard_config_hash` of its step)."""
    expected: dict[tuple[str, str, str], str | None] = {}
    for task, dataset, method, got in keys:
        if (task, dataset, method) not in expected:
            try:
                expected[task, dataset, method] = shard_config_hash(config, task, dataset, method)
            except (KeyError, TypeError):  # a task, dataset or method this config lacks
                expected[task, dataset, method] = None
        if got != expected[task, dataset, method]:
            raise ConfigError(
                f"{path}: rows of {task}/{dataset}/{method} computed under another config (config_hash {got}, this "
                f"config gives {expected[task, dataset, method]}); delete the shard and rerun snakemake"
            )
