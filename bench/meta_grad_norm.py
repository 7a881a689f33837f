"""Global norm of MetaDIP's meta-gradient over the first outer steps: the scale that
``meta.methods.<m>.outer.grad_clip`` is set against.

Meta-trains the ablation's method (``ablation.method``, with one of ``ablation.variants`` applied if
named) for ``--steps`` outer steps without clipping, on the train split of a curated dataset, and
prints the quantiles of the global L2 norm of the gradient (θ₀ and the learned step sizes) that
each Adam step received.

Run:  .venv/bin/python bench/meta_grad_norm.py --data data/curated/wallpapers [--steps 40] [--variant V]
"""

from __future__ import annotations

import argparse
import tempfile

import numpy as np
import torch

from metadip.datasets.sampling import load_evaluation_set
from metadip.datasets.store import training_images
from metadip.meta.ablation import variant_method
from metadip.meta.maml import meta_train, model_for_method
from metadip.pipeline.config import load_config


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="config/config.yaml")
    p.add_argument("--data", required=True, help="curated dataset folder (its train split is meta-trained on)")
    p.add_argument("--steps", type=int, default=40, help="outer steps")
    p.add_argument("--variant", default=None, help="an ablation.variants entry to apply")
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    config = load_config(a.config)
    ab = config["ablation"]
    overrides = ab["variants"][a.variant] if a.variant else {}
    method = variant_method(config["meta"]["methods"][ab["method"]], overrides, ab["outer_steps"], ab["test_steps"])
    method["outer"] |= {"steps": a.steps, "grad_clip": None, "val_every": a.steps, "checkpoint_every": a.steps}
    size = config["meta"]["image_size"]
    train = training_images(a.data, "train", size, key="meta.train_dataset")
    model, outer = model_for_method(method, tuple(train.shape[1:]))
    val = load_evaluation_set(a.data, "val", outer.val_images, 1, size, key="meta.outer.val_images").images
    norms: list[float] = []

    def record(step: int) -> None:  # after the Adam step; the gradient is cleared at the next step's start
        grads = [q.grad.detach().flatten() for q in model.parameters() if q.grad is not None]
        norms.append(float(torch.linalg.vector_norm(torch.cat(grads))))

    with tempfile.TemporaryDirectory() as work:
        meta_train(model, outer, train, val, config["seed"], work, show_progress=False, on_step=record)
    names = ("min", "q25", "median", "q75", "q90", "max")
    q = np.quantile(norms, [0.0, 0.25, 0.5, 0.75, 0.9, 1.0])
    print(f"meta-gradient global norm over {len(norms)} outer steps ({a.variant or 'the ablation reference'}):")
    print("  " + "  ".join(f"{n} {v:.4g}" for n, v in zip(names, q, strict=True)))


if __name__ == "__main__":
    main()
