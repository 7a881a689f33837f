"""The confirmatory ledger (``docs/confirmatory-ledger.tsv``, tracked in git): every read of a
confirmatory test split, so that a split is read confirmatorily once.

A read is named by the photographs it evaluated (the sorted ``dataset/source_file`` of the rows, hashed),
the protocol's SHA-256, the recipe hash (the claims step's hash: every config key upstream of the
verdict), the commits of the evaluation rows and the date. The first read of a set of photographs is
**confirmatory**. Running the same read again (same photographs, protocol and recipe, e.g. after the
report was deleted) adds nothing and stays confirmatory; a read of photographs that an entry already
holds, under another protocol or recipe, is **exploratory** and is recorded as such.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from metadip.core.atomic import atomic_path
from metadip.core.errors import InputError


@dataclass(frozen=True)
class Read:
    """One ledger entry (one line of the TSV)."""

    date: str  # UTC, ISO 8601, seconds
    label: str  # confirmatory | exploratory
    photographs_sha256: str
    photographs: int
    datasets: str  # comma-separated dataset names
    protocol_sha256: str
    recipe_hash: str
    commits: str  # comma-separated git commits of the evaluation rows
    results: str  # the claims document written

    def same_read(self, other: Read) -> bool:
        """Same photographs under the same protocol and recipe."""
        keys = ("photographs_sha256", "protocol_sha256", "recipe_hash")
        return all(getattr(self, k) == getattr(other, k) for k in keys)


COLUMNS = [f.name for f in fields(Read)]


def photographs_of(rows: Iterable[dict[str, Any]]) -> list[str]:
    """The sorted distinct ``dataset/source_file`` of evaluation rows."""
    return sorted({f"{r['dataset']}/{r.get('source_file')}" for r in rows})


def read_ledger(path: str | Path) -> list[Read]:
    """The ledger's entries ([] when the file does not exist); one InputError line for a malformed one."""
    p = Path(path)
    if not p.exists():
        return []
    text = p.read_text(encoding="utf-8")
    reader = csv.DictReader(io.StringIO(text), delimiter="\t")
    if reader.fieldnames != COLUMNS:
        raise InputError(
            f"{p}: not a confirmatory ledger (columns {reader.fieldnames}, expected {COLUMNS}); restore it"
        )
    return [Read(**{k: (int(v) if k == "photographs" else v) for k, v in row.items()}) for row in reader]


def record_read(
    path: str | Path,
    rows: list[dict[str, Any]],
    protocol_sha256: str,
    recipe_hash: str,
    results: str,
    now: datetime | None = None,
) -> Read:
    """Label this read of ``rows``' photographs against the ledger at ``path`` (module doc), append it
    unless it repeats an entry, and return it."""
    photos = photographs_of(rows)
    read = Read(
        date=(now or datetime.now(UTC)).isoformat(timespec="seconds"),
        label="confirmatory",
        photographs_sha256=hashlib.sha256("\n".join(photos).encode()).hexdigest(),
        photographs=len(photos),
        datasets=",".join(sorted({r["dataset"] for r in rows})),
        protocol_sha256=protocol_sha256,
        recipe_hash=recipe_hash,
        commits=",".join(sorted({str(r.get("git_commit", "unknown")) for r in rows})),
        results=results,
    )
    entries = read_ledger(path)
    earlier = [e for e in entries if e.photographs_sha256 == read.photographs_sha256]
    same = next((e for e in earlier if e.same_read(read)), None)
    if same is not None:
        return same
    if earlier:
        read = Read(**{**asdict(read), "label": "exploratory"})
    _write(path, [*entries, read])
    return read


def _write(path: str | Path, entries: list[Read]) -> None:
    """The ledger with ``entries``, atomically."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, delimiter="\t", lineterminator="\n")
    writer.writeheader()
    writer.writerows(asdict(e) for e in entries)
    with atomic_path(path) as tmp:
        tmp.write_text(buf.getvalue(), encoding="utf-8")


def preamble(read: Read) -> str:
    """The first lines of claims.md: what kind of read this is and why."""
    if read.label == "confirmatory":
        return (
            f"**Confirmatory read** of {read.photographs} test photographs ({read.datasets}) under the frozen "
            f"recipe {read.recipe_hash} and protocol {read.protocol_sha256[:16]}, "
            f"recorded in the ledger on {read.date}.\n"
        )
    return (
        f"**Exploratory read**: these {read.photographs} test photographs ({read.datasets}) were read before under "
        "another recipe or protocol (docs/confirmatory-ledger.tsv); its verdicts do not confirm anything.\n"
    )
