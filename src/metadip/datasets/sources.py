"""Source adapters: turn a source entry of the config into a list of :class:`SourceImage`.

* ``skimage`` — the photographs shipped inside the scikit-image wheel (public domain / CC0);
* ``folder`` — any folder of images (BSD, Waterloo Exploration, DIV2K, Flickr2K, the Debian
  ``lomiri-wallpapers-16.04`` photographs in /usr/share/backgrounds, ...);
* ``celeba`` — the aligned CelebA layout: ``img_align_celeba/*.jpg`` and
  ``list_eval_partition.txt`` (``<file> <0|1|2>`` = train / val / test), official split honoured.

Names recorded for each image are portable (relative to the collection root), never absolute
paths, so manifests are identical across machines.  A skimage or folder source may put all its images
in one split (``split: train``: photographs that only add training data, leaving the other
collections' val and test splits as they were).  :func:`scan_source` also returns the files a
folder source matched but cannot use (dangling symlinks, symlink loops, non-image files, ...) with
the reason, for ``skipped.csv``.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from metadip.core.errors import InputError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".ppm", ".pgm", ".webp"}

#: scikit-image's bundled photographs (RGB and grey); synthetic, microscopy, astronomy and the
#: right view of the stereo pair (a near-duplicate of the left one) are left out.
SKIMAGE_PHOTOGRAPHS = (
    "astronaut.png",
    "chelsea.png",
    "coffee.png",
    "rocket.jpg",
    "motorcycle_left.png",
    "camera.png",
    "moon.png",
    "coins.png",
    "clock_motion.png",
    "brick.png",
    "grass.png",
    "gravel.png",
)

CELEBA_SPLITS = {"0": "train", "1": "val", "2": "test"}


class SourceError(InputError):
    """A configured source cannot be used (missing folder, bad partition file, no images)."""


@dataclass(frozen=True)
class SourceImage:
    """One source photograph: ``name`` is its path relative to the collection root."""

    collection: str
    name: str
    path: Path
    split: str | None = None  # fixed by the collection (CelebA) or the source's `split`; None: assigned by curation


def list_source(source: dict[str, Any]) -> list[SourceImage]:
    """Images of one configured source, sorted by name. Raises :class:`SourceError` if unusable
    and ``required``; returns [] with a warning otherwise."""
    return scan_source(source)[0]


def scan_source(source: dict[str, Any]) -> tuple[list[SourceImage], list[tuple[str, str, str]]]:
    """(images, unusable files) of one configured source: the images as :func:`list_source`; the
    files that matched but are not images, as ``(collection, name, reason)`` (folder sources)."""
    if "split" in source and source["type"] == "celeba":
        raise SourceError(f"source '{source['name']}': split: CelebA keeps its official partition; remove the key")
    skipped: list[tuple[str, str, str]] = []
    try:
        images = _LISTERS[source["type"]](source, skipped)
        if "split" in source:  # every image of the source to one split (e.g. photographs that only train)
            images = [replace(img, split=source["split"]) for img in images]
        if not images:
            found = (
                f" ({len(skipped)} matching files unusable, e.g. {skipped[0][1]}: {skipped[0][2]})" if skipped else ""
            )
            raise SourceError(f"source '{source['name']}': no images found" + _where(source) + found)
        return images, skipped
    except SourceError as err:
        if source.get("required", True):
            raise
        log.warning("%s; skipped (required: false)", err)
        return [], skipped


def unusable_reason(path: Path, err: OSError) -> str:
    """Why ``path`` cannot be opened, for skipped.csv (``err``: what stat or open raised)."""
    if err.errno == errno.ELOOP:
        return "symlink loop"
    if path.is_symlink() and err.errno in (errno.ENOENT, errno.ENOTDIR):
        return f"dangling symlink (-> {os.readlink(path)})"
    if err.errno == errno.ENOENT:
        return "missing file"
    return f"unreadable file ({err.strerror or err})"


def _where(source: dict[str, Any]) -> str:
    return f" under {source['root']}" if source.get("root") else ""


def _skimage(source: dict[str, Any], skipped: list) -> list[SourceImage]:
    import skimage

    root = Path(skimage.__file__).parent / "data"
    return [SourceImage(source["name"], f, root / f) for f in SKIMAGE_PHOTOGRAPHS if (root / f).is_file()]


def _root(source: dict[str, Any]) -> Path:
    if not source.get("root"):
        raise SourceError(f"source '{source['name']}' of type {source['type']} needs a 'root' folder")
    root = Path(source["root"])
    if not root.is_dir():
        if "backgrounds/mate" in root.as_posix():
            hint = " (install the Debian package mate-backgrounds: apt-get install mate-backgrounds)"
        elif "backgrounds" in root.as_posix():
            hint = " (install the Debian package lomiri-wallpapers-16.04; scripts/setup.sh does when run as root)"
        else:
            hint = ""
        raise SourceError(f"source '{source['name']}': folder {root} does not exist{hint}")
    return root


def _folder(source: dict[str, Any], skipped: list) -> list[SourceImage]:
    """Every match of the pattern that is not a folder: the images, and in ``skipped`` the rest
    (dangling symlinks, symlink loops, unreadable entries, special files, other suffixes)."""
    root = _root(source)
    out = []
    for p in sorted(root.glob(source.get("pattern", "**/*"))):
        name = p.relative_to(root).as_posix()
        try:
            mode = p.stat().st_mode  # follows symlinks
        except OSError as err:
            skipped.append((source["name"], name, unusable_reason(p, err)))
            continue
        if stat.S_ISDIR(mode):
            continue
        if not stat.S_ISREG(mode):
            skipped.append((source["name"], name, "not a regular file"))
        elif p.suffix.lower() not in IMAGE_SUFFIXES:
            skipped.append(
                (
                    source["name"],
                    name,
                    f"not an image (suffix '{p.suffix}')" if p.suffix else "not an image (no suffix)",
                )
            )
        else:
            out.append(SourceImage(source["name"], name, p))
    return out


def _celeba(source: dict[str, Any], skipped: list) -> list[SourceImage]:
    root = _root(source)
    partition = root / "list_eval_partition.txt"
    images = root / "img_align_celeba"
    if not partition.is_file() or not images.is_dir():
        raise SourceError(
            f"source '{source['name']}': {root} is not the CelebA layout "
            "(expected img_align_celeba/ and list_eval_partition.txt)"
        )
    out = []
    for lineno, line in enumerate(partition.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or parts[1] not in CELEBA_SPLITS:
            raise SourceError(f"{partition}:{lineno}: expected '<file>.jpg <0|1|2>', got {line!r}")
        out.append(SourceImage(source["name"], parts[0], images / parts[0], CELEBA_SPLITS[parts[1]]))
    return sorted(out, key=lambda s: s.name)


_LISTERS = {"skimage": _skimage, "folder": _folder, "celeba": _celeba}
