"""Where a solver step's time goes: eager and compiled DIP and MetaDIP steps under ``torch.profiler``.

Each solver runs ``--steps`` steps on the default config's network, image and a denoising operator
(after a warm-up that compiles or loads the graph), one torch thread, and the profiler's self CPU
time of every op is summed into a few groups, printed per step in milliseconds:

- convolutions: ATen's convolution forward and backward (oneDNN and native kernels);
- compiled kernels: the compiled graphs' own code (Inductor's fused C++ kernels and their wrapper);
- guards: dynamo's check of a compiled call's inputs before it runs the graph;
- optimiser: DIP's Adam step and zeroing of gradients, MetaDIP's multi-tensor update;
- jitter: drawing DIP's latent jitter;
- other: dispatch, autograd's engine and everything else.

The profiler adds its own cost to every op, so the totals exceed the steps' unprofiled time
(``bench/solve_speed.py --compiled``): read the groups as shares, not as step times.

Run:  .venv/bin/python bench/step_profile.py [--steps 20] [--config config/config.yaml]
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from collections.abc import Callable

import torch
from solve_speed import first_of_each_kind, problem
from timing import default_metadip
from torch.profiler import ProfilerActivity, profile

from metadip.meta.inner_loop import build_model, solve
from metadip.pipeline.config import load_config
from metadip.solvers.dip import DIPSettings, fit_dip

GROUPS = ("convolutions", "compiled kernels", "guards", "optimiser", "jitter", "other")


def group_of(name: str) -> str:
    """The group of a profiler event's name."""
    if name.startswith("aten::") and "conv" in name:
        return "convolutions"
    if name.startswith(("## Call CompiledFxGraph", "graph_", "cpp_fused")):
        return "compiled kernels"
    if name == "TorchDynamo Cache Lookup":
        return "guards"
    if name.startswith(("Optimizer.", "aten::_fused_adam", "aten::_foreach")):
        return "optimiser"
    if name == "aten::normal_":
        return "jitter"
    return "other"


def profiled(run: Callable[[int], object], steps: int) -> dict[str, float]:
    """Milliseconds of self CPU time per step in each group, over a run of ``steps`` steps."""
    run(3)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        run(steps)
    totals: dict[str, float] = defaultdict(float)
    for event in prof.key_averages():
        totals[group_of(event.key)] += event.self_cpu_time_total / 1e3 / steps
    return totals


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--config", default="config/config.yaml")
    a = p.parse_args()
    torch.set_num_threads(1)
    method, shape, arch = default_metadip(a.config)
    task = first_of_each_kind(load_config(a.config)["evaluate"]["tasks"])["denoising"]
    x = torch.rand(shape, generator=torch.Generator().manual_seed(0))
    op, y = problem(task, x)
    model = build_model(arch, method["inner"])

    def meta(compiled: bool) -> Callable[[int], object]:
        return lambda n: solve(model, op, y, n, device="cpu", show_progress=False, compiled=compiled)

    def dip(compiled: bool) -> Callable[[int], object]:
        def run(n: int) -> object:
            prior = build_model(arch, method["inner"]).prior
            g = torch.Generator().manual_seed(2)
            return fit_dip(prior, op, y, DIPSettings(steps=n), g, device="cpu", show_progress=False, compiled=compiled)

        return run

    print(f"# ms of self CPU time per step under the profiler, {a.steps} steps, {task['name']}, one thread\n")
    print("| solver | " + " | ".join(GROUPS) + " | total |")
    print("|---" * (len(GROUPS) + 2) + "|")
    for label, make in (("DIP", dip), ("MetaDIP", meta)):
        for compiled in (False, True):
            t = profiled(make(compiled), a.steps)
            cells = " | ".join(f"{t[g]:.2f}" for g in GROUPS)
            print(f"| {label}, {'compiled' if compiled else 'eager'} | {cells} | {sum(t.values()):.2f} |", flush=True)


if __name__ == "__main__":
    main()
