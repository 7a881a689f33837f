"""Images per second of B MetaDIP solves in one vmapped call against B sequential solves.

The default config's MetaDIP network (random init: the cost does not depend on the weights) on B
images of one denoising setting at the default image size; the batched and the sequential run
alternate within each round and the ratio is the median over rounds. ``evaluate.batch`` in the
config decides whether the evaluation batches; this script is the measurement behind that choice.

Run:  .venv/bin/python bench/batched_solves.py [--quick] [--threads N] [--batch B] [--device cpu|cuda]
The last line is ``batched/sequential images per second (B=8): X``.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch
from timing import default_metadip

from metadip.meta.inner_loop import build_model, solve_batch
from metadip.physics.operators import Denoising


def images_per_second(run, batch: int) -> float:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    t = time.perf_counter()
    run()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return batch / (time.perf_counter() - t)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="fewer rounds and steps (under a minute on 2 cores)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (the workflow's evaluation uses 1)")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--device", default="cpu")
    p.add_argument("--config", default="config/config.yaml")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    method, shape, arch = default_metadip(a.config)
    size = shape[1]
    model = build_model(arch, method["inner"])
    op = Denoising(shape, 25, 0)
    xs = torch.rand(a.batch, *shape, generator=torch.Generator().manual_seed(0))
    ys = op.measure(xs, torch.Generator().manual_seed(1))
    rounds, steps = (3, 5) if a.quick else (7, 20)
    device = torch.cuda.get_device_name() if a.device == "cuda" else f"{platform.machine()}, CPU"
    print(
        f"# metadip batched solves — torch {torch.__version__}, {torch.get_num_threads()} threads, {device}; "
        f"{size} px RGB, width {method['network']['width']}, B = {a.batch}, {steps} steps, {rounds} rounds"
    )

    def run(vectorise: bool) -> None:
        solve_batch(model, op, ys, steps, device=a.device, show_progress=False, vectorise=vectorise)

    run(True), run(False)  # warm-up
    seq, bat, ratios = [], [], []
    for _ in range(rounds):
        s, b = images_per_second(lambda: run(False), a.batch), images_per_second(lambda: run(True), a.batch)
        seq.append(s), bat.append(b), ratios.append(b / s)
    print("\n| sequential (images / s) | batched (images / s) |")
    print("|---|---|")
    print(f"| {statistics.median(seq):.2f} | {statistics.median(bat):.2f} |")
    print(f"\nbatched/sequential images per second (B={a.batch}): {statistics.median(ratios):.2f}")


if __name__ == "__main__":
    main()
