"""Small inputs the tests build: image folders and curated datasets, a tiny CelebA, tiny meta-models
and their training settings, DRUNet training images, a tiny pipeline config."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np
import torch
from conftest import gen
from PIL import Image

from metadip.core.images import bundled_image
from metadip.datasets.curate import curate_dataset
from metadip.meta.inner_loop import InnerSettings, MetaModel
from metadip.meta.maml import OuterSettings
from metadip.models.denoisers import DRUNetConfig
from metadip.models.networks import DIPConfig, DIPPrior
from metadip.physics.tasks import TaskSpec
from metadip.pipeline.config import check_pipeline_config, validate_config

CROP = 32


TINY = DRUNetConfig(channels=1, widths=(8, 16, 32, 64), blocks=1)


def textured(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A random smooth-plus-noise RGB image (texture std well above any filter threshold)."""
    base = rng.integers(0, 256, (h // 8 + 1, w // 8 + 1, 3), dtype=np.uint8)
    img = np.asarray(Image.fromarray(base).resize((w, h), Image.Resampling.BILINEAR), dtype=np.int16)
    return np.clip(img + rng.integers(-20, 21, img.shape), 0, 255).astype(np.uint8)


def make_folder(root: Path, n: int = 8, seed: int = 0, size=(96, 80)) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(textured(rng, size[1], size[0])).save(root / f"img{i:02d}.png")
    return root


def dataset_config(sources: list[dict], crops=(40, 8, 8), **kw) -> dict:
    cfg = {
        "seed": 0,
        "curate": {
            "crop_size": CROP,
            "shard_size": 16,
            "preview_crops": 9,
            "datasets": {
                "d": {"crops": dict(zip(("train", "val", "test"), crops, strict=True)), "sources": sources, **kw}
            },
        },
    }
    return validate_config(cfg)


def curate(cfg: dict, out: Path, seed: int | None = None) -> dict:
    c = cfg["curate"]
    return curate_dataset(
        "d",
        c["datasets"]["d"],
        c["crop_size"],
        cfg["seed"] if seed is None else seed,
        c["shard_size"],
        c["preview_crops"],
        out,
        show_progress=False,
    )


def recurate(folder: Path, rows: list[dict] | None = None, shards: dict[str, np.ndarray] | None = None) -> None:
    """Rewrite the curated ``folder`` as curation writes it: ``shards`` (name → array) saved
    atomically, the manifest (``rows``, default: as it is) with a fresh record of its shards."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from metadip.core.atomic import atomic_path
    from metadip.datasets.store import MANIFEST_SCHEMA, RECORD_KEY, write_manifest

    manifest = pq.read_table(folder / "manifest.parquet")
    crop_size = json.loads(manifest.schema.metadata[RECORD_KEY])["crop_size"]
    for name, array in (shards or {}).items():
        with atomic_path(folder / name) as tmp, tmp.open("wb") as f:
            np.save(f, array, allow_pickle=False)
    table = manifest if rows is None else pa.Table.from_pylist(rows, schema=MANIFEST_SCHEMA)
    write_manifest(folder, table, crop_size)


def png_header(path, width: int, height: int) -> None:
    """A PNG of a few bytes whose header says ``width`` x ``height`` (1-bit grey; no pixel data)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")
    )


def make_celeba(root: Path, n: int = 12) -> dict[str, str]:
    """A tiny CelebA with the real layout: 178×218 JPEGs and list_eval_partition.txt."""
    rng = np.random.default_rng(3)
    (root / "img_align_celeba").mkdir(parents=True)
    parts = {}
    lines = []
    for i in range(1, n + 1):
        name = f"{i:06d}.jpg"
        Image.fromarray(textured(rng, 218, 178)).save(root / "img_align_celeba" / name, quality=95)
        split = "0" if i <= n - 4 else ("1" if i <= n - 2 else "2")
        parts[name] = {"0": "train", "1": "val", "2": "test"}[split]
        lines.append(f"{name} {split}")
    lines.append(f"{n + 1:06d}.jpg 0")  # listed but missing
    (root / "list_eval_partition.txt").write_text("\n".join(lines) + "\n")
    return parts


def tiny_model(
    activation="leaky_relu",
    steps=3,
    learn_lr=True,
    seed=0,
    double=False,
    update="sgd",
    per_element=False,
    norm="batch",
    noise_exponent=False,
) -> MetaModel:
    cfg = DIPConfig(
        image_shape=(1, 16, 16),
        latent_channels=4,
        channels_down=(4, 4),
        channels_up=(4, 4),
        channels_skip=(2, 2),
        activation=activation,
        norm=norm,
    )
    inner = InnerSettings(
        steps=steps,
        lr_init=0.5 if update == "sgd" else 0.01,
        momentum=0.5 if update == "sgd" else 0.9,
        learn_lr=learn_lr,
        update=update,
        lr_per_element=per_element,
        lr_noise_exponent=noise_exponent,
    )
    model = MetaModel(DIPPrior(cfg, seed), inner)
    return model.double() if double else model


def outer(**kw) -> OuterSettings:
    base = {
        "steps": 6,
        "meta_batch": 2,
        "lr": 1e-2,
        "checkpoint_every": 2,
        "val_every": 3,
        "val_images": 2,
        "test_steps": 3,
        "tasks": (TaskSpec("denoising", 25), TaskSpec("cs_fast", 10, ratio=0.5)),
    }
    base.update(kw)
    return OuterSettings(**base)


def images(n=6, seed=0):
    return torch.rand(n, 1, 16, 16, generator=gen(seed))


def state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def training_images():
    train = torch.stack(
        [bundled_image(n, 64, channels=1) for n in ("camera", "brick", "grass", "gravel", "astronaut", "coffee")]
    )
    val = torch.stack([bundled_image(n, 64, channels=1) for n in ("chelsea", "rocket")])
    return train, val


def tiny_config(**evaluate) -> dict:
    cfg = {
        "seed": 3,
        "curate": {
            "datasets": {
                "a": {"crops": {"train": 1, "val": 1, "test": 3}, "sources": [{"type": "skimage", "name": "s"}]},
                "b": {"crops": {"train": 1, "val": 1, "test": 3}, "sources": [{"type": "skimage", "name": "s"}]},
            }
        },
        "meta": {
            "image_size": 64,
            "train_dataset": "a",
            "methods": {"md": {"arch": "dip", "network": {"width": 4, "latent_channels": 4}, "inner": {"steps": 2}}},
        },
        "evaluate": {
            "roles": {"faces": "a", "natural": "b"},
            "images": 3,
            "shards": 2,
            "tasks": {"den": {"kind": "denoising", "sigma": 25}, "cs": {"kind": "cs_fast", "ratio": 0.25}},
            "methods": {
                "dip": {"kind": "dip", "label": "DIP", "network_of": "md", "steps": 3, "report_at": [1, 3]},
                "bm3d": {"kind": "denoiser", "denoiser": "bm3d", "label": "BM3D"},
            },
            **evaluate,
        },
    }
    return check_pipeline_config(validate_config(cfg))
