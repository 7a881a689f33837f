"""Progress bars: a tqdm bar on a terminal; when stderr is not one (CI, cluster logs), a plain line
every :data:`LOG_EVERY` seconds and a last one at the end, nothing for loops that end sooner."""

from __future__ import annotations

import functools
import io
import sys
from collections.abc import Iterable
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")

LOG_EVERY = 15.0  # seconds between the progress lines written when stderr is not a terminal


def progress(iterable: Iterable[T], desc: str, enabled: bool = True, **kw) -> Iterable[T]:
    """Wrap ``iterable`` in a tqdm bar when ``enabled``: drawn on a terminal, else logged as lines."""
    if enabled and not sys.stderr.isatty():
        return _line_bar()(
            iterable,
            desc=desc,
            file=io.StringIO(),  # unused: the lines go to sys.stderr
            delay=LOG_EVERY,
            mininterval=LOG_EVERY,
            maxinterval=LOG_EVERY,
            leave=False,
            **kw,
        )
    return tqdm(iterable, desc=desc, disable=not enabled, leave=False, **kw)


@functools.cache
def _line_bar() -> type:
    """tqdm's plain bar with each redraw written as a line to stderr, at most one per :data:`LOG_EVERY`
    seconds (built on first use: the GPU benchmarks stand in for ``tqdm.auto`` where tqdm is missing)."""
    from tqdm.std import tqdm as plain

    class Lines(plain):
        _logged: tuple[float, int] | None = None  # time and count of the last line written

        def display(self, msg: str | None = None, pos: int | None = None) -> bool:
            if msg is None and self._time() - (self._logged[0] if self._logged else self.start_t) >= LOG_EVERY:
                self._line()
            return True

        def close(self) -> None:
            if not self.disable and self._logged is not None and self._logged[1] != self.n:
                self._line()
            super().close()

        def _line(self) -> None:
            self._logged = (self._time(), self.n)
            done = (
                "{percentage:3.0f}% {n_fmt}/{total_fmt} [{elapsed}<{remaining}" if self.total else "{n_fmt} [{elapsed}"
            )
            line = self.format_meter(**{**self.format_dict, "bar_format": "{desc}: " + done + ", {rate_fmt}{postfix}]"})
            print(line, file=sys.stderr, flush=True)

    return Lines
