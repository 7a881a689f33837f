"""One run of the ablation (:mod:`metadip.meta.ablation`): the data it reads, one variant meta-trained
and scored three ways on the ablation's validation problems (the meta-init; the control, its
untrained θ₀ through the learned inner loop; the untrained θ₀ with the initial step sizes), and the
result records of a variant and of vanilla DIP on the same problems."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from metadip.core.hashing import file_sha256
from metadip.core.training_log import training_summary
from metadip.datasets.sampling import EvaluationSet, load_evaluation_set
from metadip.datasets.store import training_images
from metadip.meta.ablation import overrides_text
from metadip.meta.inner_loop import MetaModel
from metadip.meta.maml import OuterSettings, ablation_problems, meta_train, score_tasks


@dataclass(frozen=True)
class AblationData:
    """What an ablation run reads: the training collection's train split ``(N, C, H, W)`` and its
    validation images, the transfer dataset's validation images (None without ``ablation.transfer``),
    and the collection's folder name and manifest hash."""

    dataset: str
    manifest_sha256: str
    train: Tensor
    val: EvaluationSet
    transfer: EvaluationSet | None

    def problems(self, ablation: Mapping[str, Any], seed: int) -> tuple[dict[str, tuple], dict[str, list[str]]]:
        """The validation problems of config ``ablation`` and their photographs (:func:`ablation_problems`)."""
        return ablation_problems(ablation, seed, self.val, self.transfer)


def load_ablation_data(
    ablation: Mapping[str, Any],
    data: str | os.PathLike,
    transfer_data: str | os.PathLike | None,
    image_size: int,
    crop_size: int,
) -> AblationData:
    """The curated folders ``data`` (train split; ``ablation.val_images`` of its val split) and
    ``transfer_data`` (its val split), resized to ``image_size`` px; raises InputError naming the
    folder and config key when one is missing, malformed, curated at another ``crop_size`` or a test split."""
    data, n = Path(data), ablation["val_images"]
    train = training_images(data, "train", image_size, key="meta.train_dataset", crop_size=crop_size)
    val = load_evaluation_set(data, "val", n, 1, image_size, key="ablation.val_images", crop_size=crop_size)
    transfer = None
    if transfer_data:
        transfer = load_evaluation_set(
            transfer_data, "val", n, 1, image_size, key="ablation.transfer", crop_size=crop_size
        )
    return AblationData(data.name, file_sha256(data / "manifest.parquet"), train, val, transfer)


def run_variant(
    variant: str,
    overrides: Mapping[str, Any],
    ablation: Mapping[str, Any],
    model: MetaModel,
    outer: OuterSettings,
    data: AblationData,
    seed: int,
    work_dir: str | os.PathLike,
    device: torch.device | str | None = None,
    code_sha256: str | None = None,
) -> dict[str, Any]:
    """Meta-train ``model`` (the variant's fresh model and outer settings) in ``work_dir``, resuming
    its checkpoint, and score it three ways after ``ablation.test_steps`` inner steps; the variant's
    record (per-image PSNR in dB per way and problem, the training seconds over all sessions).
    ``code_sha256``: the calling stage's code identity (default: the library's)."""
    problems, photos = data.problems(ablation, seed)
    steps = ablation["test_steps"]
    untrained = {k: v.clone() for k, v in model.prior.state_dict().items()}
    before = score_tasks(model, problems, steps, device)
    provenance = {"dataset_manifest_sha256": data.manifest_sha256}
    if code_sha256 is not None:
        provenance["code_sha256"] = code_sha256
    meta_train(model, outer, data.train, data.val.images, seed, work_dir, device=device, provenance=provenance)
    seconds = training_summary(work_dir)["seconds"]  # the whole training, also when it was resumed
    after = score_tasks(model, problems, steps, device)
    model.prior.load_state_dict(untrained)  # the control: untrained θ₀, learned inner loop
    control = score_tasks(model, problems, steps, device)
    return {
        "variant": variant,
        "overrides": overrides,
        "overrides_text": overrides_text(overrides),
        "method": ablation["method"],
        "outer_steps": outer.steps,
        "test_steps": steps,
        "val_images": len(data.val.images),
        "dataset": data.dataset,
        "photos": photos,
        "psnr_db": {"meta": after, "control": control, "init": before},
        "train_seconds": round(seconds, 4),
    }


def variant_summary(record: Mapping[str, Any]) -> str:
    """One line on a variant's :func:`run_variant` record: mean PSNR per problem of each way."""
    mean = {k: {t: sum(v) / len(v) for t, v in d.items()} for k, d in record["psnr_db"].items()}
    scores = ", ".join(
        f"{t} {mean['init'][t]:.2f} -> {mean['meta'][t]:.2f} dB (control {mean['control'][t]:.2f})"
        for t in mean["meta"]
    )
    return (
        f"ablation '{record['variant']}' ({record['overrides_text'] or 'reference'}): {scores} "
        f"({record['train_seconds']:.0f} s)"
    )


def dip_record(
    method: str, data: AblationData, photos: Mapping[str, list[str]], scores: Mapping[str, Any]
) -> dict[str, Any]:
    """The record of vanilla DIP ``method`` on the ablation's problems: ``scores`` (row id → problem →
    per-image PSNR in dB, :func:`metadip.pipeline.evaluation.dip_scores`) and their photographs."""
    return {
        "method": method,
        "val_images": len(data.val.images),
        "dataset": data.dataset,
        "photos": photos,
        "psnr_db": scores,
    }
