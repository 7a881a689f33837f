"""Data-parallel meta-training (torch.distributed, gloo on the CPU, two ranks launched by torchrun):
the same result as one process on the same meta-batches, identical on every rank, and a run stopped
after its checkpoint and resumed with two ranks ends like an uninterrupted one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from builders import images, outer, state, tiny_model
from safetensors.torch import load_file

from metadip.meta.data_parallel import Ranks
from metadip.meta.inner_loop import solve
from metadip.meta.maml import meta_train
from metadip.physics.operators import Denoising

WORKER = Path(__file__).with_name("data_parallel_worker.py")


def torchrun(out: Path, batching: str, stop_after: int | None = None) -> dict[str, torch.Tensor]:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(WORKER)]
    cmd += [str(out), batching] + ([str(stop_after)] if stop_after else [])
    done = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [load_file(out / f"rank{r}.safetensors") for r in (0, 1)]
    for k, v in ranks[0].items():
        assert torch.equal(ranks[1][k], v), f"ranks differ in {k}"
    return ranks[0]


def single_process(tmp_path: Path, batching: str) -> dict[str, torch.Tensor]:
    settings = outer(meta_batch=4, task_batching=batching, first_order=True)
    model = meta_train(
        tiny_model(), settings, images(), images(seed=1), 0, tmp_path / "single", device="cpu", show_progress=False
    )
    return state(model)


def test_shares_cover_the_meta_batch():
    for n in range(1, 9):
        for size in (1, 2, 3):
            shares = [Ranks(r, size).share(n) for r in range(size)]
            assert [i for s in shares for i in s] == list(range(n))
            assert max(map(len, shares)) - min(map(len, shares)) <= 1


def same_model(got: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    """Equal weights and step sizes (the ranks' partial meta-gradients are summed in another order
    than one process sums them) and equal reconstructions. Conv biases followed by BatchNorm are
    compared through the output only: BatchNorm cancels them, so their meta-gradient is rounding
    noise that Adam normalises into full-size, arbitrary steps."""
    for k, v in expected.items():
        if not k.endswith(".bias"):
            torch.testing.assert_close(got[k], v, rtol=1e-5, atol=1e-6)
    models = [tiny_model(), tiny_model()]
    models[0].load_state_dict(got)
    models[1].load_state_dict(expected)
    op = Denoising((1, 16, 16), 25, 0)
    y = op.measure(images(1, seed=5), torch.Generator().manual_seed(6))[0]
    a, b = (solve(m, op, y, 3, device="cpu", show_progress=False) for m in models)
    torch.testing.assert_close(a.estimate, b.estimate, rtol=1e-5, atol=1e-6)
    with torch.no_grad():
        torch.testing.assert_close(models[0].prior()[0], models[1].prior()[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("batching", ["loop", "vmap"])
def test_two_ranks_train_what_one_process_trains(tmp_path, batching):
    same_model(torchrun(tmp_path / "ddp", batching), single_process(tmp_path, batching))
    logged = (tmp_path / "ddp" / "work" / "metrics.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in logged[1:]] == ["0", "3", "6"]  # one log, written by rank 0


def test_two_ranks_resume_from_their_checkpoint(tmp_path):
    full = torchrun(tmp_path / "full", "loop")
    torchrun(tmp_path / "run", "loop", stop_after=4)
    resumed = torchrun(tmp_path / "run", "loop")
    for k, v in full.items():  # the same ranks in the same order: the same sums
        torch.testing.assert_close(resumed[k], v, rtol=1e-6, atol=1e-7)
    steps = [r.split(",")[0] for r in (tmp_path / "run" / "work" / "metrics.csv").read_text().splitlines()[1:]]
    assert steps == ["0", "3", "6"]
