"""Training checkpoints: model state, Adam state and step in one safetensors file, written atomically.

A checkpoint records the identity of the run that wrote it (its provenance), and a run resumes only
from a checkpoint of the same identity:

- ``run_hash``: the hash of the run's configuration (training settings, architecture, seed);
- ``init_sha256``: the sha256 of the model's initial weights (covers the network's init seed);
- ``data_sha256``: the sha256 of the training and validation images as trained on
  (:func:`tensors_sha256`), plus, from the stages, ``dataset_manifest_sha256`` (the curated
  dataset's manifest, the hash the artifact's sidecar records);
- ``code_sha256``: the sha256 of the source of the training code (:func:`code_sha256`).

A checkpoint of another identity (the config was edited, the dataset re-curated, the code changed,
and the workflow reruns the job in the same folder) is ignored with a warning naming what differs,
and overwritten at the first checkpoint: the run starts from step 0 and ends like a run in an empty
folder.  A rerun with everything the same (e.g. ``snakemake --forcerun``) resumes, also from the
final checkpoint: the training is deterministic, so that reproduces the same weights, without the
cost.  A checkpoint written before provenance was recorded lacks the keys and is not resumed.  A
checkpoint that cannot be read back (truncated by a full disk, corrupt) is renamed to
``checkpoint.safetensors.corrupt`` with a warning and the run starts from step 0.

The code version is the content of the source files, not the git commit: an uncommitted edit
changes the code as much as a commit does.  It covers the modules the training imports, directly
or not, inside the ``metadip`` package (found by reading their ``import`` statements, so a module
added later is covered as soon as it is imported), plus any script given as a root (the stage):
an edit of the tables or the report does not restart a finished training, an edit of the inner
loop, the networks or the operators does.
"""

from __future__ import annotations

import ast
import csv
import hashlib
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import Tensor, nn

from metadip.core.atomic import atomic_path, write_text
from metadip.core.csv_text import csv_text
from metadip.core.errors import InputError

log = logging.getLogger(__name__)

PACKAGE = Path(__file__).resolve().parents[1]  # the metadip package in use (src/metadip)

#: what each identity key of a checkpoint stands for, in the warning
IDENTITY_LABELS = {
    "run_hash": "configuration",
    "init_sha256": "initial weights",
    "data_sha256": "training/validation images",
    "dataset_manifest_sha256": "dataset manifest",
    "code_sha256": "code",
}


# -- provenance -------------------------------------------------------------------------------------


def tensors_sha256(*tensors: Tensor) -> str:
    """sha256 of the dtype, shape and bytes of each tensor (on the CPU, contiguous), in order."""
    h = hashlib.sha256()
    for tensor in tensors:
        t = tensor.detach().cpu().contiguous()
        h.update(f"{t.dtype}{tuple(t.shape)};".encode())
        h.update(t.numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _module_file(name: str) -> Path | None:
    """The source file of module ``name`` of the metadip package (None: not one of its modules)."""
    parts = name.split(".")
    if parts[0] != "metadip":
        return None
    base = PACKAGE.joinpath(*parts[1:])
    for candidate in (base / "__init__.py", base.parent / f"{base.name}.py"):
        if candidate.is_file():
            return candidate
    return None


def _metadip_imports(path: Path) -> set[str]:
    """The metadip modules the source at ``path`` imports anywhere (also inside functions), with
    their parent packages (importing ``metadip.a.b`` runs ``metadip/__init__`` and ``metadip/a/__init__``)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_bytes(), str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)  # `from metadip import maml`
    modules = set()
    for name in names:
        parts = name.split(".")
        modules.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return {m for m in modules if m.split(".")[0] == "metadip"}


def code_files(*roots: str | os.PathLike) -> dict[str, Path]:
    """Label → file of the source :func:`code_sha256` covers: each root (a module name such as
    ``"metadip.meta.maml"``, or the path of a script) and every metadip module it imports, directly or
    not.  Labels are stable across checkouts: ``metadip/<path in the package>``, or a script's name."""
    files: dict[str, Path] = {}
    todo: list[Path] = []
    for root in roots:
        if isinstance(root, str) and not root.endswith(".py"):
            path = _module_file(root)
            if path is None:
                raise ValueError(f"{root!r} is not a module of the metadip package")
        else:
            path = Path(root).resolve()
            if not path.is_relative_to(PACKAGE):
                files[path.name] = path
        todo.append(path)
    seen: set[Path] = set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        if path.is_relative_to(PACKAGE):
            files["metadip/" + path.relative_to(PACKAGE).as_posix()] = path
        todo.extend(f for f in map(_module_file, _metadip_imports(path)) if f is not None)
    return dict(sorted(files.items()))


def code_sha256(*roots: str | os.PathLike) -> str:
    """sha256 over (label, content) of the :func:`code_files` of ``roots``: the code version of a run."""
    h = hashlib.sha256()
    for label, path in code_files(*roots).items():
        h.update(f"{label}\0{hashlib.sha256(path.read_bytes()).hexdigest()}\n".encode())
    return h.hexdigest()


# -- checkpoints ------------------------------------------------------------------------------------


def save_checkpoint(
    path: Path, model: nn.Module, opt: torch.optim.Adam, step: int, identity: Mapping[str, str]
) -> None:
    """Write model + Adam state (exp_avg, exp_avg_sq, step per parameter) + step atomically, with the
    run's ``identity`` (``run_hash``, ``data_sha256``, ``code_sha256``, ...) in the metadata."""
    if "step" in identity:
        raise ValueError("'step' is not an identity key")
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    for i, p in enumerate(model.parameters()):
        st = opt.state.get(p)
        if st:
            tensors[f"opt.{i}.exp_avg"] = st["exp_avg"].detach().cpu().contiguous()
            tensors[f"opt.{i}.exp_avg_sq"] = st["exp_avg_sq"].detach().cpu().contiguous()
            tensors[f"opt.{i}.step"] = torch.as_tensor(st["step"], dtype=torch.float64).reshape(1).cpu()
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"step": str(step), **{k: str(v) for k, v in identity.items()}})


def identity_differences(written: Mapping[str, str], identity: Mapping[str, str]) -> list[str]:
    """What differs between the identity a checkpoint was ``written`` with and this run's, one
    phrase per key (``code: a1b2c3d4e5f6 -> 0f9e8d7c6b5a``; a key the checkpoint lacks: 'not recorded')."""
    diffs = []
    for key in identity:
        if written.get(key) != identity[key]:
            was = written.get(key)
            diffs.append(
                f"{IDENTITY_LABELS.get(key, key)}: {was[:12] if was else 'not recorded'} -> {identity[key][:12]}"
            )
    return diffs


class CorruptCheckpoint(InputError):
    """A checkpoint file that cannot be read back (truncated, corrupt, or not what it claims to hold)."""


def _read_checkpoint(path: Path) -> tuple[dict[str, str], dict[str, Tensor]]:
    """(metadata, tensors) of a checkpoint; :class:`CorruptCheckpoint` for a file that cannot be read."""
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            names = f.keys()  # a safe_open handle is not iterable
            tensors = {k: f.get_tensor(k) for k in names}
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise CorruptCheckpoint(str(err).splitlines()[0][:160] if str(err) else type(err).__name__) from None
    return meta, tensors


def _check_fits(meta: Mapping[str, str], tensors: Mapping[str, Tensor], model: nn.Module) -> None:
    """Refuse (:class:`CorruptCheckpoint`) a checkpoint whose step or tensors do not fit ``model``,
    before anything is loaded into the model."""
    try:
        step = int(meta["step"])
    except (KeyError, ValueError):
        raise CorruptCheckpoint(f"no valid step in its metadata ({meta.get('step')!r})") from None
    if step < 0:
        raise CorruptCheckpoint(f"negative step {step}")
    state = model.state_dict()
    saved = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    if saved.keys() != state.keys():
        raise CorruptCheckpoint(f"model tensors {sorted(saved.keys() ^ state.keys())[:3]} missing or unexpected")
    for k, v in state.items():
        if saved[k].shape != v.shape or saved[k].dtype != v.dtype:
            raise CorruptCheckpoint(f"model tensor {k} of shape {tuple(saved[k].shape)}, expected {tuple(v.shape)}")
    for i, p in enumerate(model.parameters()):
        if f"opt.{i}.exp_avg" in tensors:
            for part in ("exp_avg", "exp_avg_sq"):
                if tensors.get(f"opt.{i}.{part}") is None or tensors[f"opt.{i}.{part}"].shape != p.shape:
                    raise CorruptCheckpoint(f"optimiser state opt.{i}.{part} missing or of the wrong shape")
            if tensors.get(f"opt.{i}.step") is None or tensors[f"opt.{i}.step"].numel() != 1:
                raise CorruptCheckpoint(f"optimiser state opt.{i}.step missing")


def set_aside(path: Path, reason: str) -> Path:
    """Rename an unreadable checkpoint to ``<name>.corrupt`` (replacing an older one) with a warning;
    returns the new path.  The run then starts from step 0, as in an empty folder."""
    aside = path.with_name(path.name + ".corrupt")
    os.replace(path, aside)
    log.warning("%s: unreadable checkpoint (%s); set aside as %s, starting from step 0", path, reason, aside.name)
    return aside


def resume_step(
    path: Path, model: nn.Module, opt: torch.optim.Adam, identity: Mapping[str, str], device: torch.device
) -> int:
    """The step to continue from: 0 without a checkpoint at ``path`` or with one whose identity
    differs from ``identity`` in any key (a fresh start, with a warning naming what differs), else
    the checkpoint's step after restoring what :func:`save_checkpoint` wrote into ``model`` and ``opt``.

    A checkpoint that cannot be read back (truncated, corrupt, tensors that do not fit ``model``) is
    renamed to ``<name>.corrupt`` with a warning (:func:`set_aside`) and the run starts from step 0;
    nothing is loaded into ``model`` or ``opt`` from it."""
    if not path.is_file():
        return 0
    try:
        meta, tensors = _read_checkpoint(path)
        diffs = identity_differences(meta, identity)
        if diffs:
            log.warning("%s: checkpoint of another run (%s); starting from step 0", path, "; ".join(diffs))
            return 0
        _check_fits(meta, tensors, model)
    except CorruptCheckpoint as err:
        set_aside(path, str(err))
        return 0
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")}, strict=True)
    for i, p in enumerate(model.parameters()):
        if f"opt.{i}.exp_avg" in tensors:
            opt.state[p] = {
                "step": torch.tensor(float(tensors[f"opt.{i}.step"][0])),
                "exp_avg": tensors[f"opt.{i}.exp_avg"].to(device),
                "exp_avg_sq": tensors[f"opt.{i}.exp_avg_sq"].to(device),
            }
    return int(meta["step"])


def read_log(path: Path, upto: int) -> list[dict[str, str]]:
    """Rows of a training log CSV whose ``step`` is at most ``upto`` (rows past a checkpoint are dropped on resume)."""
    if not path.is_file():
        return []
    return [r for r in csv.DictReader(path.open()) if int(r["step"]) <= upto]


def write_log(path: Path, rows: list[dict[str, Any]], fields: list[str]) -> None:
    """Atomically (re)write a training log CSV."""
    write_text(path, csv_text(rows, fields))
