"""Reliability: file modes of atomic writes follow the umask; a resumed training run's log carries
its running totals (seconds, pending losses) across the resume."""

from __future__ import annotations

import csv
import os
import shutil
import signal
import stat
import subprocess
import sys
import types

import pyarrow.parquet as pq
import pytest
import torch
from builders import TINY, curate, dataset_config, images, make_folder, outer, tiny_model, training_images
from workflow_helpers import BIN, ROOT, sh

from metadip.core import training_log
from metadip.core.atomic import _host, atomic_path, current_umask, remove_stale_temps, write_text
from metadip.core.checkpoints import save_checkpoint
from metadip.core.images import save_png
from metadip.core.training_log import training_summary
from metadip.meta.maml import meta_train
from metadip.models.denoiser_training import DenoiserTraining, train_denoiser
from metadip.models.denoisers import DRUNet
from metadip.pipeline.artifacts import save_meta_init
from metadip.pipeline.evaluation import write_rows

# -- 1. modes of atomically written files ------------------------------------------------------------


@pytest.fixture(params=[0o022, 0o027, 0o002], ids=["022", "027", "002"])
def umask(request):
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_current_umask_reads_without_changing_it(umask):
    assert current_umask() == umask
    assert current_umask() == umask


def test_atomic_writes_get_the_umask_mode(umask, tmp_path):
    want = 0o666 & ~umask  # 022 -> 0644, 027 -> 0640, 002 -> 0664
    write_text(tmp_path / "a.txt", "x")
    with atomic_path(tmp_path / "b.bin") as tmp:
        tmp.write_bytes(b"y")
    write_rows([{"a": 1, "b": "x"}], tmp_path / "shard-0.parquet")  # an evaluation shard
    save_png(torch.zeros(3, 4, 4), tmp_path / "fig.png")
    net = torch.nn.Linear(2, 2)
    opt = torch.optim.Adam(net.parameters())
    save_checkpoint(tmp_path / "ckpt.safetensors", net, opt, 1, {"run_hash": "h"})  # safetensors through the helper
    for name in ("a.txt", "b.bin", "shard-0.parquet", "fig.png", "ckpt.safetensors"):
        assert mode(tmp_path / name) == want, (name, oct(mode(tmp_path / name)), oct(want))
    assert pq.read_table(tmp_path / "shard-0.parquet").num_rows == 1
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left behind


def test_meta_init_and_curated_folder_get_the_umask_mode(umask, tmp_path):
    weights, sidecar = save_meta_init(
        tiny_model(),
        tmp_path / "meta" / "meta_init",
        training_config={"x": 1},
        dataset_manifest_sha256="0" * 64,
        seed=0,
    )
    assert mode(weights) == mode(sidecar) == 0o666 & ~umask
    cfg = dataset_config(
        [{"type": "folder", "name": "photos", "root": str(make_folder(tmp_path / "photos", n=4))}], crops=(4, 2, 2)
    )
    out = tmp_path / "curated" / "d"
    curate(cfg, out)
    assert mode(out) == 0o777 & ~umask  # mkdtemp's 0700 would hide the dataset from the group
    assert {mode(p) for p in out.iterdir()} == {0o666 & ~umask}


# -- 2. temporary files of killed writers --------------------------------------------------------------


def test_the_temporary_file_of_a_killed_writer_is_removed_by_the_next_write(tmp_path):
    """A writer killed with SIGKILL inside atomic_path leaves its hidden temporary file; the next
    write of the same target removes it (its pid is gone), and writes the target."""
    target = tmp_path / "shard-0.parquet"
    killed = subprocess.run(
        [
            sys.executable,
            "-c",
            "import os, signal, sys; from metadip.core.atomic import atomic_path\n"
            "with atomic_path(sys.argv[1]) as tmp:\n"
            "    tmp.write_bytes(b'half')\n"
            "    os.kill(os.getpid(), signal.SIGKILL)",
            str(target),
        ],
        check=False,
    )
    assert killed.returncode == -signal.SIGKILL
    left = [p.name for p in tmp_path.iterdir()]
    assert len(left) == 1 and left[0].startswith(f".shard-0.parquet.{_host()}.")
    write_text(target, "whole")
    assert [p.name for p in tmp_path.iterdir()] == ["shard-0.parquet"] and target.read_text() == "whole"


def test_a_live_writers_or_another_hosts_temporary_file_is_kept(tmp_path):
    target = tmp_path / "summary.json"
    dead = subprocess.run([sys.executable, "-c", "print(__import__('os').getpid())"], capture_output=True, check=True)
    dead_pid = int(dead.stdout)  # a process that has exited
    live = [
        f".summary.json.{_host()}.{os.getppid()}.abc123.json.tmp",
        f".summary.json.{_host()}.{os.getpid()}.x.json.tmp",
    ]
    other = [f".summary.json.elsewhere.{dead_pid}.abc123.json.tmp", f".other.json.{_host()}.{dead_pid}.abc.json.tmp"]
    stale = f".summary.json.{_host()}.{dead_pid}.abc123.json.tmp"
    for name in [*live, *other, stale]:
        (tmp_path / name).write_text("partial")
    assert remove_stale_temps(target) == [tmp_path / stale]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(live + other)


def test_dvc_ignores_the_temporary_files(tmp_path):
    """`.dvcignore` keeps a killed writer's file out of a DVC-tracked output folder."""
    sh(BIN / "dvc", "init", "-q", "--no-scm", cwd=tmp_path)
    shutil.copy(ROOT / ".dvcignore", tmp_path / ".dvcignore")
    temp = "results/eval/den_25/skimage/bm3d/.shard-0.parquet.node-7.4242.k2j3h4_1.parquet.tmp"
    out = sh(
        BIN / "dvc", "check-ignore", temp, "results/eval/den_25/skimage/bm3d/shard-0.parquet", cwd=tmp_path, check=False
    )
    assert out.stdout.split() == [temp], out.stdout + out.stderr


# -- 4. a resumed run's log continues the running totals ---------------------------------------------


class FakeClock:
    """A perf_counter that advances only when the training hook says so (10 s per outer step)."""

    def __init__(self):
        self.now = 1000.0

    def perf_counter(self):
        return self.now

    def hook(self, crash_at=None):
        def on_step(step):
            self.now += 10.0
            if step == crash_at:
                raise KeyboardInterrupt("killed")

        return on_step


def rows_of(path):
    return list(csv.DictReader(path.open()))


@pytest.mark.parametrize("crash_at", [5, 4])
def test_resumed_meta_training_log_carries_time_and_loss(tmp_path, monkeypatch, crash_at):
    """Checkpoints every 2 steps, rows every 3: killed after step 5 (or 4), the run resumes at the
    checkpoint of step 4, one step after the last row (step 3). The first session's time up to that
    checkpoint and the loss of step 4 belong in the row of step 6 (both were dropped)."""
    clock = FakeClock()
    monkeypatch.setattr(training_log, "time", types.SimpleNamespace(perf_counter=clock.perf_counter))
    meta_train(
        tiny_model(),
        outer(),
        images(),
        images(seed=1),
        0,
        tmp_path / "full",
        device="cpu",
        show_progress=False,
        on_step=clock.hook(),
    )
    full = rows_of(tmp_path / "full" / "metrics.csv")
    # 10 s per step, counted from step 1 until each row is written (the hook runs after the row)
    assert [(r["step"], float(r["seconds"])) for r in full] == [("0", 0.0), ("3", 20.0), ("6", 50.0)]

    with pytest.raises(KeyboardInterrupt):
        meta_train(
            tiny_model(),
            outer(),
            images(),
            images(seed=1),
            0,
            tmp_path / "run",
            device="cpu",
            show_progress=False,
            on_step=clock.hook(crash_at=crash_at),
        )
    first = float(rows_of(tmp_path / "run" / "metrics.csv")[-1]["seconds"])
    meta_train(
        tiny_model(),
        outer(),
        images(),
        images(seed=1),
        0,
        tmp_path / "run",
        device="cpu",
        show_progress=False,
        on_step=clock.hook(),
    )
    run = rows_of(tmp_path / "run" / "metrics.csv")
    assert [r["step"] for r in run] == ["0", "3", "6"]
    # session 1 up to the checkpoint of step 4 (30 s: steps 1-3 + hooks) + session 2 (steps 5-6: 10 s)
    assert float(run[-1]["seconds"]) == 40.0 and float(run[-1]["seconds"]) >= first
    # the row of step 6 averages the losses of steps 4-6, as in the uninterrupted run
    assert float(run[-1]["train_loss"]) == pytest.approx(float(full[-1]["train_loss"]), rel=1e-5)
    summary = training_summary(tmp_path / "run")
    assert summary["seconds"] == float(run[-1]["seconds"]) and summary["steps"] == 6
    assert summary["validation"] == [(int(r["step"]), float(r["val_psnr"])) for r in run]


def test_resumed_denoiser_training_log_carries_time_and_loss(tmp_path, monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(training_log, "time", types.SimpleNamespace(perf_counter=clock.perf_counter))
    train, val = training_images()
    s = DenoiserTraining(steps=6, batch=2, patch=16, lr=1e-3, checkpoint_every=2, val_every=3, val_images=1)
    train_denoiser(
        DRUNet(TINY), s, train, val, 0, tmp_path / "full", device="cpu", show_progress=False, on_step=clock.hook()
    )
    with pytest.raises(KeyboardInterrupt):
        train_denoiser(
            DRUNet(TINY),
            s,
            train,
            val,
            0,
            tmp_path / "run",
            device="cpu",
            show_progress=False,
            on_step=clock.hook(crash_at=5),
        )
    train_denoiser(
        DRUNet(TINY), s, train, val, 0, tmp_path / "run", device="cpu", show_progress=False, on_step=clock.hook()
    )
    full, run = rows_of(tmp_path / "full" / "metrics.csv"), rows_of(tmp_path / "run" / "metrics.csv")
    assert [r["step"] for r in run] == ["0", "3", "6"] and float(full[-1]["seconds"]) == 50.0
    assert float(run[-1]["seconds"]) == 40.0
    assert float(run[-1]["train_loss"]) == pytest.approx(float(full[-1]["train_loss"]), rel=1e-5)
