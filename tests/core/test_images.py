"""Image I/O: modes are converted, bad files get a clear error, writes are atomic."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from metadip.core.atomic import atomic_path, write_text
from metadip.core.images import bundled_image, load_image, save_png


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


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    write_text(target, "old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash mid-write")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]
