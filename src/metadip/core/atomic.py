"""Atomic file writes: write to a temporary file beside the target, then rename over it.

The final file gets the mode an ordinary ``open(target, "w")`` would give it, ``0o666`` less the
process umask (``tempfile.mkstemp`` creates ``0o600`` files, which group members on shared
storage could not read).

The temporary file is hidden and named ``.<target name>.<host>.<pid>.<random><suffix>.tmp``: a
writer killed outright (SIGKILL, a node lost) leaves it behind, and the next write of the same
target on that host removes it once its process is gone (a live writer's file is left alone).
``.dvcignore`` keeps such files out of DVC's outputs.
"""

from __future__ import annotations

import contextlib
import os
import platform
import re
import secrets
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


def _host() -> str:
    """This machine's name as it appears in temporary file names (letters, digits, ``-``)."""
    return re.sub(r"[^A-Za-z0-9-]", "-", platform.node()) or "host"


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this machine (one of another user counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temps(target: str | os.PathLike) -> list[Path]:
    """Remove the temporary files of ``target`` that a writer on this host left behind when it was
    killed (its pid no longer runs); return them. Other hosts' files and live writers' are kept."""
    target = Path(target)
    pattern = re.compile(
        rf"\.{re.escape(target.name)}\.{re.escape(_host())}\.(\d+)\.[A-Za-z0-9_]+{re.escape(target.suffix)}\.tmp"
    )
    removed = []
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        for entry in os.scandir(target.parent):
            match = pattern.fullmatch(entry.name)
            if match and int(match[1]) != os.getpid() and not _alive(int(match[1])):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
    return removed


def _naming(err: OSError, target: Path, tmp: str | None) -> OSError:
    """``err`` naming ``target`` where it named no file or the temporary one."""
    if err.filename is not None and err.filename != tmp:
        return err
    if err.errno is None:
        return OSError(f"{target}: {err}")
    return OSError(err.errno, err.strerror or str(err), str(target))


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; on success rename it to ``target`` with mode
    ``0o666 & ~umask``.

    On any exception the temporary file is removed and ``target`` is left untouched; an OSError
    names ``target`` (not the temporary file).
    """
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:  # e.g. a regular file in the way, a read-only folder
        raise OSError(err.errno, f"{target}: cannot create its folder ({err.strerror})", err.filename) from err
    tmp = None
    try:
        remove_stale_temps(target)
        fd, tmp = tempfile.mkstemp(
            prefix=f".{target.name}.{_host()}.{os.getpid()}.", suffix=target.suffix + ".tmp", dir=target.parent
        )
        os.close(fd)
        yield Path(tmp)
        # the writer may have replaced the file: chmod the path, not the fd; a filesystem without
        # modes (e.g. some CIFS/FAT mounts) refuses chmod and sets them by its mount options
        with contextlib.suppress(PermissionError, NotImplementedError):
            os.chmod(tmp, file_mode())
        os.replace(tmp, target)
    except BaseException as err:
        if tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        named = _naming(err, target, tmp) if isinstance(err, OSError) else err
        if named is not err:
            raise named from err
        raise


@contextlib.contextmanager
def atomic_paths(*targets: str | os.PathLike) -> Iterator[list[Path]]:
    """Temporary paths of several targets (:func:`atomic_path`), renamed over them one after another
    once all are written: an exception while writing leaves every target untouched (the renames
    themselves are not one atomic step)."""
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(atomic_path(t)) for t in targets]


def write_texts(texts: dict[str | os.PathLike, str]) -> None:
    """Write each text (UTF-8) to its target (:func:`atomic_paths`): none is replaced unless all are
    written."""
    with atomic_paths(*texts) as tmps:
        for tmp, text in zip(tmps, texts.values(), strict=True):
            tmp.write_text(text, encoding="utf-8")


def atomic_symlink(link: str | os.PathLike, target: str) -> None:
    """Make ``link`` a symlink to ``target`` (as given: relative to the link's folder or absolute),
    replacing ``link`` in one rename unless it points there already; the temporary link is named
    and cleaned up like :func:`atomic_path`'s files."""
    link = Path(link)
    with contextlib.suppress(OSError):
        if os.readlink(link) == target:
            return
    remove_stale_temps(link)
    tmp = link.with_name(f".{link.name}.{_host()}.{os.getpid()}.{secrets.token_hex(4)}{link.suffix}.tmp")
    os.symlink(target, tmp)
    try:
        os.replace(tmp, link)
    except BaseException:
        tmp.unlink()
        raise


def write_text(target: str | os.PathLike, text: str) -> None:
    """Atomically write ``text`` (UTF-8) to ``target``."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
