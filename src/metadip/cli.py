"""`metadip`: reconstruct an image in a few steps from a meta-init.

The image is reconstructed at its own size: one image of the meta-init's size is solved as the
meta-init was trained; any other size is covered by overlapping tiles of the meta-init's size,
blended into one image and solved against the whole measurement (:mod:`metadip.tiling`).

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
import hashlib
import io
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from metadip.core.atomic import atomic_paths
from metadip.core.device import default_device
from metadip.core.errors import InputError
from metadip.core.hashing import file_sha256
from metadip.core.images import load_image, save_png
from metadip.core.metrics import psnr, ssim
from metadip.meta.inner_loop import solve
from metadip.physics.operators import (
    OPERATORS,
    Operator,
    OperatorInputError,
    build_operator,
    load_operator,
    operator_sha256,
    save_operator,
)
from metadip.pipeline.artifacts import (
    ArtifactError,
    artifact_paths,
    load_meta_init,
    read_sidecar,
)
from metadip.pipeline.config import MAX_STEPS
from metadip.tiling import TileLayout, solve_bytes, tiled_model

DEFAULT_INIT = "results/meta/metadip/meta_init"  # where the pipeline writes (and `dvc pull` restores) MetaDIP's init
TASK_DEFAULTS: dict[str, str | float | int] = {
    "task": "denoising",
    "ratio": 0.25,
    "sigma": 25.0,
    "colour": "joint",
    "operator_seed": 0,
}
NOISE_SEED = 1
MAX_SIGMA = 255.0  # σ on the 0-255 scale: noise of the whole intensity range
MAX_SEED = 2**64 - 1  # torch.Generator.manual_seed's range
RECORD_FORMAT = "metadip.measurement-record/1"
OPTIONS = ("ratio", "sigma", "colour", "seed")  # an operator config's keys besides kind and image_shape
SSIM_WINDOW = 7  # scikit-image's SSIM window: an image with a shorter side has no SSIM in the report


class CLIError(InputError):
    """A user error: printed as one line, exit status 1."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="metadip", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser(
        "reconstruct", help="reconstruct one image from measurements (given or simulated) with a meta-init"
    )
    r.add_argument(
        "--init",
        default=DEFAULT_INIT,
        help="meta-init: stem, .safetensors or .json (from meta-training or `dvc pull`) (default: %(default)s)",
    )
    src = r.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "--image",
        help="clean image to simulate measurements from, reconstructed at its own size (also the ground truth "
        "for PSNR/SSIM)",
    )
    src.add_argument(
        "--measurement",
        help=".npy file with a measurement of the operator's measurement shape; if a record of its operator "
        "lies beside it (NAME.operator.json, from --save-measurement), another operator is refused. The image "
        "size is the --operator's, a denoising measurement's own (C, H, W), else that in the measurement's record, "
        "else --truth's, else the meta-init's",
    )
    r.add_argument(
        "--operator",
        help="operator file (.safetensors from --save-operator or metadip.physics.operators.save_operator); it "
        "fixes the task, ratio, sigma, colour and operator seed, so those options are not given with it",
    )
    _add_task_options(r)
    r.add_argument(
        "--truth", help="ground-truth image of the measurement's size, for PSNR/SSIM of a given --measurement"
    )
    r.add_argument(
        "--steps", type=int, help=f"inner steps, 1 to {MAX_STEPS} (default: the meta-init's test-time steps, 50)"
    )
    r.add_argument(
        "--out",
        required=True,
        help="reconstructed image (a path ending in .png); a JSON report is written beside it "
        "(same name, .json). No output may be an input file or another output",
    )
    r.add_argument(
        "--save-measurement",
        help="also save the simulated measurement (.npy) and, beside it, the record of its operator "
        "(NAME.operator.json)",
    )
    r.add_argument("--save-operator", help="also save the operator (.safetensors)")
    r.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    r.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads, 1 to the number of CPUs available (default: 1, as the evaluation: float sums, "
        "and so a 50-step solve, depend on it)",
    )
    return p


def _add_task_options(r: argparse.ArgumentParser) -> None:
    """The options of a simulated measurement: task, ratio, sigma, colour and seeds."""
    d = TASK_DEFAULTS
    r.add_argument(
        "--task",
        choices=sorted(OPERATORS),
        help=f"measurement model (default: {d['task']}): denoising y = x + e; cs y = Ax + e with a dense "
        "Gaussian A of m × n entries (n = C·H·W, or H·W with --colour shared; m = ratio·n), 4·m·n bytes: "
        "144 MiB for a 64×64 colour image at ratio 0.25, 483 GiB at 600×400, refused beyond the machine's "
        "memory; cs_fast A = sqrt(n/m)·S·H·D (random signs D, orthonormal Hartley transform H, m random rows "
        "S), the same first and second moments as cs in O(n log n) time and O(n) memory, for any image size; "
        "pr and pr_fast: phase retrieval y = |Ax + e| with a dense complex Gaussian A (8·m·n bytes) or coded "
        "diffraction (random unit phases, unitary DFT, m random rows)",
    )
    r.add_argument("--ratio", type=float, help=f"sampling ratio m/n of cs and pr, in (0, 1] (default: {d['ratio']})")
    r.add_argument(
        "--sigma", type=float, help=f"noise level on the 0-255 scale, 0 to {MAX_SIGMA:g} (default: {d['sigma']:g})"
    )
    r.add_argument(
        "--colour",
        choices=["joint", "shared"],
        help=f"cs and pr: one A on the flattened colour image, or one per channel (default: {d['colour']})",
    )
    r.add_argument(
        "--operator-seed",
        type=int,
        help=f"seed of the operator's random matrix / signs / phases, 0 to 2^64-1 (default: {d['operator_seed']})",
    )
    r.add_argument(
        "--noise-seed", type=int, help=f"seed of the noise simulated on --image, 0 to 2^64-1 (default: {NOISE_SEED})"
    )


def _flag(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def _check_combination(a: argparse.Namespace) -> None:
    """Refuse options that would be ignored; then give the task options their defaults."""
    given = [_flag(k) for k in TASK_DEFAULTS if getattr(a, k) is not None]
    if a.operator and given:
        raise CLIError(
            f"--operator {a.operator}: {', '.join(given)} cannot be given with it (the operator file fixes "
            f"the task, ratio, sigma, colour and operator seed); leave {'it' if len(given) == 1 else 'them'} out"
        )
    if a.measurement and a.noise_seed is not None:
        raise CLIError("--noise-seed: only a measurement simulated from --image has a noise seed; leave it out")
    if a.image and a.truth:
        raise CLIError(f"--truth {a.truth}: the --image is the ground truth of a simulation; leave --truth out")
    if (a.task or TASK_DEFAULTS["task"]) == "denoising" and not a.operator:
        extra = [f"{_flag(k)} {getattr(a, k)}" for k in ("ratio", "colour") if getattr(a, k) is not None]
        if extra:
            it = "it" if len(extra) == 1 else "them"
            raise CLIError(
                f"{', '.join(extra)}: only the cs and pr tasks take {it}, and the task is denoising"
                f"{'' if a.task else ' (the default)'}; give --task, or leave {it} out"
            )
    for key, value in TASK_DEFAULTS.items():
        if getattr(a, key) is None:
            setattr(a, key, value)
    if a.noise_seed is None:
        a.noise_seed = NOISE_SEED


def _check_options(a: argparse.Namespace) -> None:
    """Refuse, before any work, an option out of its range (NaN and inf included) or one that would
    be ignored."""
    _check_combination(a)
    if not (math.isfinite(a.ratio) and 0 < a.ratio <= 1):
        raise CLIError(f"--ratio {a.ratio}: the sampling ratio m/n must lie in (0, 1]")
    if not (math.isfinite(a.sigma) and 0 <= a.sigma <= MAX_SIGMA):
        raise CLIError(f"--sigma {a.sigma}: the noise level must lie in [0, {MAX_SIGMA:g}] (the 0-255 scale)")
    for key in ("operator_seed", "noise_seed"):
        if not 0 <= getattr(a, key) <= MAX_SEED:
            raise CLIError(f"{_flag(key)} {getattr(a, key)}: a seed must lie in [0, 2^64-1]")
    if a.steps is not None and a.steps < 1:
        raise CLIError(f"--steps {a.steps}: the number of inner steps must be at least 1")
    if a.steps is not None and a.steps > MAX_STEPS:
        raise CLIError(f"--steps {a.steps}: give at most {MAX_STEPS} inner steps")
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if a.threads < 1:
        raise CLIError(f"--threads {a.threads}: use at least 1 thread")
    if a.threads > cpus:
        raise CLIError(f"--threads {a.threads}: give 1 to {cpus} threads (the CPUs this process may run on)")
    if a.device is not None:
        try:
            device = torch.device(a.device)
        except RuntimeError:
            device = None
        if device is None or device.type not in ("cpu", "cuda"):
            raise CLIError(f"--device {a.device}: give cpu or cuda")
        count = torch.cuda.device_count()
        if device.type == "cuda" and (device.index or 0) >= count:
            found = f"{count} CUDA devices, numbered from 0" if count else "no CUDA device"
            raise CLIError(f"--device {a.device}: this machine has {found}; give cpu or an existing cuda device")


def _image(path: str, channels: int) -> torch.Tensor:
    """An image file at its own size, ``(channels, H, W)`` in [0, 1]."""
    try:
        return load_image(path, channels=channels)
    except (InputError, FileNotFoundError) as err:
        raise CLIError(str(err)) from None


def _operator(a: argparse.Namespace, shape: tuple[int, int, int]) -> Operator:
    """The --operator file, or the operator of the task options for images of ``shape``."""
    try:
        if a.operator:
            return load_operator(a.operator)
        cfg = {"kind": a.task, "image_shape": shape, "sigma": a.sigma, "seed": a.operator_seed}
        if a.task != "denoising":
            cfg.update(ratio=a.ratio, colour=a.colour)
        return build_operator(cfg)
    except (FileNotFoundError, OperatorInputError) as err:
        raise CLIError(str(err)) from None


def _size(shape: tuple[int, ...]) -> str:
    """``(C, H, W)`` as width × height: ``600×400``."""
    return f"{shape[-1]}×{shape[-2]}"


def _recorded_shape(measurement: str, channels: int) -> tuple[int, int, int] | None:
    """The image shape in the record beside a measurement (``NAME.operator.json``), if it has one of
    ``channels`` channels; the record itself is checked against the measurement and the operator later."""
    try:
        shape = json.loads(record_path(measurement).read_text(encoding="utf-8"))["operator"]["image_shape"]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError):
        return None
    ok = isinstance(shape, list) and len(shape) == 3 and all(type(s) is int and s > 0 for s in shape)
    ok = ok and shape[0] == channels
    return tuple(shape) if ok else None


def _image_shape(
    a: argparse.Namespace,
    init_shape: tuple[int, int, int],
    truth: torch.Tensor | None,
    op: Operator | None,
    y: torch.Tensor | None,
) -> tuple[int, int, int]:
    """The (C, H, W) to reconstruct: the --image's own; the --operator file's; a denoising
    --measurement's own; the one in the --measurement's record; the --truth's; else the meta-init's."""
    channels = init_shape[0]
    if a.image:
        shape = tuple(truth.shape)
    elif op is not None:
        shape = op.image_shape
        if shape[0] != channels:
            raise CLIError(
                f"{a.operator}: operator for images of {shape[0]} channels, but the meta-init reconstructs "
                f"{channels}; give an operator for {channels}-channel images"
            )
    elif a.task == "denoising":
        if y.dim() != 3 or y.shape[0] != channels:
            raise CLIError(
                f"{a.measurement}: denoising measurement of shape {tuple(y.shape)}; expected an image of shape "
                f"({channels}, H, W), the meta-init's channels"
            )
        shape = tuple(y.shape)
    else:
        shape = _recorded_shape(a.measurement, channels) or (tuple(truth.shape) if truth is not None else init_shape)
    if a.truth and tuple(truth.shape) != shape:
        raise CLIError(
            f"--truth {a.truth}: a {_size(truth.shape)} image, but the measurement is of a {_size(shape)} image; "
            f"give the ground truth at the measurement's size"
        )
    return shape


def _gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB"


def _dense_bytes(a: argparse.Namespace, shape: tuple[int, int, int]) -> tuple[int, int, int]:
    """(bytes, m, n) of the dense matrix the task options build (cs: with its float64 Gram matrix
    and Cholesky factor); 0 bytes for the other tasks and an --operator file (already in memory)."""
    if a.operator or a.task not in ("cs", "pr"):
        return 0, 0, 0
    c, h, w = shape
    n = c * h * w if a.colour == "joint" else h * w
    m = max(1, round(a.ratio * n))
    return (4 * m * n + 16 * m * m if a.task == "cs" else 8 * m * n), m, n


def _memory(device: torch.device) -> tuple[int, str]:
    """The device's total memory in bytes, and its name in a message."""
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory, "GPU memory"
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"), "memory"


def _check_memory(a: argparse.Namespace, model: torch.nn.Module, layout: TileLayout, shape: tuple) -> None:
    """Refuse, before the operator is built and the solve starts, what cannot fit in the memory of
    the machine (the RAM, or the GPU's): a dense cs or pr matrix of a large image, or an image of
    so many tiles that the solve would not fit."""
    have, where = _memory(torch.device(a.device) if a.device else default_device())
    dense, m, n = _dense_bytes(a, shape)
    tiles = solve_bytes(model.prior, layout)
    if dense + tiles <= have:
        return
    if dense >= tiles:
        raise CLIError(
            f"--task {a.task}: its dense matrix for a {_size(shape)} image has {m} × {n} entries ({_gib(dense)}), "
            f"more than this machine's {_gib(have)} of {where}; use --task {a.task}_fast (O(n) memory) or a "
            f"smaller image"
        )
    option = next(f"--{k} {getattr(a, k)}" for k in ("image", "operator", "measurement", "truth") if getattr(a, k))
    raise CLIError(
        f"{option}: a {_size(shape)} image is {layout.count} tiles of {_size(layout.tile)}, about {_gib(tiles)} "
        f"for the solve, more than this machine's {_gib(have)} of {where}; downscale or crop it"
    )


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


def record_path(measurement: str | os.PathLike) -> Path:
    """Where the record of a measurement's operator lies: ``y.npy`` → ``y.operator.json``."""
    return Path(measurement).with_suffix(".operator.json")


def _check_paths(a: argparse.Namespace) -> None:
    """Refuse, before any work, an output that is an input file or another output (the same file
    once resolved: symlinks, ``./``, ``..``, hard links), and an output that cannot be written."""
    if Path(a.out).suffix.lower() != ".png":
        raise CLIError(
            f"--out {a.out}: the reconstruction is written as PNG; give a path ending in .png "
            f"(its JSON report goes beside it, same name with .json)"
        )
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
    if a.measurement:
        inputs.append(("the record of the --measurement's operator", str(record_path(a.measurement))))
    inputs += [("the meta-init's weights (--init)", str(weights)), ("the meta-init's sidecar (--init)", str(sidecar))]
    # (option, its value, the path written, what the path is to the option: None for the value itself)
    outputs = [("--out", a.out, a.out, None), ("--out", a.out, str(Path(a.out).with_suffix(".json")), "JSON report")]
    if a.save_measurement:
        outputs.append(("--save-measurement", a.save_measurement, a.save_measurement, None))
        outputs.append(
            ("--save-measurement", a.save_measurement, str(record_path(a.save_measurement)), "operator record")
        )
    if a.save_operator:
        outputs.append(("--save-operator", a.save_operator, a.save_operator, None))
    for i, (opt, value, path, role) in enumerate(outputs):
        for input_name, in_path in inputs:
            if _same_file(Path(path), Path(in_path)):
                if role:
                    raise CLIError(
                        f"{opt} {value}: its {role} {path} would overwrite {input_name} {in_path}; "
                        f"choose another {opt} (inputs are never overwritten)"
                    )
                raise CLIError(
                    f"{opt} {path}: that is {input_name} {in_path}; choose another output path "
                    f"(inputs are never overwritten)"
                )
        for other_opt, other_value, other, other_role in outputs[:i]:
            if _same_file(Path(path), Path(other)):
                what = f"the {other_role} of {other_opt} {other_value}" if other_role else f"{other_opt} {other}"
                this = f"{opt} {value}: its {role} {path} is the" if role else f"{opt} {path}:"
                raise CLIError(f"{this} same file as {what}; give each output its own path")
    for opt, value, path, role in outputs:
        _check_writable(opt, f"{value} (its {role} {path})" if role else value, Path(path))


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


def _describe(config: dict) -> str:
    """An operator config in a few words: ``cs_fast (600×400, ratio 0.5, sigma 25, colour joint, seed 0)``."""
    words = [
        f"{k} {config[k]:g}" if isinstance(config[k], float) else f"{k} {config[k]}" for k in OPTIONS if k in config
    ]
    shape = config.get("image_shape")
    if isinstance(shape, list) and len(shape) == 3:
        words.insert(0, _size(shape))
    return f"{config.get('kind')} ({', '.join(words)})"


def _record(y: torch.Tensor, op: Operator) -> tuple[bytes, str]:
    """The ``.npy`` bytes of a measurement and the JSON record of the operator that made it."""
    buffer = io.BytesIO()
    np.save(buffer, y.detach().cpu().numpy(), allow_pickle=False)
    data = buffer.getvalue()
    record = {
        "format": RECORD_FORMAT,
        "measurement_sha256": hashlib.sha256(data).hexdigest(),
        "operator_sha256": operator_sha256(op),
        "operator": op.config(),
    }
    return data, json.dumps(record, indent=2, allow_nan=False) + "\n"


def _verify_record(a: argparse.Namespace, op: Operator) -> str | None:
    """Check the --measurement's operator record (``NAME.operator.json`` beside it) against the
    operator; return a note when the measurement has no record (data of the user's own)."""
    path, rec_path = Path(a.measurement), record_path(a.measurement)
    source = f"--operator {a.operator}" if a.operator else f"the operator of --task {a.task} and its options"
    if not rec_path.is_file() or _same_file(rec_path, path):
        return f"{path} has no record of its operator ({rec_path.name}); could not check that {source} made it"
    fix = f"move {rec_path} away to reconstruct without the check, or save the measurement again"
    try:
        rec = json.loads(rec_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CLIError(f"{rec_path}: not a readable operator record ({err}); {fix}") from None
    keys = ("measurement_sha256", "operator_sha256")
    if (
        not isinstance(rec, dict)
        or rec.get("format") != RECORD_FORMAT
        or not all(isinstance(rec.get(k), str) for k in keys)
    ):
        raise CLIError(f"{rec_path}: not a metadip operator record (format {RECORD_FORMAT}); {fix}")
    if rec["measurement_sha256"] != file_sha256(path):
        raise CLIError(f"{rec_path}: records another measurement than {path} (sha256 differs); {fix}")
    if rec["operator_sha256"] != operator_sha256(op):
        made_by = _describe(rec["operator"]) if isinstance(rec.get("operator"), dict) else "another operator"
        raise CLIError(
            f"{path}: {rec_path.name} records that {made_by} measured it (sha256 {rec['operator_sha256'][:12]}), "
            f"but {source} is {_describe(op.config())} (sha256 {operator_sha256(op)[:12]}); "
            f"give the operator saved with the measurement"
        )
    return None


def _write_all(outputs: list[tuple[str, str, Path, Callable[[Path], None]]]) -> None:
    """Write each output to a temporary file beside it, then rename them all into place
    (:func:`metadip.core.atomic.atomic_paths`): a failed write leaves no output. ``outputs``:
    (option, shown, path, writer of a given path)."""
    try:
        with atomic_paths(*(path for _, _, path, _ in outputs)) as tmps:
            for (option, shown, _, write), tmp in zip(outputs, tmps, strict=True):
                try:
                    write(tmp)
                except OSError as err:
                    raise CLIError(f"{option} {shown}: could not be written ({err.strerror or err})") from None
    except OSError as err:  # a temporary file or a rename into place
        raise CLIError(f"{err.filename2 or err.filename}: could not be written ({err.strerror or err})") from None


def _steps(a: argparse.Namespace, sidecar: dict) -> int:
    """--steps, or the meta-init's test-time steps."""
    if a.steps is not None:
        return a.steps
    outer = sidecar["training_config"].get("outer", {})
    steps = outer.get("test_steps", 50) if isinstance(outer, dict) else None
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise CLIError(
            f"{artifact_paths(a.init)[1]}: training_config.outer.test_steps is {steps!r}, "
            f"not a positive integer; give --steps"
        )
    return steps


def _problem(
    a: argparse.Namespace, model: torch.nn.Module
) -> tuple[Operator, torch.Tensor, torch.Tensor | None, str | None, TileLayout]:
    """The operator, the measurement y (simulated from --image, or read and checked against the
    operator), the ground truth ``(C, H, W)`` if known, a note when y's operator could not be
    checked, and the tiles of the meta-init over the image; the memory the solve needs is checked
    before the operator is built."""
    init_shape = tuple(model.prior.config.image_shape)
    try:
        truth = _image(a.image or a.truth, init_shape[0]) if a.image or a.truth else None
        op = _operator(a, init_shape) if a.operator else None
        y = _measurement(Path(a.measurement)) if a.measurement else None
        shape = _image_shape(a, init_shape, truth, op, y)
        layout = TileLayout.cover(shape[1:], init_shape[1:])
        _check_memory(a, model, layout, shape)
        op = op or _operator(a, shape)
        if a.image:
            return op, op.measure(truth, torch.Generator().manual_seed(a.noise_seed)), truth, None, layout
        if tuple(y.shape) != op.measurement_shape:
            raise CLIError(
                f"{a.measurement}: measurement of shape {tuple(y.shape)}, but the {op.kind} operator "
                f"measures {op.measurement_shape}; check --task/--ratio/--colour or --operator"
            )
        op.check_measurement(y)  # NaN / inf
        return op, y, truth, _verify_record(a, op), layout
    except (InputError, FileNotFoundError) as err:
        raise CLIError(str(err)) from None


def reconstruct(a: argparse.Namespace) -> dict:
    """Run `metadip reconstruct`: check every option and path, solve, then write every output
    (nothing is written when any step fails). Returns the JSON report."""
    _check_options(a)
    _check_paths(a)  # before any work: never overwrite an input, never fail to write after the solve
    try:
        model = load_meta_init(a.init)
        steps = _steps(a, read_sidecar(a.init))
    except ArtifactError as err:
        raise CLIError(str(err)) from None
    op, y, truth, note, layout = _problem(a, model)
    measurement, record = _record(y, op) if a.save_measurement else (b"", "")
    if note:
        print(f"metadip: note: {note}", file=sys.stderr)
    print(f"metadip: reconstructing {layout.describe()}", flush=True)
    torch.set_num_threads(a.threads)
    t = time.perf_counter()
    result = solve(tiled_model(model, layout), op, y, steps, x_true=truth, device=a.device, show_progress=True)
    report = {
        "init": str(a.init),
        "operator": op.config(),
        "steps": steps,
        "threads": a.threads,
        "seconds": round(time.perf_counter() - t, 3),
        "image_shape": list(op.image_shape),
        "layout": layout.record(),
        "output": str(a.out),
    }
    if truth is not None:
        report["psnr"] = round(float(psnr(result.estimate, truth)), 4)
        if min(truth.shape[-2:]) >= SSIM_WINDOW:
            report["ssim"] = round(float(ssim(result.estimate, truth)), 4)
    if not torch.isfinite(result.estimate).all() or not all(
        math.isfinite(report.get(k, 0.0)) for k in ("psnr", "ssim")
    ):
        raise CLIError(
            f"the solve diverged (NaN or inf in the reconstruction after {steps} steps), so nothing was written; "
            f"check the measurement's scale (images in [0, 1]) and sigma, or give fewer --steps"
        )
    report_path = Path(a.out).with_suffix(".json")
    text = json.dumps(report, indent=2, allow_nan=False) + "\n"
    outputs = [
        ("--out", f"{a.out} (its JSON report {report_path})", report_path, lambda tmp: tmp.write_text(text, "utf-8")),
        ("--out", a.out, Path(a.out), lambda tmp: save_png(result.estimate, tmp)),
    ]
    if a.save_measurement:
        rec_path = record_path(a.save_measurement)
        outputs += [
            (
                "--save-measurement",
                a.save_measurement,
                Path(a.save_measurement),
                lambda tmp: tmp.write_bytes(measurement),
            ),
            (
                "--save-measurement",
                f"{a.save_measurement} (its operator record {rec_path})",
                rec_path,
                lambda tmp: tmp.write_text(record, "utf-8"),
            ),
        ]
    if a.save_operator:
        outputs.append(("--save-operator", a.save_operator, Path(a.save_operator), lambda tmp: save_operator(op, tmp)))
    _write_all(outputs)
    return report


def main(argv: list[str] | None = None) -> int:
    a = _parser().parse_args(argv)
    try:
        report = reconstruct(a)
    except InputError as err:
        print(f"metadip: error: {err}", file=sys.stderr)
        return 1
    quality = f", PSNR {report['psnr']:.2f} dB" if "psnr" in report else ""
    quality += f", SSIM {report['ssim']:.3f}" if "ssim" in report else ""
    print(
        f"reconstructed {report['operator']['kind']} measurement in {report['steps']} steps "
        f"({report['seconds']:.1f} s){quality} "
        f"-> {report['output']} (+ {Path(report['output']).with_suffix('.json').name})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
