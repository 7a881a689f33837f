"""What the workflow's stages (``stages/*.py``, thin command-line entry points) share: a parser
with ``--config``, and bad input reported as one line on stderr with exit status 1."""

from __future__ import annotations

import argparse
import sys

from metadip.core.errors import InputError
from metadip.pipeline.config import DEFAULT_CONFIG

#: errors that mean bad input (the project's own InputError for a config, dataset, artifact or option
#: that is missing, malformed or invalid; OSError for a missing file, a full disk or a read-only
#: folder): one line, exit status 1, no traceback; any other exception is a bug and keeps its traceback
INPUT_ERRORS: tuple[type[BaseException], ...] = (InputError, OSError)


def stage_parser(description: str | None) -> argparse.ArgumentParser:
    """An argument parser with the stage's docstring and ``--config`` (the workflow passes its
    merged, validated config; standalone runs default to ``config/config.yaml``)."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--config", default=DEFAULT_CONFIG, help="config file (default: %(default)s)")
    return p


def fail(stage: str, err: BaseException) -> int:
    """Report ``err`` as ``<stage>: error: <message>`` on stderr; the exit status to return (1)."""
    print(f"{stage}: error: {err}", file=sys.stderr)
    return 1
