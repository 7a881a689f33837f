"""Typed settings of an evaluation shard, parsed once from the validated config.

:func:`shard_settings` reads everything one (task, method) evaluation needs — the seed, the task
setting, the method with what it borrows from other sections (a DIP method's network, a meta
method's speed reference, PnP's phase-retrieval steps) and the batch size — so that
:func:`metadip.pipeline.evaluation.evaluate_shard`'s signature says what it uses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from metadip.core.errors import InputError
from metadip.core.hashing import config_hash
from metadip.models.build import architecture_from_config
from metadip.pipeline.config import ConfigError
from metadip.pipeline.plan import applies, report_steps
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
    bm3d_profile: str  # "np" | "classic": the BM3D of PnP-ADMM + BM3D (baselines.pnp.bm3d_profile)


@dataclass(frozen=True)
class DIPMethod:
    """Vanilla DIP from a random init of a meta method's network, read off at ``report_at`` steps."""

    name: str
    label: str
    settings: DIPSettings
    report_at: tuple[int, ...]
    network: Mapping[str, Any]  # network_of's network with the method's own keys merged over it
    arch: str  # "dip" | "siren"
    inner: Mapping[str, Any]  # network_of's inner-loop settings (the model builder takes them)
    trace_last_every: int
    trace_last_dense: int

    def architecture(self, image_shape: tuple[int, int, int]) -> dict[str, Any]:
        """The random init's architecture description for images of ``image_shape``."""
        return architecture_from_config(dict(self.network), self.arch, image_shape)


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
    config_hash: str  # of every config value the rows depend on


def _dip_method(config: Mapping[str, Any], name: str) -> DIPMethod:
    m = config["evaluate"]["methods"][name]
    source = config["meta"]["methods"][m["network_of"]]
    return DIPMethod(
        name=name,
        label=m["label"],
        settings=DIPSettings(steps=m["steps"], lr=m["lr"], jitter_std=m["jitter_std"], ema=m["ema"]),
        report_at=tuple(report_steps(m)),
        network={**source["network"], **m.get("network", {})},
        arch=source["arch"],
        inner=source["inner"],
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
        return PnPMethod(name, m["label"], m["denoiser"], pnp["pr_steps"], pnp["bm3d_profile"])
    if kind == "dip":
        return _dip_method(config, name)
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


def shard_settings(config: Mapping[str, Any], task_name: str, method_name: str) -> ShardSettings:
    """The settings of evaluating ``method_name`` on ``task_name`` (both names in the config)."""
    ev = config["evaluate"]
    if task_name not in ev["tasks"]:
        raise ConfigError(f"no '{task_name}' under evaluate.tasks (have: {', '.join(ev['tasks'])})")
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
        config_hash=shard_config_hash(config, task_name, method_name),
    )


def shard_config_hash(config: Mapping[str, Any], task_name: str, method_name: str) -> str:
    """Hash of the config values a shard's rows depend on: the seed, image size, evaluation set, the
    task and the method with what it borrows (its meta method, DIP network, DRUNet, PnP settings,
    speed reference). The workflow's evaluate rule hashes all of them too, so a change that moves
    this hash reruns the shard."""
    ev, meta, baselines = config["evaluate"], config["meta"], config["baselines"]
    m = ev["methods"][method_name]
    section: dict[str, Any] = {
        "seed": config["seed"],
        "image_size": meta["image_size"],
        "images": ev["images"],
        "split": ev["split"],
        "task": ev["tasks"][task_name],
        "method": m,
    }
    if m["kind"] == "meta":
        section["init"] = meta["methods"][m["init"]]
    if m["kind"] == "dip":
        section["network_of"] = {k: meta["methods"][m["network_of"]][k] for k in ("arch", "network", "inner")}
    if m["kind"] == "pnp":
        section["pnp"] = {"pr_steps": baselines["pnp"]["pr_steps"]}
        if m["denoiser"] == "bm3d":
            section["pnp"]["bm3d_profile"] = baselines["pnp"]["bm3d_profile"]
    if m.get("denoiser") == "drunet":
        section["drunet"] = baselines["drunet"]
    if m.get("speed_reference"):
        ref = ev["methods"][m["speed_reference"]]
        section["speed_reference"] = {k: v for k, v in ref.items() if k != "images"}
        section["speed_network"] = {k: meta["methods"][ref["network_of"]][k] for k in ("arch", "network", "inner")}
    return config_hash(section)


def check_shard_rows(path: str, keys: Sequence[tuple[str, str, str]], config: Mapping[str, Any]) -> None:
    """Raise ConfigError unless every row of shard ``path``, given as (task, method_name,
    config_hash), was computed under ``config`` (:func:`shard_config_hash` of its task and method)."""
    expected: dict[tuple[str, str], str | None] = {}
    for task, method, got in keys:
        if (task, method) not in expected:
            try:
                expected[task, method] = shard_config_hash(config, task, method)
            except (KeyError, TypeError):  # a task or method this config lacks
                expected[task, method] = None
        if got != expected[task, method]:
            raise ConfigError(
                f"{path}: rows of {task}/{method} computed under another config (config_hash {got}, this config "
                f"gives {expected[task, method]}); delete the shard and rerun snakemake"
            )
