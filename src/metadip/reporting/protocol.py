"""The claims' protocol (``config/protocol.yaml``): every check's comparison, bound, inference and the
source of each number, read from one versioned file whose SHA-256 names it in every verdict.

A check compares the claims method with the method of one role of the config's ``claims`` section
(``versus``: long, long_stopped, short, control, control_same_loop, rivals, transfer) by a
``statistic``: ``psnr`` (method − versus, dB), ``psnr_stronger`` (against the stronger of the
other's EMA and last iterate) or ``time_to_quality`` (the geometric-mean speed-up to a common PSNR).
Its ``bound`` is a number, or ``paper_gap``: per setting min(the paper's own gap, 0) − ``slack_db``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from metadip.core.errors import InputError
from metadip.core.hashing import config_hash
from metadip.pipeline.config import StrictLoader

ROLES = ("long", "long_stopped", "short", "control", "control_same_loop", "rivals", "transfer")
STATISTICS = ("psnr", "psnr_stronger", "time_to_quality")

_SOURCE = {"type": "string", "minLength": 8}
_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["version", "inference", "checks"],
    "properties": {
        "version": {"const": 1},
        "inference": {
            "type": "object",
            "additionalProperties": False,
            "required": ["interval", "level", "min_photos", "min_photos_source"],
            "properties": {
                "interval": {"enum": ["cluster_t"]},
                "level": {"const": 0.95},
                "min_photos": {"type": "integer", "minimum": 2},
                "min_photos_source": _SOURCE,
            },
        },
        "checks": {
            "type": "object",
            "minProperties": 1,
            "additionalProperties": {
                "type": "object",
                "additionalProperties": False,
                "required": ["reading", "text", "versus", "statistic", "bound", "source"],
                "properties": {
                    "reading": {"enum": ["primary", "secondary"]},
                    "text": {"type": "string"},
                    "versus": {"enum": list(ROLES)},
                    "statistic": {"enum": list(STATISTICS)},
                    "bound": {"oneOf": [{"type": "number"}, {"const": "paper_gap"}]},
                    "slack_db": {"type": "number", "minimum": 0},
                    "source": _SOURCE,
                },
            },
        },
    },
}


@dataclass(frozen=True)
class Check:
    """One check of the protocol (module doc); ``bound`` in dB, a speed ratio for time_to_quality."""

    id: str
    reading: str  # primary | secondary
    text: str  # with {method} and {versus} fields
    versus: str  # a role of the config's claims section
    statistic: str
    bound: float | str  # a number, or "paper_gap"
    slack_db: float
    source: str

    def describe(self, method: str, versus: str) -> str:
        """The check's text for ``method`` against ``versus``, its numbers from the bound."""
        bound = self.bound if isinstance(self.bound, float | int) else 0.0
        return self.text.format(method=method, versus=versus, bound=bound, margin=abs(bound), slack=self.slack_db)


@dataclass(frozen=True)
class Protocol:
    """The parsed protocol file and the SHA-256 of its bytes (what claims.json records)."""

    path: str
    sha256: str
    interval: str
    level: float
    min_photos: int
    checks: tuple[Check, ...]


def load_protocol(path: str | Path) -> Protocol:
    """Read and validate a protocol file; one :class:`InputError` line naming the file and the fix."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as err:
        raise InputError(
            f"{p}: cannot read the claims protocol ({err.strerror}); set claims.protocol to its path"
        ) from None
    try:
        doc = yaml.load(raw, Loader=StrictLoader)  # a repeated check id is an error, not a dropped check
        jsonschema.validate(doc, _SCHEMA)
    except (yaml.YAMLError, jsonschema.ValidationError) as err:
        where = "/".join(str(k) for k in getattr(err, "absolute_path", [])) or "top level"
        msg = getattr(err, "message", str(err)).splitlines()[0]
        raise InputError(f"{p}: not a valid claims protocol at {where}: {msg}; fix it (config/protocol.yaml)") from None
    checks = []
    for cid, c in doc["checks"].items():
        if c["bound"] == "paper_gap" and (c["statistic"] != "psnr" or c["versus"] != "long" or "slack_db" not in c):
            raise InputError(f"{p}: check {cid}: bound paper_gap needs statistic psnr, versus long and a slack_db")
        try:
            c["text"].format(method="m", versus="v", bound=1.0, margin=1.0, slack=1.0)
        except (KeyError, IndexError, ValueError) as err:
            raise InputError(
                f"{p}: check {cid}: its text uses an unknown field ({err}); use {{method}}, {{versus}}, {{bound}}, "
                "{margin} or {slack}"
            ) from None
        checks.append(
            Check(
                str(cid),
                c["reading"],
                c["text"],
                c["versus"],
                c["statistic"],
                c["bound"],
                float(c.get("slack_db", 0.0)),
                c["source"],
            )
        )
    inf = doc["inference"]
    return Protocol(
        str(p),
        hashlib.sha256(raw).hexdigest(),
        inf["interval"],
        float(inf["level"]),
        int(inf["min_photos"]),
        tuple(checks),
    )


def verdict_hash(step_hash: str, protocol_sha256: str) -> str:
    """What claims.json records as its step hash: the claims step's config hash and the protocol's,
    so that a verdict read under another protocol is stale like one of another config."""
    return config_hash([step_hash, protocol_sha256])
