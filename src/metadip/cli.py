"""`metadip`: reconstruct an image in a few steps from a meta-init.

Examples (see `metadip reconstruct --help`)::

    # simulate compressive-sensing measurements of your photo and reconstruct them
    metadip reconstruct --init results/meta/metadip/meta_init --image photo.png \\
        --task cs_fast --ratio 0.25 --sigma 25 --out recon.png --save-measurement y.npy --save-operator op.safetensors

    # reconstruct measurements you already have (operator saved by the command above or by your code)
    metadip reconstruct --init results/meta/metadip/meta_init --measurement y.npy --operator op.safetensors \\
        --out recon.png
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from metadip.core.atomic import atomic_path, write_text
from metadip.core.images import (
    UnreadableImageError,
    load_image,
    save_png,
    square_resize,
    to_tensor,
    to_uint8,
)
from metadip.core.metrics import psnr, ssim
from metadip.meta.inner_loop import solve
from metadip.physics.operators import (
    OPERATORS,
    Operator,
    OperatorInputError,
    build_operator,
    load_operator,
    save_operator,
)
from metadip.pipeline.artifacts import (
    ArtifactError,
    artifact_paths,
    load_meta_init,
    read_sidecar,
)

DEFAULT_INIT = "results/meta/metadip/meta_init"  # where the pipeline writes (and `dvc pull` restores) MetaDIP's init


class CLIError(Exception):
    """A user error: printed as one line, exit status 1."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="metadip", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser(
        "reconstruct",
        help="reconstruct one image from measurements (given or simulated) with a meta-init",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    r.add_argument(
        "--init", default=DEFAULT_INIT, help="meta-init: stem, .safetensors or .json (from meta-training or `dvc pull`)"
    )
    src = r.add_mutually_exclusive_group(required=True)
    src.add_argument("--image", help="clean image to simulate measurements from (also the ground truth for PSNR/SSIM)")
    src.add_argument("--measurement", help=".npy file with a measurement of the operator's measurement shape")
    r.add_argument(
        "--operator",
        help="operator file (.safetensors from --save-operator or metadip.physics.operators.save_operator); "
        "without it the operator is built from --task/--ratio/--sigma/--operator-seed",
    )
    r.add_argument("--task", choices=sorted(OPERATORS), default="denoising", help="measurement model")
    r.add_argument("--ratio", type=float, default=0.25, help="sampling ratio m/n (cs, pr)")
    r.add_argument("--sigma", type=float, default=25.0, help="noise level on the 0-255 scale")
    r.add_argument(
        "--colour",
        choices=["joint", "shared"],
        default="joint",
        help="one A on the flattened colour image, or one per channel",
    )
    r.add_argument("--operator-seed", type=int, default=0, help="seed of the operator's random matrix / signs / phases")
    r.add_argument("--noise-seed", type=int, default=1, help="seed of the simulated measurement noise")
    r.add_argument("--truth", help="ground-truth image for PSNR/SSIM when reconstructing a given --measurement")
    r.add_argument("--steps", type=int, help="inner steps, at least 1 (default: the meta-init's test-time steps, 50)")
    r.add_argument(
        "--out",
        required=True,
        help="reconstructed image (a path ending in .png); a JSON report is written beside it "
        "(same name, .json). No output may be an input file or another output",
    )
    r.add_argument("--save-measurement", help="also save the simulated measurement (.npy)")
    r.add_argument("--save-operator", help="also save the operator (.safetensors)")
    r.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    r.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1, as the evaluation: float sums, and so a 50-step solve, depend on it)",
    )
    return p


def _image(path: str, shape: tuple[int, int, int]) -> torch.Tensor:
    """Load an image and fit it to the meta-init's (C, H, W): central square crop, anti-aliased
    resize (down or up: an image smaller than the meta-init's size, even one pixel, is enlarged)."""
    from PIL import Image

    c, h, w = shape
    if h != w:
        raise CLIError(f"meta-init image shape {shape} is not square")
    x = load_image(path, channels=c)
    if tuple(x.shape) != shape:
        x = to_tensor(square_resize(Image.fromarray(to_uint8(x)), h))
    return x


def _operator(a: argparse.Namespace, shape: tuple[int, int, int]) -> Operator:
    if a.operator:
        try:
            op = load_operator(a.operator)
        except (FileNotFoundError, ValueError) as err:
            raise CLIError(str(err)) from None
        if op.image_shape != shape:
            raise CLIError(
                f"{a.operator}: operator for images {op.image_shape}, but the meta-init reconstructs {shape}"
            )
        return op
    cfg = {"kind": a.task, "image_shape": shape, "sigma": a.sigma, "seed": a.operator_seed}
    if a.task != "denoising":
        cfg.update(ratio=a.ratio, colour=a.colour)
    try:
        return build_operator(cfg)
    except ValueError as err:
        raise CLIError(str(err)) from None


def _same_file(p: Path, q: Path) -> bool:
    """Whether two paths name the same file: equal once resolved (symlinks, ``..``, relative
    forms), or the same existing file (hard links)."""
    try:
        if p.resolve() == q.resolve():
            return True
        return os.path.samefile(p, q)
    except (OSError, RuntimeError):  # a missing file (samefile), a symlink loop (resolve)
        return os.path.abspath(p) == os.path.abspath(q)


def _check_writable(option: str, shown: str, path: Path) -> None:
    """Refuse an output path that cannot be written, before any work: a folder, a path under a
    file, a folder without write permission (probed with a temporary file, removed at once)."""
    if path.is_dir():
        raise CLIError(f"{option} {shown}: is a directory; give a file path")
    parent = Path(os.path.abspath(path)).parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent  # the folders up to here are created when the output is written
    if not parent.is_dir():
        raise CLIError(f"{option} {shown}: {parent} is not a directory")
    try:
        fd, probe = tempfile.mkstemp(prefix=".metadip-write-test.", dir=parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise CLIError(
            f"{option} {shown}: cannot write in {parent} ({err.strerror or err}); choose a writable location"
        ) from None


def _check_paths(a: argparse.Namespace) -> None:
    """Refuse, before any work, an output that is an input file or another output (the same file
    once resolved: symlinks, ``./``, ``..``, hard links), and an output that cannot be written."""
    if Path(a.out).suffix.lower() != ".png":
        raise CLIError(
            f"--out {a.out}: the reconstruction is written as PNG; give a path ending in .png "
            f"(its JSON report goes beside it, same name with .json)"
        )
    report = str(Path(a.out).with_suffix(".json"))
    weights, sidecar = artifact_paths(a.init)
    inputs = [
        (f"the {opt} file", str(p))
        for opt, p in (
            ("--image", a.image),
            ("--measurement", a.measurement),
            ("--operator", a.operator),
            ("--truth", a.truth),
        )
        if p
    ]
    inputs += [("the meta-init's weights (--init)", str(weights)), ("the meta-init's sidecar (--init)", str(sidecar))]
    outputs = [("--out", a.out), ("report", report)]
    outputs += [
        (opt, p) for opt, p in (("--save-measurement", a.save_measurement), ("--save-operator", a.save_operator)) if p
    ]
    for i, (opt, path) in enumerate(outputs):
        for input_name, in_path in inputs:
            if _same_file(Path(path), Path(in_path)):
                if opt == "report":
                    raise CLIError(
                        f"--out {a.out}: its JSON report {path} would overwrite {input_name} {in_path}; "
                        f"choose another --out (inputs are never overwritten)"
                    )
                raise CLIError(
                    f"{opt} {path}: that is {input_name} {in_path}; choose another output path "
                    f"(inputs are never overwritten)"
                )
        for other_opt, other in outputs[:i]:
            if _same_file(Path(path), Path(other)):
                what = f"the JSON report of --out {a.out}" if other_opt == "report" else f"{other_opt} {other}"
                raise CLIError(f"{opt} {path}: same file as {what}; give each output its own path")
    for opt, path in outputs:
        if opt == "report":
            _check_writable("--out", f"{a.out} (its JSON report {path})", Path(path))
        else:
            _check_writable(opt, path, Path(path))


def _measurement(path: Path) -> torch.Tensor:
    """A .npy measurement as float32, never unpickled; one-line errors naming the file."""
    if not path.is_file():
        raise CLIError(f"{path}: measurement file not found")
    try:
        arr = np.load(path, allow_pickle=False)
    except ValueError as err:
        if "pickle" in str(err):
            raise CLIError(
                f"{path}: holds pickled Python objects, which are never loaded; save the measurement as a "
                f"numeric array (numpy.save of a float array)"
            ) from None
        raise CLIError(f"{path}: not a readable .npy file ({err})") from None
    except (OSError, EOFError) as err:
        raise CLIError(f"{path}: not a readable .npy file ({err})") from None
    if not isinstance(arr, np.ndarray):
        arr.close()
        raise CLIError(f"{path}: an .npz archive, not one .npy array; save the measurement alone with numpy.save")
    if arr.dtype.kind not in "biuf":
        raise CLIError(f"{path}: measurement of dtype {arr.dtype}; expected real numbers")
    return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))


def _written(option: str, path: str | Path, write) -> None:
    try:
        write()
    except OSError as err:
        raise CLIError(f"{option} {path}: could not be written ({err.strerror or err})") from None


def reconstruct(a: argparse.Namespace) -> dict:
    if a.steps is not None and a.steps < 1:
        raise CLIError(f"--steps {a.steps}: the number of inner steps must be at least 1")
    if a.threads < 1:
        raise CLIError(f"--threads {a.threads}: use at least 1 thread")
    _check_paths(a)  # before any work: never overwrite an input, never fail to write after the solve
    try:
        model = load_meta_init(a.init)
        sidecar = read_sidecar(a.init)
    except ArtifactError as err:
        raise CLIError(str(err)) from None
    shape = tuple(model.prior.config.image_shape)
    if a.steps is not None:
        steps = a.steps
    else:
        outer = sidecar["training_config"].get("outer", {})
        steps = outer.get("test_steps", 50) if isinstance(outer, dict) else None
        if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
            raise CLIError(
                f"{artifact_paths(a.init)[1]}: training_config.outer.test_steps is {steps!r}, "
                f"not a positive integer; give --steps"
            )
    op = _operator(a, shape)
    truth = None
    try:
        if a.image:
            truth = _image(a.image, shape)
            y = op.measure(truth, torch.Generator().manual_seed(a.noise_seed))
        else:
            path = Path(a.measurement)
            y = _measurement(path)
            if tuple(y.shape) != op.measurement_shape:
                raise CLIError(
                    f"{path}: measurement of shape {tuple(y.shape)}, but the {op.kind} operator "
                    f"measures {op.measurement_shape}; check --task/--ratio/--colour or --operator"
                )
            op.check_measurement(y)  # NaN / inf
            truth = _image(a.truth, shape) if a.truth else None
    except (OperatorInputError, UnreadableImageError, FileNotFoundError, ValueError) as err:
        raise CLIError(str(err)) from None
    if a.save_measurement:

        def write_measurement() -> None:
            with atomic_path(a.save_measurement) as tmp, open(tmp, "wb") as f:
                np.save(f, y.cpu().numpy(), allow_pickle=False)

        _written("--save-measurement", a.save_measurement, write_measurement)
    if a.save_operator:
        _written("--save-operator", a.save_operator, lambda: save_operator(op, a.save_operator))
    torch.set_num_threads(a.threads)
    t = time.perf_counter()
    result = solve(model, op, y, steps, x_true=truth, device=a.device, show_progress=True)
    report = {
        "init": str(a.init),
        "operator": op.config(),
        "steps": steps,
        "threads": a.threads,
        "seconds": round(time.perf_counter() - t, 3),
        "image_shape": list(shape),
        "output": str(a.out),
    }
    if truth is not None:
        report.update(
            psnr=round(float(psnr(result.estimate, truth)), 4), ssim=round(float(ssim(result.estimate, truth)), 4)
        )
    _written("--out", a.out, lambda: save_png(result.estimate, a.out))
    report_path = Path(a.out).with_suffix(".json")
    _written(
        "--out",
        f"{a.out} (its JSON report {report_path})",
        lambda: write_text(report_path, json.dumps(report, indent=2) + "\n"),
    )
    return report


def main(argv: list[str] | None = None) -> int:
    a = _parser().parse_args(argv)
    try:
        report = reconstruct(a)
    except CLIError as err:
        print(f"metadip: error: {err}", file=sys.stderr)
        return 1
    quality = f", PSNR {report['psnr']:.2f} dB, SSIM {report['ssim']:.3f}" if "psnr" in report else ""
    print(
        f"reconstructed {report['operator']['kind']} measurement in {report['steps']} steps "
        f"({report['seconds']:.1f} s){quality} "
        f"-> {report['output']} (+ {Path(report['output']).with_suffix('.json').name})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
