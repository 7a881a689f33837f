"""Stable short hashes of configuration sections (the identity of a step's settings)."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def config_hash(section: Any) -> str:
    """Short stable hash of a (sub-)config: sha256 of its canonical JSON, 16 hex digits."""
    return hashlib.sha256(json.dumps(section, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]
