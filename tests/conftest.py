"""Shared fixtures: small images and a quiet, deterministic torch; the loopback services (SLURM,
SSH, S3) and the tiny pipeline run that the slow workflow tests share."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest
import torch
from workflow_helpers import BIN, commit, config_reads_env, copy_workflow, sh, start_service, stop_service

from metadip.core.images import bundled_image

torch.set_num_threads(1)  # small tensors: one thread is faster and steady when cores are shared
# compiled solver steps keep their graphs in this session's own cache, never in the user's
_COMPILE_CACHE = tempfile.mkdtemp(prefix="metadip-test-compile-")
os.environ.setdefault("METADIP_COMPILE_CACHE", _COMPILE_CACHE)
atexit.register(shutil.rmtree, _COMPILE_CACHE, ignore_errors=True)


@pytest.fixture(scope="session")
def astronaut64() -> torch.Tensor:
    """The bundled astronaut photograph, (3, 64, 64) in [0, 1]."""
    return bundled_image("astronaut", 64)


@pytest.fixture(scope="session")
def camera32() -> torch.Tensor:
    """The bundled cameraman photograph, grey, (1, 32, 32) in [0, 1]."""
    return bundled_image("camera", 32, channels=1)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _service(script: str, state: str, binary: str):
    """A loopback service from scripts/<script>, in `state` (where .ci/run starts it too): started
    unless already running; stopped at the end of the session only if started here."""
    if os.geteuid() != 0 and shutil.which(binary) is None:
        pytest.skip(f"installing {binary} needs root")
    state = Path(state)
    started = start_service(script, state)
    yield state
    if started:
        stop_service(script, state)


@pytest.fixture(scope="session")
def slurm_cluster():
    """A single-node SLURM cluster (partition `debug`, two fake GPUs); its state directory."""
    yield from _service("slurm_cluster.sh", "/tmp/metadip-slurm", "slurmctld")


@pytest.fixture(scope="session")
def ssh_remote():
    """An SSH server on 127.0.0.1 (port 2222, key login); its state directory (keys, store)."""
    yield from _service("ssh_remote.sh", "/tmp/metadip-ssh", "sshd")


@pytest.fixture(scope="session")
def s3_remote():
    """Ceph RADOS Gateway on 127.0.0.1:7480, bucket `metadip`; its state directory (credentials)."""
    yield from _service("s3_remote.sh", "/tmp/metadip-s3", "radosgw")


@pytest.fixture(scope="session")
def tiny_repo(tmp_path_factory) -> Path:
    """The tiny `.test/` pipeline reproduced with `dvc repro` in a scratch git + DVC repository, with
    dvc.lock committed. Tests may push from it and read it; they must not change its results. Each
    stage's config reads are recorded in ``config-reads.jsonl`` beside it (tests/config_reads)."""
    repo = copy_workflow(tmp_path_factory.mktemp("tiny") / "repo")
    # as the docs type it: `.venv/bin/dvc repro`, nothing activated (PATH without the environment)
    (repo / ".venv").symlink_to(BIN.parent)
    bare = {
        **os.environ,
        "PATH": os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if Path(p) != BIN),
        **config_reads_env(repo.parent / "config-reads.jsonl"),
    }
    t = time.perf_counter()
    sh(".venv/bin/dvc", "repro", cwd=repo, env=bare)
    print(f"dvc repro (tiny pipeline): {time.perf_counter() - t:.0f} s")
    commit(repo, "reproduced")
    return repo
