"""Data-parallel meta-training over the tasks of a meta-batch with ``torch.distributed``.

Launched by ``torchrun`` (one process per GPU, or per CPU worker with the gloo backend), every rank
draws the same meta-batch (its seeds depend on the outer step only), adapts its own contiguous share
of the tasks, and the ranks all-reduce (sum) the meta-gradient before every rank takes the same
Adam step: the parameters stay identical on all ranks and equal the single-process run's up to the
order of a floating-point sum. Rank 0 alone validates and writes logs and checkpoints.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor


@dataclass(frozen=True)
class Ranks:
    """This process's place among ``size`` ranks (a single process: rank 0 of 1)."""

    rank: int = 0
    size: int = 1

    @property
    def lead(self) -> bool:
        """Whether this rank validates and writes files."""
        return self.rank == 0

    def share(self, n: int) -> range:
        """The indices of ``n`` tasks this rank adapts: a contiguous block, sizes differing by at most one."""
        return range(self.rank * n // self.size, (self.rank + 1) * n // self.size)

    def sum_gradients(self, params: list[Tensor]) -> None:
        """Replace every parameter's gradient by its sum over the ranks (one flat all-reduce)."""
        if self.size == 1:
            return
        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        flat = torch.cat([p.grad.reshape(-1) for p in params])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        offset = 0
        for p in params:
            p.grad.copy_(flat[offset : offset + p.numel()].view_as(p.grad))
            offset += p.numel()

    def sum_value(self, value: float, device: torch.device) -> float:
        """``value`` summed over the ranks."""
        if self.size == 1:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=device)
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return float(t.item())

    def barrier(self) -> None:
        if self.size > 1:
            dist.barrier()

    def broadcast_int(self, value: int, device: torch.device) -> int:
        """Rank 0's ``value`` on every rank."""
        if self.size == 1:
            return value
        t = torch.tensor([value], dtype=torch.int64, device=device)
        dist.broadcast(t, src=0)
        return int(t.item())


def current_ranks() -> Ranks:
    """The ranks of the initialised default process group, else a single process."""
    if dist.is_available() and dist.is_initialized():
        return Ranks(dist.get_rank(), dist.get_world_size())
    return Ranks()


def init_from_environment(device: str | None) -> tuple[Ranks, torch.device | None]:
    """Join the process group ``torchrun`` describes in the environment (``WORLD_SIZE`` > 1): NCCL
    with one GPU per rank (``LOCAL_RANK``) when CUDA is available and ``device`` is not "cpu", else
    gloo on the CPU. Without ``torchrun``: a single process on ``device``."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size == 1:
        return Ranks(), None if device is None else torch.device(device)
    use_cuda = torch.cuda.is_available() and device != "cpu"
    if use_cuda:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        chosen = torch.device("cuda", local)
    else:
        chosen = torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    return current_ranks(), chosen


def leave() -> None:
    """Leave the process group (after the last collective operation), if one was joined."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
