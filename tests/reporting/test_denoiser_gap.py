"""DRUNet-against-BM3D validation scores: seeded noise per image, paired differences, the table."""

from __future__ import annotations

import torch

from metadip.reporting.denoiser_gap import denoiser_psnr, gap_rows, noisy_images, to_markdown


def test_noise_of_an_image_does_not_depend_on_how_many_are_drawn():
    images = torch.rand(4, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    assert torch.equal(noisy_images(images, 25, 0)[:2], noisy_images(images[:2], 25, 0))
    assert not torch.equal(noisy_images(images, 25, 0), noisy_images(images, 25, 1))
    assert not torch.equal(noisy_images(images, 15, 0)[0] - images[0], (noisy_images(images, 25, 0)[0] - images[0]))
    noise = noisy_images(torch.zeros(64, 3, 16, 16), 25, 0)
    assert abs(float(noise.std()) - 25 / 255) < 0.002


def test_paired_difference_against_the_reference():
    images = torch.rand(6, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    denoisers = {
        "noisy": lambda x, s: x,  # the reference: no denoising at all
        "same": lambda x, s: x.clone(),
        "halfway": lambda x, s: 0.5 * x + 0.5 * x.mean(),
    }
    scores = denoiser_psnr(images, [15.0, 50.0], denoisers, seed=0)
    photos = ["a", "a", "b", "b", "c", "c"]
    rows = gap_rows(scores, photos, "d", reference="noisy")
    assert [(r["denoiser"], r["sigma"]) for r in rows] == [
        ("same", 15.0),
        ("same", 50.0),
        ("halfway", 15.0),
        ("halfway", 50.0),
    ]
    same = rows[0]["difference"]
    assert same["mean"] == 0 and same["ci_low"] == 0 and same["ci_high"] == 0
    assert same["n_images"] == 6 and same["n_photos"] == 3
    # the noisy input at sigma 15 is 24.6 dB before clipping (which only lowers the error); worse at 50
    assert 24.5 < rows[0]["noisy_psnr"] < 25.5 and rows[1]["noisy_psnr"] < rows[0]["noisy_psnr"] - 5
    assert abs(rows[2]["difference"]["mean"] - (rows[2]["psnr"] - rows[2]["noisy_psnr"])) < 2e-3
    table = to_markdown(rows, "noisy")
    assert "| noisy | " in table and "σ=15 d" in table and "n=6/3" in table
