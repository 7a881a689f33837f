"""Reconstruction algorithms and their common result type: vanilla DIP, PnP-ADMM with its
validation grid search, and a plain denoiser call.

Public names are importable from the package; they load their module on first use, so importing
the package is cheap.
"""

from metadip._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "DIPSettings": "dip",
        "DataProx": "pnp",
        "PnPSettings": "pnp",
        "Reconstruction": "result",
        "fit_dip": "dip",
        "grid_search": "pnp_tuning",
        "pnp_admm": "pnp",
        "run_denoiser": "denoise",
        "total_variation": "dip",
    },
)
