"""Datasets: source adapters (scikit-image photographs, image folders, CelebA), curation of
128×128 crops into versioned shards + manifest, and reading curated splits back."""

from metadip.datasets.store import CuratedSplit, load_manifest

SPLITS = ("train", "val", "test")

__all__ = ["SPLITS", "CuratedSplit", "load_manifest"]
