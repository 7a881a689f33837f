"""`metadip`: reconstruct an image in a few steps from a meta-init.

Examples (see `metadip reconstruct --help`)::

    # simulate compressive-sensing measurements of your photo and reconstruct them
    metadip reconstruct --init results/meta/metadip/meta_init --image photo.png \\
        --task cs_fast --ratio 0.25 --sigma 25 --out recon.png --save-measurement y.npy --save-operator op.safetensors

    # reconstruct measurements you already have (operator saved by the command above or by your code)
    metadip reconstruct --init results/meta/metadip/meta_init --measurement y.npy --operator op.safetensors --out recon.png
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from metadip.adapt import solve
from metadip.artifacts import ArtifactError, load_meta_init, read_sidecar
from metadip.atomic import atomic_path, write_text
from metadip.images import UnreadableImageError, load_image, save_png, square_resize, to_tensor
from metadip.metrics import psnr, ssim
from metadip.operators import OPERATORS, Operator, OperatorInputError, build_operator, load_operator, save_operator

DEFAULT_INIT = "results/meta/metadip/meta_init"  # where the pipeline writes (and `dvc pull` restores) MetaDIP's init


class CLIError(Exception):
    """A user error: printed as one line, exit status 1."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="metadip", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("reconstruct", help="reconstruct one image from measurements (given or simulated) with a meta-init",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    r.add_argument("--init", default=DEFAULT_INIT, help="meta-init: stem, .safetensors or .json (from meta-training or `dvc pull`)")
    src = r.add_mutually_exclusive_group(required=True)
    src.add_argument("--image", help="clean image to simulate measurements from (also the ground truth for PSNR/SSIM)")
    src.add_argument("--measurement", help=".npy file with a measurement of the operator's measurement shape")
    r.add_argument("--operator", help="operator file (.safetensors from --save-operator or metadip.operators.save_operator); "
                                      "without it the operator is built from --task/--ratio/--sigma/--operator-seed")
    r.add_argument("--task", choices=sorted(OPERATORS), default="denoising", help="measurement model")
    r.add_argument("--ratio", type=float, default=0.25, help="sampling ratio m/n (cs, pr)")
    r.add_argument("--sigma", type=float, default=25.0, help="noise level on the 0-255 scale")
    r.add_argument("--colour", choices=["joint", "shared"], default="joint", help="one A on the flattened colour image, or one per channel")
    r.add_argument("--operator-seed", type=int, default=0, help="seed of the operator's random matrix / signs / phases")
    r.add_argument("--noise-seed", type=int, default=1, help="seed of the simulated measurement noise")
    r.add_argument("--truth", help="ground-truth image for PSNR/SSIM when reconstructing a given --measurement")
    r.add_argument("--steps", type=int, help="inner steps (default: the meta-init's test-time steps, 50)")
    r.add_argument("--out", required=True, help="reconstructed image (PNG); a JSON report is written beside it")
    r.add_argument("--save-measurement", help="also save the simulated measurement (.npy)")
    r.add_argument("--save-operator", help="also save the operator (.safetensors)")
    r.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    return p


def _image(path: str, shape: tuple[int, int, int]) -> torch.Tensor:
    """Load an image and fit it to the meta-init's (C, H, W): central square crop, anti-aliased resize."""
    from PIL import Image

    c, h, w = shape
    if h != w:
        raise CLIError(f"meta-init image shape {shape} is not square")
    x = load_image(path, channels=c)
    if tuple(x.shape) != shape:
        img = Image.fromarray((x.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8).squeeze())
        x = to_tensor(square_resize(img, h))
    return x


def _operator(a: argparse.Namespace, shape: tuple[int, int, int]) -> Operator:
    if a.operator:
        try:
            op = load_operator(a.operator)
        except (FileNotFoundError, ValueError) as err:
            raise CLIError(str(err)) from None
        if op.image_shape != shape:
            raise CLIError(f"{a.operator}: operator for images {op.image_shape}, but the meta-init reconstructs {shape}")
        return op
    cfg = {"kind": a.task, "image_shape": shape, "sigma": a.sigma, "seed": a.operator_seed}
    if a.task != "denoising":
        cfg.update(ratio=a.ratio, colour=a.colour)
    try:
        return build_operator(cfg)
    except ValueError as err:
        raise CLIError(str(err)) from None


def reconstruct(a: argparse.Namespace) -> dict:
    try:
        model = load_meta_init(a.init)
        sidecar = read_sidecar(a.init)
    except ArtifactError as err:
        raise CLIError(str(err)) from None
    shape = tuple(model.prior.config.image_shape)
    steps = a.steps or sidecar.get("training_config", {}).get("outer", {}).get("test_steps", 50)
    if steps < 1:
        raise CLIError(f"--steps must be positive, got {steps}")
    op = _operator(a, shape)
    truth = None
    try:
        if a.image:
            truth = _image(a.image, shape)
            y = op.measure(truth, torch.Generator().manual_seed(a.noise_seed))
        else:
            path = Path(a.measurement)
            if not path.is_file():
                raise CLIError(f"{path}: measurement file not found")
            y = torch.from_numpy(np.load(path, allow_pickle=False)).float()
            if tuple(y.shape) != op.measurement_shape:
                raise CLIError(f"{path}: measurement of shape {tuple(y.shape)}, but the {op.kind} operator "
                               f"measures {op.measurement_shape}; check --task/--ratio/--colour or --operator")
            op.check_measurement(y)  # NaN / inf
            truth = _image(a.truth, shape) if a.truth else None
    except (OperatorInputError, UnreadableImageError, FileNotFoundError, ValueError) as err:
        raise CLIError(str(err)) from None
    if a.save_measurement:
        with atomic_path(a.save_measurement) as tmp:
            with open(tmp, "wb") as f:
                np.save(f, y.cpu().numpy(), allow_pickle=False)
    if a.save_operator:
        save_operator(op, a.save_operator)
    t = time.perf_counter()
    result = solve(model, op, y, steps, x_true=truth, device=a.device, show_progress=True)
    report = {"init": str(a.init), "operator": op.config(), "steps": steps, "seconds": round(time.perf_counter() - t, 3),
              "image_shape": list(shape), "output": str(a.out)}
    if truth is not None:
        report.update(psnr=round(float(psnr(result.estimate, truth)), 4), ssim=round(float(ssim(result.estimate, truth)), 4))
    save_png(result.estimate, a.out)
    write_text(Path(a.out).with_suffix(".json"), json.dumps(report, indent=2) + "\n")
    return report


def main(argv: list[str] | None = None) -> int:
    a = _parser().parse_args(argv)
    try:
        report = reconstruct(a)
    except CLIError as err:
        print(f"metadip: error: {err}", file=sys.stderr)
        return 1
    quality = f", PSNR {report['psnr']:.2f} dB, SSIM {report['ssim']:.3f}" if "psnr" in report else ""
    print(f"reconstructed {report['operator']['kind']} measurement in {report['steps']} steps ({report['seconds']:.1f} s){quality} "
          f"-> {report['output']} (+ {Path(report['output']).with_suffix('.json').name})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
