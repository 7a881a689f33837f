"""Stable short hashes of configuration sections (the identity of a step's settings)."""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any


def config_hash(section: Any) -> str:
    """Short stable hash of a (sub-)config: sha256 of its canonical JSON, 16 hex digits."""
    return hashlib.sha256(json.dumps(section, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def without_later_defaults(record: dict[str, Any], later: dict[str, Any]) -> dict[str, Any]:
    """``record`` less each key of ``later`` whose value is that key's default.

    ``later`` maps the keys added after records were first written to their defaults: a record at
    the defaults then reads, and hashes, exactly as records written before those keys existed.
    """
    return {k: v for k, v in record.items() if k not in later or v != later[k]}


def content_sha(data: bytes) -> str:
    """Short hash of a file's content: sha256 of ``data``, 16 hex digits."""
    return hashlib.sha256(data).hexdigest()[:16]


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 of a file's bytes (hex), read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
