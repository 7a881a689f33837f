"""What each workflow step computes from: one declaration per step, the single source of its identity.

A step is a rule with its wildcards (``evaluate`` of task ``cs_4``, dataset ``wallpapers``, method
``metadip``). Its :class:`Step` names the config keys it reads (dotted paths into the validated
config) and the steps whose outputs it reads. From that one declaration come:

- :meth:`Steps.hash`: the step's identity, a hash of its own keys' values and its upstream steps'
  hashes (so a change anywhere upstream changes it). The workflow passes it to Snakemake as a rerun
  param, every output records it (:mod:`metadip.pipeline.records`), and an evaluation shard's rows
  carry it as their ``config_hash``;
- :meth:`Steps.closure`: every key the step's result depends on, its own and its upstream steps';
- :func:`dvc_params`: the ``params:`` of each DVC stage in ``dvc.yaml``.

A stage must read only keys of its step's closure (:func:`undeclared`; ``tests/workflow/test_config_reads.py``
runs every stage with a config that records each key read). Keys name the same thing in every config,
never a path or an overlay: two configs that agree on a step's closure give it the same hash.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from metadip.core.hashing import config_hash
from metadip.pipeline.plan import claim_jobs, evaluation_jobs, pnp_grid_key, stop_dataset, stop_jobs, stops_on_val

#: keys of the network a vanilla DIP run borrows from a meta method (network_of): architecture,
#: network and inner-loop settings (the model builder's), not the meta-training
NETWORK_KEYS = ("arch", "network", "inner")
#: the DRUNet / meta-training data: the datasets named by meta.train_dataset
TRAIN_DATASET = "meta.train_dataset"
#: what a meta method reads of its speed reference (a dip method): its solver and readings, not the
#: images its own rows cover nor its stop on validation crops
SPEED_REFERENCE_KEYS = (
    "kind", "label", "network_of", "network", "steps", "lr", "jitter_std", "ema", "report_at", "trace_last_every",
    "trace_last_dense",
)  # fmt: skip
#: the method kinds whose steps evaluate.compile can compile; the others never read it
COMPILED_KINDS = ("dip", "meta")
#: the keys of a dip method that its run on validation crops reads (not its label, readings or images)
STOP_KEYS = ("kind", "network_of", "network", "steps", "lr", "jitter_std", "ema", "stop_on_val")


@dataclass(frozen=True)
class Step:
    """One job of the workflow: its rule, wildcards, the config keys it reads and its upstream steps."""

    rule: str
    wildcards: tuple[tuple[str, str], ...] = ()
    keys: tuple[str, ...] = ()
    upstream: tuple[Step, ...] = field(default=(), repr=False)

    @property
    def name(self) -> str:
        """``rule`` or ``rule[k=v,...]``: how messages name the step."""
        inner = ",".join(f"{k}={v}" for k, v in self.wildcards)
        return f"{self.rule}[{inner}]" if inner else self.rule


def lookup(config: Mapping[str, Any], key: str) -> Any:
    """The value at dotted ``key`` of ``config`` (KeyError naming the key when absent)."""
    node: Any = config
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise KeyError(f"config key {key!r} not found (at {part!r})")
        node = node[part]
    return node


def _value(config: Mapping[str, Any], key: str) -> Any:
    """The value at ``key``, None when the config has no such key (a section the step finds absent)."""
    try:
        return lookup(config, key)
    except KeyError:
        return None


def _curate(config: Mapping[str, Any], dataset: str) -> Step:
    keys = ("seed", "curate.crop_size", "curate.shard_size", "curate.preview_crops", f"curate.datasets.{dataset}")
    return Step("curate", (("dataset", dataset),), keys)


def _train_data(config: Mapping[str, Any]) -> Step:
    return _curate(config, config["meta"]["train_dataset"])


def _train_denoiser(config: Mapping[str, Any]) -> Step:
    keys = ("baselines.drunet", "meta.image_size", TRAIN_DATASET, "seed")
    return Step("train_denoiser", (), keys, (_train_data(config),))


def _meta_train(config: Mapping[str, Any], method: str) -> Step:
    keys = (f"meta.methods.{method}", "meta.image_size", TRAIN_DATASET, "seed")
    return Step("meta_train", (("method", method),), keys, (_train_data(config),))


def _tune_pnp(config: Mapping[str, Any], task: str, denoiser: str) -> Step:
    kind = config["evaluate"]["tasks"][task]["kind"]
    pnp = "baselines.pnp"
    keys = (
        *(f"{pnp}.{k}" for k in ("val_images", "min_photos", "max_moves", "flat_db", "pr_steps")),
        *([f"{pnp}.bm3d_profile"] if denoiser == "bm3d" else []),
        f"{pnp}.grid.{pnp_grid_key(kind, denoiser)}",
        f"evaluate.tasks.{task}",
        "meta.image_size",
        TRAIN_DATASET,
        "seed",
    )
    upstream = (_train_data(config), *([_train_denoiser(config)] if denoiser == "drunet" else []))
    return Step("tune_pnp", (("task", task), ("denoiser", denoiser)), keys, upstream)


def _borrowed_keys(config: Mapping[str, Any], method: str) -> list[str]:
    """Keys a method reads from other sections: a DIP network, a speed reference, PnP's settings."""
    ev = config["evaluate"]["methods"]
    m = ev[method]
    keys = [f"meta.methods.{m['network_of']}.{k}" for k in NETWORK_KEYS] if m["kind"] == "dip" else []
    if m["kind"] == "pnp":
        keys.append("baselines.pnp.pr_steps")
        keys += ["baselines.pnp.bm3d_profile"] if m["denoiser"] == "bm3d" else []
    if m.get("speed_reference"):
        ref = m["speed_reference"]
        keys += [f"evaluate.methods.{ref}.{k}" for k in SPEED_REFERENCE_KEYS]
        keys += [f"meta.methods.{ev[ref]['network_of']}.{k}" for k in NETWORK_KEYS]
    return keys


def _evaluate(config: Mapping[str, Any], task: str, dataset: str, method: str) -> Step:
    m = config["evaluate"]["methods"][method]
    upstream = [_curate(config, dataset)]
    if m["kind"] == "meta":
        upstream.append(_meta_train(config, m["init"]))
    if m.get("denoiser") == "drunet":
        upstream.append(_train_denoiser(config))
    if m["kind"] == "pnp":
        upstream.append(_tune_pnp(config, task, m["denoiser"]))
    if stops_on_val(m):
        upstream.append(_dip_stop(config, task, dataset, method))
    keys = (
        f"evaluate.tasks.{task}",
        f"evaluate.methods.{method}",
        *_borrowed_keys(config, method),
        *(f"evaluate.{k}" for k in ("images", "min_photos", "shards", "split", "roles", "batch")),
        *(["evaluate.compile"] if m["kind"] in COMPILED_KINDS else []),
        "meta.image_size",
        "seed",
    )
    wildcards = (("task", task), ("dataset", dataset), ("method", method))
    return Step("evaluate", wildcards, keys, tuple(upstream))


def _dip_stop(config: Mapping[str, Any], task: str, dataset: str, method: str) -> Step:
    m = config["evaluate"]["methods"][method]
    keys = (
        f"evaluate.tasks.{task}",
        *(f"evaluate.methods.{method}.{k}" for k in STOP_KEYS),
        *(f"meta.methods.{m['network_of']}.{k}" for k in NETWORK_KEYS),
        *(f"evaluate.{k}" for k in ("roles", "compile")),
        "meta.image_size",
        "seed",
    )
    upstream = (_curate(config, stop_dataset(config, method, dataset)),)
    return Step("dip_stop", (("task", task), ("dataset", dataset), ("method", method)), keys, upstream)


def _evaluations(config: Mapping[str, Any], jobs: Iterable[Mapping[str, Any]]) -> tuple[Step, ...]:
    """The evaluate steps of ``jobs`` (shards of one (task, dataset, method) are one step)."""
    seen = dict.fromkeys((j["task"], j["dataset"], j["method"]) for j in jobs)
    return tuple(_evaluate(config, *key) for key in seen)


#: what the reporting settings (metadip.reporting.settings.report_settings) read, for the
#: aggregate, the claims and the tables and figures alike
REPORT_KEYS = (
    "claims",
    *(f"evaluate.{k}" for k in ("split", "qualitative_images", "roles", "tasks", "methods")),
    "meta.methods",
    "meta.image_size",
    TRAIN_DATASET,
    "seed",
)


def _aggregate(config: Mapping[str, Any]) -> Step:
    return Step("aggregate", (), REPORT_KEYS, _evaluations(config, evaluation_jobs(config)))


def _claims(config: Mapping[str, Any]) -> Step:
    return Step("claims", (), REPORT_KEYS, _evaluations(config, claim_jobs(config)))


def _render(config: Mapping[str, Any]) -> Step:
    roles = sorted(set(config["evaluate"]["roles"].values()))
    upstream = (_aggregate(config), *(_curate(config, d) for d in roles))
    return Step("render", (), (*REPORT_KEYS, "evaluate"), upstream)


def _ablation_data(config: Mapping[str, Any]) -> tuple[Step, ...]:
    transfer = config["ablation"]["transfer"]["dataset"]
    return (_train_data(config), *([_curate(config, transfer)] if transfer else []))


ABLATION_SCORING = (
    *(f"ablation.{k}" for k in ("val_images", "tasks", "transfer")),
    "meta.image_size",
    TRAIN_DATASET,
    "seed",
)


def _ablate(config: Mapping[str, Any], variant: str) -> Step:
    ab = config["ablation"]
    keys = (
        f"meta.methods.{ab['method']}",
        f"ablation.variants.{variant}",
        *(f"ablation.{k}" for k in ("method", "outer_steps", "test_steps")),
        *ABLATION_SCORING,
    )
    return Step("ablate", (("variant", variant),), keys, _ablation_data(config))


def _ablation_dip(config: Mapping[str, Any]) -> Step:
    ab = config["ablation"]
    dip = ab["dip"] if ab["dip"] in config["evaluate"]["methods"] else None
    borrowed = _borrowed_keys(config, dip) if dip and config["evaluate"]["methods"][dip]["kind"] == "dip" else []
    keys = ("ablation.dip", f"evaluate.methods.{dip}", "ablation.method", *borrowed, *ABLATION_SCORING)
    return Step("ablation_dip", (), keys, _ablation_data(config))


def _ablation_table(config: Mapping[str, Any]) -> Step:
    ab = config["ablation"]
    upstream = (*(_ablate(config, v) for v in ab["variants"]), *([_ablation_dip(config)] if ab["dip"] else []))
    return Step("ablation_table", (), ("ablation.variants", "ablation.reference", "ablation.dip"), upstream)


#: the declaration of each rule that reads the config, called with the config and the job's wildcards
DECLARATIONS: dict[str, Callable[..., Step]] = {
    "curate": _curate,
    "train_denoiser": _train_denoiser,
    "meta_train": _meta_train,
    "tune_pnp": _tune_pnp,
    "dip_stop": _dip_stop,
    "evaluate": _evaluate,
    "aggregate": _aggregate,
    "claims": _claims,
    "render": _render,
    "ablate": _ablate,
    "ablation_dip": _ablation_dip,
    "ablation_table": _ablation_table,
}


class Steps:
    """The steps of one validated config, their hashes and key closures (memoised)."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.config = config
        self._hashes: dict[Step, str] = {}

    def step(self, rule: str, **wildcards: str) -> Step:
        """The declaration of ``rule`` for a job with ``wildcards``."""
        return DECLARATIONS[rule](self.config, **wildcards)

    def hash(self, step: Step) -> str:
        """The step's identity: its own keys' values and its upstream steps' hashes."""
        if step not in self._hashes:
            own = {key: _value(self.config, key) for key in step.keys}
            self._hashes[step] = config_hash([[self.hash(u) for u in step.upstream], own])
        return self._hashes[step]

    def rule_hash(self, rule: str, **wildcards: str) -> str:
        """:meth:`hash` of ``rule``'s step for ``wildcards``."""
        return self.hash(self.step(rule, **wildcards))

    def closure(self, step: Step) -> set[str]:
        """Every key the step's result depends on: its own and, transitively, its upstream steps'."""
        keys = set(step.keys)
        for u in step.upstream:
            keys |= self.closure(u)
        return keys


def undeclared(steps: Steps, step: Step, reads: Iterable[str]) -> list[str]:
    """The dotted keys of ``reads`` that ``step``'s closure does not declare. A read names a value
    looked up (or looked for) or a mapping whose keys were listed; listing a non-empty mapping is
    declared when each of its entries is (the step's upstream steps cover every one)."""
    closure = steps.closure(step)

    def declared(key: str) -> bool:
        if covers(closure, key):
            return True
        try:
            node = lookup(steps.config, key)
        except KeyError:
            return False
        return isinstance(node, Mapping) and bool(node) and all(declared(f"{key}.{c}") for c in node)

    return sorted(k for k in reads if not declared(k))


def covers(keys: Iterable[str], read: str) -> bool:
    """Whether reading dotted key ``read`` is declared by ``keys``: one of them is ``read`` or a prefix of it."""
    return any(read == k or read.startswith(k + ".") for k in keys)


def minimal_keys(keys: Iterable[str], config: Mapping[str, Any]) -> list[str]:
    """``keys`` without those a shorter key covers, a mapping whose every entry is listed named
    by the mapping instead (``evaluate.tasks.a``, ``evaluate.tasks.b`` -> ``evaluate.tasks`` when
    those are all its tasks); sorted."""
    keys = set(keys)
    changed = True
    while changed:
        changed = False
        parents = {k.rsplit(".", 1)[0] for k in keys if "." in k}
        for parent in parents:
            node = lookup(config, parent)
            if isinstance(node, Mapping) and node and all(f"{parent}.{c}" in keys for c in node):
                keys = {k for k in keys if not k.startswith(parent + ".")} | {parent}
                changed = True
                break
    return sorted(k for k in keys if not covers(keys - {k}, k))


def planned_steps(config: Mapping[str, Any]) -> dict[str, list[Step]]:
    """The steps the workflow's targets run, by DVC stage (``curate``, ``meta_init``, ``baselines``,
    ``evaluate``) and ``ablation`` (in the targets only when ablation.enabled)."""
    ev, meta = config["evaluate"], config["meta"]
    datasets = sorted({*ev["roles"].values(), *([meta["train_dataset"]] if meta["methods"] else [])})
    inits = sorted({m["init"] for m in ev["methods"].values() if m["kind"] == "meta"})
    denoisers = sorted({m["denoiser"] for m in ev["methods"].values() if m["kind"] == "pnp"})
    pnp_tasks = [t for t, spec in ev["tasks"].items() if spec["kind"] != "denoising"]
    drunet = any(m.get("denoiser") == "drunet" for m in ev["methods"].values())
    ab = config["ablation"]
    return {
        "curate": [_curate(config, d) for d in datasets],
        "meta_init": [_meta_train(config, m) for m in inits],
        "baselines": [
            *([_train_denoiser(config)] if drunet else []),
            *(_tune_pnp(config, t, d) for t in pnp_tasks for d in denoisers),
        ],
        "evaluate": [
            *(_dip_stop(config, **job) for job in stop_jobs(config)),
            *_evaluations(config, evaluation_jobs(config)),
            _aggregate(config),
            *([_claims(config)] if config["claims"]["enabled"] else []),
            _render(config),
        ],
        "ablation": [table := _ablation_table(config), *table.upstream] if ab["enabled"] else [],
    }


def dvc_params(config: Mapping[str, Any]) -> dict[str, list[str]]:
    """The config keys of each DVC stage (``dvc.yaml``'s ``params:``): its steps' own keys, cut to
    their first two levels (DVC reads the config file, where a named entry such as a task may be
    absent and a deeper key left to its default: ``evaluate.tasks``, ``baselines.pnp``), minimal."""
    return {
        stage: minimal_keys((".".join(k.split(".")[:2]) for step in steps for k in step.keys), config)
        for stage, steps in planned_steps(config).items()
        if stage != "ablation"
    }
