"""Test-time iterate averaging: MetaDIP's estimate as the mean of its last N outputs, on validation crops.

A meta-init (``--meta-init``: the stem of a saved meta-init) is run for the test horizon
(``ablation.test_steps``) on the ablation's validation problems (config ``ablation.tasks`` on the
meta-training collection and ``ablation.transfer.tasks`` on the other one: the crops, noise and
operators of ``stages/ablate.py``; never the test split), once per window N of ``--windows``
(``solve_batch(average_last=N)``; N = 1 is the paper's estimate, the last iterate). Printed: per
problem the mean PSNR for each N and its paired change against N = 1 with a 95% interval over
photographs (cluster-robust t); then the window with the largest mean change over all problems. The
evaluation's averaged row (a separate row; the paper's row stays the last iterate) takes the window
with the largest of these mean changes averaged over the meta-training seeds it was run on
(docs/results.md).

Run:  .venv/bin/python bench/tail_average.py --meta-init results/meta/metadip/meta_init \\
          [--config results/config.yaml] [--windows 1 2 3 5 10 20]
The last line is ``best window on validation: N (mean change over P problems +X dB; per problem
A to B dB)``, or N = 1 when no window gains on the mean.
"""

from __future__ import annotations

import argparse
import platform
import statistics

import torch

from metadip.meta.inner_loop import solve_batch
from metadip.meta.maml import curated_ablation_problems
from metadip.pipeline.artifacts import load_meta_init
from metadip.pipeline.config import load_config
from metadip.reporting.stats import summarize


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="results/config.yaml", help="merged config (the one the meta-init ran under)")
    p.add_argument("--meta-init", required=True, help="stem of a saved meta-init (.safetensors + .json)")
    p.add_argument("--windows", type=int, nargs="+", default=[1, 2, 3, 5, 10, 20], help="outputs averaged")
    a = p.parse_args()
    torch.set_num_threads(1)
    config = load_config(a.config)
    steps = config["ablation"]["test_steps"]
    windows = sorted(set(a.windows) | {1})
    if windows[0] < 1:
        p.error(f"--windows {windows[0]}: a window averages at least one output")
    if windows[-1] > steps:
        p.error(f"--windows {windows[-1]} exceeds the test horizon ablation.test_steps = {steps}")
    model = load_meta_init(a.meta_init)
    problems, photos = curated_ablation_problems(config)
    print(
        f"# MetaDIP({steps}), the mean of its last N outputs — torch {torch.__version__}, one thread, "
        f"{platform.machine()}, CPU; {config['meta']['image_size']} px validation crops; meta-init {a.meta_init}"
    )
    scores: dict[int, dict[str, list[float]]] = {n: {} for n in windows}
    for name, (op, ys, xs) in problems.items():
        for n in windows:
            out = solve_batch(
                model, op, ys, steps, xs, device="cpu", show_progress=False, vectorise=False, average_last=n
            )
            scores[n][name] = [r.trace["psnr"][-1] for r in out]
    print(f"\n| N | {' | '.join(problems)} | mean change |")
    print("|---|" + "---|" * (len(problems) + 1))
    change: dict[int, list[float]] = {}
    for n in windows:
        cells, change[n] = [], []
        for name in problems:
            now, ref = scores[n][name], scores[1][name]
            mean = statistics.mean(now)
            if n == 1:
                cells.append(f"{mean:.2f} (n={len(now)}/{len(set(photos[name]))})")
                continue
            d = summarize([x - r for x, r in zip(now, ref, strict=True)], photos[name])
            change[n].append(d.mean)
            ci = "" if d.ci_low is None else f" [{d.ci_low:+.2f}, {d.ci_high:+.2f}]"
            cells.append(f"{mean:.2f} ({d.mean:+.2f}{ci})")
        overall = f"{statistics.mean(change[n]):+.2f}" if change[n] else "—"
        print(f"| {n} | {' | '.join(cells)} | {overall} |", flush=True)
    averaged = [n for n in windows if n > 1]
    if not averaged:
        print("\nbest window on validation: 1 (no window above 1 was measured)")
        return
    best = max(averaged, key=lambda n: statistics.mean(change[n]))
    c = change[best]
    if statistics.mean(c) <= 0:
        print(
            f"\nbest window on validation: 1 (no window above 1 gains on the mean; N = {best}: "
            f"{statistics.mean(c):+.2f} dB)"
        )
        return
    print(
        f"\nbest window on validation: {best} (mean change over {len(c)} problems {statistics.mean(c):+.2f} dB; "
        f"per problem {min(c):+.2f} to {max(c):+.2f} dB)"
    )


if __name__ == "__main__":
    main()
