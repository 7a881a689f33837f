"""Dataset curation: determinism, split disjointness, bad input, CelebA layout, output format."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml
from builders import CROP, curate, dataset_config, make_celeba, make_folder, png_header, textured
from PIL import Image

from metadip.datasets import CuratedSplit
from metadip.datasets.curate import CurationError
from metadip.datasets.sources import SourceError
from metadip.pipeline.config import ConfigError, load_config, validate_config

ROOT = Path(__file__).resolve().parents[2]


def make_bad_inputs(root: Path) -> dict[str, str]:
    """One file per bad-input class; returns file name → expected outcome."""
    rng = np.random.default_rng(1)
    rgb = textured(rng, 80, 96)
    Image.fromarray(rgb).convert("L").save(root / "grey.png")
    Image.fromarray(rgb).convert("RGBA").save(root / "rgba.png")
    Image.fromarray(rgb).convert("P").save(root / "palette.png")
    grey16 = np.asarray(Image.fromarray(rgb).convert("L"), dtype=np.uint16) * 257
    Image.fromarray(grey16).save(root / "sixteen.png")
    stored = Image.fromarray(textured(rng, 40, 200))  # stored 200 wide, 40 high
    exif = stored.getexif()
    exif[0x0112] = 6  # displayed rotated: 40 wide, 200 high
    stored.save(root / "rotated.jpg", exif=exif, quality=95)
    jpeg = root / "truncated.jpg"
    Image.fromarray(textured(rng, 80, 96)).save(jpeg, quality=95)
    jpeg.write_bytes(jpeg.read_bytes()[:300])
    (root / "garbage.png").write_bytes(b"\x89PNG but not really")
    Image.fromarray(textured(rng, 20, 20)).save(root / "tiny.png")
    shutil.copy(root / "img00.png", root / "zz_copy_of_img00.png")
    return {
        "grey.png": "used",
        "rgba.png": "used",
        "palette.png": "used",
        "sixteen.png": "used",
        "rotated.jpg": "used",
        "truncated.jpg": "unreadable image",
        "garbage.png": "unreadable image",
        "tiny.png": "too small",
        "zz_copy_of_img00.png": "duplicate of",
    }


@pytest.fixture
def folder(tmp_path) -> Path:
    return make_folder(tmp_path / "photos")


def test_same_seed_gives_byte_identical_outputs(folder, tmp_path):
    cfg = dataset_config([{"type": "folder", "name": "photos", "root": str(folder)}], min_std=0.05)
    curate(cfg, tmp_path / "a")
    curate(cfg, tmp_path / "b")
    files = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert files == sorted(p.name for p in (tmp_path / "b").iterdir())
    assert {
        "manifest.parquet",
        "summary.json",
        "skipped.csv",
        "train-000.npy",
        "train-001.npy",
        "train-002.npy",
        "val-000.npy",
        "test-000.npy",
        "preview-train.png",
    } <= set(files)
    for f in files:
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f
    curate(cfg, tmp_path / "c", seed=1)
    assert (tmp_path / "c" / "train-000.npy").read_bytes() != (tmp_path / "a" / "train-000.npy").read_bytes()


def test_splits_are_disjoint_by_source_image(folder, tmp_path):
    cfg = dataset_config([{"type": "folder", "name": "photos", "root": str(folder)}])
    summary = curate(cfg, tmp_path / "out")
    m = pq.read_table(tmp_path / "out" / "manifest.parquet").to_pylist()
    by_split = {s: {r["source_sha256"] for r in m if r["split"] == s} for s in ("train", "val", "test")}
    assert all(by_split.values())
    assert (
        not (by_split["train"] & by_split["val"])
        and not (by_split["train"] & by_split["test"])
        and not (by_split["val"] & by_split["test"])
    )
    assert summary["crops"] == {"train": 40, "val": 8, "test": 8}
    assert summary["source_images"] == {"train": 4, "val": 2, "test": 2}  # round(0.2 · 8) each for val, test


def test_output_shapes_dtype_range_and_manifest(folder, tmp_path):
    cfg = dataset_config([{"type": "folder", "name": "photos", "root": str(folder), "scale": 0.5}], crops=(10, 3, 3))
    curate(cfg, tmp_path / "out")
    shard = np.load(tmp_path / "out" / "train-000.npy")
    assert shard.dtype == np.uint8 and shard.shape == (10, CROP, CROP, 3)
    rows = pq.read_table(tmp_path / "out" / "manifest.parquet").to_pylist()
    assert len(rows) == 16 and len({r["id"] for r in rows}) == 16
    r = rows[0]
    assert r["id"] == "d/train/000000" and r["collection"] == "photos" and r["source_file"].startswith("img")
    assert r["scale"] == pytest.approx(0.5, rel=0.02)
    assert r["box_x1"] - r["box_x0"] == pytest.approx(CROP / 0.5, rel=0.02)
    assert r["box_x0"] >= 0 and r["box_x1"] <= 96 + 1e-6 and r["box_y1"] <= 80 + 1e-6
    split = CuratedSplit(tmp_path / "out", "train")
    x = split[3]
    assert (
        len(split) == 10 and x.shape == (3, CROP, CROP) and x.dtype.is_floating_point and x.min() >= 0 and x.max() <= 1
    )
    assert np.array_equal((x.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8), shard[3])
    assert split.stack().shape == (10, 3, CROP, CROP)


def test_every_bad_input_class_has_its_rule(folder, tmp_path):
    expected = make_bad_inputs(folder)
    cfg = dataset_config([{"type": "folder", "name": "photos", "root": str(folder)}], crops=(200, 30, 30))
    summary = curate(cfg, tmp_path / "out")
    skipped = {
        row.split(",")[1]: row.split(",", 2)[2]
        for row in (tmp_path / "out" / "skipped.csv").read_text().splitlines()[1:]
    }
    used = {r["source_file"] for r in pq.read_table(tmp_path / "out" / "manifest.parquet").to_pylist()}
    for name, outcome in expected.items():
        if outcome == "used":
            assert name in used and name not in skipped, name
        else:
            assert skipped[name].startswith(outcome), (name, skipped.get(name))
    assert skipped["zz_copy_of_img00.png"] == "duplicate of photos:img00.png (same sha256)"
    assert summary["skipped"] == 4
    rows = pq.read_table(tmp_path / "out" / "manifest.parquet").to_pylist()
    rotated = [r for r in rows if r["source_file"] == "rotated.jpg"]
    assert rotated and all(r["box_x1"] <= 40 + 1e-6 and r["box_y1"] <= 200 + 1e-6 for r in rotated)
    assert any(r["box_y1"] > 40 for r in rotated)  # only possible in the displayed (rotated) frame


def skipped_rows(out: Path) -> dict[str, str]:
    with (out / "skipped.csv").open() as f:
        return {r["source_file"]: r["reason"] for r in csv.DictReader(f)}


def test_skipped_csv_lists_every_unused_matching_file(folder, tmp_path):
    """Every file under the root that matches the pattern is either used or in skipped.csv with a
    reason: dangling symlinks, symlink loops, non-image files and special files included."""
    (folder / "sub").mkdir()
    shutil.copy(folder / "img01.png", folder / "sub" / "nested.png")
    Image.fromarray(textured(np.random.default_rng(5), 80, 96)).save(folder / "sub" / "other.png")
    (folder / "dangling.png").symlink_to(folder / "gone.png")
    (folder / "self.png").symlink_to("self.png")  # a loop of one
    (folder / "ping.jpg").symlink_to("pong.jpg")
    (folder / "pong.jpg").symlink_to("ping.jpg")
    (folder / "alias.png").symlink_to("img02.png")  # a duplicate through a link
    (folder / "notes.txt").write_text("not an image")
    (folder / "README").write_text("no suffix")
    os.mkfifo(folder / "pipe.png")
    (folder / "linked_dir").symlink_to(folder / "sub", target_is_directory=True)  # a folder: not a file
    cfg = dataset_config([{"type": "folder", "name": "photos", "root": str(folder)}], crops=(40, 8, 8))
    summary = curate(cfg, tmp_path / "out")
    skipped = skipped_rows(tmp_path / "out")
    used = {r["source_file"] for r in pq.read_table(tmp_path / "out" / "manifest.parquet").to_pylist()}
    on_disk = {(Path(d) / f).relative_to(folder).as_posix() for d, _, files in os.walk(folder) for f in files}
    assert used | set(skipped) == on_disk and not used & set(skipped), on_disk - used - set(skipped)
    assert skipped["dangling.png"] == f"dangling symlink (-> {folder / 'gone.png'})"
    assert skipped["self.png"] == skipped["ping.jpg"] == skipped["pong.jpg"] == "symlink loop"
    assert skipped["notes.txt"] == "not an image (suffix '.txt')" and skipped["README"] == "not an image (no suffix)"
    assert skipped["pipe.png"] == "not a regular file"
    assert skipped["sub/nested.png"] == "duplicate of photos:img01.png (same sha256)"
    assert skipped["img02.png"].startswith("duplicate of photos:alias.png")  # sorted by name: the link comes first
    assert "sub/other.png" in used
    assert summary["skipped"] == len(skipped) == 9
    assert summary["skipped_by_reason"] == {
        "dangling symlink": 1,
        "duplicate of photos": 2,
        "not a regular file": 1,
        "not an image": 2,
        "symlink loop": 3,
    }
    # a narrower pattern: only what it matches is accounted for
    narrow = dataset_config(
        [
            {"type": "folder", "name": "photos", "root": str(folder), "pattern": "*.jpg", "required": False},
            {"type": "folder", "name": "more", "root": str(folder), "pattern": "img*.png"},
        ],
        crops=(40, 8, 8),
    )
    curate(narrow, tmp_path / "narrow")
    assert skipped_rows(tmp_path / "narrow") == {"ping.jpg": "symlink loop", "pong.jpg": "symlink loop"}


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_file_is_skipped_with_its_reason(folder, tmp_path):
    (folder / "img03.png").chmod(0)
    cfg = dataset_config([{"type": "folder", "name": "photos", "root": str(folder)}], crops=(40, 8, 8))
    curate(cfg, tmp_path / "out")
    assert skipped_rows(tmp_path / "out") == {"img03.png": "unreadable file (Permission denied)"}


def test_a_source_with_only_unusable_files_names_them(tmp_path):
    root = tmp_path / "broken"
    root.mkdir()
    (root / "a.png").symlink_to(root / "missing.png")
    cfg = dataset_config([{"type": "folder", "name": "photos", "root": str(root)}])
    with pytest.raises(
        SourceError, match=r"no images found under .*broken \(1 matching files unusable, e.g. a.png: dangling symlink"
    ):
        curate(cfg, tmp_path / "out")


def test_missing_required_source_fails_cleanly_and_keeps_old_output(folder, tmp_path):
    good = dataset_config([{"type": "folder", "name": "photos", "root": str(folder)}])
    curate(good, tmp_path / "out")
    before = {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()}
    bad = dataset_config([{"type": "folder", "name": "photos", "root": str(tmp_path / "nowhere")}])
    with pytest.raises(SourceError, match="nowhere does not exist"):
        curate(bad, tmp_path / "out")
    assert {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "photos"]  # no temp folders left
    optional = dataset_config(
        [
            {"type": "folder", "name": "x", "root": str(tmp_path / "nowhere"), "required": False},
            {"type": "folder", "name": "photos", "root": str(folder)},
        ]
    )
    assert curate(optional, tmp_path / "out2")["crops_by_collection"]["train"] == {"photos": 40}


def test_split_without_images_is_a_clear_error(tmp_path):
    folder = make_folder(tmp_path / "two", n=1)
    cfg = dataset_config([{"type": "folder", "name": "two", "root": str(folder)}])
    with pytest.raises(CurationError, match="no usable source image for split"):
        curate(cfg, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_per_source_weights(tmp_path):
    a = make_folder(tmp_path / "a", seed=1)
    b = make_folder(tmp_path / "b", seed=2)
    cfg = dataset_config(
        [
            {"type": "folder", "name": "a", "root": str(a), "weight": 3},
            {"type": "folder", "name": "b", "root": str(b), "weight": 1},
        ],
        crops=(40, 8, 8),
    )
    summary = curate(cfg, tmp_path / "out")
    assert summary["crops_by_collection"]["train"] == {"a": 30, "b": 10}
    assert summary["crops_by_collection"]["test"] == {"a": 6, "b": 2}


def test_a_source_fixed_to_train_leaves_the_other_splits_as_they_were(tmp_path):
    a = make_folder(tmp_path / "a", seed=1)
    extra = make_folder(tmp_path / "extra", n=3, seed=2)
    alone = dataset_config([{"type": "folder", "name": "a", "root": str(a)}], crops=(40, 8, 8))
    more = dataset_config(
        [
            {"type": "folder", "name": "a", "root": str(a)},
            {"type": "folder", "name": "extra", "root": str(extra), "split": "train"},
        ],
        crops=(40, 8, 8),
    )
    curate(alone, tmp_path / "alone")
    summary = curate(more, tmp_path / "more")
    assert summary["crops_by_collection"]["train"] == {"a": 20, "extra": 20}
    for split in ("val", "test"):
        assert summary["crops_by_collection"][split] == {"a": 8}
        before, after = CuratedSplit(tmp_path / "alone", split), CuratedSplit(tmp_path / "more", split)
        assert before.ids == after.ids
        assert all(np.array_equal(before.uint8(i), after.uint8(i)) for i in range(len(before)))
    images = pq.read_table(tmp_path / "more" / "manifest.parquet").to_pylist()
    assert {r["split"] for r in images if r["collection"] == "extra"} == {"train"}


def test_a_fixed_split_is_refused_for_celeba(tmp_path):
    make_celeba(tmp_path / "celeba")
    source = {"type": "celeba", "name": "celeba", "root": str(tmp_path / "celeba"), "split": "train"}
    with pytest.raises(SourceError, match="split: CelebA keeps its official partition"):
        curate(dataset_config([source]), tmp_path / "out")


def test_texture_filter_rejects_flat_patches(tmp_path):
    root = tmp_path / "half"
    root.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):  # left half flat grey, right half textured
        img = textured(rng, 64, 128)
        img[:, :64] = 128
        Image.fromarray(img).save(root / f"h{i}.png")
    plain = curate(dataset_config([{"type": "folder", "name": "h", "root": str(root)}]), tmp_path / "plain")
    filtered = curate(
        dataset_config([{"type": "folder", "name": "h", "root": str(root)}], min_std=0.05), tmp_path / "filt"
    )

    def stds(d: str) -> np.ndarray:
        return np.array(pq.read_table(tmp_path / d / "manifest.parquet")["texture_std"].to_pylist())

    assert (stds("plain") < 0.05).any() and (stds("filt") >= 0.05).all()
    assert plain["texture_filter"]["rejected_draws"] == 0 < filtered["texture_filter"]["rejected_draws"]


def test_celeba_adapter_on_the_real_layout(tmp_path):
    parts = make_celeba(tmp_path / "celeba")
    cfg = dataset_config(
        [{"type": "celeba", "name": "celeba", "root": str(tmp_path / "celeba"), "mode": "center", "center_crop": 178}],
        crops=(100, 100, 100),
    )
    cfg["curate"]["crop_size"] = 128
    summary = curate(cfg, tmp_path / "out")
    rows = pq.read_table(tmp_path / "out" / "manifest.parquet").to_pylist()
    assert summary["crops"] == {"train": 8, "val": 2, "test": 2}  # every image once, official split
    for r in rows:
        assert r["split"] == parts[r["source_file"]]
        assert (r["box_x0"], r["box_y0"], r["box_x1"], r["box_y1"]) == (0, 20, 178, 198)
        assert r["scale"] == pytest.approx(128 / 178)
    assert "missing file" in (tmp_path / "out" / "skipped.csv").read_text()
    assert np.load(tmp_path / "out" / "train-000.npy").shape[1:] == (128, 128, 3)
    # a bad partition file is a clear error
    (tmp_path / "celeba" / "list_eval_partition.txt").write_text("000001.jpg 7\n")
    with pytest.raises(SourceError, match=r"list_eval_partition.txt:1: expected"):
        curate(cfg, tmp_path / "out2")


@pytest.mark.timeout(60)
def test_a_fifo_or_an_image_over_the_pixel_limit_is_skipped_with_its_reason(tmp_path, folder):
    make_celeba(tmp_path / "celeba")
    images = tmp_path / "celeba" / "img_align_celeba"
    os.mkfifo(images / "000020.jpg")  # reading it (to hash it) would wait for a writer
    png_header(images / "000021.jpg", 10_000, 10_000)
    with (tmp_path / "celeba" / "list_eval_partition.txt").open("a") as f:
        f.write("000020.jpg 0\n000021.jpg 0\n")
    png_header(folder / "huge.png", 10_000, 10_000)
    for source, name in (
        ({"type": "celeba", "name": "c", "root": str(tmp_path / "celeba"), "mode": "center"}, "000021.jpg"),
        ({"type": "folder", "name": "f", "root": str(folder)}, "huge.png"),
    ):
        out = tmp_path / source["name"]
        curate(dataset_config([source], crops=(4, 1, 1)), out)
        skipped = skipped_rows(out)
        assert (
            skipped[name] == "unreadable image (10000x10000 = 100000000 pixels, over the limit of 67108864 pixels; "
            "downscale or crop it)"
        )
    assert skipped_rows(tmp_path / "c")["000020.jpg"] == "not a regular file"


def test_bad_config_values_are_one_line_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"curate/crop_size: 4 is less than the minimum of 16"):
        validate_config({"curate": {"crop_size": 4}})
    with pytest.raises(ConfigError, match="scale"):
        dataset_config([{"type": "folder", "name": "p", "root": ".", "scale": 2.0}])
    with pytest.raises(ConfigError, match="'flickr' is not one of"):
        dataset_config([{"type": "flickr", "name": "p"}])
    (tmp_path / "c.yaml").write_text("curate: [1, 2")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(tmp_path / "c.yaml")
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "none.yaml")


def test_stage_cli(folder, tmp_path):
    cfg = dataset_config([{"type": "folder", "name": "photos", "root": str(folder)}])
    cfg["meta"]["train_dataset"] = "d"  # the references the stage cross-checks
    cfg["evaluate"]["roles"] = {"faces": "d", "natural": "d"}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    stage = [sys.executable, str(ROOT / "stages" / "curate.py"), "--config", str(tmp_path / "c.yaml")]
    ok = subprocess.run(
        [*stage, "--dataset", "d", "--out", str(tmp_path / "o")], check=False, capture_output=True, text=True
    )
    assert ok.returncode == 0, ok.stderr
    assert (
        "curated 'd'" in ok.stdout and json.loads((tmp_path / "o" / "summary.json").read_text())["crops"]["train"] == 40
    )
    bad = subprocess.run(
        [*stage, "--dataset", "nope", "--out", str(tmp_path / "o2")], check=False, capture_output=True, text=True
    )
    assert bad.returncode == 1 and bad.stderr.strip().count("\n") == 0 and "no dataset 'nope'" in bad.stderr


# --- slow (`pytest -m slow`; .ci/run runs them) ----------
# The default curation (config/config.yaml) on the embedded offline data.


@pytest.mark.slow
@pytest.mark.parametrize("dataset", ["wallpapers", "skimage"])
def test_default_curation(dataset, tmp_path):
    config = load_config(ROOT / "config" / "config.yaml")
    t = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(ROOT / "stages" / "curate.py"), "--dataset", dataset, "--out", str(tmp_path / dataset)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    print(f"{dataset}: curated in {time.perf_counter() - t:.1f} s")
    summary = json.loads((tmp_path / dataset / "summary.json").read_text())
    assert summary["crops"] == config["curate"]["datasets"][dataset]["crops"]
    assert summary["skipped"] == 0
    for split in ("train", "val", "test"):
        assert len(CuratedSplit(tmp_path / dataset, split)) == summary["crops"][split]


@pytest.mark.slow
def test_real_data_brought_in_with_dvc_add(tmp_path):
    """The README's route for real data: a local copy tracked with `dvc add`, then curated."""

    repo = tmp_path / "repo"
    repo.mkdir()
    dvc = str(Path(sys.executable).with_name("dvc"))
    run = lambda *cmd: subprocess.run(cmd, cwd=repo, capture_output=True, text=True, check=True)  # noqa: E731
    run("git", "init", "-q")
    run(dvc, "init", "-q")
    make_celeba(repo / "data" / "raw" / "celeba", n=8)
    run(dvc, "add", "data/raw/celeba")
    assert (repo / "data" / "raw" / "celeba.dvc").is_file()
    assert "/celeba" in (repo / "data" / "raw" / ".gitignore").read_text()
    (repo / "config.yaml").write_text(
        "curate:\n  datasets:\n    celeba:\n      crops: {train: 4, val: 2, test: 2}\n      sources:\n"
        "        - {type: celeba, name: celeba, root: data/raw/celeba, mode: center, center_crop: 178}\n"
        "meta: {train_dataset: celeba}\nevaluate: {roles: {faces: celeba, natural: celeba}}\n"
    )
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "stages" / "curate.py"),
            "--config",
            "config.yaml",
            "--dataset",
            "celeba",
            "--out",
            "data/curated/celeba",
        ],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads((repo / "data" / "curated" / "celeba" / "summary.json").read_text())["crops"] == {
        "train": 4,
        "val": 2,
        "test": 2,
    }
