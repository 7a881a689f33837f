"""The measurement physics: operators y = M(x) (denoising, compressive sensing, phase retrieval)
and the task settings that build and seed them.

Public names are importable from the package; they load their module on first use, so importing
the package is cheap.
"""

from metadip._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "CompressiveSensing": "operators",
        "Denoising": "operators",
        "Operator": "operators",
        "OperatorInputError": "operators",
        "PhaseRetrieval": "operators",
        "PhaseRetrievalOperator": "operators",
        "StructuredCompressiveSensing": "operators",
        "StructuredPhaseRetrieval": "operators",
        "TaskSpec": "tasks",
        "additive_noise": "operators",
        "build_operator": "operators",
        "hartley": "operators",
        "load_operator": "operators",
        "save_operator": "operators",
    },
)
