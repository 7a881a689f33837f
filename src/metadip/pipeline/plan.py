"""The evaluation plan of a config, without heavy imports (the Snakefile reads it at start-up):
which method runs on which task and on how many images, the result-row ids of its methods, which
table a task belongs to, and the shard jobs."""

from __future__ import annotations

from typing import Any

from metadip.core.errors import InputError

TABLE_OF_KIND = {"denoising": 1, "cs": 2, "cs_fast": 2, "pr": 3, "pr_fast": 3}


def applies(method: dict[str, Any], task: dict[str, Any]) -> bool:
    """Whether a method (config entry) runs on a task: plain denoisers on denoising only, PnP on CS/PR only,
    a method with ``families`` on the task settings of those families only (denoising, cs, pr)."""
    if "families" in method and task["kind"].split("_")[0] not in method["families"]:
        return False
    if method["kind"] == "denoiser":
        return task["kind"] == "denoising"
    if method["kind"] == "pnp":
        return task["kind"] != "denoising"
    return True


def shard_indices(n_images: int, shards: int, shard: int) -> list[int]:
    """Image indices of shard ``shard`` of ``shards``: contiguous, sizes differing by at most one,
    empty shards only when there are more shards than images."""
    if not 0 <= shard < shards:
        raise InputError(
            f"--shard {shard}: out of range for {shards} shards (evaluate.shards); give one in [0, {shards})"
        )
    base, extra = divmod(n_images, shards)
    start = shard * base + min(shard, extra)
    return list(range(start, start + base + (shard < extra)))


def report_steps(method: dict[str, Any]) -> list[int]:
    """The steps (ascending) at which one run of a ``dip`` evaluation method is read: its
    ``report_at``, or only its last step."""
    return sorted(set(method.get("report_at") or [method["steps"]]))


def dip_method_id(name: str, steps: int) -> str:
    """The result-row id of ``dip`` method ``name`` read after ``steps`` steps."""
    return f"{name}_{steps}"


def stop_method_id(name: str) -> str:
    """The result-row id of ``dip`` method ``name`` read at the step chosen on validation crops."""
    return f"{name}_val"


def stops_on_val(method: dict[str, Any]) -> bool:
    """Whether an evaluation method is a ``dip`` method that also reports a row stopped on validation crops."""
    return method["kind"] == "dip" and bool(method.get("stop_on_val"))


def method_ids(methods: dict[str, Any]) -> set[str]:
    """The method ids of the result rows: a name, or one id per reported step of a dip method (and
    its row stopped on validation crops, with ``stop_on_val``)."""
    ids = set()
    for name, m in methods.items():
        if m["kind"] == "dip":
            ids.update(dip_method_id(name, k) for k in report_steps(m))
            ids.update([stop_method_id(name)] if stops_on_val(m) else [])
        else:
            ids.add(name)
    return ids


def method_images(evaluate: dict[str, Any], name: str) -> int:
    """How many of the evaluation set's images method ``name`` of ``evaluate.methods`` runs on: its
    own ``images`` (the first N of the interleaved set), else ``evaluate.images``."""
    return int(evaluate["methods"][name].get("images") or evaluate["images"])


def image_caps(methods: dict[str, Any]) -> dict[str, int]:
    """Method id → N for every result-row id of a method run on the first N images only (its
    ``images``); methods run on all of ``evaluate.images`` are absent."""
    return {i: m["images"] for name, m in methods.items() if "images" in m for i in method_ids({name: m})}


def claimed_ids(claims: dict[str, Any]) -> list[tuple[str, str]]:
    """(key under ``claims``, method id) of every result-row id the claims read."""
    roles = ("method", "long", "long_stopped", "short", "control", "control_same_loop")
    named = [(k, claims[k]) for k in roles if claims[k] is not None]
    named += [("rivals", r) for r in claims["rivals"]]
    named += [(f"transfer.{family}", m) for family, m in claims["transfer"].items()]
    named += [(f"replicates.{m}", r) for m, reps in claims["replicates"].items() for r in (m, *reps)]
    return named


def evaluation_jobs(config: dict[str, Any]) -> list[dict[str, Any]]:
    """Every (task, dataset, method, shard) job of the evaluation, in config order."""
    ev = config["evaluate"]
    datasets = list(dict.fromkeys(ev["roles"][r] for r in ("faces", "natural")))
    return [
        {"task": t, "dataset": d, "method": m, "shard": s}
        for t, task in ev["tasks"].items()
        for d in datasets
        for m, method in ev["methods"].items()
        if applies(method, task)
        for s in range(min(ev["shards"], method_images(ev, m)))
    ]


def stop_jobs(config: dict[str, Any]) -> list[dict[str, str]]:
    """Every (task, dataset, method) whose dip method chooses its stop step on validation crops
    (``stop_on_val``), in config order: one ``dip_stop`` job each."""
    methods = config["evaluate"]["methods"]
    keys = (
        (j["task"], j["dataset"], j["method"]) for j in evaluation_jobs(config) if stops_on_val(methods[j["method"]])
    )
    return [{"task": t, "dataset": d, "method": m} for t, d, m in dict.fromkeys(keys)]


def stop_dataset(config: dict[str, Any], method: str, dataset: str) -> str:
    """The curated dataset whose val split chooses the stop step of dip ``method`` on the class that
    ``dataset`` plays: ``stop_on_val.datasets`` of that class (faces / natural), else ``dataset``."""
    chosen = config["evaluate"]["methods"][method]["stop_on_val"]["datasets"]
    roles = [r for r, d in config["evaluate"]["roles"].items() if d == dataset]
    named = {chosen.get(r, dataset) for r in roles} or {dataset}
    key = f"evaluate.methods.{method}.stop_on_val.datasets"
    if len(named) > 1:
        raise InputError(
            f"{key}: classes {' and '.join(roles)} are both '{dataset}' but name {sorted(named)}; name one"
        )
    (val,) = named
    if val not in config["curate"]["datasets"]:
        raise InputError(f"{key}: no dataset '{val}' under curate.datasets; name a curated dataset with a val split")
    return val


def claim_jobs(config: dict[str, Any]) -> list[dict[str, Any]]:
    """The evaluation jobs whose rows the claims read (none when ``claims.enabled`` is false): the
    claims' verdict needs these shards only, not the baselines'."""
    if not config["claims"]["enabled"]:
        return []
    ids = {name for _, name in claimed_ids(config["claims"])}
    methods = config["evaluate"]["methods"]
    needed = {m for m, spec in methods.items() if method_ids({m: spec}) & ids}
    return [job for job in evaluation_jobs(config) if job["method"] in needed]


def tasks_of(config: dict[str, Any], table: int) -> list[str]:
    """Names of the config's tasks whose rows go to ``table``, in config order."""
    return [t for t, spec in config["evaluate"]["tasks"].items() if TABLE_OF_KIND[spec["kind"]] == table]


def pnp_grid_key(kind: str, denoiser: str) -> str:
    """Key under baselines.pnp.grid for a CS/PR task kind and a denoiser, e.g. ("cs_fast", "bm3d") -> "cs_bm3d"."""
    return f"{kind.split('_')[0]}_{denoiser}"


def tables_of(config: dict[str, Any]) -> list[int]:
    """Table numbers the config's tasks fill (1 denoising, 2 CS, 3 PR)."""
    return sorted({TABLE_OF_KIND[t["kind"]] for t in config["evaluate"]["tasks"].values()})
