"""The loopback services the workflow tests run against (marked slow; installing their Debian
packages the first time needs root): scripts/slurm_cluster.sh, scripts/ssh_remote.sh and
scripts/s3_remote.sh start idempotently, listen on 127.0.0.1 only and do their job. Stopping by PID
is checked where each is stopped (the session fixtures and .ci/run)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from workflow_helpers import ROOT, sh, start_service

pytestmark = pytest.mark.slow


def run(*cmd, check=True) -> subprocess.CompletedProcess:
    return sh(*cmd, cwd=ROOT, check=check, timeout=120)


def assert_loopback_only(pidfiles: list[Path]) -> None:
    pids = [int(p.read_text()) for p in pidfiles]
    ours = [line for line in run("ss", "-Hltnp").stdout.splitlines() if any(f"pid={p}," in line for p in pids)]
    assert ours and all(line.split()[3].startswith("127.") for line in ours), ours


def test_slurm_cluster_is_idempotent_on_loopback_and_schedules_a_gpu(slurm_cluster, tmp_path):
    assert not start_service("slurm_cluster.sh", slurm_cluster)  # idempotent: "already running"
    assert_loopback_only([slurm_cluster / "slurmctld.pid", slurm_cluster / "slurmd.pid"])
    out = tmp_path / "job.out"
    run("sbatch", "--wait", "--gpus=1", "-o", out, "--wrap", "echo gpu=$CUDA_VISIBLE_DEVICES")
    assert out.read_text().strip() == "gpu=0"


def test_ssh_remote_is_idempotent_on_loopback_and_takes_only_its_key(ssh_remote, tmp_path):
    assert not start_service("ssh_remote.sh", ssh_remote)
    assert_loopback_only([ssh_remote / "sshd.pid"])
    opts = [
        "-p",
        "2222",
        "-o",
        "BatchMode=yes",
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        f"UserKnownHostsFile={ssh_remote / 'known_hosts'}",
        "-o",
        "StrictHostKeyChecking=yes",
    ]
    user = run("id", "-un").stdout.strip()
    ok = run("ssh", "-i", ssh_remote / "id_ed25519", *opts, f"{user}@127.0.0.1", "echo", "hello")
    assert ok.stdout.strip() == "hello"
    run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", tmp_path / "other")
    refused = run("ssh", "-i", tmp_path / "other", *opts, f"{user}@127.0.0.1", "true", check=False)
    assert refused.returncode != 0 and "Permission denied" in refused.stderr


def test_s3_remote_is_idempotent_on_loopback_and_serves_its_bucket(s3_remote):
    assert not start_service("s3_remote.sh", s3_remote)
    assert_loopback_only(sorted((s3_remote / "run").glob("*.pid")))
    key, secret = (s3_remote / "credentials").read_text().split()
    sign = ["--aws-sigv4", "aws:amz:us-east-1:s3", "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD"]
    listing = run("curl", "-s", "--max-time", "10", *sign, "--user", f"{key}:{secret}", "http://127.0.0.1:7480/")
    assert "<Name>metadip</Name>" in listing.stdout
    forged = run("curl", "-s", "--max-time", "10", *sign, "--user", f"{key}:{'0' * 40}", "http://127.0.0.1:7480/")
    assert "SignatureDoesNotMatch" in forged.stdout
