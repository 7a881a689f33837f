"""Image I/O: modes are converted, bad files get a clear error, writes are atomic."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from builders import png_header
from PIL import Image

from metadip.core.atomic import atomic_path, write_text
from metadip.core.images import MAX_PIXELS, UnreadableImageError, bundled_image, load_image, read_rgb, save_png


def test_bundled_image_shape_range():
    x = bundled_image("astronaut", 64)
    assert x.shape == (3, 64, 64) and x.dtype == torch.float32 and x.min() >= 0 and x.max() <= 1
    assert bundled_image("camera", 32, channels=1).shape == (1, 32, 32)
    with pytest.raises(ValueError, match="unknown bundled image"):
        bundled_image("lena")


def test_png_round_trip_is_exact_on_8_bit_values(tmp_path):
    x = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (3, 9, 7)).astype(np.float32) / 255)
    save_png(x, tmp_path / "a.png")
    assert torch.equal(load_image(tmp_path / "a.png"), x)


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "I;16"])
def test_modes_are_converted(tmp_path, mode):
    rgb = Image.fromarray(np.random.default_rng(1).integers(0, 256, (8, 8, 3), dtype=np.uint8))
    img = rgb.convert("L").convert("I;16") if mode == "I;16" else rgb.convert(mode)
    img.save(tmp_path / "m.png")
    assert load_image(tmp_path / "m.png").shape == (3, 8, 8)
    assert load_image(tmp_path / "m.png", channels=1).shape == (1, 8, 8)


def test_exif_orientation_is_applied(tmp_path):
    img = Image.fromarray(np.zeros((4, 10, 3), dtype=np.uint8))
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90° clockwise when displayed
    img.save(tmp_path / "r.jpg", exif=exif)
    assert load_image(tmp_path / "r.jpg").shape == (3, 10, 4)


def test_unreadable_and_missing_files(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"not an image at all")
    with pytest.raises(ValueError, match=r"bad\.png: not a readable image"):
        load_image(tmp_path / "bad.png")
    with pytest.raises(FileNotFoundError, match="no such image file"):
        load_image(tmp_path / "none.png")


@pytest.mark.timeout(20)
def test_a_fifo_folder_or_device_is_refused_without_opening_it(tmp_path):
    os.mkfifo(tmp_path / "pipe.png")  # opening it for reading would wait for a writer
    for path, kind in ((tmp_path / "pipe.png", "a FIFO"), (tmp_path, "a folder"), ("/dev/null", "a device")):
        with pytest.raises(UnreadableImageError, match=rf"^{path}: not a regular file \({kind}\)"):
            read_rgb(path)


@pytest.mark.parametrize(("side", "size"), [(10_000, "10000x10000 = 100000000 pixels"), (20_000, "more than")])
def test_an_image_over_the_pixel_limit_is_refused_before_decoding(tmp_path, recwarn, side, size):
    png_header(tmp_path / "huge.png", side, side)
    with pytest.raises(UnreadableImageError, match=rf"huge\.png: {size}.* over the limit of {MAX_PIXELS} pixels"):
        read_rgb(tmp_path / "huge.png")
    assert not [w for w in recwarn if issubclass(w.category, Image.DecompressionBombWarning)]


def test_the_pixel_limit_is_a_parameter(tmp_path):
    save_png(torch.zeros(3, 10, 10), tmp_path / "small.png")
    assert read_rgb(tmp_path / "small.png", max_pixels=100).shape == (10, 10, 3)
    with pytest.raises(UnreadableImageError, match=r"small\.png: 10x10 = 100 pixels, over the limit of 99 pixels"):
        read_rgb(tmp_path / "small.png", max_pixels=99)


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    write_text(target, "old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash mid-write")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]
