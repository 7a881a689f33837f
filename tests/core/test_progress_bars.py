"""Progress bars log a line every LOG_EVERY seconds when stderr is not a terminal, and nothing sooner."""

from __future__ import annotations

import re
import time

from metadip.core import progress_bars
from metadip.core.progress_bars import progress


def test_a_long_loop_logs_lines_with_its_eta(monkeypatch, capsys):
    monkeypatch.setattr(progress_bars, "LOG_EVERY", 0.05)
    for _ in progress(range(8), desc="work"):
        time.sleep(0.03)
    lines = capsys.readouterr().err.splitlines()
    assert 2 <= len(lines) <= 8
    assert all(re.fullmatch(r"work: +\d+% \d/8 \[\d\d:\d\d<\d\d:\d\d, .+\]", line) for line in lines), lines
    assert lines[-1].startswith("work: 100% 8/8 [")


def test_a_manual_bar_logs_its_postfix_and_a_last_line(monkeypatch, capsys):
    monkeypatch.setattr(progress_bars, "LOG_EVERY", 0.05)
    bar = progress(None, desc="crop", total=4)
    for k in range(4):
        time.sleep(0.03)
        bar.update(1)
        bar.set_postfix(k=k)
    bar.close()
    lines = capsys.readouterr().err.splitlines()
    assert lines and lines[-1].startswith("crop: 100% 4/4 [") and "k=" in lines[-1]


def test_a_short_or_disabled_loop_is_quiet(monkeypatch, capsys):
    list(progress(range(1000), desc="quick"))
    monkeypatch.setattr(progress_bars, "LOG_EVERY", 0.01)
    for _ in progress(range(3), desc="off", enabled=False):
        time.sleep(0.02)
    assert capsys.readouterr().err == ""
