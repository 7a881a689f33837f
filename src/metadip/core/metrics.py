"""Image-quality metrics, computed per image on tensors of shape ``(..., C, H, W)``.

Conventions (docs/method.md): images in [0, 1]; the *estimate* is clipped to [0, 1]; PSNR uses data
range 1; averages over a dataset are means of per-image values.
"""

from __future__ import annotations

import numpy as np
import torch
from skimage.metrics import structural_similarity
from torch import Tensor


def _check_pair(estimate: Tensor, reference: Tensor) -> None:
    if estimate.shape != reference.shape or estimate.dim() < 3:
        raise ValueError(
            f"metric needs two images of equal shape (..., C, H, W); got {tuple(estimate.shape)} and "
            f"{tuple(reference.shape)}"
        )


def mse(estimate: Tensor, reference: Tensor) -> Tensor:
    """Mean squared error per image of the clipped estimate, shape ``(...)``."""
    _check_pair(estimate, reference)
    d = estimate.detach().clamp(0, 1).double() - reference.detach().double()
    return d.pow(2).flatten(start_dim=d.dim() - 3).mean(-1)


def psnr(estimate: Tensor, reference: Tensor) -> Tensor:
    """PSNR in dB with data range 1, per image, shape ``(...)``; ``inf`` for identical images."""
    return -10.0 * torch.log10(mse(estimate, reference))


def nmse(estimate: Tensor, reference: Tensor) -> Tensor:
    """Normalised MSE ‖x̂ − x‖² / ‖x‖² per image (clipped estimate), shape ``(...)``."""
    ref = reference.detach().double()
    energy = ref.pow(2).flatten(start_dim=ref.dim() - 3).mean(-1)
    return mse(estimate, reference) / energy


def quality_trace(errors: Tensor, reference: Tensor) -> dict[str, list[float]]:
    """PSNR and NMSE lists from per-step :func:`mse` values ``errors`` (shape ``(steps,)``, NaN where
    a step was not read) of estimates of one ``reference`` image: one host transfer for the run."""
    ref = reference.detach().double()
    energy = ref.pow(2).mean()
    return {"psnr": (-10.0 * torch.log10(errors)).tolist(), "nmse": (errors / energy).tolist()}


def ssim(estimate: Tensor, reference: Tensor) -> Tensor:
    """SSIM (scikit-image, Gaussian-free 7×7 window, data range 1) per image, shape ``(...)``."""
    _check_pair(estimate, reference)
    est = estimate.detach().clamp(0, 1).cpu().double().numpy()
    ref = reference.detach().cpu().double().numpy()
    lead = est.shape[:-3]
    flat_e = est.reshape(-1, *est.shape[-3:])
    flat_r = ref.reshape(-1, *ref.shape[-3:])
    vals = [structural_similarity(e, r, data_range=1.0, channel_axis=0) for e, r in zip(flat_e, flat_r, strict=True)]
    return torch.from_numpy(np.asarray(vals, dtype=np.float64).reshape(lead))
