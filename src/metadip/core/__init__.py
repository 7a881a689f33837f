"""Foundations every layer uses: image I/O, quality metrics, seeded generators, config hashes,
the default device, atomic writes, training checkpoints and logs, quiet progress bars and a step clock.

Public names are importable from the package; they load their module on first use, so importing
the package is cheap.
"""

from metadip._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "CorruptCheckpoint": "checkpoints",
        "UnreadableImageError": "images",
        "atomic_path": "atomic",
        "bundled_image": "images",
        "code_files": "checkpoints",
        "code_sha256": "checkpoints",
        "config_hash": "hashing",
        "current_umask": "atomic",
        "default_device": "device",
        "file_sha256": "hashing",
        "derived_seed": "seeding",
        "dir_mode": "atomic",
        "file_mode": "atomic",
        "identity_differences": "checkpoints",
        "load_image": "images",
        "mse": "metrics",
        "name_key": "seeding",
        "nmse": "metrics",
        "progress": "progress_bars",
        "psnr": "metrics",
        "quality_trace": "metrics",
        "read_log": "checkpoints",
        "read_rgb": "images",
        "resize_images": "images",
        "resume_step": "checkpoints",
        "save_checkpoint": "checkpoints",
        "save_png": "images",
        "seeded_generator": "seeding",
        "set_aside": "checkpoints",
        "square_resize": "images",
        "StepClock": "step_clock",
        "TrainingLog": "training_log",
        "ssim": "metrics",
        "tensors_sha256": "checkpoints",
        "to_tensor": "images",
        "to_uint8": "images",
        "training_summary": "training_log",
        "write_log": "checkpoints",
        "write_text": "atomic",
    },
)
