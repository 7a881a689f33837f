"""Stand-ins for modules the library imports at module level but the GPU benchmarks never call.

``metadip.solvers.dip`` and ``metadip.meta.inner_loop`` import scikit-image (SSIM), tqdm (progress
bars) and, through the operators, safetensors (operator files). A bare GPU image may have torch and
numpy only; importing this module before the library puts a stand-in in ``sys.modules`` for each of
those that is missing, and says so on stderr. A stand-in's functions raise when called; tqdm's passes
its iterable through (the benchmarks run with ``show_progress=False``).
"""

from __future__ import annotations

import importlib
import importlib.machinery
import sys
import types
from collections.abc import Iterable
from typing import Any


class MissingModuleError(RuntimeError):
    """A stand-in of a module that is not installed was called."""


def _unavailable(name: str) -> Any:
    def call(*_args: Any, **_kwargs: Any) -> Any:
        raise MissingModuleError(f"{name} is a stand-in: install its package to use it")

    return call


def _passthrough(iterable: Iterable | None = None, *_args: Any, **_kwargs: Any) -> Iterable | None:
    return iterable


class _SafetensorError(Exception):
    pass


STANDINS: dict[str, dict[str, Any]] = {
    "skimage.metrics": {"structural_similarity": _unavailable("skimage.metrics.structural_similarity")},
    "tqdm.auto": {"tqdm": _passthrough},
    "safetensors": {"SafetensorError": _SafetensorError, "safe_open": _unavailable("safetensors.safe_open")},
    "safetensors.torch": {"save_file": _unavailable("safetensors.torch.save_file")},
}


def install(name: str, attributes: dict[str, Any]) -> bool:
    """Put a stand-in for module ``name`` (and its missing parents) in ``sys.modules`` unless it
    imports; True when a stand-in was installed."""
    try:
        importlib.import_module(name)
        return False
    except Exception:  # noqa: BLE001 - a broken install (e.g. a numpy ABI mismatch) raises ValueError too
        pass
    parts = name.split(".")
    for depth in range(1, len(parts) + 1):
        prefix = ".".join(parts[:depth])
        if prefix not in sys.modules or depth == len(parts):
            module = sys.modules.get(prefix) or types.ModuleType(prefix, "stand-in (optional_stubs)")
            module.__spec__ = module.__spec__ or importlib.machinery.ModuleSpec(prefix, None)  # find_spec reads it
            sys.modules[prefix] = module
            if depth > 1:
                setattr(sys.modules[".".join(parts[: depth - 1])], parts[depth - 1], module)
    for key, value in attributes.items():
        setattr(sys.modules[name], key, value)
    return True


STUBBED = [name for name, attributes in STANDINS.items() if install(name, attributes)]
if STUBBED:
    print(
        f"note: not installed, replaced by stand-ins the measurements never call: {', '.join(STUBBED)}", file=sys.stderr
    )
