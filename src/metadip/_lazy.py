"""Lazy package exports (PEP 562): a subpackage lists its public names and the module of each; a name
loads its module on first access, so ``import metadip.pipeline.plan`` does not pull in torch through
the package's ``__init__``. Inside the library, import from the module itself (its file is then part
of a run's code identity, :func:`metadip.core.checkpoints.code_files`)."""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any


def lazy_exports(
    package: str, exports: dict[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """``(__getattr__, __dir__, __all__)`` for ``package`` whose public ``name`` lives in module
    ``package.exports[name]``."""

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(import_module(f"{package}.{exports[name]}"), name)

    def __dir__() -> list[str]:
        return sorted(exports)

    return __getattr__, __dir__, sorted(exports)
