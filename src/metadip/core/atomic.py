"""Atomic file writes: write to a temporary file beside the target, then rename over it.

The final file gets the mode an ordinary ``open(target, "w")`` would give it, ``0o666`` less the
process umask (``tempfile.mkstemp`` creates ``0o600`` files, which group members on shared
storage could not read).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process umask, read without changing it where the kernel reports it (Linux ≥ 4.7:
    ``Umask:`` in /proc/self/status); elsewhere set and restored at once under a lock."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    with _UMASK_LOCK:
        mask = os.umask(0o077)
        os.umask(mask)
    return mask


def file_mode() -> int:
    """The mode of a newly created regular file under the current umask."""
    return 0o666 & ~current_umask()


def dir_mode() -> int:
    """The mode of a newly created folder under the current umask."""
    return 0o777 & ~current_umask()


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; on success rename it to ``target`` with mode
    ``0o666 & ~umask``.

    On any exception the temporary file is removed and ``target`` is left untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=target.suffix + ".tmp", dir=target.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        # the writer may have replaced the file: chmod the path, not the fd; a filesystem without
        # modes (e.g. some CIFS/FAT mounts) refuses chmod and sets them by its mount options
        with contextlib.suppress(PermissionError, NotImplementedError):
            os.chmod(tmp, file_mode())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_text(target: str | os.PathLike, text: str) -> None:
    """Atomically write ``text`` (UTF-8) to ``target``."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
