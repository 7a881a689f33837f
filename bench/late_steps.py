"""Why MetaDIP's measurement loss jumps in its last test steps, and a beyond-K rule that avoids it, on validation crops.

A meta-init (``--meta-init``: the stem of a saved meta-init) runs ``--steps`` inner steps (the test
horizon, 50) on the validation crops of every curated collection in ``--datasets`` (all their val
photographs, ``--per-photo`` crops of each, interleaved) for the task settings ``--tasks`` of
``evaluate.tasks``; noise and operators are seeded as the ablation's (``simulate_tasks`` with
``VALIDATION_PURPOSE``). Never the test split. Update k (1-based) takes θ_{k−1} to θ_k with α_{k−1};
updates k > K (K: the learned steps) take the beyond-K step size. Recorded per update: the
measurement loss L_k at θ_k (L_0 at θ₀) and the PSNR of the clipped f_{θ_k}(z) (data range 1).

A *jump* at update k is L_k > (1 + X) · L_{k−1}, X = ``--jump`` (10%, fixed before any run). Printed:

- the learned α_k per step (mean, median over tensors) and whether α_{K−1} is an outlier: per tensor
  the ratio α_{K−1} / mean_k α_k;
- per variant: jumps in updates 1-20, 21-40, 41-50 (events, and images with at least one), the mean
  PSNR at steps 20, 40, 50, and its paired change at step 50 against the default with a 95%
  interval over photographs (cluster-robust t over (dataset, photograph)), pooled and per problem;
- on the first ``--sharpness`` crops with a late jump, the α-preconditioned curvature λ after each
  update from K − 5 (heavy-ball steps are stable while λ < 2(1 + μ)).

Variants beyond K (all share updates 1..K, which are run once and branched): ``default`` (the
meta-init's own ``beyond_k``), ``mean`` (beyond_k "mean"), ``half`` (the default's beyond-K α
× ``--scale``), ``no_momentum`` (the default's α with heavy-ball momentum 0 beyond K). Built here from
the learned step-size table and :func:`metadip.meta.inner_loop.inner_update`; the default reproduces
:func:`metadip.meta.inner_loop.solve_batch` (checked on the first image).

Remedy rule (fixed before any run): among mean, half and no_momentum, those whose pooled paired
change at step 50 has a 95% interval above 0 and that remove at least half of the default's jumps in
updates 21-50; of these the largest mean change; else none.

Run:  OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python bench/late_steps.py \\
          --meta-init results/meta/metadip/meta_init [--config config/config.yaml] [--per-photo 4]
The last line is ``remedy on validation: NAME (...)`` or ``remedy on validation: none (...)``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import statistics
from collections.abc import Hashable
from pathlib import Path

import torch
from torch import Tensor
from torch.func import functional_call

from metadip.core.metrics import psnr
from metadip.datasets.sampling import load_evaluation_set
from metadip.datasets.store import training_split
from metadip.meta.ablation import VALIDATION_PURPOSE
from metadip.meta.inner_loop import InnerSettings, MetaModel, MultiTensor, inner_update, solve_batch
from metadip.meta.maml import simulate_tasks
from metadip.physics.operators import Operator
from metadip.pipeline.artifacts import load_meta_init
from metadip.pipeline.config import load_config
from metadip.reporting.stats import summarize
from metadip.solvers.dip import total_variation

VARIANTS = ("default", "mean", "half", "no_momentum")
WINDOWS = ((1, 20), (21, 40), (41, 50))
Trace = dict[str, list[float]]  # "loss": L_0..L_steps, "psnr": PSNR after 1..steps updates
Problem = tuple[Operator, Tensor, Tensor, list[Hashable]]  # operator, measurements, images, photographs


def load_problems(config: dict, datasets: list[str], tasks: list[str], per_photo: int) -> dict[str, Problem]:
    """``<dataset>:<task>`` → (operator, measurements, images, photograph per image) on the val crops."""
    curated, size, seed = Path(config["paths"]["curated"]), config["meta"]["image_size"], config["seed"]
    specs = {t: config["evaluate"]["tasks"][t] for t in tasks}
    problems: dict[str, Problem] = {}
    for ds in datasets:
        n_photos = len(set(training_split(curated / ds, "val", key="bench/late_steps.py").sources))
        val = load_evaluation_set(curated / ds, "val", per_photo * n_photos, n_photos, size, key="late_steps")
        for task, (op, ys, xs) in simulate_tasks(specs, val.images, seed, VALIDATION_PURPOSE).items():
            problems[f"{ds}:{task}"] = (op, ys, xs, [(ds, s) for s in val.sources])
    return problems


def schedule(
    model: MetaModel, op: Operator, variant: str, steps: int, scale: float
) -> list[tuple[list, InnerSettings]]:
    """Per update (0-based) the step sizes (one per tensor) and the inner settings of ``variant``."""
    alphas = model.step_sizes(op=op).detach()
    k = alphas.shape[0]
    beyond = model.step_size_at(alphas, k)
    inner = model.inner
    if variant == "mean":
        beyond = alphas.mean(0)
    elif variant == "half":
        beyond = beyond * scale
    elif variant == "no_momentum":
        inner = dataclasses.replace(inner, momentum=0.0)
    elif variant != "default":
        raise ValueError(f"unknown variant {variant!r}")
    rows = alphas.tolist()
    return [(rows[i], model.inner) if i < k else (beyond.tolist(), inner) for i in range(steps)]


class Run:
    """One image's inner loop from θ₀ (the inference arithmetic of ``solve_batch``, one image, eager),
    advanced step by step and copyable, so that variants branch after the shared first K updates."""

    def __init__(self, model: MetaModel, op: Operator, y: Tensor, x: Tensor) -> None:
        self.model, self.op, self.y, self.x = model, op, y, x
        theta0, self.buffers = model.prior_state()
        self.params = [theta0[n].detach().clone().requires_grad_(True) for n in model.param_names]
        n_state = 2 if model.inner.update == "adam" else 1
        self.state = [[torch.zeros_like(p) for p in self.params] for _ in range(n_state)]
        self.loss, self.out = self._forward()
        self.trace: Trace = {"loss": [self.loss.item()], "psnr": []}
        self.k = 0

    def _forward(self) -> tuple[Tensor, Tensor]:
        params = dict(zip(self.model.param_names, self.params, strict=True))
        out = functional_call(self.model.prior, (params, self.buffers), ())[0]
        loss = self.op.data_loss(out, self.y)
        if self.model.inner.tv_weight:
            loss = loss + self.model.inner.tv_weight * total_variation(out)
        return loss, out

    def branch(self) -> Run:
        """An independent copy at the current step."""
        twin = object.__new__(Run)
        twin.__dict__ |= self.__dict__
        twin.params = [p.detach().clone().requires_grad_(True) for p in self.params]
        twin.state = [[t.clone() for t in s] for s in self.state]
        twin.trace = {k: list(v) for k, v in self.trace.items()}
        twin.loss, twin.out = twin._forward()
        return twin

    def sharpness(self, alpha: list[float], v: list[Tensor], iters: int) -> tuple[float, list[Tensor]]:
        """Top eigenvalue λ of diag(α)^½ H diag(α)^½ (H: the loss Hessian at θ_k) by ``iters`` power
        steps from ``v``; heavy-ball steps of size α are stable only while λ < 2(1 + μ). Returns λ, v."""
        grads = torch.autograd.grad(self.loss, self.params, create_graph=True)
        root = [a**0.5 for a in alpha]
        lam = 0.0
        for _ in range(iters):
            hv = torch.autograd.grad(
                grads, self.params, [r * t for r, t in zip(root, v, strict=True)], retain_graph=True
            )
            w = [r * h.detach() for r, h in zip(root, hv, strict=True)]
            lam = sum((a * b).sum() for a, b in zip(w, v, strict=True)).item()
            norm = torch.sqrt(sum(t.pow(2).sum() for t in w))
            v = [t / norm for t in w]
        return lam, v

    def advance(self, table: list[tuple[list, InnerSettings]], until: int) -> None:
        """Updates self.k+1 .. ``until`` with ``table``'s step sizes and settings."""
        for k in range(self.k, until):
            alpha, inner = table[k]
            grads = torch.autograd.grad(self.loss, self.params)
            with torch.no_grad():
                delta, new = inner_update(
                    inner, MultiTensor(list(grads)), tuple(MultiTensor(s) for s in self.state), alpha, k
                )
                torch._foreach_sub_(self.params, delta.tensors)
                for old, fresh in zip(self.state, new, strict=True):
                    torch._foreach_copy_(old, fresh.tensors)
            self.loss, self.out = self._forward()
            self.trace["loss"].append(self.loss.item())
            self.trace["psnr"].append(psnr(self.out.detach(), self.x).item())
        self.k = until


def run_problem(model: MetaModel, problem: Problem, steps: int, scale: float) -> dict[str, list[Trace]]:
    """Variant → per-image traces; the first K updates are shared by all variants."""
    op, ys, xs, _ = problem
    tables = {v: schedule(model, op, v, steps, scale) for v in VARIANTS}
    k = min(model.inner.steps, steps)
    out: dict[str, list[Trace]] = {v: [] for v in VARIANTS}
    for y, x in zip(ys, xs, strict=True):
        stem = Run(model, op, y, x)
        stem.advance(tables["default"], k)
        for v in VARIANTS:
            run = stem.branch()
            run.advance(tables[v], steps)
            out[v].append(run.trace)
    return out


def print_sharpness(model: MetaModel, problems: dict[str, Problem], traces: dict, steps: int, n: int, x: float) -> None:
    """λ (:meth:`Run.sharpness`) after each update from K − 5 to ``steps`` on the first ``n`` images
    with a default jump in updates 41-50, rerun with the default; '*' marks a jump at that update."""
    picked = [(name, i) for name in problems for i, t in enumerate(traces[name]["default"]) if jumps(t, 41, 50, x)]
    if not picked or n < 1:
        return
    k0 = max(model.inner.steps - 5, 1)
    bound = 2 * (1 + model.inner.momentum)
    print(f"\nλ_max of diag(α)^½ H diag(α)^½ after update k (heavy-ball bound {bound:g}; * a jump at k)")
    print("| image | " + " | ".join(str(k) for k in range(k0, steps + 1)) + " |")
    print("|---|" + "---|" * (steps - k0 + 1))
    gen = torch.Generator().manual_seed(0)
    for name, i in picked[:n]:
        op, ys, xs, _ = problems[name]
        table = schedule(model, op, "default", steps + 1, 1.0)
        run = Run(model, op, ys[i], xs[i])
        run.advance(table, k0)
        v = [torch.randn(p.shape, generator=gen) for p in run.params]
        norm = torch.sqrt(sum(t.pow(2).sum() for t in v))
        v, cells = [t / norm for t in v], []
        for k in range(k0, steps + 1):
            lam, v = run.sharpness(table[k][0], v, 20 if k == k0 else 6)
            cells.append(f"{lam:.2f}{'*' if jumps(run.trace, k, k, x) else ''}")
            if k < steps:
                run.advance(table, k + 1)
        print(f"| {name} #{i} | " + " | ".join(cells) + " |", flush=True)


def check_reproduces(model: MetaModel, problem: Problem, trace: Trace) -> float:
    """Largest |ΔPSNR| (dB) between the default variant and ``solve_batch`` on the first image."""
    op, ys, xs, _ = problem
    ref = solve_batch(model, op, ys[:1], len(trace["psnr"]), xs[:1], device="cpu", show_progress=False)[0]
    return max(abs(a - b) for a, b in zip(ref.trace["psnr"], trace["psnr"], strict=True))


def jumps(trace: Trace, lo: int, hi: int, x: float) -> int:
    """Jumps L_k > (1 + x) L_{k−1} among updates k = lo..hi (1-based)."""
    loss = trace["loss"]
    return sum(loss[k] > (1 + x) * loss[k - 1] for k in range(lo, min(hi, len(loss) - 1) + 1))


def print_step_sizes(model: MetaModel) -> None:
    """The learned α_k per step and how α_{K−1} compares with the per-tensor mean over steps."""
    a = model.step_sizes().detach()
    k = a.shape[0]
    print(f"\nLearned step sizes α_k ({a.shape[1]} tensors; beyond K = {k}: {model.inner.beyond_k})")
    print("| step k | " + " | ".join(str(i) for i in range(k)) + " |")
    print("|---|" + "---|" * k)
    print("| mean over tensors | " + " | ".join(f"{v:.2f}" for v in a.mean(1).tolist()) + " |")
    print("| median over tensors | " + " | ".join(f"{v:.2f}" for v in a.median(1).values.tolist()) + " |")
    ratio = a[-1] / a.mean(0)
    rank = (a.mean(1) > a.mean(1)[-1]).sum().item() + 1
    print(
        f"α_(K-1) / mean_k α_k per tensor: median {ratio.median().item():.2f}, range "
        f"{ratio.min().item():.2f} to {ratio.max().item():.2f}, above 1 in {(ratio > 1).sum().item()}/{len(ratio)} "
        f"tensors; step K-1 ranks {rank}/{k} by the mean over tensors; α_(K-1)/max_k α_k per tensor: median "
        f"{(a[-1] / a.max(0).values).median().item():.2f}"
    )


def summary_rows(traces: dict[str, dict[str, list[Trace]]], problems: dict[str, Problem], x: float) -> dict:
    """Per variant: jump counts per window, mean PSNR at 20/40/50 and the pooled paired change at the end."""
    rows = {}
    for v in VARIANTS:
        all_tr = [t for name in problems for t in traces[name][v]]
        counts = [
            (sum(jumps(t, lo, hi, x) for t in all_tr), sum(jumps(t, lo, hi, x) > 0 for t in all_tr))
            for lo, hi in WINDOWS
        ]
        end = [t["psnr"][-1] for t in all_tr]
        ref = [t["psnr"][-1] for name in problems for t in traces[name]["default"]]
        clusters = [c for name in problems for c in problems[name][3]]
        d = summarize([a - b for a, b in zip(end, ref, strict=True)], clusters)
        at = {s: statistics.mean(t["psnr"][s - 1] for t in all_tr) for s in (20, 40, len(all_tr[0]["psnr"]))}
        drops = sum(t["psnr"][-1] < t["psnr"][-6] - 1 for t in all_tr)
        rows[v] = {"counts": counts, "at": at, "diff": d, "n": len(all_tr), "drops": drops}
    return rows


def print_tables(traces: dict[str, dict[str, list[Trace]]], problems: dict[str, Problem], x: float) -> dict:
    """The pooled and per-problem tables; returns the pooled rows."""
    rows = summary_rows(traces, problems, x)
    n, g = rows["default"]["n"], len({c for p in problems.values() for c in p[3]})
    print(f"\nJumps (L_k > {1 + x:.2f} L_(k-1)): events / images with one, over {n} images ({g} photographs)")
    print(
        "| variant | updates 1-20 | 21-40 | 41-50 | PSNR@20 | PSNR@40 | PSNR@50 | change@50 vs default [95% CI] "
        "| images losing > 1 dB from step 45 to 50 |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for v, r in rows.items():
        c = " | ".join(f"{e} / {i}" for e, i in r["counts"])
        d = r["diff"]
        ci = "" if d.ci_low is None else f" [{d.ci_low:+.3f}, {d.ci_high:+.3f}]"
        psnrs = " | ".join(f"{m:.2f}" for m in r["at"].values())
        print(f"| {v} | {c} | {psnrs} | {d.mean:+.3f}{ci} | {r['drops']} |")
    for v in VARIANTS:
        at = [k for name in problems for t in traces[name][v] for k in range(1, len(t["loss"])) if jumps(t, k, k, x)]
        print(f"- {v}: jumps at updates {sorted(at)}")
    print("\nPer problem: mean PSNR@50 of the default; per variant its change and jumps in updates 21-50")
    print(f"| problem | n/photos | default | {' | '.join(VARIANTS[1:])} |")
    print("|---|---|---|" + "---|" * (len(VARIANTS) - 1))
    for name, (_, _, _, photos) in problems.items():
        base = [t["psnr"][-1] for t in traces[name]["default"]]
        jd = sum(jumps(t, 21, 50, x) for t in traces[name]["default"])
        cells = []
        for v in VARIANTS[1:]:
            d = summarize([t["psnr"][-1] - b for t, b in zip(traces[name][v], base, strict=True)], photos)
            ci = "" if d.ci_low is None else f" [{d.ci_low:+.2f}, {d.ci_high:+.2f}]"
            cells.append(f"{d.mean:+.2f}{ci}, {sum(jumps(t, 21, 50, x) for t in traces[name][v])} j")
        row = f"| {name} | {len(base)}/{len(set(photos))} | {statistics.mean(base):.2f}, {jd} j | "
        print(row + " | ".join(cells) + " |", flush=True)
    return rows


def choose(rows: dict) -> str:
    """The remedy rule of the module docstring."""
    base = sum(e for e, _ in rows["default"]["counts"][1:])
    ok = []
    for v in VARIANTS[1:]:
        d, late = rows[v]["diff"], sum(e for e, _ in rows[v]["counts"][1:])
        if d.ci_low is not None and d.ci_low > 0 and late <= base / 2:
            ok.append(v)
        print(f"- {v}: change {d.mean:+.3f} dB, interval low {d.ci_low:+.3f}; jumps in 21-50: {late} vs {base}")
    if not ok:
        return "remedy on validation: none (no variant's interval is above 0 while removing half of the jumps)"
    best = max(ok, key=lambda v: rows[v]["diff"].mean)
    d = rows[best]["diff"]
    ci = f"[{d.ci_low:+.3f}, {d.ci_high:+.3f}]"
    return f"remedy on validation: {best} ({d.mean:+.3f} dB {ci} over {d.n_images} images, {d.n_photos} photographs)"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="results/config.yaml", help="merged config (the one the meta-init ran under)")
    p.add_argument("--meta-init", required=True, help="stem of a saved meta-init (.safetensors + .json)")
    p.add_argument("--datasets", nargs="+", default=["wallpapers", "skimage"])
    p.add_argument("--tasks", nargs="+", default=["den_15", "den_25", "cs_4", "cs_8", "pr_4", "pr_8"])
    p.add_argument("--per-photo", type=int, default=4, help="val crops per photograph")
    p.add_argument("--steps", type=int, default=50, help="inner steps (the test horizon)")
    p.add_argument("--jump", type=float, default=0.10, help="X: a jump is a loss rise above this fraction")
    p.add_argument("--scale", type=float, default=0.5, help="factor on the beyond-K step size (variant half)")
    p.add_argument("--sharpness", type=int, default=4, help="images with late jumps whose curvature is traced")
    p.add_argument("--out", default=None, help="also write every trace here (JSON: problem → variant → traces)")
    a = p.parse_args()
    torch.set_num_threads(1)
    config = load_config(a.config)
    model = load_meta_init(a.meta_init)
    if a.steps <= model.inner.steps:
        p.error(f"--steps {a.steps} does not go beyond K = {model.inner.steps}")
    problems = load_problems(config, a.datasets, a.tasks, a.per_photo)
    print(
        f"# MetaDIP's last steps — torch {torch.__version__}, one thread, {platform.machine()}, CPU; "
        f"{config['meta']['image_size']} px val crops; meta-init {a.meta_init}; K = {model.inner.steps}, "
        f"momentum {model.inner.momentum}, beyond K: {model.inner.beyond_k}; jump X = {a.jump:.0%}"
    )
    print_step_sizes(model)
    traces = {}
    for name, problem in problems.items():
        traces[name] = run_problem(model, problem, a.steps, a.scale)
    if a.out:
        Path(a.out).write_text(json.dumps(traces))
    first = next(iter(problems))
    gap = check_reproduces(model, problems[first], traces[first]["default"][0])
    print(f"\ndefault variant vs solve_batch on {first} image 0: max |ΔPSNR| over the trace {gap:.2e} dB")
    rows = print_tables(traces, problems, a.jump)
    print_sharpness(model, problems, traces, a.steps, a.sharpness, a.jump)
    print("\nRemedy rule (fixed before the run):")
    print(choose(rows))


if __name__ == "__main__":
    main()
