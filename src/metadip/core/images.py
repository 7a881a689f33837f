"""Image I/O: bundled test photographs, PNG read/write, conversion to (C, H, W) float32 in [0, 1]."""

from __future__ import annotations

import os
import stat
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import Tensor

from metadip.core.atomic import atomic_path
from metadip.core.errors import InputError

#: Photographs shipped inside the scikit-image wheel (public domain / CC0), usable offline.
BUNDLED = ("astronaut", "chelsea", "coffee", "rocket", "camera", "brick", "grass", "gravel")

#: Most pixels (width x height) of an image that is read: 8192 x 8192, far above the photographs
#: the datasets crop from; a larger one would take gigabytes and minutes to decode. PIL's own
#: decompression-bomb check (it refuses twice this outright) uses the same limit.
MAX_PIXELS = 8192 * 8192
Image.MAX_IMAGE_PIXELS = MAX_PIXELS


def to_tensor(img: Image.Image | np.ndarray) -> Tensor:
    """PIL image or uint8 HWC/HW array → float32 ``(C, H, W)`` in [0, 1]."""
    arr = np.asarray(img)
    if arr.dtype != np.uint8:
        raise ValueError(f"expected an 8-bit image, got dtype {arr.dtype}")
    if arr.ndim == 2:
        arr = arr[..., None]
    return torch.from_numpy(arr.astype(np.float32) / 255.0).permute(2, 0, 1).contiguous()


def to_uint8(x: Tensor) -> np.ndarray:
    """``(C, H, W)`` float image → uint8 HWC (or HW for one channel), clipped and rounded."""
    arr = (x.detach().clamp(0, 1).cpu().numpy() * 255.0).round().astype(np.uint8).transpose(1, 2, 0)
    return arr[..., 0] if arr.shape[-1] == 1 else arr


def square_resize(img: Image.Image, size: int) -> Image.Image:
    """Central square crop, then an anti-aliased (Lanczos) resize to ``size`` × ``size``."""
    return ImageOps.fit(img, (size, size), method=Image.Resampling.LANCZOS)


def bundled_image(name: str = "astronaut", size: int = 64, channels: int = 3) -> Tensor:
    """A scikit-image test photograph as ``(channels, size, size)`` float32 in [0, 1]."""
    import skimage.data

    if name not in BUNDLED:
        raise ValueError(f"unknown bundled image {name!r}; choose one of {', '.join(BUNDLED)}")
    img = Image.fromarray(getattr(skimage.data, name)())
    img = img.convert("RGB" if channels == 3 else "L")
    return to_tensor(square_resize(img, size))


class UnreadableImageError(InputError):
    """An image file cannot be decoded (corrupt, truncated, unsupported format or pixel type)."""


def _require_regular_file(path: Path) -> None:
    """Raise ``FileNotFoundError``, or :class:`UnreadableImageError` for a folder, FIFO, socket or
    device (opening a FIFO would wait for a writer forever)."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such image file") from None
    if not stat.S_ISREG(mode):
        kinds = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"))
        kind = next((name for test, name in kinds if test(mode)), "a device")
        raise UnreadableImageError(f"{path}: not a regular file ({kind}); give an image file")


def open_image(path: str | os.PathLike, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """The image file opened by PIL (header read, pixels not yet decoded). Raises
    ``FileNotFoundError``, or :class:`UnreadableImageError` for a file that is not a regular file
    (a FIFO, a folder, a device) or an image of more than ``max_pixels`` pixels (at most
    :data:`MAX_PIXELS`), naming its size and the limit; PIL's errors for other unreadable files
    pass through."""
    path = Path(path)
    _require_regular_file(path)
    fix = "downscale or crop it"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the size check below reports it
        try:
            opened = Image.open(path)
        except Image.DecompressionBombError:
            raise UnreadableImageError(
                f"{path}: more than {2 * Image.MAX_IMAGE_PIXELS} pixels, over the limit of {max_pixels} pixels; {fix}"
            ) from None
    w, h = opened.size
    if w * h > max_pixels:
        opened.close()
        raise UnreadableImageError(f"{path}: {w}x{h} = {w * h} pixels, over the limit of {max_pixels} pixels; {fix}")
    return opened


def read_rgb(path: str | os.PathLike, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode an image file as uint8 RGB ``(H, W, 3)``, with these stated conversion rules:

    EXIF orientation is applied; grey, palette, CMYK and 1-bit images are converted to RGB (grey
    replicated); alpha is dropped (RGBA/LA/PA → RGB values as stored); 16-bit images are scaled by
    255/65535.  Raises ``FileNotFoundError`` or :class:`UnreadableImageError` naming the file, the
    latter before anything is decoded for a file :func:`open_image` refuses.
    """
    path = Path(path)
    try:
        with open_image(path, max_pixels) as opened:
            opened.load()
            im = ImageOps.exif_transpose(opened)
            if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                arr = np.asarray(im, dtype=np.float64)
                if arr.min() < 0 or arr.max() > 65535:
                    raise UnreadableImageError(f"{path}: integer pixels outside 0..65535; convert it to 8- or 16-bit")
                im = Image.fromarray(np.round(arr * (255.0 / 65535.0)).astype(np.uint8))
            elif im.mode == "F":
                raise UnreadableImageError(f"{path}: floating-point pixels are not supported; convert it to 8-bit")
            elif im.mode == "P" and "transparency" in im.info:
                im = im.convert("RGBA")
            return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such image file") from None
    except UnreadableImageError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        raise UnreadableImageError(f"{path}: not a readable image ({err}); re-export it as PNG or JPEG") from None


def load_image(path: str | os.PathLike, channels: int = 3) -> Tensor:
    """Read an image file (rules of :func:`read_rgb`) as ``(channels, H, W)`` float32 in [0, 1]."""
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grey) or 3 (RGB), got {channels}")
    rgb = Image.fromarray(read_rgb(path))
    return to_tensor(rgb if channels == 3 else rgb.convert("L"))


def save_png(x: Tensor, path: str | os.PathLike) -> None:
    """Write a ``(C, H, W)`` image in [0, 1] as an 8-bit PNG, atomically."""
    with atomic_path(path) as tmp:
        Image.fromarray(to_uint8(x)).save(tmp, format="PNG")


def resize_images(x: Tensor, size: int) -> Tensor:
    """Anti-aliased bilinear resize of ``(N, C, H, W)`` images to ``size`` × ``size`` (no-op if equal)."""
    if x.shape[-2:] == (size, size):
        return x
    return torch.nn.functional.interpolate(
        x, size=(size, size), mode="bilinear", antialias=True, align_corners=False
    ).clamp(0, 1)
