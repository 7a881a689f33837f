"""The paper's claims checked on an evaluation run: per task setting and image class, a paired
difference with its 95% cluster-bootstrap interval (:mod:`metadip.reporting.stats`) and a tri-state verdict.

A check **holds** when its whole interval lies at or above its bound, **fails** when the whole
interval lies below it, and is **inconclusive** otherwise: the interval straddles the bound, there
are fewer than two source photographs (no interval), or a method or measurement is missing.

Claims (thresholds in the config's ``claims`` section):

1-quality  method − long (DIP(1000), EMA) ≥ bound; with ``quality_bound: paper`` the bound is
           min(paper gap, 0) − within_db, the paper gap being its own method − long for that
           (table, setting, class) (:data:`metadip.reporting.paper.PAPER_PSNR`), −within_db where it has none.
1-speed    per image, ref_steps·ref_step_seconds / (steps·step_seconds) (the long run's Adam step
           and the method's inner step, timed interleaved in one process) — geometric mean ≥ min_speedup.
2          method − short (DIP(50)), against the stronger (higher mean) of its EMA and last iterate.
2-control  method − control (a random init run through the same learned inner loop) ≥ control_margin_db.
3          method − each rival ≥ rival_margin_db.
4          transfer: method − control ≥ transfer_margin_db wherever the task family or the image
           class differs from the method's meta-training (its outer tasks, meta.train_dataset).

With ``replicates`` (method id → ids of its other meta-training seeds) a method's PSNR is averaged
over its seeds per image before differences are taken. Input: the evaluation rows; torch-free.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from metadip.core.errors import InputError
from metadip.pipeline.plan import TABLE_OF_KIND, method_ids
from metadip.reporting.paper import PAPER_PSNR
from metadip.reporting.settings import ClaimSettings, ReportSettings
from metadip.reporting.stats import (
    LEVEL,
    RESAMPLES,
    SEED,
    Key,
    Observation,
    Summary,
    average,
    by_image,
    geometric_summary,
    join,
    paired_difference,
    photo_differences,
    photo_of,
)
from metadip.reporting.tables import ROLES, setting_label, setting_value

VERDICTS = ("holds", "fails", "inconclusive")
MARKS = {"holds": "✓", "fails": "✗", "inconclusive": "?"}
SPEED_FIELDS = ("step_seconds", "ref_step_seconds", "ref_steps")

CLAIMS = {
    "1-quality": "{method} within {within_db:g} dB of {long}{rule}",
    "1-speed": "{long} at least {min_speedup:g}x {method}'s time per image (step times measured interleaved)",
    "2": "{method} beats {short} (stronger of EMA and last iterate) by at least {short_margin_db:g} dB",
    "2-control": "{method} beats {control} (random init, same learned inner loop) by at least "
    "{control_margin_db:g} dB: the meta-init, not the inner optimiser, makes its steps enough",
    "3": "{method} beats {rival} by at least {rival_margin_db:g} dB",
    "4": "transfer: {method} beats {control} by at least {transfer_margin_db:g} dB where task or class differ "
    "from meta-training",
}
PAPER_RULE = " (bound per setting: min(the paper's gap, 0) − {within_db:g} dB)"

Values = dict[tuple[str, str, int], Observation]
Sourced = tuple[Values | None, str | None]  # per-image values, or None and the reason they are missing
Measured = tuple[Summary | None, str | None]  # a summary, or None and the reason it is missing
Versus = Callable[..., tuple[Measured, dict[str, Any]]]  # (other method, field) → method − other, extra fields


def verdict(s: Summary | None, bound: float, missing: str | None = None) -> tuple[str, str | None]:
    """(verdict, why it is inconclusive or None) of a summary against the least value that holds."""
    if s is None:
        return "inconclusive", missing
    if s.ci_low is None or s.ci_high is None:
        return "inconclusive", f"fewer than 2 photographs ({s.n_photos}): no interval"
    if s.ci_low >= bound:
        return "holds", None
    if s.ci_high < bound:
        return "fails", None
    return "inconclusive", "95% interval straddles the bound"


def _check(
    claim: str, text: str, versus: str, where: dict[str, Any], measured: Measured, bound: float, **extra: Any
) -> dict[str, Any]:
    s, missing = measured
    v, reason = verdict(s, bound, missing)
    numbers = (
        s.rounded() if s is not None else {"mean": None, "ci_low": None, "ci_high": None, "n_images": 0, "n_photos": 0}
    )
    return {
        "claim": claim,
        "text": text,
        "versus": versus,
        **where,
        **numbers,
        "bound": round(bound, 3),
        "verdict": v,
        "reason": reason,
        **extra,
    }


def _values(
    by_method: dict[str, list[dict[str, Any]]],
    method: str,
    replicates: Mapping[str, tuple[str, ...]],
    field: str = "psnr",
) -> Sourced:
    """Per-image ``field`` of ``method``, averaged over it and its replicates; (None, reason) when rows are missing."""
    ids = [method, *replicates.get(method, [])]
    missing = [i for i in ids if i not in by_method]
    if missing:
        return None, f"no rows of {', '.join(missing)}"
    return average([by_image(by_method[i], field) for i in ids], what=f"{method} and its replicates"), None


def first_images(values: dict[Key, Observation], n: int | None) -> dict[Key, Observation]:
    """``values`` of the first ``n`` images of the evaluation set (image index < n; all when None):
    what a method that ran on fewer images (``evaluate.methods.<m>.images``) pairs with."""
    return values if n is None else {k: o for k, o in values.items() if k[2] < n}


def _difference(a: Sourced, b: Sourced, n: int | None, what: str) -> tuple[Measured, dict[str, Any]]:
    """The paired difference a − b over the first ``n`` images (those both methods ran on), or
    (None, reason) when either side is missing, and the extra field ``by_photo`` (its mean per source
    photograph, lowest first; empty when missing); ``what`` names the two methods in the error
    raised when their rows do not pair up."""
    if a[0] is None or b[0] is None:
        return (None, a[1] or b[1]), {"by_photo": []}
    a_n, b_n = first_images(a[0], n), first_images(b[0], n)
    s = paired_difference(a_n, b_n, RESAMPLES, SEED, what)
    return (s, None), {"by_photo": photo_differences(a_n, b_n, what)}


def _speed(rows: list[dict[str, Any]]) -> Measured:
    """Geometric-mean speed ratio over the method's rows (module doc), or (None, reason)."""
    if not rows:
        return None, "no rows of the method"
    if not all(
        isinstance(r.get(f), (int, float)) and np.isfinite(r[f]) and r[f] > 0 for r in rows for f in SPEED_FIELDS
    ):
        return None, "no interleaved step timings (step_seconds, ref_step_seconds, ref_steps) in the rows"
    ratios = [r["ref_steps"] * r["ref_step_seconds"] / (r["steps"] * r["step_seconds"]) for r in rows]
    return geometric_summary(ratios, [photo_of(r) for r in rows], RESAMPLES, SEED), None


def quality_bound(c: ClaimSettings, table: int, setting: float, role: str) -> tuple[float, float | None]:
    """(bound, the paper's gap or None) of claim 1-quality in one setting (module doc)."""
    me, long = (PAPER_PSNR.get((table, m, setting, role)) for m in (c.method, c.long))
    if c.quality_bound != "paper" or me is None or long is None:
        return -c.within_db, None
    gap = round(me - long, 3)
    return min(gap, 0.0) - c.within_db, gap


def transfer_settings(settings: ReportSettings) -> set[tuple[str, str]]:
    """(task, dataset) pairs whose task family (table) or image class differs from the claims
    method's meta-training (its meta.methods outer tasks and meta.train_dataset)."""
    return {
        (t, d)
        for t, spec in settings.tasks.items()
        for d in settings.roles.values()
        if TABLE_OF_KIND[spec["kind"]] not in settings.trained_tables or d != settings.train_dataset
    }


def seed_spread(by_method: dict[str, list[dict[str, Any]]], c: ClaimSettings, n: int | None) -> dict[str, Any]:
    """With replicates of the method: per meta-training seed, its mean paired difference to the long
    run (dB) over the first ``n`` images, and the std of those means across seeds; {} otherwise."""
    seeds = [c.method, *c.replicates.get(c.method, ())]
    if len(seeds) < 2 or any(s not in by_method for s in [*seeds, c.long]):
        return {}
    long = first_images(by_image(by_method[c.long]), n)
    means = {}
    for s in seeds:
        mine = first_images(by_image(by_method[s]), n)
        means[s] = float(np.mean([mine[k].value - long[k].value for k in join(mine, long, f"{s} and {c.long}")]))
    return {
        "seed_means": {s: round(m, 3) for s, m in means.items()},
        "seed_std": round(float(np.std(list(means.values()), ddof=1)), 3),
    }


def _setting_checks(
    by_method: dict[str, list[dict[str, Any]]],
    settings: ReportSettings,
    table: int,
    task: str,
    role: str,
    transfer: bool,
) -> list[dict[str, Any]]:
    """Every check of one (task, class) setting; ``by_method`` holds that setting's rows per method id."""
    c = settings.claims
    where = {"task": task, "role": role, "dataset": settings.roles[role]}
    fmt = {**c.text_fields(), "rule": PAPER_RULE.format(**c.text_fields()) if c.quality_bound == "paper" else ""}
    me = _values(by_method, c.method, c.replicates)

    def versus(other: str, field: str = "psnr") -> tuple[Measured, dict[str, Any]]:
        """The method − ``other``, paired on the images both ran on."""
        n = settings.paired_images(c.method, other)
        what = f"{task} {settings.roles[role]}: {c.method} vs {other}"
        return _difference(me, _values(by_method, other, c.replicates, field), n, what)

    bound, gap = quality_bound(c, table, setting_value(settings.tasks[task]), role)
    quality, photos = versus(c.long)
    spread = seed_spread(by_method, c, settings.paired_images(c.method, c.long))
    mine = by_method.get(c.method, [])
    checks = [
        _check(
            "1-quality",
            CLAIMS["1-quality"].format(**fmt),
            c.long,
            where,
            quality,
            bound,
            paper_gap=gap,
            **spread,
            **photos,
        ),
        _check(
            "1-speed",
            CLAIMS["1-speed"].format(**fmt),
            c.long,
            where,
            _speed(mine),
            c.min_speedup,
            ref_method=next((r.get("ref_method") for r in mine), None),
        ),
    ]
    return checks + _margin_checks(c, versus, _stronger_field(by_method.get(c.short, [])), fmt, where, transfer)


def _stronger_field(rows: list[dict[str, Any]]) -> str:
    """The field of ``rows`` with the higher mean PSNR: ``psnr_last`` (last iterate) or ``psnr`` (EMA)."""
    if rows and np.mean([r["psnr_last"] for r in rows]) > np.mean([r["psnr"] for r in rows]):
        return "psnr_last"
    return "psnr"


def _margin_checks(
    c: ClaimSettings,
    versus: Versus,
    short_field: str,
    fmt: dict[str, Any],
    where: dict[str, Any],
    transfer: bool,
) -> list[dict[str, Any]]:
    """Claims 2, 2-control, 3 and (in a transfer setting) 4 of one setting: the method's margin over
    short, control and each rival; ``versus`` measures the method − another method."""
    versus_short, photos = versus(c.short, short_field)
    checks = [
        _check(
            "2",
            CLAIMS["2"].format(**fmt),
            c.short,
            where,
            versus_short,
            c.short_margin_db,
            short_field=short_field,
            **photos,
        )
    ]
    if c.control is not None:
        control, control_photos = versus(c.control)
        checks.append(
            _check(
                "2-control",
                CLAIMS["2-control"].format(**fmt),
                c.control,
                where,
                control,
                c.control_margin_db,
                **control_photos,
            )
        )
    for rival in c.rivals:
        versus_rival, photos = versus(rival)
        checks.append(
            _check("3", CLAIMS["3"].format(rival=rival, **fmt), rival, where, versus_rival, c.rival_margin_db, **photos)
        )
    if c.control is not None and transfer:
        checks.append(
            _check("4", CLAIMS["4"].format(**fmt), c.control, where, control, c.transfer_margin_db, **control_photos)
        )
    return checks


def _summary(checks: list[dict[str, Any]]) -> dict[str, Any]:
    """One claim text's verdict over its settings: counts and settings per verdict; it fails when a
    setting fails, holds when every setting holds, and is inconclusive otherwise."""
    where = {v: [f"{ch['task']} {ch['role']}" for ch in checks if ch["verdict"] == v] for v in VERDICTS}
    overall = "fails" if where["fails"] else "holds" if len(where["holds"]) == len(checks) else "inconclusive"
    return {
        "claim": checks[0]["claim"],
        "text": checks[0]["text"],
        "verdict": overall,
        "settings": len(checks),
        "counts": {v: len(where[v]) for v in VERDICTS},
        "where": where,
    }


def _by_setting(rows: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, list[dict[str, Any]]]]:
    """(task, dataset) → method id → its rows (a missing setting or method reads as empty)."""
    groups: dict[tuple[str, str], dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        groups[(r["task"], r["dataset"])][r["method"]].append(r)
    return groups


def _result(checks: list[dict[str, Any]]) -> dict[str, Any]:
    """The verdict document of a list of checks: one summary per claim text, the bootstrap's settings."""
    verdicts = [
        _summary([ch for ch in checks if ch["text"] == text]) for text in dict.fromkeys(ch["text"] for ch in checks)
    ]
    return {
        "all_hold": all(ch["verdict"] == "holds" for ch in checks),
        "bootstrap": {
            "resamples": RESAMPLES,
            "seed": SEED,
            "level": LEVEL,
            "cluster": "source photograph (dataset, source_file)",
        },
        "verdicts": verdicts,
        "checks": checks,
    }


def check_claims(rows: list[dict[str, Any]], settings: ReportSettings) -> dict[str, Any]:
    """Every claim in every (task, class) setting of the config, from the evaluation ``rows``.

    Each check carries the method compared with (``versus``), the mean (dB; a ratio for 1-speed),
    its 95% interval, n images / photos, the bound (the least value that holds) and the verdict
    with the reason when inconclusive.
    """
    roles = settings.roles
    groups = _by_setting(rows)
    transfer = transfer_settings(settings)
    checks = [
        ch
        for table in (1, 2, 3)
        for task in settings.tasks_of(table)
        for role in ROLES
        for ch in _setting_checks(
            groups[(task, roles[role])], settings, table, task, role, (task, roles[role]) in transfer
        )
    ]
    return _result(checks)


def check_comparisons(
    rows: list[dict[str, Any]], settings: ReportSettings, pairs: list[tuple[str, str, float]], tasks: list[str]
) -> dict[str, Any]:
    """Checks beyond the paper, read like the claims: for each (method, versus, bound) of ``pairs``,
    method − versus (paired per image, replicates averaged as in the claims) ≥ bound dB in every
    class of each of ``tasks``. The same structure as :func:`check_claims`; the claim id is
    'method − versus'."""
    ids = method_ids(dict(settings.methods))
    unknown = sorted({m for p in pairs for m in p[:2]} - ids)
    if unknown:
        raise InputError(f"no method {', '.join(unknown)} among the evaluated ids ({', '.join(sorted(ids))}); name one")
    missing = sorted(set(tasks) - set(settings.tasks))
    if missing:
        raise InputError(f"unknown task setting(s) {missing}: use names of evaluate.tasks")
    groups = _by_setting(rows)
    reps = settings.claims.replicates
    checks = []
    for method, other, bound in pairs:
        text = (
            f"{method} at least {bound:g} dB above {other}"
            if bound >= 0
            else f"{method} within {-bound:g} dB of {other}"
        )
        for task in tasks:
            for role in ROLES:
                by_method = groups[(task, settings.roles[role])]
                where = {"task": task, "role": role, "dataset": settings.roles[role]}
                measured, photos = _difference(
                    _values(by_method, method, reps),
                    _values(by_method, other, reps),
                    settings.paired_images(method, other),
                    f"{task} {settings.roles[role]}: {method} vs {other}",
                )
                checks.append(_check(f"{method} − {other}", text, other, where, measured, bound, **photos))
    return _result(checks)


def headline(rows: list[dict[str, Any]], settings: ReportSettings) -> dict[str, Any]:
    """What a person reads first (results/summary.json): per task and dataset, the mean PSNR (dB) of
    ``claims.method`` and ``claims.long`` (seed-averaged with ``claims.replicates``) and their paired
    gap with its 95% interval, over the images both ran on (``images``, ``photos``), and the speed-up
    (1-speed's ratio, over all of the method's images); a setting without rows of either method is
    left out."""
    c = settings.claims
    method, long = c.method, c.long
    n = settings.paired_images(method, long)
    groups = _by_setting(rows)
    out: dict[str, Any] = {}
    for (task, dataset), by_method in sorted(groups.items()):
        a, b = _values(by_method, method, c.replicates), _values(by_method, long, c.replicates)
        if a[0] is None or b[0] is None:
            continue
        a_n, b_n = first_images(a[0], n), first_images(b[0], n)  # the images both ran on
        gap = paired_difference(a_n, b_n, RESAMPLES, SEED, f"{task} {dataset}: {method} vs {long}")
        speed, _ = _speed(by_method[method])
        out.setdefault(task, {})[dataset] = {
            f"{method}_db": round(float(np.mean([o.value for o in a_n.values()])), 3),
            f"{long}_db": round(float(np.mean([o.value for o in b_n.values()])), 3),
            "gap_db": round(gap.mean, 3),
            "gap_ci_low_db": None if gap.ci_low is None else round(gap.ci_low, 3),
            "gap_ci_high_db": None if gap.ci_high is None else round(gap.ci_high, 3),
            "speedup": None if speed is None else round(speed.mean, 2),
            "images": gap.n_images,
            "photos": gap.n_photos,
        }
    return out


def _setting_name(task: Mapping[str, Any]) -> str:
    """'den σ=15', 'CS m/n=1/4', 'PR m/n=1/8'."""
    kind = "den" if task["kind"] == "denoising" else task["kind"].split("_")[0].upper()
    return f"{kind} {setting_label(task)}"


def _value(ch: dict[str, Any]) -> str:
    """'-1.23 [-1.9, -0.6] ✗' (a speed ratio: '12.3x [9.8, 15.1] ✓'), '—' when the value is missing."""
    if ch["mean"] is None:
        return "— ?"
    unit = "x" if ch["claim"] == "1-speed" else ""
    ci = "[no CI]" if ch["ci_low"] is None else f"[{ch['ci_low']:.1f}, {ch['ci_high']:.1f}]"
    return f"{ch['mean']:.2f}{unit} {ci} {MARKS[ch['verdict']]}"


def claims_markdown(result: dict[str, Any], tasks: Mapping[str, Mapping[str, Any]], paper: bool = True) -> str:
    """The verdict table (claim, verdict, counts), the per-setting intervals with n images / photos
    and bounds, and every failing or inconclusive check with its reason and its mean per photograph;
    ``tasks``: task name → its setting; ``paper``: the paper's claims (else :func:`check_comparisons`)."""
    name = {(t, r): f"{_setting_name(tasks[t])} {r}" for t, r in ((ch["task"], ch["role"]) for ch in result["checks"])}
    lines = [
        "| claim | verdict | holds | fails | inconclusive | settings that fail / are inconclusive |",
        "|---|---|---|---|---|---|",
    ]
    for v in result["verdicts"]:
        bad = "; ".join(f"{w} {', '.join(v['where'][w])}" for w in ("fails", "inconclusive") if v["where"][w]) or "—"
        lines.append(
            f"| {v['claim']}: {v['text']} | **{v['verdict']}** | {v['counts']['holds']}/{v['settings']} | "
            f"{v['counts']['fails']} | {v['counts']['inconclusive']} | {bad} |"
        )
    columns = list(name)
    cell = {(ch["text"], ch["task"], ch["role"]): ch for ch in result["checks"]}
    lines += ["", "| claim | " + " | ".join(name[c] for c in columns) + " |", "|---|" + "---|" * len(columns)]
    for text in dict.fromkeys(ch["text"] for ch in result["checks"]):
        mine = [cell.get((text, *c)) for c in columns]
        first = next(ch for ch in mine if ch is not None)
        claim = first["claim"]
        lines.append(
            f"| {claim} vs {first['versus']} | " + " | ".join("·" if ch is None else _value(ch) for ch in mine) + " |"
        )
        if len({ch["bound"] for ch in mine if ch is not None}) > 1:
            lines.append(
                f"| ↳ {claim} bound | " + " | ".join("·" if ch is None else f"≥ {ch['bound']:g}" for ch in mine) + " |"
            )
    n = [
        {
            (ch["n_images"], ch["n_photos"])
            for ch in result["checks"]
            if (ch["task"], ch["role"]) == c and ch["mean"] is not None
        }
        for c in columns
    ]
    lines.append(
        "| n images / photos | " + " | ".join(" or ".join(f"{i}/{p}" for i, p in sorted(s)) or "—" for s in n) + " |"
    )
    b = result["bootstrap"]
    lines += [
        "",
        (
            f"Cells: mean paired difference in dB{' (1-speed: geometric-mean ratio)' * paper} and its "
            f"{b['level']:.0%} interval, resampling whole source photographs ({b['resamples']} resamples, seed "
            f"{b['seed']}); ✓ holds (interval at or above the bound), ✗ fails (interval below it), ? inconclusive"
            + ("; · not checked (claim 4: settings of meta-training)." if paper else ".")
        ),
    ]
    for verdict_, title in (("fails", "Fails"), ("inconclusive", "Inconclusive")):
        bad = [ch for ch in result["checks"] if ch["verdict"] == verdict_]
        if bad:
            lines += ["", f"{title}:"]
            for ch in bad:
                said = [ch["reason"]] if ch["reason"] else []
                said += [f"by photograph (mean, images): {_photos(ch['by_photo'])}"] if ch.get("by_photo") else []
                lines.append(f"- {ch['claim']} at {name[(ch['task'], ch['role'])]}: {'; '.join(said)}")
    return "\n".join(lines) + "\n"


def _photos(by_photo: list[dict[str, Any]]) -> str:
    """'grass.png -0.08 (3), gravel.png +0.12 (2)' (dB, images): a check's means per photograph."""
    return ", ".join(f"{str(r['photo']).rsplit('/', 1)[-1]} {r['mean']:+.2f} ({r['n_images']})" for r in by_photo)
