"""Curate a dataset of square crops (train / val / test) from the configured sources.

Deterministic under the seed; splits are by *source image* (no crop of a test image is ever in
training); the output is written to a temporary folder and swapped in at the end, so a failure
never leaves a half-written dataset.  Output folder::

    {split}-{k:03d}.npy   uint8 (N, S, S, 3) shards, S = crop_size
    manifest.parquet      one row per crop (id, split, shard, index, collection, source_file,
                          source_sha256, box_x0..box_y1 in source pixels, scale, texture_std);
                          its schema metadata records the crop size, the row count and each
                          shard's split, shape, dtype, bytes and sha256 (checked by every reader:
                          :mod:`metadip.datasets.store`)
    preview-{split}.png   a grid of the first crops of each split
    skipped.csv           every source file not used, with the reason (for a folder source: every
                          match of its pattern that is not a folder, i.e. also dangling symlinks,
                          symlink loops, special and non-image files)
    summary.json          counts per split and collection, texture-filter rejections, config hash

Rules for bad input: unreadable / corrupt / missing files, dangling symlinks, symlink loops,
non-image files, images smaller than the crop (after downscaling) and duplicates (same sha256 as
an earlier file; the first by collection order then name is kept) are skipped with a logged
reason; grey / palette / RGBA / 16-bit / EXIF-rotated images are converted
(:func:`metadip.core.images.read_rgb`).  A required source with no images, a split that receives no
usable image, or a bad config stops with a one-line error.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import math
import os
import shutil
import stat
import tempfile
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from PIL import Image

from metadip.core.atomic import dir_mode
from metadip.core.errors import InputError
from metadip.core.hashing import config_hash, file_sha256
from metadip.core.images import UnreadableImageError, open_image, read_rgb
from metadip.core.progress_bars import progress
from metadip.datasets.sources import SourceImage, scan_source, unusable_reason
from metadip.datasets.store import MANIFEST_SCHEMA, write_manifest

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
TEXTURE_ATTEMPTS = 50  # redraws per patch before the most textured candidate is kept


class CurationError(InputError):
    """Curation cannot produce the requested dataset (the message says what to change)."""


@dataclass
class _Candidate:
    """A decodable, large-enough, unique source image and its split."""

    image: SourceImage
    sha256: str
    width: int  # after EXIF orientation, before downscaling
    height: int
    source_index: int
    split: str = ""


@dataclass
class _Crop:
    pixels: np.ndarray  # (S, S, 3) uint8
    collection: str
    source_file: str
    sha256: str
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in source pixels
    scale: float
    texture_std: float


def _rng(*keys: int | str) -> np.random.Generator:
    """Independent generator for a tuple of keys (strings hashed), stable across runs and machines."""
    ints = [k if isinstance(k, int) else int(hashlib.sha256(k.encode()).hexdigest()[:16], 16) for k in keys]
    return np.random.default_rng(np.random.SeedSequence(ints))


def _grey_std(patch: np.ndarray) -> float:
    grey = patch.astype(np.float64) @ np.array([0.299, 0.587, 0.114]) / 255.0
    return float(grey.std())


def _resize(img: Image.Image, width: int, height: int) -> Image.Image:
    return img.resize((width, height), Image.Resampling.LANCZOS)


def _scaled_size(width: int, height: int, scale: float) -> tuple[int, int]:
    return max(1, round(width * scale)), max(1, round(height * scale))


def curate_dataset(
    name: str,
    dataset: dict[str, Any],
    crop_size: int,
    seed: int,
    shard_size: int,
    preview_crops: int,
    out_dir: str | os.PathLike,
    show_progress: bool = True,
    step_hash: str | None = None,
) -> dict[str, Any]:
    """Curate one dataset (a ``curate.datasets.<name>`` config entry) into ``out_dir``; return the
    summary (written as ``summary.json``, with ``step_hash``: the workflow step's record)."""
    out_dir = Path(out_dir)
    skipped: list[tuple[str, str, str]] = []
    candidates = _candidates(dataset, crop_size, skipped, show_progress)
    _assign_splits(candidates, dataset, seed, name)
    crops: dict[str, list[_Crop]] = {}
    rejections = 0
    for split in SPLITS:
        crops[split], rej = _draw_split(name, split, candidates, dataset, crop_size, seed, skipped, show_progress)
        rejections += rej
    summary = _summary(name, dataset, crop_size, seed, candidates, crops, skipped, rejections)
    if step_hash is not None:
        summary["step_hash"] = step_hash
    _write(out_dir, name, crops, skipped, summary, crop_size, shard_size, preview_crops)
    return summary


# -- step 1: list, hash, validate, deduplicate -----------------------------------------------------


def _candidates(dataset: dict[str, Any], crop_size: int, skipped: list, show_progress: bool) -> list[_Candidate]:
    seen: dict[str, str] = {}
    out: list[_Candidate] = []
    for si, source in enumerate(dataset["sources"]):
        images, unusable = scan_source(source)
        skipped += unusable
        center = source.get("mode", "patches") == "center"
        scale = source.get("scale", 1.0)
        for img in progress(images, desc=f"check {source['name']}", enabled=show_progress):
            try:
                if not stat.S_ISREG(img.path.stat().st_mode):  # a FIFO's read would wait for a writer
                    skipped.append((img.collection, img.name, "not a regular file"))
                    continue
                sha = file_sha256(img.path)
            except OSError as err:  # missing, dangling or looping symlink, no permission, ...
                skipped.append((img.collection, img.name, unusable_reason(img.path, err)))
                continue
            if sha in seen:
                skipped.append((img.collection, img.name, f"duplicate of {seen[sha]} (same sha256)"))
                continue
            try:
                if center:  # decoded when drawn; only the header is read here
                    size = _header_size(img.path)
                else:
                    h, w, _ = read_rgb(img.path).shape
                    size = (w, h)
            except UnreadableImageError as err:
                skipped.append((img.collection, img.name, f"unreadable image ({str(err).split(': ', 1)[-1]})"))
                continue
            if center:
                need = max(source.get("center_crop") or 0, crop_size)
                ok, have = min(size) >= need, f"{size[0]}x{size[1]}"
            else:
                need, scaled = crop_size, _scaled_size(size[0], size[1], scale)
                ok, have = min(scaled) >= need, f"{size[0]}x{size[1]} (x{scale} = {scaled[0]}x{scaled[1]})"
            if not ok:
                skipped.append((img.collection, img.name, f"too small: {have} < {need} px"))
                continue
            seen[sha] = f"{img.collection}:{img.name}"
            out.append(_Candidate(img, sha, size[0], size[1], si))
    return out


def _header_size(path: Path) -> tuple[int, int]:
    """(width, height) as displayed (EXIF orientation applied), from the header; raises
    :class:`UnreadableImageError` like :func:`read_rgb`."""
    try:
        with open_image(path) as im:
            w, h = im.size
            orientation = im.getexif().get(0x0112, 1)
            return (h, w) if orientation in (5, 6, 7, 8) else (w, h)
    except UnreadableImageError:
        raise
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        raise UnreadableImageError(f"{path}: not a readable image ({err})") from None


# -- step 2: split by source image ------------------------------------------------------------------


def _assign_splits(candidates: list[_Candidate], dataset: dict[str, Any], seed: int, name: str) -> None:
    """Fixed splits (CelebA) are kept; the rest are split per collection by a seeded hash order:
    the first round(f_test·N) images go to test, the next round(f_val·N) to val, the rest to train
    (at least one image per split whose fraction and crop count are > 0, when there are enough; a
    dataset that only serves evaluation may give train nothing: fraction or crop count 0)."""
    fractions = dataset.get("split_fractions", {"train": 0.6, "val": 0.2, "test": 0.2})
    total = sum(fractions.get(s, 0) for s in SPLITS)
    if total <= 0:
        raise CurationError(f"dataset '{name}': split_fractions must not all be 0")
    by_collection: dict[str, list[_Candidate]] = defaultdict(list)
    for c in candidates:
        if c.image.split is not None:
            c.split = c.image.split
        else:
            by_collection[c.image.collection].append(c)
    for collection, group in by_collection.items():
        group.sort(key=lambda c: hashlib.sha256(f"{seed}:{collection}:{c.sha256}".encode()).hexdigest())
        n = len(group)
        wanted = [s for s in ("test", "val") if fractions.get(s, 0) > 0 and dataset["crops"][s] > 0]
        counts = {s: round(fractions.get(s, 0) / total * n) for s in ("test", "val")}
        for s in wanted:
            counts[s] = max(counts[s], 1)
        keep_train = int(
            fractions.get("train", 0) > 0 and dataset["crops"]["train"] > 0
        )  # ≥ 1 image when train is wanted
        while counts["test"] + counts["val"] > n - keep_train and counts["test"] + counts["val"] > 0:
            bigger = "test" if counts["test"] >= counts["val"] else "val"
            counts[bigger] -= 1
            if n == 1:
                break
        cursor = 0
        for s in ("test", "val"):
            for c in group[cursor : cursor + counts[s]]:
                c.split = s
            cursor += counts[s]
        for c in group[cursor:]:
            c.split = "train"


# -- step 3: draw the crops of a split --------------------------------------------------------------


def _largest_remainder(total: int, weights: list[float]) -> list[int]:
    if not weights:
        return []
    raw = [total * w / sum(weights) for w in weights]
    counts = [math.floor(r) for r in raw]
    for i in sorted(range(len(raw)), key=lambda i: (counts[i] - raw[i], i))[: total - sum(counts)]:
        counts[i] += 1
    return counts


def _draw_split(
    name: str,
    split: str,
    candidates: list[_Candidate],
    dataset: dict[str, Any],
    crop_size: int,
    seed: int,
    skipped: list,
    show_progress: bool,
) -> tuple[list[_Crop], int]:
    wanted = dataset["crops"][split]
    if wanted == 0:
        return [], 0
    sources = dataset["sources"]
    pools = {si: [c for c in candidates if c.split == split and c.source_index == si] for si in range(len(sources))}
    active = [si for si in pools if pools[si]]
    if not active:
        raise CurationError(
            f"dataset '{name}': no usable source image for split '{split}' ({wanted} crops requested); "
            "add images, change split_fractions or set crops.{split}: 0".replace("{split}", split)
        )
    counts = dict(
        zip(active, _largest_remainder(wanted, [sources[si].get("weight", 1.0) for si in active]), strict=True)
    )
    crops: list[_Crop] = []
    rejections = 0
    for si in active:
        source = sources[si]
        pool = pools[si]
        rng = _rng(seed, name, split, source["name"])
        if source.get("mode", "patches") == "center":
            crops += _draw_center(pool, counts[si], source, crop_size, rng, skipped, show_progress)
        else:
            got, rej = _draw_patches(
                pool, counts[si], source, crop_size, dataset.get("min_std", 0.0), seed, rng, show_progress
            )
            crops += got
            rejections += rej
    if not crops:
        raise CurationError(f"dataset '{name}': every source image of split '{split}' was unreadable")
    return crops, rejections


def _draw_patches(
    pool: list[_Candidate],
    count: int,
    source: dict[str, Any],
    crop_size: int,
    min_std: float,
    seed: int,
    rng: np.random.Generator,
    show_progress: bool,
) -> tuple[list[_Crop], int]:
    """Random patches, uniform over all patch positions of the pool (images weighted by area)."""
    scale = source.get("scale", 1.0)
    sizes = [_scaled_size(c.width, c.height, scale) for c in pool]
    positions = np.array([(w - crop_size + 1) * (h - crop_size + 1) for w, h in sizes], dtype=np.float64)
    per_image = rng.multinomial(count, positions / positions.sum())
    crops, rejections = [], 0
    for c, (w, h), k in progress(
        list(zip(pool, sizes, per_image, strict=True)), desc=f"crop {source['name']}", enabled=show_progress
    ):
        if k == 0:
            continue
        img = Image.fromarray(read_rgb(c.image.path))
        if (w, h) != img.size:
            img = _resize(img, w, h)
        arr = np.asarray(img)
        fx, fy = c.width / w, c.height / h  # scaled → source pixel coordinates
        img_rng = _rng(seed, c.sha256, source["name"])
        for _ in range(k):
            best = None
            for _attempt in range(TEXTURE_ATTEMPTS):
                x, y = int(img_rng.integers(0, w - crop_size + 1)), int(img_rng.integers(0, h - crop_size + 1))
                patch = arr[y : y + crop_size, x : x + crop_size]
                std = _grey_std(patch)
                if best is None or std > best[0]:
                    best = (std, x, y, patch)
                if std >= min_std:
                    break
                rejections += 1
            std, x, y, patch = best
            crops.append(
                _Crop(
                    np.ascontiguousarray(patch),
                    c.image.collection,
                    c.image.name,
                    c.sha256,
                    (x * fx, y * fy, (x + crop_size) * fx, (y + crop_size) * fy),
                    1 / fx,
                    std,
                )
            )
    return crops, rejections


def _draw_center(
    pool: list[_Candidate],
    count: int,
    source: dict[str, Any],
    crop_size: int,
    rng: np.random.Generator,
    skipped: list,
    show_progress: bool,
) -> list[_Crop]:
    """One central square crop per image, from a seeded random subset of ``count`` images
    (unreadable ones are skipped and replaced by the next in the random order)."""
    order = rng.permutation(len(pool))
    crops: list[_Crop] = []
    bar = progress(total=min(count, len(pool)), desc=f"crop {source['name']}", enabled=show_progress, iterable=None)
    for i in order:
        if len(crops) == count:
            break
        c = pool[int(i)]
        try:
            arr = read_rgb(c.image.path)
        except (UnreadableImageError, FileNotFoundError) as err:
            skipped.append((c.image.collection, c.image.name, f"unreadable image ({str(err).split(': ', 1)[-1]})"))
            continue
        h, w, _ = arr.shape
        side = source.get("center_crop") or min(h, w)
        x0, y0 = (w - side) // 2, (h - side) // 2
        square = Image.fromarray(arr[y0 : y0 + side, x0 : x0 + side])
        patch = np.asarray(_resize(square, crop_size, crop_size) if side != crop_size else square)
        crops.append(
            _Crop(
                np.ascontiguousarray(patch),
                c.image.collection,
                c.image.name,
                c.sha256,
                (float(x0), float(y0), float(x0 + side), float(y0 + side)),
                crop_size / side,
                _grey_std(patch),
            )
        )
        bar.update(1)
    bar.close()
    crops.sort(key=lambda cr: cr.source_file)
    return crops


# -- step 4: write atomically ------------------------------------------------------------------------


def _summary(name, dataset, crop_size, seed, candidates, crops, skipped, rejections) -> dict[str, Any]:
    return {
        "dataset": name,
        "crop_size": crop_size,
        "seed": seed,
        "config_hash": config_hash({"dataset": dataset, "crop_size": crop_size, "seed": seed}),
        "crops": {s: len(crops[s]) for s in SPLITS},
        "crops_by_collection": {s: dict(sorted(Counter(c.collection for c in crops[s]).items())) for s in SPLITS},
        "source_images": {s: sum(1 for c in candidates if c.split == s) for s in SPLITS},
        "skipped": len(skipped),
        "skipped_by_reason": dict(sorted(Counter(r.split(" (")[0].split(":")[0] for _, _, r in skipped).items())),
        "texture_filter": {"min_std": dataset.get("min_std", 0.0), "rejected_draws": rejections},
    }


def _write(
    out_dir: Path,
    name: str,
    crops: dict[str, list[_Crop]],
    skipped: list,
    summary: dict,
    crop_size: int,
    shard_size: int,
    preview_crops: int,
) -> None:
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    tmp.chmod(dir_mode())  # mkdtemp creates 0o700; give the folder the mode mkdir would
    try:
        columns: dict[str, list] = defaultdict(list)
        for split in SPLITS:
            items = crops[split]
            for k, start in enumerate(range(0, len(items), shard_size)):
                shard = f"{split}-{k:03d}.npy"
                chunk = items[start : start + shard_size]
                np.save(tmp / shard, np.stack([c.pixels for c in chunk]), allow_pickle=False)
                for j, c in enumerate(chunk):
                    columns["id"].append(f"{name}/{split}/{start + j:06d}")
                    columns["split"].append(split)
                    columns["shard"].append(shard)
                    columns["index"].append(j)
                    columns["collection"].append(c.collection)
                    columns["source_file"].append(c.source_file)
                    columns["source_sha256"].append(c.sha256)
                    for key, v in zip(("box_x0", "box_y0", "box_x1", "box_y1"), c.box, strict=True):
                        columns[key].append(v)
                    columns["scale"].append(c.scale)
                    columns["texture_std"].append(c.texture_std)
            if items:  # evenly spaced over the split, so every source image shows up
                picks = np.linspace(0, len(items) - 1, min(preview_crops, len(items))).round().astype(int)
                _preview([items[i].pixels for i in picks], tmp / f"preview-{split}.png")
        table = pa.table({f.name: columns[f.name] for f in MANIFEST_SCHEMA}, schema=MANIFEST_SCHEMA)
        write_manifest(tmp, table, crop_size)
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["collection", "source_file", "reason"])
        w.writerows(sorted(skipped))
        (tmp / "skipped.csv").write_text(buf.getvalue())
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
        _swap_in(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _swap_in(tmp: Path, out_dir: Path) -> None:
    """Replace ``out_dir`` by ``tmp`` (old content moved aside first, removed after the rename)."""
    old = None
    if out_dir.exists():
        old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
        os.replace(out_dir, old)
    os.replace(tmp, out_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _preview(patches: list[np.ndarray], path: Path, columns: int = 8) -> None:
    s = patches[0].shape[0]
    rows = math.ceil(len(patches) / columns)
    cols = min(columns, len(patches))
    pad = 2
    canvas = np.full((rows * (s + pad) + pad, cols * (s + pad) + pad, 3), 255, dtype=np.uint8)
    for i, p in enumerate(patches):
        r, c = divmod(i, columns)
        canvas[pad + r * (s + pad) : pad + r * (s + pad) + s, pad + c * (s + pad) : pad + c * (s + pad) + s] = p
    Image.fromarray(canvas).save(path, format="PNG")
