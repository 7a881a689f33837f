"""Time to quality: wall time MetaDIP and vanilla DIP need to reach the same PSNR, in one process.

For every task setting of the config and both image classes, the first ``--images`` evaluation
images are measured exactly as the evaluation measures them and reconstructed by the evaluation's
own MetaDIP runner (the meta-init, 50 inner steps) and DIP runner (random init, Adam, 1000 steps,
EMA), one after the other in this process. The target of an image is the PSNR DIP(1000) ends at or
MetaDIP's own final PSNR, whichever is lower; each method's time to quality is the optimisation
seconds (the solvers' step clocks) at the first step whose estimate reaches the target. The speed-up
is DIP's time over MetaDIP's; the table gives its median and minimum over the images of a setting.

Run (after the pipeline has trained the meta-init; ~1 min per image and setting on one core):
    .venv/bin/python bench/time_to_quality.py [--images 1] [--config config/config.yaml]
        [--meta-init results/meta/metadip/meta_init.safetensors] [--threads 1] [--tasks den_25 cs_4]
The last line is ``time-to-quality speed-up, MetaDIP over DIP(1000) (min over settings): X``.

From a finished evaluation instead (every image DIP ran on, no new solves):
    .venv/bin/python bench/time_to_quality.py --results results/study/results.parquet [--meta metadip]
reads the traces of the evaluation rows (steps to the target are the same as above) and times each
method's steps by its step time measured interleaved with the other's on the same image
(:mod:`metadip.reporting.time_to_quality`); per setting and class it prints the geometric-mean
speed-up with its 95% interval over photographs and the median steps to quality, and as its last
line ``time-to-quality speed-up, MetaDIP over DIP(1000) (geometric mean; min over settings): X``.
"""

from __future__ import annotations

import argparse
import math
import platform
import statistics
from pathlib import Path

import torch

from metadip.datasets.sampling import load_evaluation_set
from metadip.pipeline.config import check_pipeline_config, load_config
from metadip.pipeline.evaluation import build_runner, measure_image, setting_operator
from metadip.pipeline.settings import shard_settings


def time_to(trace: dict[str, list[float]], target: float) -> float:
    """Seconds at the first step whose PSNR reaches ``target`` (inf if none does)."""
    hit = next((s for p, s in zip(trace["psnr"], trace["seconds"], strict=True) if p >= target), None)
    return math.inf if hit is None else hit


def from_results(path: str, meta: str) -> None:
    """The table of speed-ups per setting and class from an evaluation's result rows."""
    import pyarrow.parquet as pq

    from metadip.reporting.time_to_quality import image_speedups, setting_summaries

    rows = pq.read_table(path).to_pylist()
    speedups = image_speedups(rows, meta)
    commits = sorted({r["git_commit"] for r in rows if r["method"] == meta})
    print(
        f"# metadip time to quality from {path} (commit {', '.join(c[:7] for c in commits)}): {meta} against "
        f"its speed reference, steps from the traces, step times interleaved per image"
    )
    print("\n| setting | class | n images/photos | speed-up (geometric mean) [95% CI] | median steps MetaDIP | DIP |")
    print("|---|---|---|---|---|---|")
    worst = math.inf
    for (task, role), (s, k_meta, k_ref) in setting_summaries(speedups).items():
        worst = min(worst, s.mean)
        ci = "" if s.ci_low is None else f" [{s.ci_low:.1f}, {s.ci_high:.1f}]"
        print(f"| {task} | {role} | {s.n_images}/{s.n_photos} | {s.mean:.1f}×{ci} | {k_meta:g} | {k_ref:g} |")
    print(f"\ntime-to-quality speed-up, MetaDIP over DIP(1000) (geometric mean; min over settings): {worst:.1f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", help="an evaluation's results.parquet: read its rows instead of solving")
    p.add_argument("--config", default="config/config.yaml")
    p.add_argument("--meta-init", default=None, help="default: <paths.results>/meta/<init>/meta_init.safetensors")
    p.add_argument("--images", type=int, default=1, help="images per setting and class")
    p.add_argument("--meta", default="metadip", help="meta method under evaluate.methods")
    p.add_argument("--dip", default="dip", help="DIP method under evaluate.methods (its longest run is the reference)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (the workflow's evaluation uses 1)")
    p.add_argument("--tasks", nargs="*", help="settings under evaluate.tasks (default: all)")
    a = p.parse_args()
    if a.results:
        from_results(a.results, a.meta)
        return
    torch.set_num_threads(a.threads)
    config = check_pipeline_config(load_config(a.config), a.config)
    ev = config["evaluate"]
    meta_method, dip_method = ev["methods"][a.meta], ev["methods"][a.dip]
    meta_init = a.meta_init or str(
        Path(config["paths"]["results"]) / "meta" / meta_method["init"] / "meta_init.safetensors"
    )
    size = config["meta"]["image_size"]
    device = torch.device("cpu")
    print(
        f"# metadip time to quality — torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{platform.machine()}, CPU; {size} px, {a.images} image(s) per setting and class, "
        f"MetaDIP({meta_method['steps']}) vs DIP({dip_method['steps']}), meta-init {meta_init}"
    )
    print("\n| setting | class | target PSNR (dB) | MetaDIP (s) | DIP (s) | speed-up, median | min |")
    print("|---|---|---|---|---|---|---|")
    worst = math.inf
    for task_name in a.tasks or list(ev["tasks"]):
        task = ev["tasks"][task_name]
        for role, dataset in ev["roles"].items():
            chosen = load_evaluation_set(Path(config["paths"]["curated"]) / dataset, ev["split"], a.images, 1, size)
            shape = tuple(chosen.images.shape[1:])
            op, _ = setting_operator(task, shape, config["seed"], task_name, dataset)
            runners = {
                name: build_runner(
                    shard_settings(config, task_name, name, dataset), dataset, shape, {"meta_init": meta_init}, device
                )
                for name in (a.meta, a.dip)
            }
            for _, _, warm in runners.values():
                warm(op, measure_image(op, chosen.images[0], config["seed"], task_name, dataset, 0)[0])
            targets, t_meta, t_dip, ratios = [], [], [], []
            for i in range(len(chosen.images)):
                x = chosen.images[i]
                y, _ = measure_image(op, x, config["seed"], task_name, dataset, i)
                (meta_out,) = runners[a.meta][0](op, y.unsqueeze(0), x.unsqueeze(0), [i])[0]
                dip_outs = runners[a.dip][0](op, y.unsqueeze(0), x.unsqueeze(0), [i])[0]
                dip_out = max(dip_outs, key=lambda o: o.steps)
                target = min(meta_out.result.trace["psnr"][-1], dip_out.result.trace["psnr"][-1])
                m, d = time_to(meta_out.result.trace, target), time_to(dip_out.result.trace, target)
                targets.append(target), t_meta.append(m), t_dip.append(d), ratios.append(d / m)
            worst = min(worst, *ratios)
            print(
                f"| {task_name} | {role} | {statistics.mean(targets):.2f} | {statistics.median(t_meta):.2f} | "
                f"{statistics.median(t_dip):.2f} | {statistics.median(ratios):.1f}× | {min(ratios):.1f}× |",
                flush=True,
            )
    print(f"\ntime-to-quality speed-up, MetaDIP over DIP(1000) (min over settings): {worst:.1f}")


if __name__ == "__main__":
    main()
