"""How many inner steps each validation image wants: MetaDIP's PSNR trace run past its 50 test steps.

A meta-init (``--meta-init``: the stem of a saved meta-init, e.g. results/meta/metadip/meta_init)
is run for ``--steps`` inner steps (beyond K at the inner loop's own beyond-K rule) on the
ablation's validation problems (config ``ablation.tasks`` on the meta-training collection and
``ablation.transfer.tasks`` on the other one: the same crops, noise and operators as
``stages/ablate.py`` draws, so the numbers pair with an ablation's DIP result).  Never the test
split.  Printed per problem:

- the mean PSNR after each of ``--at`` steps, and the mean of each image's best PSNR on the trace
  with the median step where it peaks (the oracle stop, which needs the ground truth);
- per validation photograph: the PSNR at the test horizon (``ablation.test_steps``), the best one
  and the steps where its crops peak;
- with ``--dip-result`` (``results/ablation/<dip>/result.json`` of ``stages/ablate.py --dip``):
  DIP's PSNR on the same images at each step it reports, and the paired difference at the test
  horizon with its 95% interval over photographs (cluster-robust t);
- the PSNR at the test horizon with every learned step size multiplied by each of ``--scales``
  (one step-size multiplier for all images cannot serve crops that peak early and late at once).

Run:  .venv/bin/python bench/inner_horizon.py --meta-init results/meta/metadip/meta_init \
          [--config results/config.yaml] [--steps 300] [--dip-result results/ablation/dip-reference/result.json]
The last line is ``steps to each image's best PSNR (median over N images of P problems): X; at the
test horizon T the mean gap to the best is G dB``.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
from pathlib import Path

import torch

from metadip.meta.inner_loop import MetaModel, solve_batch
from metadip.meta.maml import curated_ablation_problems
from metadip.pipeline.artifacts import load_meta_init
from metadip.pipeline.config import load_config
from metadip.reporting.stats import summarize


def traces(model: MetaModel, problem: tuple, steps: int) -> list[list[float]]:
    """Per image of ``problem`` (operator, measurements, images): its PSNR (dB) after 1..steps inner steps."""
    op, ys, xs = problem
    results = solve_batch(model, op, ys, steps, xs, device="cpu", show_progress=False, vectorise=False)
    return [r.trace["psnr"] for r in results]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="results/config.yaml", help="merged config (the one the meta-init ran under)")
    p.add_argument("--meta-init", required=True, help="stem of a saved meta-init (.safetensors + .json)")
    p.add_argument("--steps", type=int, default=300, help="inner steps to trace")
    p.add_argument("--at", type=int, nargs="+", default=[20, 50, 100, 150, 200, 300])
    p.add_argument("--scales", type=float, nargs="+", default=[1.5, 2.0, 3.0])
    p.add_argument("--problems", nargs="+", default=None, help="problem names (default: every ablation problem)")
    p.add_argument("--dip-result", default=None, help="result.json of stages/ablate.py --dip on the same config")
    a = p.parse_args()
    torch.set_num_threads(1)
    config = load_config(a.config)
    horizon = config["ablation"]["test_steps"]
    if horizon > a.steps:
        p.error(f"--steps {a.steps} is below the test horizon ablation.test_steps = {horizon}")
    model = load_meta_init(a.meta_init)
    problems, photos = curated_ablation_problems(config)
    if a.problems:
        unknown = sorted(set(a.problems) - set(problems))
        if unknown:
            p.error(f"unknown problems {unknown}; have {sorted(problems)}")
        problems = {k: problems[k] for k in a.problems}
    dip: dict[str, dict[str, list[float]]] = {}  # problem → DIP row ("dip_1000") → per-image PSNR
    if a.dip_result:
        for row, per_problem in json.loads(Path(a.dip_result).read_text())["psnr_db"].items():
            for name, scores in per_problem.items():
                dip.setdefault(name, {})[row] = scores
    at = [s for s in a.at if s <= a.steps]
    print(
        f"# MetaDIP past its test horizon — torch {torch.__version__}, one thread, {platform.machine()}, CPU; "
        f"{config['meta']['image_size']} px validation crops; meta-init {a.meta_init}; beyond K = "
        f"{model.inner.steps}: {model.inner.beyond_k}"
    )
    columns = " | ".join(f"step {s}" for s in at)
    print(f"\n| problem | n images/photos | {columns} | best on the trace | median best step |")
    print("|---|---|" + "---|" * (len(at) + 2))
    all_traces, best_steps, gaps = {}, [], []
    for name, problem in problems.items():
        tr = traces(model, problem, a.steps)
        all_traces[name] = tr
        best = [max(t) for t in tr]
        steps_best = [t.index(max(t)) + 1 for t in tr]
        best_steps += steps_best
        gaps += [b - t[horizon - 1] for b, t in zip(best, tr, strict=True)]
        means = [statistics.mean(t[s - 1] for t in tr) for s in at]
        print(
            f"| {name} | {len(tr)}/{len(set(photos[name]))} | "
            + " | ".join(f"{m:.2f}" for m in means)
            + f" | {statistics.mean(best):.2f} | {statistics.median(steps_best):g} |",
            flush=True,
        )
    print(f"\nPer photograph: PSNR at step {horizon} → best on the trace (dB), and the steps where its crops peak")
    for name, tr in all_traces.items():
        for photo in dict.fromkeys(photos[name]):
            idx = [i for i, s in enumerate(photos[name]) if s == photo]
            now = statistics.mean(tr[i][horizon - 1] for i in idx)
            best = statistics.mean(max(tr[i]) for i in idx)
            peaks = sorted(tr[i].index(max(tr[i])) + 1 for i in idx)
            extra = ""
            if name in dip:
                extra = "; DIP " + ", ".join(
                    f"{k}: {statistics.mean(dip[name][k][i] for i in idx):.2f}" for k in dip[name]
                )
            print(f"- {name} {Path(photo).name}: {now:.2f} → {best:.2f}, peaks at {peaks}{extra}")
    if dip:
        print(f"\nMetaDIP({horizon}) − DIP, paired per image, 95% interval over photographs")
        for name, tr in all_traces.items():
            if name not in dip:
                continue
            for k, scores in dip[name].items():
                d = summarize([t[horizon - 1] - s for t, s in zip(tr, scores, strict=True)], photos[name])
                ci = "" if d.ci_low is None else f" [{d.ci_low:+.2f}, {d.ci_high:+.2f}]"
                print(f"- {name} vs {k}: {d.mean:+.2f}{ci} (DIP mean {statistics.mean(scores):.2f})")
    print(f"\nPSNR at step {horizon} with every learned step size times c (dB; paired change against c = 1)")
    print(f"| c | {' | '.join(problems)} |")
    print("|---|" + "---|" * len(problems))
    base_log_lr = model.log_lr.detach().clone()
    reference = {name: [t[horizon - 1] for t in tr] for name, tr in all_traces.items()}
    for c in a.scales:
        with torch.no_grad():
            model.log_lr.copy_(base_log_lr + math.log(c))
        cells = []
        for name, problem in problems.items():
            now = [t[-1] for t in traces(model, problem, horizon)]
            change = statistics.mean(n - r for n, r in zip(now, reference[name], strict=True))
            cells.append(f"{statistics.mean(now):.2f} ({change:+.2f})")
        print(f"| {c:g} | {' | '.join(cells)} |", flush=True)
    with torch.no_grad():
        model.log_lr.copy_(base_log_lr)
    print(
        f"\nsteps to each image's best PSNR (median over {len(best_steps)} images of {len(problems)} problems): "
        f"{statistics.median(best_steps):g}; at the test horizon {horizon} the mean gap to the best is "
        f"{statistics.mean(gaps):.2f} dB"
    )


if __name__ == "__main__":
    main()
