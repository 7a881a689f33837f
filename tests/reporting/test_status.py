"""The README's status table: the claims' primary verdicts summarised per image class."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from metadip.core.markdown import markers
from metadip.reporting.claims import claim_summary
from metadip.reporting.status import class_verdicts, status_table

ROOT = Path(__file__).resolve().parents[2]


def check(claim, text, task, role, verdict, n_photos=12, reading="primary"):
    dataset = {"faces": "urban", "natural": "nature"}[role]
    return {"claim": claim, "text": text, "task": task, "role": role, "dataset": dataset,
            "verdict": verdict, "n_photos": n_photos, "reading": reading}  # fmt: skip


def document():
    checks = [
        check("1-quality", "A", "den_25", "faces", "holds"),
        check("1-quality", "A", "cs_4", "faces", "holds", n_photos=16),
        check("1-quality", "A", "den_25", "natural", "holds"),
        check("1-quality", "A", "cs_4", "natural", "fails", n_photos=15),
        check("1-quality-x", "B", "den_25", "faces", "fails", reading="secondary"),
        check("2", "C", "den_25", "faces", "holds"),
        check("2", "C", "cs_4", "faces", "inconclusive"),
        check("2", "C", "den_25", "natural", "underpowered", n_photos=4),
        check("2", "C", "cs_4", "natural", "holds"),
        check("4", "D", "cs_4", "natural", "holds"),
    ]
    texts = dict.fromkeys(ch["text"] for ch in checks)
    return {"verdicts": [claim_summary([ch for ch in checks if ch["text"] == t]) for t in texts], "checks": checks}


def test_each_class_is_summarised_over_its_own_settings_and_secondary_readings_are_left_out():
    rows = {r["claim"]: r["classes"] for r in class_verdicts(document())}
    assert list(rows) == ["1-quality", "2", "4"]
    assert {r: s["verdict"] for r, s in rows["1-quality"].items()} == {"faces": "holds", "natural": "fails"}
    assert {r: s["verdict"] for r, s in rows["2"].items()} == {"faces": "inconclusive", "natural": "underpowered"}
    assert list(rows["4"]) == ["natural"]


def test_the_table_names_each_class_with_its_photographs_and_counts_each_verdict():
    lines = status_table(document()).splitlines()
    assert lines[0] == "| claim (primary reading) | `urban` (16 photographs) | `nature` (15 photographs) |"
    assert lines[2] == ("| 1-quality: A | **holds**: 2 of 2 settings hold | **fails**: 1 of 2 settings hold, 1 fail |")
    assert lines[3].split(" | ")[1:] == [
        "**inconclusive**: 1 of 2 settings hold, 1 inconclusive",
        "**underpowered**: 1 of 2 settings hold, 1 underpowered |",
    ]
    assert lines[4] == "| 4: D | · | **holds**: 1 of 1 settings hold |"


def test_the_script_writes_between_the_markers_and_refuses_what_is_not_claims(tmp_path):
    claims = tmp_path / "claims.json"
    claims.write_text(json.dumps(document() | {"read": {"label": "confirmatory"}}))
    begin, end = markers("claims")
    md = tmp_path / "README.md"
    md.write_text(f"intro\n{begin}\nold\n{end}\noutro\n")
    script = [sys.executable, str(ROOT / "scripts" / "claims_status.py")]
    proc = subprocess.run([*script, str(claims), "--write", str(md)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert md.read_text() == f"intro\n{begin}\n{proc.stdout}{end}\noutro\n"
    written = md.read_text()
    for read in ({"read": {"label": "exploratory"}}, {}):  # a README status from another read: refused
        claims.write_text(json.dumps(document() | read))
        proc = subprocess.run([*script, str(claims), "--write", str(md)], capture_output=True, text=True, check=False)
        assert proc.returncode == 1 and "--write takes a confirmatory read" in proc.stderr, proc.stderr
        assert md.read_text() == written
    claims.write_text("{}")
    proc = subprocess.run([*script, str(claims)], capture_output=True, text=True, check=False)
    assert proc.returncode == 1 and proc.stderr.strip().endswith("give the claims stage's output"), proc.stderr
