"""CSV text of dict rows: one header line, then a line per row, "\\n" line ends."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from typing import Any


def csv_text(rows: Iterable[Mapping[str, Any]], fields: Sequence[str]) -> str:
    """``rows`` as CSV with the columns ``fields`` in order (None is an empty cell; a key outside
    ``fields`` raises ValueError)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(fields), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()
