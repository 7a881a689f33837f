"""Training checkpoints: model state, Adam state and step in one safetensors file, written atomically.

A checkpoint records the hash of the run's configuration. A run resumes only from a checkpoint of its
own configuration; one left by another configuration (the config was edited, so the workflow reruns
the job in the same folder) is ignored with a warning and overwritten at the first checkpoint.
"""

from __future__ import annotations

import csv
import io
import logging
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from metadip.atomic import atomic_path, write_text

log = logging.getLogger(__name__)


def save_checkpoint(path: Path, model: nn.Module, opt: torch.optim.Adam, step: int, run_hash: str) -> None:
    """Write model + Adam state (exp_avg, exp_avg_sq, step per parameter) + step atomically."""
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    for i, p in enumerate(model.parameters()):
        st = opt.state.get(p)
        if st:
            tensors[f"opt.{i}.exp_avg"] = st["exp_avg"].detach().cpu().contiguous()
            tensors[f"opt.{i}.exp_avg_sq"] = st["exp_avg_sq"].detach().cpu().contiguous()
            tensors[f"opt.{i}.step"] = torch.as_tensor(st["step"], dtype=torch.float64).reshape(1).cpu()
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"step": str(step), "run_hash": run_hash})


def resume_step(path: Path, model: nn.Module, opt: torch.optim.Adam, run_hash: str, device: torch.device) -> int:
    """The step to continue from: 0 without a checkpoint at ``path`` or with one of another run
    configuration (a fresh start), else the checkpoint's step after restoring what
    :func:`save_checkpoint` wrote into ``model`` and ``opt``."""
    if not path.is_file():
        return 0
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
        if meta.get("run_hash") != run_hash:
            log.warning("%s: checkpoint of another run configuration (hash %s, this run %s); starting from step 0",
                        path, meta.get("run_hash"), run_hash)
            return 0
        tensors = {k: f.get_tensor(k) for k in f.keys()}
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
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    write_text(path, buf.getvalue())
