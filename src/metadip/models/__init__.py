"""Networks: the DIP skip encoder-decoder and SIREN priors, the denoisers (BM3D, DRUNet) and
DRUNet's training, and building a prior from its description.

Public names are importable from the package; they load their module on first use, so importing
the package is cheap.
"""

from metadip._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "DIPConfig": "networks",
        "DIPPrior": "networks",
        "DRUNet": "denoisers",
        "DRUNetConfig": "denoisers",
        "DRUNetDenoiser": "denoisers",
        "DenoiserTraining": "denoiser_training",
        "Sine": "networks",
        "SirenConfig": "networks",
        "SirenPrior": "networks",
        "SkipConfig": "networks",
        "SkipNet": "networks",
        "architecture_from_config": "build",
        "bm3d_denoise": "denoisers",
        "build_prior": "build",
        "count_parameters": "networks",
        "describe_prior": "build",
        "fourier_features": "networks",
        "learning_rate": "denoiser_training",
        "load_official_drunet": "denoisers",
        "pixel_grid": "networks",
        "train_denoiser": "denoiser_training",
        "training_batch": "denoiser_training",
        "validate_denoiser": "denoiser_training",
    },
)
