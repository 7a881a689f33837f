"""Build prior networks from their description: ``{"kind": "dip" | "siren", "config": {...}, "seed": int}``
(the ``architecture`` of an artifact's sidecar) or from a ``meta.methods.<name>`` config entry."""

from __future__ import annotations

from typing import Any

from torch import nn

from metadip.models.networks import DIPConfig, DIPPrior, SirenConfig, SirenPrior


def describe_prior(prior: nn.Module) -> dict[str, Any]:
    """The description of a DIP or SIREN prior: kind, config and seed."""
    kind = "dip" if isinstance(prior, DIPPrior) else "siren" if isinstance(prior, SirenPrior) else None
    if kind is None:
        raise ValueError(f"cannot describe prior of type {type(prior).__name__}")
    return {"kind": kind, "config": prior.config.to_dict(), "seed": prior.seed}


def build_prior(arch: dict[str, Any]) -> nn.Module:
    """A freshly initialised prior of the described architecture."""
    kind = arch.get("kind")
    if kind == "dip":
        return DIPPrior(DIPConfig.from_dict(arch["config"]), arch["seed"])
    if kind == "siren":
        return SirenPrior(SirenConfig.from_dict(arch["config"]), arch["seed"])
    raise ValueError(f"unknown architecture kind {kind!r} (expected 'dip' or 'siren')")


def architecture_from_config(network: dict[str, Any], arch: str, image_shape: tuple[int, int, int]) -> dict[str, Any]:
    """The architecture description of a ``meta.methods.<name>`` config entry (defaults filled in)."""
    if arch == "dip":
        depth = network["depth"]
        config = DIPConfig(
            image_shape=tuple(image_shape),
            latent_channels=network["latent_channels"],
            latent_scale=network["latent_scale"],
            fourier_features=network["fourier_features"],
            fourier_scale=network["fourier_scale"],
            channels_down=(network["width"],) * depth,
            channels_up=(network["width"],) * depth,
            channels_skip=(network["skip"],) * depth,
            activation=network["activation"],
            norm=network.get("norm", "batch"),
        )
    elif arch == "siren":
        config = SirenConfig(
            image_shape=tuple(image_shape), width=network["width"], depth=network["depth"], omega0=network["omega0"]
        )
    else:
        raise ValueError(f"unknown architecture kind {arch!r} (expected 'dip' or 'siren')")
    return {"kind": arch, "config": config.to_dict(), "seed": network["seed"]}
