"""Generated blocks inside hand-written markdown: the lines between a ``<!-- NAME:begin -->`` and a
``<!-- NAME:end -->`` marker line are replaced, everything else is kept."""

from __future__ import annotations

import re

from metadip.core.errors import InputError


def markers(name: str) -> tuple[str, str]:
    """The begin and end marker lines of the block ``name``."""
    return f"<!-- {name}:begin -->", f"<!-- {name}:end -->"


def between_markers(text: str, block: str, name: str, where: str) -> str:
    """``text`` (a markdown file's content, named ``where`` in errors) with ``block`` (ending in a
    newline) between the marker lines of ``name``; exactly one such pair must be there."""
    begin, end = markers(name)
    pattern = re.compile(rf"^{re.escape(begin)}\n.*?^{re.escape(end)}$", re.DOTALL | re.MULTILINE)
    if len(pattern.findall(text)) != 1:
        raise InputError(f"{where}: needs one '{begin}' line followed by one '{end}' line around the {name} table")
    return pattern.sub(lambda _: f"{begin}\n{block}{end}", text)
