"""scripts/slurm_cluster.sh: a real single-node SLURM cluster on loopback with one fake GPU, started
and stopped by PID (marked slow; needs root to install the Debian packages the first time)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "slurm_cluster.sh"
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(os.geteuid() != 0 and shutil.which("slurmctld") is None,
                                 reason="installing slurm-wlm needs root")]


def run(*cmd, check=True, timeout=300):
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, check=check, timeout=timeout)


def test_cluster_starts_on_loopback_schedules_a_gpu_and_stops(tmp_path):
    state = tmp_path / "slurm"
    try:
        started = run("bash", SCRIPT, "start", state)
        assert "idle" in started.stdout
        again = run("bash", SCRIPT, "start", state)  # idempotent
        assert "already running" in again.stdout
        pids = {d: int((state / f"{d}.pid").read_text()) for d in ("slurmctld", "slurmd")}
        # nothing listens beyond loopback
        listening = run("ss", "-Hltnp").stdout.splitlines()
        ours = [line for line in listening if any(f"pid={p}," in line for p in pids.values())]
        assert ours and all(line.split()[3].startswith("127.") for line in ours), ours
        # a job asking for the fake GPU is scheduled and sees it
        out = tmp_path / "job.out"
        run("sbatch", "--wait", "--gpus=1", "-o", out, "--wrap", "echo gpu=$CUDA_VISIBLE_DEVICES")
        assert out.read_text().strip() == "gpu=0"
    finally:
        stopped = run("bash", SCRIPT, "stop", state, check=False)
    assert stopped.returncode == 0, stopped.stderr
    for p in pids.values():
        assert not Path(f"/proc/{p}").exists()
    assert not Path("/etc/slurm/slurm.conf").exists()
