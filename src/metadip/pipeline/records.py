"""The step hash an output records (:class:`metadip.pipeline.steps.Steps`), read back cheaply.

Every output a workflow step writes records the hash of the step that computed it, inside the
output itself, so the record travels with the file (a DVC checkout, a copy): a JSON output or
sidecar at its top-level key ``step_hash``, a curated folder in its ``summary.json``, a parquet
file in its schema metadata (key ``metadip.step_hash``), a PNG figure in a text chunk of that
name. The workflow reruns a step whose outputs record another hash than the one it plans.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from metadip.core.errors import InputError

#: the JSON key of the record
JSON_KEY = "step_hash"
#: the parquet schema metadata key and PNG text chunk of the record
METADATA_KEY = "metadip.step_hash"


def read_step_hash(path: str | os.PathLike) -> str | None:
    """The step hash ``path`` records; None when it records none or cannot be read (the reading
    stage then reports the file)."""
    p = Path(path)
    try:
        if p.is_dir():
            return _json_record(p / "summary.json")
        if p.suffix == ".json":
            return _json_record(p)
        if p.suffix == ".parquet":
            import pyarrow.parquet as pq

            value = (pq.read_schema(p).metadata or {}).get(METADATA_KEY.encode())
            return value.decode() if value else None
        if p.suffix == ".png":
            from PIL import Image

            with Image.open(p) as im:
                return getattr(im, "text", {}).get(METADATA_KEY)
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return None


def _json_record(path: Path) -> str | None:
    data = json.loads(path.read_text(encoding="utf-8"))
    value = data.get(JSON_KEY) if isinstance(data, dict) else None
    return value if isinstance(value, str) else None


def record_file(path: str | os.PathLike) -> Path:
    """The file holding the record of an artifact given as ``path``: a safetensors file's JSON sidecar,
    else ``path`` itself."""
    p = Path(path)
    return p.with_suffix(".json") if p.suffix == ".safetensors" else p


def check_inputs(inputs: dict[str, str | os.PathLike], expected: dict[str, str], fix: str) -> None:
    """Raise RecordError unless each input (name -> path) that records a step hash records the one
    ``expected`` gives its name: an input computed under another config than this job's."""
    for name, path in inputs.items():
        got = read_step_hash(record_file(path))
        if got is not None and name in expected and got != expected[name]:
            raise RecordError(
                f"{path}: computed under another config (step hash {got}, this job's config gives "
                f"{expected[name]}); {fix}"
            )


class RecordError(InputError):
    """An input artifact that records another step hash than the job's config gives it."""
