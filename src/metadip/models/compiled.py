"""Compiled forward passes of a prior network on the CPU, for the solvers' optimisation steps.

A compiled prior computes what the eager one computes, up to float rounding. Two measured levers
(``bench/solve_speed.py --compiled``, docs/performance.md) make its steps cheaper:

- the skip net in channels_last layout, so that its convolutions run as oneDNN kernels;
- the skip net's forward and backward compiled by ``torch.compile`` (Inductor's C++ kernels fuse
  the BatchNorm, activation, padding and upsampling between the convolutions). The latent input is
  built outside the compiled graph, so DIP (jittered input) and MetaDIP (plain z) share one graph
  per architecture and image size.

Compiling takes minutes the first time; the result is kept on disk (:func:`cache_dir`), where every
later process, such as the next evaluation job, loads it in seconds. Compiling needs a C++ compiler and
this Python's headers; without them (:func:`compiler`, :func:`python_headers`), or on a device other
than the CPU, :func:`prepare` leaves the prior eager and says so once, and the solvers record which
forward ran.

SIREN priors stay eager: their linear layers gain nothing from either lever.
"""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor, nn

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


def prepare(prior: nn.Module, device: torch.device) -> tuple[Callable[[Tensor | None], Tensor], bool]:
    """The forward pass jitter → image ``(1, C, H, W)`` to take optimisation steps with, and
    whether it is compiled. Compiling converts ``prior``'s 4-d parameters and buffers to
    channels_last in place (values unchanged); its outputs keep that layout."""
    if not compilable(prior, device):
        return prior, False
    prior.to(memory_format=torch.channels_last)
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(cache_dir()))
    net = torch.compile(prior.net, dynamic=False)

    def forward(jitter: Tensor | None = None) -> Tensor:
        # one input layout for every caller: a graph is compiled per layout
        return net(prior.net_input(jitter).contiguous(memory_format=torch.channels_last))

    return forward, True
