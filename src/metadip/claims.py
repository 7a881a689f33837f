"""The paper's claims checked on an evaluation run, one verdict per task setting and image class.

Claims (issue 8; thresholds in the config's ``claims`` section):

1. quality — MetaDIP after its test steps is within ``within_db`` of the long DIP run (its EMA, the
   paper's definition); speed — the long DIP run takes at least ``min_speedup`` × MetaDIP's
   seconds per image.
2. MetaDIP beats the short DIP run by ``short_margin_db``, measured against the stronger of its
   EMA and its last iterate.
3. MetaDIP beats every rival (MetaSIREN) by ``rival_margin_db``.

Input is :func:`metadip.tables.group_means` of the evaluation rows; torch-free.
"""

from __future__ import annotations

from typing import Any

from metadip.plan import tasks_of
from metadip.tables import ROLES, setting_label

Means = dict[tuple[str, str, str], dict[str, float]]

CLAIMS = {
    "1-quality": "MetaDIP(test steps) within {within_db:g} dB of {long}",
    "1-speed": "{long} at least {min_speedup:g}x MetaDIP's time per image",
    "2": "MetaDIP beats {short} (stronger of EMA and last iterate) by at least {short_margin_db:g} dB",
    "3": "MetaDIP beats {rival} by at least {rival_margin_db:g} dB",
}


def _check(claim: str, text: str, task: str, role: str, dataset: str, value: float | None, bound: float) -> dict[str, Any]:
    return {"claim": claim, "text": text, "task": task, "role": role, "dataset": dataset,
            "value": None if value is None else round(value, 3), "bound": bound,
            "holds": value is not None and value >= bound}


def check_claims(means: Means, config: dict[str, Any]) -> dict[str, Any]:
    """Every claim in every (task, class) of the config.

    ``value`` is the margin the claim is about (dB, or a speed ratio for ``1-speed``) and ``bound``
    the least value for which it holds; a method missing from the run gives value None (fails).
    """
    c = config["claims"]
    roles = config["evaluate"]["roles"]
    me = c["method"]
    checks = []
    for table in (1, 2, 3):
        for task in tasks_of(config, table):
            for role in ROLES:
                ds = roles[role]
                m, long, short = (means.get((task, ds, k)) for k in (me, c["long"], c["short"]))

                def diff(other: float | None, m=m) -> float | None:
                    return None if m is None or other is None else m["psnr"] - other

                checks.append(_check("1-quality", CLAIMS["1-quality"].format(**c), task, role, ds,
                                     diff(long and long["psnr"]), -c["within_db"]))
                speed = None if m is None or long is None or m["seconds"] <= 0 else long["seconds"] / m["seconds"]
                checks.append(_check("1-speed", CLAIMS["1-speed"].format(**c), task, role, ds, speed, c["min_speedup"]))
                checks.append(_check("2", CLAIMS["2"].format(**c), task, role, ds,
                                     diff(short and max(short["psnr"], short["psnr_last"])), c["short_margin_db"]))
                for rival in c["rivals"]:
                    r = means.get((task, ds, rival))
                    checks.append(_check("3", CLAIMS["3"].format(rival=rival, **c), task, role, ds,
                                         diff(r and r["psnr"]), c["rival_margin_db"]))
    verdicts = []
    for text in dict.fromkeys(ch["text"] for ch in checks):
        mine = [ch for ch in checks if ch["text"] == text]
        held = [ch for ch in mine if ch["holds"]]
        worst = min(mine, key=lambda ch: float("-inf") if ch["value"] is None else ch["value"] - ch["bound"])
        verdicts.append({"claim": mine[0]["claim"], "text": text, "held": len(held), "settings": len(mine),
                         "holds": len(held) == len(mine), "worst": {k: worst[k] for k in ("task", "role", "value", "bound")}})
    return {"all_hold": all(v["holds"] for v in verdicts), "verdicts": verdicts, "checks": checks}


def _setting(task: dict[str, Any]) -> str:
    """'den σ=15', 'CS m/n=1/4', 'PR m/n=1/8'."""
    kind = "den" if task["kind"] == "denoising" else task["kind"].split("_")[0].upper()
    return f"{kind} {setting_label(task)}"


def claims_markdown(result: dict[str, Any], config: dict[str, Any]) -> str:
    """A verdict table (claim, settings where it holds, worst setting) and the per-setting margins."""
    tasks = config["evaluate"]["tasks"]
    lines = ["| claim | holds in | worst setting (margin, bound) |", "|---|---|---|"]
    for v in result["verdicts"]:
        w = v["worst"]
        value = "—" if w["value"] is None else f"{w['value']:.2f}"
        lines.append(f"| {v['claim']}: {v['text']} | {v['held']}/{v['settings']} | "
                     f"{_setting(tasks[w['task']])} {w['role']} ({value}, ≥ {w['bound']:g}) |")
    columns = list(dict.fromkeys((ch["task"], ch["role"]) for ch in result["checks"]))
    rows = list(dict.fromkeys(ch["text"] for ch in result["checks"]))
    cell = {(ch["text"], ch["task"], ch["role"]): ch for ch in result["checks"]}
    lines += ["", "| claim | " + " | ".join(f"{_setting(tasks[t])} {r}" for t, r in columns) + " |",
              "|---|" + "---|" * len(columns)]
    for text in rows:
        cells = []
        for t, r in columns:
            ch = cell[(text, t, r)]
            cells.append("—" if ch["value"] is None else f"{ch['value']:.2f} {'✓' if ch['holds'] else '✗'}")
        claim = next(ch["claim"] for ch in result["checks"] if ch["text"] == text)
        lines.append(f"| {claim} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
