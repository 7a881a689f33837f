"""Artifacts (meta-inits, trained denoisers): safetensors weights + a JSON sidecar that is enough
to rebuild the model.

``<stem>.safetensors`` holds the prior's parameters and buffers (latent z, Fourier features) and
the inner-loop step sizes (``log_lr``); ``<stem>.json`` holds the architecture and its
hyper-parameters, the inner-loop settings, the learned step sizes in readable form, the training
config and its hash, the dataset manifest hash, the seed, the git commit, package versions and
the sha256 of the weights file.  Loading never unpickles, checks the weights hash, rebuilds the
network from the sidecar alone and refuses any mismatch with a one-line reason.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from safetensors.torch import load_file, save_file

from metadip.adapt import InnerSettings, MetaModel
from metadip.atomic import atomic_path, write_text
from metadip.config import config_hash
from metadip.denoisers import DRUNet, DRUNetConfig
from metadip.networks import DIPConfig, DIPPrior, SirenConfig, SirenPrior

FORMAT = "metadip.meta-init/1"


class ArtifactError(ValueError):
    """A meta-init artifact is missing, tampered with, or does not match what was asked for."""


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def git_commit() -> str:
    """HEAD of the repository this package lives in ('unknown' outside a git checkout)."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
                             capture_output=True, text=True, timeout=10)
        return out.stdout.strip() if out.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def package_versions() -> dict[str, str]:
    names = ("metadip", "torch", "numpy", "safetensors")
    versions = {"python": platform.python_version()}
    for n in names:
        try:
            versions[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            versions[n] = "unknown"
    return versions


def architecture(model: MetaModel) -> dict[str, Any]:
    """The sidecar's description of the prior: kind, config and seed."""
    prior = model.prior
    kind = "dip" if isinstance(prior, DIPPrior) else "siren" if isinstance(prior, SirenPrior) else None
    if kind is None:
        raise ArtifactError(f"cannot describe prior of type {type(prior).__name__}")
    return {"kind": kind, "config": prior.config.to_dict(), "seed": prior.seed}


def build_model(arch: dict[str, Any], inner: dict[str, Any]) -> MetaModel:
    """A freshly initialised :class:`MetaModel` of the described architecture."""
    kind = arch.get("kind")
    if kind == "dip":
        prior = DIPPrior(DIPConfig.from_dict(arch["config"]), arch["seed"])
    elif kind == "siren":
        prior = SirenPrior(SirenConfig.from_dict(arch["config"]), arch["seed"])
    else:
        raise ArtifactError(f"unknown architecture kind {kind!r} (expected 'dip' or 'siren')")
    return MetaModel(prior, InnerSettings(**inner))


def architecture_from_config(network: dict[str, Any], arch: str, image_shape: tuple[int, int, int]) -> dict[str, Any]:
    """The architecture description of a ``meta.methods.<name>`` config entry (defaults filled in)."""
    if arch == "dip":
        depth = network["depth"]
        config = DIPConfig(
            image_shape=tuple(image_shape), latent_channels=network["latent_channels"], latent_scale=network["latent_scale"],
            fourier_features=network["fourier_features"], fourier_scale=network["fourier_scale"],
            channels_down=(network["width"],) * depth, channels_up=(network["width"],) * depth,
            channels_skip=(network["skip"],) * depth, activation=network["activation"],
        )
    elif arch == "siren":
        config = SirenConfig(image_shape=tuple(image_shape), width=network["width"], depth=network["depth"], omega0=network["omega0"])
    else:
        raise ArtifactError(f"unknown architecture kind {arch!r} (expected 'dip' or 'siren')")
    return {"kind": arch, "config": config.to_dict(), "seed": network["seed"]}


def _paths(path: str | os.PathLike) -> tuple[Path, Path]:
    p = Path(path)
    stem = p.with_suffix("") if p.suffix in (".safetensors", ".json") else p
    return stem.with_name(stem.name + ".safetensors"), stem.with_name(stem.name + ".json")


def save_meta_init(model: MetaModel, path: str | os.PathLike, *, training_config: dict[str, Any],
                   dataset_manifest_sha256: str, seed: int, extra: dict[str, Any] | None = None) -> tuple[Path, Path]:
    """Write ``<stem>.safetensors`` and ``<stem>.json`` atomically; returns both paths."""
    weights, sidecar = _paths(path)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(weights) as tmp:
        save_file(state, str(tmp), metadata={"format": FORMAT})
    alphas = model.step_sizes().detach().cpu()
    meta = {
        "format": FORMAT,
        "architecture": architecture(model),
        "inner": model.inner.to_dict(),
        "step_sizes": {"param_names": model.param_names, "alpha": alphas.tolist()},
        "training_config": training_config,
        "training_config_hash": config_hash(training_config),
        "dataset_manifest_sha256": dataset_manifest_sha256,
        "seed": seed,
        "git_commit": git_commit(),
        "versions": package_versions(),
        "weights_file": weights.name,
        "weights_sha256": file_sha256(weights),
        **(extra or {}),
    }
    write_text(sidecar, json.dumps(meta, indent=2) + "\n")
    return weights, sidecar


_META_INIT_HINT = "run meta-training or `dvc pull` the meta-init"
_DENOISER_HINT = "run stages/train_denoiser.py or `dvc pull`"


def read_sidecar(path: str | os.PathLike, fmt: str = FORMAT, what: str = "meta-init", hint: str = _META_INIT_HINT) -> dict[str, Any]:
    """The JSON sidecar of an artifact (``path``: stem, .safetensors or .json), checked for its format."""
    _, sidecar = _paths(path)
    if not sidecar.is_file():
        raise ArtifactError(f"{sidecar}: {what} sidecar not found ({hint})")
    try:
        meta = json.loads(sidecar.read_text())
    except json.JSONDecodeError as err:
        raise ArtifactError(f"{sidecar}: not valid JSON ({err})") from None
    if meta.get("format") != fmt:
        raise ArtifactError(f"{sidecar}: not a {fmt} sidecar (format {meta.get('format')!r})")
    return meta


def _verified(path: str | os.PathLike, fmt: str, what: str, hint: str) -> tuple[Path, Path, dict[str, Any]]:
    """(weights, sidecar, sidecar content) once the sidecar is valid and the weights' sha256 matches it."""
    weights, sidecar = _paths(path)
    meta = read_sidecar(sidecar, fmt, what, hint)
    if not weights.is_file():
        raise ArtifactError(f"{weights}: {what} weights not found ({hint})")
    if file_sha256(weights) != meta.get("weights_sha256"):
        raise ArtifactError(f"{weights}: sha256 does not match {sidecar.name}; the file was modified or belongs to another {what}")
    return weights, sidecar, meta


def load_meta_init(path: str | os.PathLike, expect_architecture: dict[str, Any] | None = None,
                   expect_training_config_hash: str | None = None,
                   expect_dataset_manifest_sha256: str | None = None) -> MetaModel:
    """Load a meta-init saved by :func:`save_meta_init` (``path``: the stem, .safetensors or .json).

    Refuses (:class:`ArtifactError`) a missing file, weights whose sha256 differs from the
    sidecar's, weights that do not fit the sidecar's architecture, and an architecture, training
    config hash or dataset manifest hash other than the expected ones.
    """
    weights, sidecar, meta = _verified(path, FORMAT, "meta-init", _META_INIT_HINT)
    if expect_architecture is not None and meta["architecture"] != expect_architecture:
        raise ArtifactError(f"{sidecar}: architecture {meta['architecture']} differs from the expected {expect_architecture}")
    if expect_training_config_hash is not None and meta.get("training_config_hash") != expect_training_config_hash:
        raise ArtifactError(f"{sidecar}: trained with config hash {meta.get('training_config_hash')}, "
                            f"expected {expect_training_config_hash}; retrain or point to the matching meta-init")
    if expect_dataset_manifest_sha256 is not None and meta.get("dataset_manifest_sha256") != expect_dataset_manifest_sha256:
        raise ArtifactError(f"{sidecar}: trained on a dataset with manifest sha256 {meta.get('dataset_manifest_sha256')}, "
                            f"expected {expect_dataset_manifest_sha256}; retrain on this dataset or point to the matching meta-init")
    model = build_model(meta["architecture"], meta["inner"])
    state = load_file(str(weights))
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        first = str(err).splitlines()[1].strip() if len(str(err).splitlines()) > 1 else str(err)
        raise ArtifactError(f"{weights}: weights do not fit the architecture in {sidecar.name} ({first})") from None
    return model



DENOISER_FORMAT = "metadip.denoiser/1"


def save_denoiser(net: DRUNet, path: str | os.PathLike, *, source: str, training_config: dict[str, Any] | None = None,
                  dataset_manifest_sha256: str = "", seed: int | None = None) -> tuple[Path, Path]:
    """Write a DRUNet as ``<stem>.safetensors`` + ``<stem>.json`` (``source``: "trained" or the official file)."""
    weights, sidecar = _paths(path)
    with atomic_path(weights) as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}, str(tmp), metadata={"format": DENOISER_FORMAT})
    meta = {
        "format": DENOISER_FORMAT, "architecture": {"kind": "drunet", "config": net.config.to_dict()}, "source": source,
        "training_config": training_config, "training_config_hash": config_hash(training_config) if training_config else None,
        "dataset_manifest_sha256": dataset_manifest_sha256, "seed": seed, "git_commit": git_commit(),
        "versions": package_versions(), "weights_file": weights.name, "weights_sha256": file_sha256(weights),
    }
    write_text(sidecar, json.dumps(meta, indent=2) + "\n")
    return weights, sidecar


def load_denoiser(path: str | os.PathLike, channels: int | None = None) -> DRUNet:
    """Load a DRUNet saved by :func:`save_denoiser`; checks the weights hash and the channel count."""
    weights, sidecar, meta = _verified(path, DENOISER_FORMAT, "denoiser", _DENOISER_HINT)
    net = DRUNet(DRUNetConfig.from_dict(meta["architecture"]["config"]))
    if channels is not None and net.config.channels != channels:
        raise ArtifactError(f"{weights}: a {net.config.channels}-channel DRUNet, but {channels}-channel images are to be denoised")
    try:
        net.load_state_dict(load_file(str(weights)), strict=True)
    except RuntimeError as err:
        raise ArtifactError(f"{weights}: weights do not fit the architecture in {sidecar.name} ({str(err).splitlines()[-1].strip()})") from None
    return net.eval()
