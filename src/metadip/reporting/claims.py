"""The paper's claims checked on an evaluation run, as the protocol file says
(:mod:`metadip.reporting.protocol`, ``config/protocol.yaml``): per task setting and image class, a
paired per-image difference of the claims method and the method of the check's role, its interval over
source photographs (:mod:`metadip.reporting.stats`) and a verdict.

A check **holds** when its whole interval lies at or above its bound, **fails** when the whole interval
lies below it, is **inconclusive** when the interval straddles the bound or a method or measurement is
missing, and is **underpowered** when it rests on fewer source photographs than the protocol's
``min_photos`` (the interval is still reported). A claim's summary over settings fails when a setting
fails, holds when every setting holds, is underpowered when every setting that does not hold is, and is
inconclusive otherwise. Only ``primary`` readings are the claims' verdicts; ``secondary`` readings are
reported beside them.

With ``replicates`` (method id → ids of its other meta-training seeds) a method's PSNR is averaged over
its seeds per image before differences are taken. Input: the evaluation rows; torch-free.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

import numpy as np

from metadip.core.errors import InputError
from metadip.pipeline.plan import TABLE_OF_KIND, method_ids
from metadip.reporting.paper import PAPER_PSNR
from metadip.reporting.protocol import Check, Protocol
from metadip.reporting.settings import ClaimSettings, ReportSettings
from metadip.reporting.stats import (
    INFERENCE,
    LEVEL,
    Key,
    Observation,
    Summary,
    average,
    by_image,
    geometric_summary,
    join,
    paired_difference,
    photo_differences,
)
from metadip.reporting.tables import ROLES, setting_label, setting_value
from metadip.reporting.time_to_quality import image_speedups

VERDICTS = ("holds", "fails", "inconclusive", "underpowered")
MARKS = {"holds": "✓", "fails": "✗", "inconclusive": "?", "underpowered": "○"}
FAMILY = {1: "den", 2: "cs", 3: "pr"}  # task family of each table
SPEED_FIELDS = ("step_seconds", "ref_step_seconds", "ref_method")

Values = dict[tuple[str, str, int], Observation]
Sourced = tuple[Values | None, str | None]  # per-image values, or None and the reason they are missing
Measured = tuple[Summary | None, str | None]  # a summary, or None and the reason it is missing


def verdict(s: Summary | None, bound: float, min_photos: int, missing: str | None = None) -> tuple[str, str | None]:
    """(verdict, why it does not hold or fail, or None) of a summary against the least value that holds."""
    if s is None:
        return "inconclusive", missing
    if s.n_photos < min_photos:
        return "underpowered", f"{_photographs(s.n_photos)}, fewer than the protocol's {min_photos}"
    if s.ci_low is None or s.ci_high is None:
        return "inconclusive", f"fewer than 2 photographs ({s.n_photos}): no interval"
    if s.ci_low >= bound:
        return "holds", None
    if s.ci_high < bound:
        return "fails", None
    return "inconclusive", f"{LEVEL:.0%} interval straddles the bound"


def _photographs(n: int) -> str:
    """'1 photograph', '4 photographs'."""
    return f"{n} photograph{'s' * (n != 1)}"


def _check(
    claim: str,
    text: str,
    versus: str,
    where: dict[str, Any],
    measured: Measured,
    bound: float | None,
    min_photos: int,
    **extra: Any,
) -> dict[str, Any]:
    """One check's record; ``bound`` None only with nothing measured (``measured`` carries the reason)."""
    s, missing = measured
    v, reason = verdict(s if bound is not None else None, 0.0 if bound is None else bound, min_photos, missing)
    numbers = (
        s.rounded() if s is not None else {"mean": None, "ci_low": None, "ci_high": None, "n_images": 0, "n_photos": 0}
    )
    return {
        "claim": claim,
        "text": text,
        "versus": versus,
        **where,
        **numbers,
        "bound": None if bound is None else round(bound, 3),
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
    s = paired_difference(a_n, b_n, what=what)
    return (s, None), {"by_photo": photo_differences(a_n, b_n, what)}


def time_to_quality(mine: list[dict[str, Any]], reference: list[dict[str, Any]], other: str) -> Measured:
    """The geometric-mean time-to-quality speed-up of the method's rows ``mine`` over the rows of
    ``other`` (:mod:`metadip.reporting.time_to_quality`) with its interval, or (None, reason)."""
    if not mine:
        return None, "no rows of the method"
    if not reference:
        return None, f"no rows of {other}"
    timed = [r.get(f) for r in mine for f in SPEED_FIELDS]
    if any(t is None for t in timed) or any(r["ref_method"] != other for r in mine):
        return None, f"the method's rows carry no step times measured interleaved with {other}'s (speed_reference)"
    speedups = image_speedups([*mine, *reference], meta=mine[0]["method"])
    return geometric_summary([s.speedup for s in speedups], [s.photo for s in speedups]), None


def paper_gap_bound(
    check: Check, settings: ReportSettings, table: int, setting: float, role: str
) -> tuple[float, float] | None:
    """(bound, the paper's gap) of a ``paper_gap`` check in one setting: min(gap, 0) − slack; None
    where the paper has no number for the claims' method or long run there. The paper meta-trains on
    faces: the class meta-training draws from here reads its faces column, the other class its
    natural column."""
    c = settings.claims
    column = "faces" if settings.roles[role] == settings.train_dataset else "natural"
    me, long = (PAPER_PSNR.get((table, m, setting, column)) for m in (c.method, c.long))
    if me is None or long is None:
        return None
    gap = round(me - long, 3)
    return min(gap, 0.0) - check.slack_db, gap


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


def _stronger_field(rows: list[dict[str, Any]]) -> str:
    """The field of ``rows`` with the higher mean PSNR: ``psnr_last`` (last iterate) or ``psnr`` (EMA)."""
    if rows and np.mean([r["psnr_last"] for r in rows]) > np.mean([r["psnr"] for r in rows]):
        return "psnr_last"
    return "psnr"


def _measure(
    check: Check, by_method: dict[str, list[dict[str, Any]]], settings: ReportSettings, other: str, what: str
) -> tuple[Measured, dict[str, Any]]:
    """The check's statistic of the claims method against ``other`` in one setting, and its extra fields."""
    c = settings.claims
    if check.statistic == "time_to_quality":
        return time_to_quality(by_method.get(c.method, []), by_method.get(other, []), other), {}
    field = _stronger_field(by_method.get(other, [])) if check.statistic == "psnr_stronger" else "psnr"
    me = _values(by_method, c.method, c.replicates)
    n = settings.paired_images(c.method, other)
    measured, photos = _difference(me, _values(by_method, other, c.replicates, field), n, what)
    extra = {**photos, **({"versus_field": field} if check.statistic == "psnr_stronger" else {})}
    if check.versus == "long":
        extra.update(seed_spread(by_method, c, n))
    return measured, extra


def _role_ids(check: Check, c: ClaimSettings, family: str, transfer: bool) -> tuple[str, ...] | None:
    """The method ids a check compares with in a setting of task ``family``; None where it does not
    apply (claim 4 outside transfer settings or in denoising, the method's own family); () where its
    role is unset, which leaves a primary check inconclusive rather than unread."""
    if check.versus == "transfer" and (not transfer or family == "den"):
        return None
    ids = c.role(check.versus, family)
    return None if not ids and check.reading == "secondary" else ids


def _setting_checks(
    by_method: dict[str, list[dict[str, Any]]],
    settings: ReportSettings,
    protocol: Protocol,
    table: int,
    task: str,
    role: str,
) -> list[dict[str, Any]]:
    """Every protocol check of one (task, class) setting; ``by_method`` holds its rows per method id."""
    c = settings.claims
    where = {"task": task, "role": role, "dataset": settings.roles[role]}
    transfer = (task, settings.roles[role]) in transfer_settings(settings)
    out = []
    for check in protocol.checks:
        ids = _role_ids(check, c, FAMILY[table], transfer)
        if ids == ():
            key = f"transfer.{FAMILY[table]}" if check.versus == "transfer" else check.versus
            unset = ((None, f"no method plays claims.{key} in the config"), {})
            out.append(_record(check, c.method, "—", where, unset, None, protocol.min_photos))
        for other in ids or ():
            measured, extra = _measure(check, by_method, settings, other, f"{task} {settings.roles[role]}: vs {other}")
            bound: float | None = check.bound if isinstance(check.bound, float | int) else None
            if check.bound == "paper_gap":
                paper = paper_gap_bound(check, settings, table, setting_value(settings.tasks[task]), role)
                bound, extra["paper_gap"] = paper or (None, None)
                if paper is None:
                    measured = (None, f"the paper has no {c.method} and {c.long} numbers for this setting")
            out.append(_record(check, c.method, other, where, (measured, extra), bound, protocol.min_photos))
    return out


def _record(
    check: Check,
    method: str,
    other: str,
    where: dict[str, Any],
    measured: tuple[Measured, dict[str, Any]],
    bound: float | None,
    min_photos: int,
) -> dict[str, Any]:
    """One protocol check's record in one setting (:func:`_check` with its text, reading and statistic)."""
    value, extra = measured
    extra = {**extra, "reading": check.reading, "statistic": check.statistic}
    return _check(check.id, check.describe(method, other), other, where, value, bound, min_photos, **extra)


def claim_summary(checks: list[dict[str, Any]]) -> dict[str, Any]:
    """One claim text's verdict over its settings (module doc): counts and settings per verdict."""
    where = {v: [f"{ch['task']} {ch['role']}" for ch in checks if ch["verdict"] == v] for v in VERDICTS}
    n = len(checks)
    if where["fails"]:
        overall = "fails"
    elif len(where["holds"]) == n:
        overall = "holds"
    elif len(where["holds"]) + len(where["underpowered"]) == n:
        overall = "underpowered"
    else:
        overall = "inconclusive"
    return {
        "claim": checks[0]["claim"],
        "text": checks[0]["text"],
        "reading": checks[0].get("reading", "primary"),
        "verdict": overall,
        "settings": n,
        "counts": {v: len(where[v]) for v in VERDICTS},
        "where": where,
    }


def _by_setting(rows: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, list[dict[str, Any]]]]:
    """(task, dataset) → method id → its rows (a missing setting or method reads as empty)."""
    groups: dict[tuple[str, str], dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        groups[(r["task"], r["dataset"])][r["method"]].append(r)
    return groups


def _result(checks: list[dict[str, Any]], min_photos: int) -> dict[str, Any]:
    """The verdict document of a list of checks: one summary per claim text and the inference."""
    texts = dict.fromkeys(ch["text"] for ch in checks)
    verdicts = [claim_summary([ch for ch in checks if ch["text"] == text]) for text in texts]
    return {
        "all_hold": all(ch["verdict"] == "holds" for ch in checks if ch.get("reading", "primary") == "primary"),
        "inference": {
            "interval": INFERENCE,
            "level": LEVEL,
            "cluster": "source photograph (dataset, source_file)",
            "min_photos": min_photos,
        },
        "verdicts": verdicts,
        "checks": checks,
    }


def check_claims(rows: list[dict[str, Any]], settings: ReportSettings, protocol: Protocol) -> dict[str, Any]:
    """Every check of ``protocol`` in every (task, class) setting of the config, from the evaluation
    ``rows``. Each check carries the method compared with (``versus``), the mean (dB; a ratio for
    time to quality), its interval, n images / photos, the bound (the least value that holds), its
    reading and the verdict with the reason when it neither holds nor fails; the document records the
    protocol's path, SHA-256 and every check's source."""
    roles = settings.roles
    groups = _by_setting(rows)
    checks = [
        ch
        for table in (1, 2, 3)
        for task in settings.tasks_of(table)
        for role in ROLES
        for ch in _setting_checks(groups[(task, roles[role])], settings, protocol, table, task, role)
    ]
    result = _result(checks, protocol.min_photos)
    result["inference"]["level"] = protocol.level
    sources = {c.id: c.source for c in protocol.checks}
    for v in result["verdicts"]:
        v["source"] = sources[v["claim"]]
    return {"protocol": {"path": protocol.path, "sha256": protocol.sha256}, **result}


def check_comparisons(
    rows: list[dict[str, Any]],
    settings: ReportSettings,
    pairs: list[tuple[str, str, float]],
    tasks: list[str],
    min_photos: int = 2,
) -> dict[str, Any]:
    """Checks beyond the paper, read like the claims: for each (method, versus, bound) of ``pairs``,
    method − versus (paired per image, replicates averaged as in the claims) ≥ bound dB in every
    class of each of ``tasks``, underpowered on fewer than ``min_photos`` photographs. The same
    structure as :func:`check_claims` without the protocol; the claim id is 'method − versus'."""
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
                checks.append(_check(f"{method} − {other}", text, other, where, measured, bound, min_photos, **photos))
    return _result(checks, min_photos)


def headline(rows: list[dict[str, Any]], settings: ReportSettings) -> dict[str, Any]:
    """What a person reads first (results/summary.json): per task and dataset, the mean PSNR (dB) of
    ``claims.method`` and ``claims.long`` (seed-averaged with ``claims.replicates``) and their paired
    gap with its 95% interval, over the images both ran on (``images``, ``photos``), and the
    time-to-quality speed-up of the method over the long run; a setting without rows of either
    method is left out."""
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
        gap = paired_difference(a_n, b_n, what=f"{task} {dataset}: {method} vs {long}")
        speed, _ = time_to_quality(by_method[method], by_method[long], long)
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


def _measured(ch: dict[str, Any]) -> str:
    """'-1.23 [-1.9, -0.6]' (a speed ratio: '12.3x [9.8, 15.1]'), '—' when the value is missing."""
    if ch["mean"] is None:
        return "—"
    unit = "x" if ch.get("statistic") == "time_to_quality" else ""
    ci = "[no CI]" if ch["ci_low"] is None else f"[{ch['ci_low']:.1f}, {ch['ci_high']:.1f}]"
    return f"{ch['mean']:.2f}{unit} {ci}"


def _value(ch: dict[str, Any]) -> str:
    """:func:`_measured` with the verdict's mark: '-1.23 [-1.9, -0.6] ✗', '— ?'."""
    return f"{_measured(ch)} {MARKS[ch['verdict']]}"


def _bound(ch: dict[str, Any] | None) -> str:
    """'≥ -1.3' ('·' not checked, '—' no bound)."""
    if ch is None:
        return "·"
    return "—" if ch["bound"] is None else f"≥ {ch['bound']:g}"


def _verdict_table(result: dict[str, Any]) -> list[str]:
    """One line per claim text: its reading, verdict, counts and the settings that do not hold."""
    lines = [
        "| claim | reading | verdict | holds | fails | inconclusive | underpowered | settings that do not hold |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for v in result["verdicts"]:
        bad = (
            "; ".join(
                f"{w} {', '.join(v['where'][w])}" for w in ("fails", "inconclusive", "underpowered") if v["where"][w]
            )
            or "—"
        )
        n = v["counts"]
        lines.append(
            f"| {v['claim']}: {v['text']} | {v['reading']} | **{v['verdict']}** | {n['holds']}/{v['settings']} | "
            f"{n['fails']} | {n['inconclusive']} | {n['underpowered']} | {bad} |"
        )
    return lines


def _cell_table(result: dict[str, Any], name: dict[tuple[str, str], str]) -> list[str]:
    """Claims × settings: each check's mean, interval and mark, the bounds where they differ, n."""
    columns = list(name)
    cell = {(ch["text"], ch["task"], ch["role"]): ch for ch in result["checks"]}
    lines = ["| claim | " + " | ".join(name[c] for c in columns) + " |", "|---|" + "---|" * len(columns)]
    for text in dict.fromkeys(ch["text"] for ch in result["checks"]):
        mine = [cell.get((text, *c)) for c in columns]
        first = next(ch for ch in mine if ch is not None)
        claim = first["claim"]
        lines.append(
            f"| {claim} vs {first['versus']} | " + " | ".join("·" if ch is None else _value(ch) for ch in mine) + " |"
        )
        if len({ch["bound"] for ch in mine if ch is not None}) > 1:
            lines.append(f"| ↳ {claim} bound | " + " | ".join(_bound(ch) for ch in mine) + " |")
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
    return lines


def claims_markdown(
    result: dict[str, Any], tasks: Mapping[str, Mapping[str, Any]], paper: bool = True, preamble: str = ""
) -> str:
    """The verdict table (claim, reading, verdict, counts), the per-setting intervals with n images /
    photos and bounds, and every check that does not hold or fail, with its reason and its mean
    per photograph; ``tasks``: task name → its setting; ``paper``: the paper's claims (else
    :func:`check_comparisons`); ``preamble``: lines printed first (what kind of read this is)."""
    name = {(t, r): f"{_setting_name(tasks[t])} {r}" for t, r in ((ch["task"], ch["role"]) for ch in result["checks"])}
    lines = [preamble] if preamble else []
    if "protocol" in result:
        lines.append(f"Protocol: `{result['protocol']['path']}`, SHA-256 `{result['protocol']['sha256']}`.\n")
    lines += [*_verdict_table(result), "", *_cell_table(result, name)]
    inf = result["inference"]
    lines += [
        "",
        (
            f"Cells: mean paired difference in dB{' (1-speed: geometric-mean time-to-quality ratio)' * paper} and "
            f"its {inf['level']:.0%} interval ({inf['interval']}); ✓ holds (interval at or above the bound), "
            f"✗ fails (interval below it), ? inconclusive, ○ underpowered (fewer than {inf['min_photos']} "
            "photographs)"
            + ("; · not checked (claim 4: the method's own task family, or no init trained on it)." if paper else ".")
        ),
    ]
    for verdict_, title in (("fails", "Fails"), ("inconclusive", "Inconclusive"), ("underpowered", "Underpowered")):
        bad = [ch for ch in result["checks"] if ch["verdict"] == verdict_]
        if bad:
            lines += ["", f"{title}:"]
            for ch in bad:
                said = [ch["reason"]] if ch["reason"] else []
                said += [f"by photograph (mean, images): {_photos(ch['by_photo'])}"] if ch.get("by_photo") else []
                said = said or [f"{_measured(ch)} against the bound {ch['bound']:g}"]
                lines.append(f"- {ch['claim']} at {name[(ch['task'], ch['role'])]}: {'; '.join(said)}")
    if "protocol" in result:
        lines += ["", "Sources of the bounds:"]
        lines += [f"- {v['claim']}: {v['source']}" for v in {v["claim"]: v for v in result["verdicts"]}.values()]
    return "\n".join(lines) + "\n"


def _photos(by_photo: list[dict[str, Any]]) -> str:
    """'grass.png -0.08 (3), gravel.png +0.12 (2)' (dB, images): a check's means per photograph, each
    named by the shortest end of its path that no other photograph of the list shares."""
    paths = [str(r["photo"]).split("/") for r in by_photo]

    def short(parts: list[str]) -> str:
        for k in range(1, len(parts) + 1):
            if sum(q[-k:] == parts[-k:] for q in paths) == 1:
                return "/".join(parts[-k:])
        return "/".join(parts)

    return ", ".join(f"{short(q)} {r['mean']:+.2f} ({r['n_images']})" for q, r in zip(paths, by_photo, strict=True))
