"""Progress bars that stay quiet when stderr is not a terminal (CI, cluster logs)."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


def progress(iterable: Iterable[T], desc: str, enabled: bool = True, **kw) -> Iterable[T]:
    """Wrap ``iterable`` in a tqdm bar, shown only when ``enabled`` and stderr is a TTY."""
    return tqdm(iterable, desc=desc, disable=not (enabled and sys.stderr.isatty()), leave=False, **kw)
