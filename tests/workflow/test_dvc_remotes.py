"""DVC against real remotes on loopback (marked slow): an S3 server (Ceph RADOS Gateway,
scripts/s3_remote.sh; the main path) and an SSH server (Debian OpenSSH, scripts/ssh_remote.sh).
The tiny pipeline's curated data, meta-inits (and baselines) are pushed from one clone and pulled
into a fresh one; credentials live only in .dvc/config.local; a wrong key or an unreachable remote
fails with a clear error and leaves the workspace as it was."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import uuid
from pathlib import Path

import pytest
from workflow_helpers import BIN, assert_same_tables, commit, sh

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]  # the first test also builds the tiny DVC repository


def dvc(*args, cwd: Path, **kw) -> subprocess.CompletedProcess:
    return sh(BIN / "dvc", *args, cwd=cwd, **kw)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def configure_s3(
    repo: Path,
    state: Path,
    name: str,
    prefix: str,
    *,
    port: int = 7480,
    secret: str | None = None,
    default: bool = False,
) -> None:
    """The remote as the README sets it up: URL and endpoint in .dvc/config, keys in config.local."""
    key, real_secret = (state / "credentials").read_text().split()
    dvc("remote", "add", "-f", *(["-d"] if default else []), name, f"s3://metadip/{prefix}", cwd=repo)
    dvc("remote", "modify", name, "endpointurl", f"http://127.0.0.1:{port}", cwd=repo)
    dvc("remote", "modify", "--local", name, "access_key_id", key, cwd=repo)
    dvc("remote", "modify", "--local", name, "secret_access_key", secret or real_secret, cwd=repo)


def configure_ssh(
    repo: Path,
    state: Path,
    name: str,
    prefix: str,
    *,
    port: int = 2222,
    keyfile: Path | None = None,
    default: bool = False,
) -> None:
    user = sh("id", "-un", cwd=repo).stdout.strip()
    dvc(
        "remote",
        "add",
        "-f",
        *(["-d"] if default else []),
        name,
        f"ssh://{user}@127.0.0.1:{port}{state / 'store' / prefix}",
        cwd=repo,
    )
    dvc("remote", "modify", "--local", name, "keyfile", keyfile or state / "id_ed25519", cwd=repo)


def snapshot(repo: Path) -> dict[str, tuple[int, int]]:
    """Every file of a workspace (DVC's own temp folder aside): path → (size, mtime)."""
    return {
        str(p.relative_to(repo)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in repo.rglob("*")
        if p.is_file() and ".dvc/tmp" not in str(p.relative_to(repo))
    }


def publish(repo: Path, stages: list[str]) -> None:
    """Commit the (default) remote's public settings, push the stages' outputs; no secret reaches git."""
    commit(repo, "shared remote")
    dvc("push", *stages, cwd=repo)
    local = (repo / ".dvc" / "config.local").read_text()
    tracked = sh("git", "show", "HEAD:.dvc/config", cwd=repo).stdout
    for secret in re.findall(r"(?:secret_access_key|keyfile) = (\S+)", local):
        assert secret not in tracked


def publisher(tiny_repo: Path, dest: Path) -> Path:
    """A copy of the tiny pipeline's repository (its DVC cache included) to publish from."""
    shutil.copytree(tiny_repo, dest, symlinks=True)
    return dest


def pulled_clone(repo: Path, dest: Path, configure, stages: list[str]) -> Path:
    sh("git", "clone", "-q", repo, dest, cwd=repo.parent)
    configure(dest)  # the credentials again: config.local stays with its clone
    dvc("pull", *stages, cwd=dest)
    assert_pulled(repo, dest, stages)
    return dest


def assert_pulled(repo: Path, dest: Path, stages: list[str]) -> None:
    """The pulled outputs' content hashes match dvc.lock and their bytes match the publisher's."""
    if "curate" in stages:  # (`dvc status` of a stage also checks its dependencies)
        status = dvc("status", *stages, cwd=dest).stdout
        assert "up to date" in status, status
    crops = [str(p.relative_to(repo)) for p in (repo / "data" / "curated").rglob("*.npy")] if "curate" in stages else []
    for f in ("results/meta/metadip/meta_init.safetensors", "results/meta/metasiren/meta_init.safetensors", *crops):
        assert (dest / f).read_bytes() == (repo / f).read_bytes(), f


def test_s3_push_pull_then_evaluate_without_meta_training(tiny_repo, s3_remote, tmp_path):
    repo = publisher(tiny_repo, tmp_path / "publisher")
    prefix = f"run-{uuid.uuid4().hex[:8]}"
    configure_s3(repo, s3_remote, "shared", prefix, default=True)
    stages = ["curate", "meta_init", "baselines"]
    publish(repo, stages)
    clone = pulled_clone(repo, tmp_path / "clone", lambda r: configure_s3(r, s3_remote, "shared", prefix), stages)
    assert not (clone / "results" / "eval").exists()

    # the README's evaluation-only path: mark the pulled artifacts up to date, run the rest (DIP's stop step included)
    meta = clone / "results" / "meta" / "metadip" / "meta_init.safetensors"
    sh(BIN / "snakemake", "--touch", "meta_inits", "baselines", cwd=clone)
    before = meta.stat().st_mtime_ns
    run = sh(BIN / "snakemake", "--cores", "2", cwd=clone)
    ran = set(re.findall(r"^(?:local)?rule (\w+):", run.stdout + run.stderr, re.MULTILINE))
    assert ran == {"dip_stop", "evaluate", "aggregate", "claims", "pnp_table", "render", "all"}, ran
    assert meta.stat().st_mtime_ns == before
    assert_same_tables(clone / "results", repo / "results")


def test_ssh_push_then_pull_only_the_meta_init_then_the_data(tiny_repo, ssh_remote, tmp_path):
    repo = publisher(tiny_repo, tmp_path / "publisher")
    prefix = f"run-{uuid.uuid4().hex[:8]}"
    configure_ssh(repo, ssh_remote, "shared", prefix, default=True)
    publish(repo, ["curate", "meta_init"])
    clone = pulled_clone(
        repo, tmp_path / "clone", lambda r: configure_ssh(r, ssh_remote, "shared", prefix), ["meta_init"]
    )
    assert (clone / "results" / "meta" / "metadip" / "meta_init.json").is_file()
    assert not (clone / "data" / "curated").exists()  # only the meta-inits came
    dvc("pull", "curate", cwd=clone)
    assert_pulled(repo, clone, ["curate", "meta_init"])
    sh(BIN / "snakemake", "--touch", "meta_inits", cwd=clone)
    plan = sh(BIN / "snakemake", "-n", cwd=clone).stdout
    assert "rule meta_train:" not in plan and "rule curate:" not in plan and "rule evaluate:" in plan


@pytest.mark.parametrize("remote", ["s3", "ssh"])
@pytest.mark.parametrize("fault", ["wrong key", "unreachable"])
def test_a_bad_remote_fails_clearly_and_leaves_the_workspace(tiny_repo, s3_remote, ssh_remote, remote, fault, tmp_path):
    clone = tmp_path / "clone"
    sh("git", "clone", "-q", tiny_repo, clone, cwd=tmp_path)
    port = free_port() if fault == "unreachable" else None
    if remote == "s3":
        configure_s3(
            clone, s3_remote, "bad", "anything", port=port or 7480, secret="0" * 40 if fault == "wrong key" else None
        )
    else:
        other = tmp_path / "other_key"
        sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", other, cwd=tmp_path)
        configure_ssh(
            clone, ssh_remote, "bad", "anything", port=port or 2222, keyfile=other if fault == "wrong key" else None
        )
    before = snapshot(clone)
    failed = dvc("pull", "-r", "bad", "meta_init", cwd=clone, check=False, timeout=300)
    assert failed.returncode != 0
    first = failed.stderr.strip().splitlines()[0]
    expected = {
        ("s3", "wrong key"): "Forbidden",
        ("s3", "unreachable"): "Could not connect to the endpoint URL",
        ("ssh", "wrong key"): "Permission denied",
        ("ssh", "unreachable"): "Connect call failed",
    }
    assert first.startswith(f"ERROR: failed to connect to {remote}") and expected[remote, fault] in first, failed.stderr
    assert snapshot(clone) == before
