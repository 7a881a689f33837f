"""Datasets: source adapters (scikit-image photographs, image folders, CelebA), curation of
128×128 crops into versioned shards + manifest, reading curated splits back, and choosing the
images of an evaluation spread over source photographs.

Public names are importable from the package; they load their module on first use, so importing
the package is cheap.
"""

from metadip._lazy import lazy_exports

SPLITS = ("train", "val", "test")

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "CuratedDataError": "store",
        "CuratedSplit": "store",
        "CurationError": "curate",
        "EvaluationSet": "sampling",
        "SourceError": "sources",
        "SourceImage": "sources",
        "SplitError": "store",
        "curate_dataset": "curate",
        "evaluation_indices": "sampling",
        "interleave_by_source": "sampling",
        "list_source": "sources",
        "load_evaluation_set": "sampling",
        "load_manifest": "store",
        "scan_source": "sources",
        "training_split": "store",
        "unusable_reason": "sources",
    },
)
