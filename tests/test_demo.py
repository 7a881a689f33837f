"""The demo stage writes a grid, a PSNR table and traces for every measurement model."""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
DURATION = r"(\d+ s|[\d.]+ min)( to (\d+ s|[\d.]+ min))?"


def test_demo_stage_writes_outputs(tmp_path):
    out = tmp_path / "demo"
    cmd = [
        sys.executable,
        str(ROOT / "stages" / "demo.py"),
        "--out",
        str(out),
        "--steps",
        "5",
        "--width",
        "8",
        "--structured",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader((out / "psnr.csv").open()))
    assert [r["operator"] for r in rows] == ["denoising", "cs_fast", "pr_fast"]
    assert all(float(r["psnr_dip_ema"]) > 0 and float(r["seconds"]) > 0 for r in rows)
    with Image.open(out / "grid.png") as im:
        assert im.width > 300 and im.height > 300
    traces = list(csv.DictReader((out / "traces.csv").open()))
    assert len(traces) == 3 * 5
    assert "denoising σ=25" in (out / "psnr.md").read_text()
    log = [line for line in proc.stderr.splitlines() if line.startswith(("demo: ", "estimated time: ", "["))]
    assert log[0].startswith("demo: vanilla DIP on 'astronaut' 64×64 (skip net width 8), 3 tasks × 5 Adam steps on ")
    assert re.fullmatch(rf"estimated time: {DURATION} in all", log[1]), log[1]
    for i, task in enumerate(("denoising σ=25", "CS m/n=1/4, σ=25", "PR m/n=1/4, σ=25")):
        assert re.fullmatch(rf"\[{i + 1}/3\] {re.escape(task)}: 5 steps, {DURATION}", log[2 + 2 * i])
        assert re.fullmatch(rf"\[{i + 1}/3\] {re.escape(task)}: DIP [\d.]+ dB in \d+ s", log[3 + 2 * i])


def test_demo_rejects_bad_arguments():
    for args, message in (
        (["--image", "lena"], "invalid choice"),
        (["--size", "32"], "at least 64 px"),
        (["--steps", "0"], "must be positive"),
    ):
        proc = subprocess.run(
            [sys.executable, str(ROOT / "stages" / "demo.py"), *args], capture_output=True, text=True, check=False
        )
        assert proc.returncode == 2 and message in proc.stderr
