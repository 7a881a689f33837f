"""What the workflow's stages (``stages/*.py``, thin command-line entry points) share: a parser
with ``--config`` and ``--config-sha``, the config loaded and cross-checked, the workflow's config
snapshots, and bad input reported as one line on stderr with exit status 1."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import yaml

from metadip.core.atomic import atomic_symlink, write_text
from metadip.core.errors import InputError
from metadip.core.hashing import content_sha
from metadip.pipeline.config import DEFAULT_CONFIG, ConfigError, check_pipeline_config, load_config

#: errors that mean bad input (the project's own InputError for a config, dataset, artifact or option
#: that is missing, malformed or invalid; OSError for a missing file, a full disk or a read-only
#: folder): one line, exit status 1, no traceback; any other exception is a bug and keeps its traceback
INPUT_ERRORS: tuple[type[BaseException], ...] = (InputError, OSError)


def stage_parser(description: str | None) -> argparse.ArgumentParser:
    """An argument parser with the stage's docstring, ``--config`` (the workflow passes its merged,
    validated config; standalone runs default to ``config/config.yaml``) and ``--config-sha``."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--config", default=DEFAULT_CONFIG, help="config file (default: %(default)s)")
    p.add_argument(
        "--config-sha", help="refuse the config file unless its content has this hash (the workflow passes it)"
    )
    return p


def add_compute_args(p: argparse.ArgumentParser) -> None:
    """``--device`` and ``--threads``, for the stages that run solvers."""
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")


def thread_problem(threads: int | None) -> str | None:
    """Why ``--threads`` cannot be used (a count outside 1 to the CPUs this process may use), or None."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if threads is not None and not 1 <= threads <= cores:
        return f"--threads {threads}: give 1 to {cores} (the CPUs this process may use)"
    return None


def load_stage_config(args: argparse.Namespace) -> dict[str, Any]:
    """The config of ``args.config``, validated (defaults filled in) and cross-checked; with
    ``args.config_sha``, only when the file's :func:`content_sha` is that value (ConfigError)."""
    text = None
    if args.config_sha:
        try:
            data = Path(args.config).read_bytes()
            got = content_sha(data)
        except OSError as err:
            raise ConfigError(
                f"{args.config}: cannot read the config snapshot ({err.strerror or err}); rerun snakemake"
            ) from None
        if got != args.config_sha:
            raise ConfigError(
                f"{args.config}: content hash {got}, not the {args.config_sha} this job was planned with (the file "
                "was changed after snakemake wrote it); delete it and rerun snakemake"
            )
        text = data.decode("utf-8", errors="replace")  # parsed as hashed: no second read
    return check_pipeline_config(load_config(args.config, text), str(args.config))


def config_snapshot(config: dict[str, Any], results: str | os.PathLike) -> tuple[str, str, str]:
    """(path, hash, text) of the workflow's config snapshot: the merged config as YAML in
    ``<results>/configs/<hash of the text>.yaml``. Nothing is written (:func:`write_snapshot`)."""
    text = yaml.safe_dump(config, sort_keys=False)
    sha = content_sha(text.encode())
    return f"{results}/configs/{sha}.yaml", sha, text


def write_snapshot(path: str | os.PathLike, text: str) -> bool:
    """Write a config snapshot unless the file holds ``text`` already (atomically; a snapshot with
    other content is replaced: its name is the hash of ``text``). True when it was written."""
    path = Path(path)
    try:
        if path.read_text(encoding="utf-8") == text:
            return False
    except (FileNotFoundError, UnicodeDecodeError):
        pass
    write_text(path, text)
    return True


def point_latest(link: str | os.PathLike, snapshot: str | os.PathLike) -> None:
    """Make ``link`` (``<results>/config.yaml``) a relative symlink to ``snapshot``
    (:func:`metadip.core.atomic.atomic_symlink`): the config of the latest run, for running a stage
    or a bench by hand. No job reads it; each reads its own snapshot."""
    atomic_symlink(link, os.path.relpath(snapshot, Path(link).parent))


def fail(stage: str, err: BaseException | str) -> int:
    """Report ``err`` as ``<stage>: error: <message>`` on stderr; the exit status to return (1)."""
    print(f"{stage}: error: {err}", file=sys.stderr)
    return 1
