"""The claims' verdicts per image class, as the README's status table: for each primary reading of
``claims.json`` (:func:`metadip.reporting.claims.check_claims`) and each class, the summary over that
class's task settings (the same rule as over all settings). Torch-free."""

from __future__ import annotations

from typing import Any

from metadip.reporting.claims import claim_summary
from metadip.reporting.tables import ROLES


def class_verdicts(document: dict[str, Any]) -> list[dict[str, Any]]:
    """Per primary claim text, in the document's order: {"claim", "text", "classes": role → summary}."""
    out = []
    for v in document["verdicts"]:
        if v.get("reading", "primary") != "primary":
            continue
        mine = [ch for ch in document["checks"] if ch["text"] == v["text"]]
        roles = [r for r in ROLES if any(ch["role"] == r for ch in mine)]
        classes = {r: claim_summary([ch for ch in mine if ch["role"] == r]) for r in roles}
        out.append({"claim": v["claim"], "text": v["text"], "classes": classes})
    return out


def _cell(summary: dict[str, Any]) -> str:
    """'**fails**: 1 of 6 settings hold, 3 fail, 2 inconclusive'."""
    counts, n = summary["counts"], summary["settings"]
    rest = [
        f"{counts[v]} {'fail' if v == 'fails' else v}" for v in ("fails", "inconclusive", "underpowered") if counts[v]
    ]
    return f"**{summary['verdict']}**: {counts['holds']} of {n} settings hold" + "".join(f", {r}" for r in rest)


def status_table(document: dict[str, Any]) -> str:
    """The markdown table (newline-terminated): a row per primary claim text, a column per image class,
    headed by its dataset and the most source photographs any of its checks rests on."""
    checks = document["checks"]
    roles = [r for r in ROLES if any(ch["role"] == r for ch in checks)]
    headers = []
    for r in roles:
        datasets = sorted({ch["dataset"] for ch in checks if ch["role"] == r})
        photos = max(ch["n_photos"] or 0 for ch in checks if ch["role"] == r)
        headers.append(f"{', '.join(f'`{d}`' for d in datasets)} ({photos} photographs)")
    lines = ["| claim (primary reading) | " + " | ".join(headers) + " |", "|---" * (len(roles) + 1) + "|"]
    for row in class_verdicts(document):
        cells = [_cell(row["classes"][r]) if r in row["classes"] else "·" for r in roles]
        lines.append(f"| {row['claim']}: {row['text']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
