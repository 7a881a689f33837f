"""Sweep of MetaSIREN's fixed inner-loop step size and momentum, on validation crops.

MetaSIREN does not learn its step sizes, so its inner ``lr_init`` and ``momentum`` are chosen by
hand. This sweep chooses them the way every setting must be chosen, on the **val** split (the test
split is refused: :func:`metadip.datasets.store.training_split`): from the random SIREN init of the
config's method (``meta.methods.<method>``: network, seed, image size), each setting of
lr x momentum runs the library's inner loop (:func:`metadip.meta.inner_loop.solve_batch`) for ``--steps``
fixed-step updates on denoising problems at σ = ``--sigma`` of ``--per-dataset`` val crops of each
curated dataset, taken round-robin across the split's source photographs. Every setting sees the
same images and the same noise.

Printed per setting: mean PSNR after the last step, its 95% interval from a bootstrap that resamples
whole source photographs (crops of one photograph are not independent), the paired difference to
the best setting with its interval, and the share of diverged solves (non-finite output, counted as
0 dB). The best setting is the one with the highest mean.

Run:  .venv/bin/python bench/metasiren_sweep.py [--data data/curated/wallpapers data/curated/skimage]
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import numpy as np
import torch

from metadip.core.errors import InputError
from metadip.core.images import resize_images
from metadip.core.metrics import psnr
from metadip.core.seeding import seeded_generator
from metadip.datasets.store import load_manifest, training_split
from metadip.meta.inner_loop import build_model, solve_batch
from metadip.models.build import architecture_from_config
from metadip.physics.tasks import TaskSpec
from metadip.pipeline.config import DEFAULT_CONFIG, ConfigError, load_config

RESAMPLES = 2000
NOISE_PURPOSE = 11  # seed key of the sweep's noise draws


def val_crops(root: Path, n: int, size: int, method: str) -> tuple[torch.Tensor, list[str]]:
    """``n`` val crops of the curated dataset at ``root`` (round-robin over its source photographs,
    resized to ``size``) and the photograph of each (``dataset/source_file``)."""
    split = training_split(root, "val", key=f"bench/metasiren_sweep (meta.methods.{method})")
    source = {r["id"]: r["source_file"] for r in load_manifest(root).to_pylist() if r["split"] == "val"}
    groups: dict[str, list[int]] = {}
    for i, crop_id in enumerate(split.ids):
        groups.setdefault(source[crop_id], []).append(i)
    order = [g[k] for k in range(max(map(len, groups.values()), default=0)) for g in groups.values() if k < len(g)]
    picked = order[:n]
    if len(picked) < n:
        raise InputError(f"{root}: the val split has {len(split)} crops, --per-dataset asks for {n}")
    return resize_images(split.stack(picked), size), [f"{root.name}/{source[split.ids[i]]}" for i in picked]


def cluster_bootstrap(values: np.ndarray, clusters: list[str], seed: int = 0) -> tuple[float, float]:
    """95% percentile interval of the mean of ``values`` over resamples of whole clusters."""
    names = sorted(set(clusters))
    codes = np.array([names.index(c) for c in clusters])
    sums, counts = np.bincount(codes, values, len(names)), np.bincount(codes, minlength=len(names)).astype(float)
    draws = np.random.default_rng(seed).integers(0, len(names), (RESAMPLES, len(names)))
    means = sums[draws].sum(1) / counts[draws].sum(1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=DEFAULT_CONFIG, help="config file (default: %(default)s)")
    p.add_argument("--method", default="metasiren", help="a siren method under meta.methods (default: %(default)s)")
    p.add_argument(
        "--data", nargs="+", help="curated dataset folders (default: <paths.curated>/<each curate.datasets name>)"
    )
    p.add_argument("--per-dataset", type=int, default=8, help="val crops per dataset (default: %(default)s)")
    p.add_argument("--steps", type=int, default=50, help="inner steps per solve (default: %(default)s)")
    p.add_argument("--sigma", type=float, default=25.0, help="noise level, 0-255 scale (default: %(default)s)")
    p.add_argument(
        "--lrs", type=float, nargs="+", default=[0.01, 0.1, 1.0, 10.0], help="step sizes (default: %(default)s)"
    )
    p.add_argument("--momenta", type=float, nargs="+", default=[0.5, 0.9], help="momenta (default: %(default)s)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default: %(default)s)")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    try:
        config = load_config(a.config)
        method = config["meta"]["methods"].get(a.method)
        if method is None or method["arch"] != "siren":
            raise ConfigError(f"{a.config}: no siren method '{a.method}' under meta.methods")
        size = config["meta"]["image_size"]
        roots = (
            [Path(d) for d in a.data]
            if a.data
            else [Path(config["paths"]["curated"]) / n for n in config["curate"]["datasets"]]
        )
        parts = [val_crops(r, a.per_dataset, size, a.method) for r in roots]
    except (InputError, OSError) as err:
        print(f"metasiren_sweep: error: {err}", file=sys.stderr)
        return 1
    xs = torch.cat([x for x, _ in parts])
    photos = [s for _, ss in parts for s in ss]
    op, ys = TaskSpec("denoising", a.sigma).simulate(xs, seeded_generator(config["seed"], NOISE_PURPOSE))
    arch = architecture_from_config(method["network"], "siren", tuple(xs.shape[1:]))
    net = {k: method["network"][k] for k in ("width", "depth", "omega0", "seed")}
    print(
        f"MetaSIREN inner-loop sweep: random init of meta.methods.{a.method} ({net}, {size} px), "
        f"denoising sigma {a.sigma:g}, {a.steps} fixed-step updates, {len(xs)} val crops of "
        f"{len(set(photos))} photographs "
        f"({', '.join(r.name for r in roots)}), {a.threads} thread(s)"
    )
    results: dict[tuple[float, float], np.ndarray] = {}
    diverged: dict[tuple[float, float], int] = {}
    for lr, mu in itertools.product(a.lrs, a.momenta):
        t = time.perf_counter()
        model = build_model(arch, {**method["inner"], "lr_init": lr, "momentum": mu, "learn_lr": False})
        # one solve after another: on one CPU thread ~1.5x faster than the vmapped batch (measured)
        out = solve_batch(model, op, ys, a.steps, device="cpu", show_progress=False, vectorise=False)
        values = np.array([float(psnr(r.estimate, x)) for r, x in zip(out, xs, strict=True)])
        diverged[(lr, mu)] = int((~np.isfinite(values)).sum())
        results[(lr, mu)] = np.where(np.isfinite(values), values, 0.0)
        print(
            f"  lr {lr:g}, momentum {mu:g}: {np.mean(results[(lr, mu)]):.2f} dB ({time.perf_counter() - t:.0f} s)",
            file=sys.stderr,
        )
    best = max(results, key=lambda k: np.mean(results[k]))
    print("\n| lr | momentum | mean PSNR (dB) | 95% CI | Δ vs best (dB) | 95% CI of Δ | diverged |")
    print("|---:|---:|---:|---|---:|---|---:|")
    for (lr, mu), v in results.items():
        low, high = cluster_bootstrap(v, photos)
        d = v - results[best]
        dl, dh = cluster_bootstrap(d, photos)
        print(
            f"| {lr:g} | {mu:g} | {v.mean():.2f} | [{low:.2f}, {high:.2f}] | {d.mean():+.2f} | [{dl:+.2f}, "
            f"{dh:+.2f}] | "
            f"{diverged[(lr, mu)]}/{len(v)} |"
        )
    print(f"\nbest: lr {best[0]:g}, momentum {best[1]:g} ({results[best].mean():.2f} dB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
