"""Records the config keys a workflow stage reads, when METADIP_CONFIG_READS names a file.

On PYTHONPATH (tests/config_reads) for a workflow run: each stage's ``load_stage_config`` returns
the config wrapped in :class:`Reading`, and at exit the process appends one JSON line with its
argv and the dotted keys it read to that file (tests/pipeline/test_config_reads.py checks them
against the steps' declarations). Nothing happens without the variable.
"""

from __future__ import annotations

import atexit
import json
import os
import sys

LOG = os.environ.get("METADIP_CONFIG_READS")


class Reading(dict):
    """A config mapping that adds the dotted path of every value read to ``log``: a leaf (or list)
    read or looked for by key, a missing key looked up, and a mapping whose keys are listed (its own
    path); a mapping found by key is read by what is read in it."""

    def __init__(self, data: dict, path: str, log: set[str]) -> None:
        super().__init__(data)
        self._path, self._log, self._children = path, log, {}

    def _key(self, k) -> str:
        return f"{self._path}.{k}" if self._path else str(k)

    def _listed(self) -> None:
        self._log.add(self._path or "<root>")

    def __getitem__(self, k):
        if not dict.__contains__(self, k):
            self._log.add(self._key(k))  # a lookup that fails is a read too (try/except KeyError)
        v = super().__getitem__(k)
        if isinstance(v, dict):
            if k not in self._children:
                self._children[k] = Reading(v, self._key(k), self._log)
            return self._children[k]
        self._log.add(self._key(k))
        return v

    def get(self, k, default=None):
        if dict.__contains__(self, k):
            return self[k]
        self._log.add(self._key(k))
        return default

    def __contains__(self, k) -> bool:
        found = dict.__contains__(self, k)
        if not found or not isinstance(dict.__getitem__(self, k), dict):  # a mapping is read by what is read in it
            self._log.add(self._key(k))
        return found

    def __iter__(self):
        self._listed()
        return iter(list(dict.keys(self)))

    def keys(self):
        self._listed()
        return list(dict.keys(self))

    def items(self):
        self._listed()
        return [(k, self[k]) for k in dict.keys(self)]

    def values(self):
        return [v for _, v in self.items()]

    def __len__(self) -> int:
        self._listed()
        return dict.__len__(self)

    def __eq__(self, other) -> bool:
        self._log.add(self._path or "<root>")
        return dict.__eq__(self, other)

    def __ne__(self, other) -> bool:
        return not self.__eq__(other)

    def setdefault(self, k, default=None):
        if not dict.__contains__(self, k):
            dict.__setitem__(self, k, default)
        return self[k]

    def pop(self, k, *default):
        self._log.add(self._key(k))
        return dict.pop(self, k, *default)

    __hash__ = None


def _install() -> None:
    import metadip.pipeline.stage as stage

    reads: set[str] = set()
    original = stage.load_stage_config

    def load_stage_config(args):
        return Reading(original(args), "", reads)

    def dump() -> None:
        with open(LOG, "a", encoding="utf-8") as f:
            f.write(json.dumps({"argv": sys.argv, "reads": sorted(reads)}) + "\n")

    stage.load_stage_config = load_stage_config
    atexit.register(dump)


if (
    LOG
    and sys.argv
    and sys.argv[0].endswith(".py")
    and os.path.basename(os.path.dirname(os.path.abspath(sys.argv[0]))) == "stages"
):
    _install()
