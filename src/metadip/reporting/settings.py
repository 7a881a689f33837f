"""Typed settings of the reporting layer, parsed once from the validated config.

:func:`report_settings` reads what the tables, figures and claims use — the task settings, which
dataset plays each image class, the methods' kinds and labels, the claims' thresholds — so that
every reporting function's signature says what it uses and none reaches back into the config.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from metadip.pipeline.plan import TABLE_OF_KIND, image_caps


@dataclass(frozen=True)
class ClaimSettings:
    """The config's ``claims`` section: which method plays each role of the protocol's checks
    (:mod:`metadip.reporting.protocol`); ids are result-row ids."""

    enabled: bool
    method: str
    long: str
    long_stopped: str | None
    short: str
    control: str | None
    control_same_loop: str | None
    rivals: tuple[str, ...]
    transfer: Mapping[str, str]  # task family ("cs", "pr") → the recipe meta-trained on its physics
    replicates: Mapping[str, tuple[str, ...]]  # method id → ids of its other meta-training seeds
    confirmatory: bool  # a confirmatory read of a fresh test split (recorded in the ledger)

    def role(self, name: str, family: str) -> tuple[str, ...]:
        """The method ids playing role ``name`` of the protocol in a task ``family`` ("den", "cs",
        "pr"): none when the role is unset (null, or no transfer init for the family)."""
        if name == "rivals":
            return self.rivals
        if name == "transfer":
            return (self.transfer[family],) if family in self.transfer else ()
        one = getattr(self, name)
        return () if one is None else (one,)


@dataclass(frozen=True)
class ReportSettings:
    """What a run's report is built from, besides its result rows."""

    seed: int
    image_size: int  # px, square crops
    train_dataset: str  # the meta-training class (meta.train_dataset)
    split: str  # the evaluated split
    qualitative_images: int  # images per dataset in Figures 3-5
    roles: Mapping[str, str]  # the paper's class ("faces", "natural") → dataset playing it
    tasks: Mapping[str, Mapping[str, Any]]  # task name → its setting (kind, sigma, ratio, ...), config order
    methods: Mapping[str, Mapping[str, Any]]  # method name → kind, label, ... (evaluate.methods), config order
    claims: ClaimSettings
    trained_tables: frozenset[int]  # tables (task families) the claims method's init was meta-trained on
    images: Mapping[str, int]  # method id → N, run on the first N images only (plan.image_caps)

    def tasks_of(self, table: int) -> list[str]:
        """Names of the tasks whose rows go to ``table`` (1 denoising, 2 CS, 3 PR), in config order."""
        return [t for t, spec in self.tasks.items() if TABLE_OF_KIND[spec["kind"]] == table]

    def paired_images(self, a: str, b: str) -> int | None:
        """The first N images of the evaluation set that method ids ``a`` and ``b`` both ran on, when
        either ran on fewer than all; None when both ran on all."""
        capped = [self.images[m] for m in (a, b) if m in self.images]
        return min(capped) if capped else None

    def kind_of(self, method: str) -> str:
        """The kind (denoiser, pnp, dip, meta) of a method name of ``evaluate.methods``."""
        return self.methods[method]["kind"]


def report_settings(config: dict[str, Any]) -> ReportSettings:
    """The reporting settings of a validated pipeline config."""
    ev, meta, c = config["evaluate"], config["meta"], config["claims"]
    claims = ClaimSettings(
        enabled=bool(c["enabled"]),
        method=c["method"],
        long=c["long"],
        long_stopped=c["long_stopped"],
        short=c["short"],
        control=c["control"],
        control_same_loop=c["control_same_loop"],
        rivals=tuple(c["rivals"]),
        transfer=dict(c["transfer"]),
        replicates={m: tuple(ids) for m, ids in c["replicates"].items()},
        confirmatory=bool(c["confirmatory"]),
    )
    init = ev["methods"].get(claims.method, {}).get("init")
    outer = meta["methods"].get(init, {}).get("outer", {}).get("tasks", [])
    return ReportSettings(
        seed=int(config["seed"]),
        image_size=int(meta["image_size"]),
        train_dataset=meta["train_dataset"],
        split=ev["split"],
        qualitative_images=int(ev["qualitative_images"]),
        roles=dict(ev["roles"]),
        tasks={name: dict(spec) for name, spec in ev["tasks"].items()},
        methods={name: dict(m) for name, m in ev["methods"].items()},
        claims=claims,
        trained_tables=frozenset(TABLE_OF_KIND[t["kind"]] for t in outer),
        images=image_caps(ev["methods"]),
    )
