"""Compiled optimisation steps of a prior network on the CPU, for the solvers.

A compiled step computes what the eager one computes, up to float rounding. The measured levers
(``bench/solve_speed.py --compiled``, docs/performance.md):

- the skip net's forward and backward compiled by ``torch.compile`` as a function of its tensors
  (:func:`metadip.models.networks.skip_forward`): Inductor's C++ kernels fuse the BatchNorm,
  activation, padding and upsampling between the convolutions, and a call guards three tensors
  instead of every module and parameter of the network;
- a channels_last input and weights, so that its convolutions run as oneDNN kernels;
- all parameters in one flat leaf, so that an optimiser step is one fused kernel and one gradient
  instead of a loop over every tensor (:class:`StepForward`).

The latent input z (+ jitter) is built inside the graph; without jitter it adds a zero one, so DIP
and MetaDIP share one graph per architecture and image size.

Compiling takes minutes the first time; the result is kept on disk (:func:`cache_dir`), where every
later process, such as the next evaluation job, loads it in seconds. Compiling needs a C++ compiler and
this Python's headers; without them (:func:`compiler`, :func:`python_headers`), or on a device other
than the CPU, :func:`prepare` leaves the prior eager and says so once, and the solvers record which
forward ran.

SIREN priors stay eager: their linear layers gain nothing from either lever.
"""

from __future__ import annotations

import functools
import math
import os
import shutil
import sys
import sysconfig
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from metadip.models.networks import SkipConfig, jittered, skip_forward

#: environment variable naming the on-disk compile cache (default: ~/.cache/metadip/torch-compile)
CACHE_ENV = "METADIP_COMPILE_CACHE"
_warned: set[str] = set()


def cache_dir() -> Path:
    """Where compiled graphs are kept: ``$METADIP_COMPILE_CACHE``, else ``$XDG_CACHE_HOME`` (or
    ``~/.cache``) ``/metadip/torch-compile``. Shared by every process and clone of this user: an
    entry is keyed by the graph, the torch version and the CPU, so sharing it is safe."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "metadip" / "torch-compile"


def compiler() -> str | None:
    """The C++ compiler Inductor calls (``$CXX``, else g++) when it is installed, else None."""
    name = os.environ.get("CXX") or "g++"
    return name if shutil.which(name) else None


def python_headers() -> bool:
    """Whether this Python's C headers (Python.h), which Inductor's kernels include, are installed."""
    return (Path(sysconfig.get_path("include")) / "Python.h").is_file()


def _say_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        print(message, file=sys.stderr, flush=True)


def compilable(prior: nn.Module, device: torch.device) -> bool:
    """Whether :func:`prepare` would compile ``prior`` on ``device`` (a skip-net prior on the CPU,
    with a C++ compiler and Python's headers at hand); says why not once per process when it is a
    skip net."""
    if not hasattr(prior, "net_input"):
        return False
    if device.type != "cpu":
        _say_once(f"compiled steps: CPU only for now; the solvers run eager on {device}")
        return False
    if compiler() is None:
        _say_once("compiled steps: no C++ compiler (g++) found; the solvers run eager (apt-get install g++)")
        return False
    if not python_headers():
        version = f"{sys.version_info.major}.{sys.version_info.minor}"
        _say_once(
            f"compiled steps: this Python's headers (Python.h) are missing; the solvers run eager "
            f"(apt-get install python{version}-dev)"
        )
        return False
    return True


@dataclass(frozen=True)
class StepForward:
    """What a solver takes its optimisation steps with: the leaves it updates (``params``), the
    forward pass jitter (or None) → image ``(1, C, H, W)`` whose gradient reaches them, and whether
    that forward is compiled.

    Eager, the leaves are the prior's parameter tensors. Compiled, they are one flat tensor holding
    all of them in ``named_parameters`` order (``shapes``), each 4-d one in channels_last order
    (:func:`leaf_views`), and the prior's parameters are views into it, so its own eager forward
    always sees the current values. One leaf means one fused optimiser kernel and one gradient
    instead of a loop over every tensor."""

    params: list[Tensor]
    forward: Callable[[Tensor | None], Tensor]
    compiled: bool
    shapes: tuple[tuple[int, ...], ...] = ()

    def per_leaf(self, values: Sequence[float] | Sequence[Tensor]) -> list:
        """One value per parameter tensor (floats, or tensors shaped like the parameters) → one per
        leaf of ``params``: unchanged when eager; one flat tensor of per-element values when
        compiled (the same float32 numbers, so the same products)."""
        if not self.shapes:
            return list(values)
        flat = self.params[0]
        if isinstance(values[0], Tensor):
            out = torch.empty_like(flat, requires_grad=False)
            for view, v in zip(leaf_views(out, self.shapes), values, strict=True):
                view.copy_(v)
            return [out]
        counts = torch.tensor([math.prod(s) for s in self.shapes], device=flat.device)
        return [torch.tensor(values, dtype=flat.dtype, device=flat.device).repeat_interleave(counts)]


def leaf_views(flat: Tensor, shapes: Sequence[tuple[int, ...]]) -> list[Tensor]:
    """Views of the 1-d ``flat`` shaped ``shapes``, one after another; a 4-d one (a convolution's
    weight) in channels_last strides, the layout the convolutions of a channels_last input want, so
    that no step copies a weight into it."""
    views = []
    for chunk, shape in zip(flat.split([math.prod(s) for s in shapes]), shapes, strict=True):
        if len(shape) == 4:
            o, i, h, w = shape
            views.append(chunk.view(o, h, w, i).permute(0, 3, 1, 2))
        else:
            views.append(chunk.view(shape))
    return views


def eager(prior: nn.Module) -> StepForward:
    """The prior's own parameters and forward pass."""
    return StepForward(list(prior.parameters()), prior, False)


def prepare(prior: nn.Module, device: torch.device) -> StepForward:
    """Compiled steps for ``prior`` on ``device`` where :func:`compilable`, else :func:`eager`.
    Compiling moves ``prior``'s parameters into one flat leaf (values unchanged; the module's
    parameters become views of it); the compiled graph is :func:`metadip.models.networks.skip_forward`
    of that leaf, one per architecture and image size per process, loaded from the disk cache."""
    if not compilable(prior, device):
        return eager(prior)
    named = list(prior.net.named_parameters())
    if len(named) != len(list(prior.parameters())):
        raise ValueError("compiled steps: the prior has parameters outside its skip net")
    shapes = tuple(tuple(p.shape) for _, p in named)
    flat = torch.empty(sum(p.numel() for _, p in named), dtype=named[0][1].dtype, device=named[0][1].device)
    with torch.no_grad():
        for (_, p), view in zip(named, leaf_views(flat, shapes), strict=True):
            view.copy_(p)
            p.data = view
    flat.requires_grad_(True)
    graph = _compiled_skip(prior.net.config, prior.config.latent_channels, shapes)
    z = prior.z
    no_jitter = torch.zeros(prior.latent_shape, device=z.device)  # z + 0 = z exactly: MetaDIP's input

    def forward(jitter: Tensor | None = None) -> Tensor:
        return graph(flat, z, no_jitter if jitter is None else jitter)

    return StepForward([flat], forward, True, shapes)


@functools.cache
def _compiled_skip(
    config: SkipConfig, latent_channels: int, shapes: tuple[tuple[int, ...], ...]
) -> Callable[[Tensor, Tensor, Tensor], Tensor]:
    """(flat parameters, z ``(1, C_in, H, W)``, jitter of z's first ``latent_channels``) → image,
    compiled: one per skip net in a process, so a job's images reuse one graph. Only its three
    tensor inputs are guarded, and a graph that would recompile past dynamo's limit raises instead
    of silently running eager."""
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(cache_dir()))
    torch._dynamo.config.fail_on_recompile_limit_hit = True

    def forward(flat: Tensor, z: Tensor, jitter: Tensor) -> Tensor:
        params = leaf_views(flat, shapes)
        x = jittered(z, latent_channels, jitter)
        # channels_last input: the convolutions run as oneDNN kernels
        return skip_forward(config, params, x.contiguous(memory_format=torch.channels_last))

    return torch.compile(forward, dynamic=False)
