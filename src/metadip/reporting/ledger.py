"""The confirmatory ledger (``docs/confirmatory-ledger.tsv``, tracked in git): every read of a
confirmatory test split, so that a photograph is read confirmatorily once.

A read is named by the photographs it evaluated (the sorted ``dataset/source_file`` of its rows), the
protocol's SHA-256, the recipe hash (the claims step's hash: every config key upstream of the
verdict), the commits of the evaluation rows and the date. A read none of whose photographs is in an
earlier entry is **confirmatory**. Running the same read again (the same photographs, protocol, recipe
and commits, e.g. after the report was deleted) adds nothing and keeps its label; any other read that
shares a photograph with an earlier entry is **exploratory** and is recorded as such.
"""

from __future__ import annotations

import csv
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
    photographs: int
    datasets: str  # comma-separated dataset names
    protocol_sha256: str
    recipe_hash: str
    commits: str  # comma-separated git commits of the evaluation rows
    results: str  # the claims document written
    photograph_list: str  # ';'-separated dataset/source_file, sorted

    def names(self) -> set[str]:
        """The photographs read."""
        return set(self.photograph_list.split(";"))

    def same_read(self, other: Read) -> bool:
        """The same photographs under the same protocol, recipe and code."""
        keys = ("photograph_list", "protocol_sha256", "recipe_hash", "commits")
        return all(getattr(self, k) == getattr(other, k) for k in keys)


COLUMNS = [f.name for f in fields(Read)]
LABELS = ("confirmatory", "exploratory")


def photographs_of(rows: Iterable[dict[str, Any]]) -> list[str]:
    """The sorted distinct ``dataset/source_file`` of evaluation rows."""
    return sorted({f"{r['dataset']}/{r.get('source_file')}" for r in rows})


def read_ledger(path: str | Path) -> list[Read]:
    """The ledger's entries ([] when the file does not exist); one InputError line for a malformed one."""
    p = Path(path)
    if not p.exists():
        return []
    reader = csv.DictReader(io.StringIO(p.read_text(encoding="utf-8")), delimiter="\t")
    if reader.fieldnames != COLUMNS:
        raise InputError(
            f"{p}: not a confirmatory ledger (columns {reader.fieldnames}, expected {COLUMNS}); restore it"
        )
    entries = []
    for line, row in enumerate(reader, start=2):
        try:
            if row["label"] not in LABELS or None in row.values():
                raise ValueError
            entries.append(Read(**{k: (int(v) if k == "photographs" else v) for k, v in row.items()}))
        except (TypeError, ValueError):
            raise InputError(f"{p}: line {line} is not a ledger entry; restore the file from git") from None
    return entries


def label_read(
    path: str | Path,
    rows: list[dict[str, Any]],
    protocol_sha256: str,
    recipe_hash: str,
    results: str,
    now: datetime | None = None,
) -> tuple[Read, bool]:
    """This read of ``rows``' photographs, labelled against the ledger at ``path`` (module doc), and
    whether it is new (to :func:`append_read` once its outputs are written) or repeats an entry."""
    photos = photographs_of(rows)
    read = Read(
        date=(now or datetime.now(UTC)).isoformat(timespec="seconds"),
        label="confirmatory",
        photographs=len(photos),
        datasets=",".join(sorted({r["dataset"] for r in rows})),
        protocol_sha256=protocol_sha256,
        recipe_hash=recipe_hash,
        commits=",".join(sorted({str(r.get("git_commit", "unknown")) for r in rows})),
        results=results,
        photograph_list=";".join(photos),
    )
    entries = read_ledger(path)
    same = next((e for e in entries if e.same_read(read)), None)
    if same is not None:
        return same, False
    if any(e.names() & set(photos) for e in entries):
        read = Read(**{**asdict(read), "label": "exploratory"})
    return read, True


def append_read(path: str | Path, read: Read) -> None:
    """The ledger with ``read`` appended, atomically."""
    entries = [*read_ledger(path), read]
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
        f"**Exploratory read**: of these {read.photographs} test photographs ({read.datasets}), some were read "
        "before under another recipe, protocol or code (docs/confirmatory-ledger.tsv); its verdicts confirm nothing.\n"
    )
