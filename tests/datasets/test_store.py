"""Curated folders are checked before they are read: the manifest against the record curation
writes into its schema metadata, each shard's file against its recorded shape, dtype, size and
sha256, the crop size against the config's.  Each refusal is one line naming the file and the fix,
also through the stages (exit status 1, nothing written)."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from builders import CROP, curate, dataset_config, make_folder, recurate, tiny_config

from metadip.core.errors import InputError
from metadip.datasets import store
from metadip.datasets.sampling import load_evaluation_set

ROOT = Path(__file__).resolve().parents[2]
FIX = "re-curate it (snakemake --forcerun curate) or dvc pull a current one"


def load_stage(name: str):
    """The stage script stages/<name>.py as a module (its ``main`` runs in this process)."""
    spec = importlib.util.spec_from_file_location(f"stage_{name}", ROOT / "stages" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    return make_folder(tmp_path_factory.mktemp("photos") / "photos")


def curated(photos: Path, out: Path, crops=(8, 2, 4), **kw) -> Path:
    curate(dataset_config([{"type": "folder", "name": "photos", "root": str(photos)}], crops=crops, **kw), out)
    return out


@pytest.fixture
def data(photos, tmp_path) -> Path:
    """A good curated folder: train-000.npy (8 crops), val-000.npy (2), test-000.npy (4)."""
    return curated(photos, tmp_path / "data")


def refused(data: Path, split: str = "test", **kw) -> str:
    """The one-line message with which opening ``split`` of ``data`` is refused."""
    with pytest.raises(InputError) as err:
        store.CuratedSplit(data, split, **kw)
    message = str(err.value)
    assert "\n" not in message and FIX in message, message
    return message


def manifest_rows(data: Path) -> list[dict]:
    return pq.read_table(data / "manifest.parquet").to_pylist()


def rewrite_manifest(data: Path, change) -> None:
    """Rewrite manifest.parquet with ``change(table)``, keeping its record (an edit by hand)."""
    table = pq.read_table(data / "manifest.parquet")
    pq.write_table(change(table).replace_schema_metadata(table.schema.metadata), data / "manifest.parquet")


def test_a_good_curation_reads_back_with_its_record(data):
    record = json.loads(pq.read_schema(data / "manifest.parquet").metadata[store.RECORD_KEY])
    assert record["crop_size"] == CROP and record["rows"] == 14
    assert sorted(record["shards"]) == ["test-000.npy", "train-000.npy", "val-000.npy"]
    for name, shard in record["shards"].items():
        raw = (data / name).read_bytes()
        assert shard["sha256"] == hashlib.sha256(raw).hexdigest() and shard["bytes"] == len(raw)
        assert shard["dtype"] == "uint8" and shard["shape"] == [len(np.load(data / name)), CROP, CROP, 3]
    for split, n in (("train", 8), ("val", 2), ("test", 4)):
        images = store.CuratedSplit(data, split, crop_size=CROP)
        pixels = np.load(data / f"{split}-000.npy")
        assert len(images) == n and all(np.array_equal(images.uint8(i), pixels[i]) for i in range(n))
    assert store.training_images(data, "val", 16, key="k", crop_size=CROP).shape == (2, 3, 16, 16)
    assert len(store.load_manifest(data)) == 14


def test_each_shard_is_hashed_once_per_process(data, monkeypatch):
    hashed: list[str] = []

    def counting(path: Path) -> str:
        hashed.append(path.name)
        return hashlib.sha256(path.read_bytes()).hexdigest()

    monkeypatch.setattr(store, "_SHA256", {})
    monkeypatch.setattr(store, "file_sha256", counting)
    for _ in range(3):
        store.CuratedSplit(data, "test")
        store.training_split(data, "train", key="k")
        load_evaluation_set(data, "test", 2, 1, 16)
    assert sorted(hashed) == ["test-000.npy", "train-000.npy"]
    st = (data / "test-000.npy").stat()
    os.utime(data / "test-000.npy", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # a new version of the file
    store.CuratedSplit(data, "test")
    assert sorted(hashed) == ["test-000.npy", "test-000.npy", "train-000.npy"]


def test_a_float_shard_in_0_1_is_refused(data):
    pixels = np.load(data / "test-000.npy")
    np.save(data / "test-000.npy", pixels.astype(np.float32) / 255)
    message = refused(data)
    assert message.startswith(f"{data / 'test-000.npy'}: float32 array of shape (4, {CROP}, {CROP}, 3)")
    assert f"expected uint8 crops (N, {CROP}, {CROP}, 3)" in message


def test_a_float_shard_with_nan_pixels_is_refused(data):
    pixels = np.load(data / "test-000.npy").astype(np.float64)
    pixels[0, :4] = np.nan
    np.save(data / "test-000.npy", pixels)
    assert refused(data).startswith(f"{data / 'test-000.npy'}: float64 array")


def test_a_folder_curated_at_another_crop_size_is_refused(data):
    message = refused(data, crop_size=2 * CROP)
    assert message == (
        f"{data / 'manifest.parquet'}: curated at crop size {CROP} px, but curate.crop_size is {2 * CROP}; {FIX}"
    )
    with pytest.raises(InputError, match=r"curated at crop size"):
        store.training_images(data, "train", 16, key="k", crop_size=2 * CROP)


def test_pixels_swapped_under_an_unchanged_manifest_are_refused(data):
    pixels = np.load(data / "test-000.npy")
    np.save(data / "test-000.npy", pixels[[1, 0, 2, 3]])
    assert refused(data) == f"{data / 'test-000.npy'}: content differs from the sha256 the manifest records; {FIX}"


def test_a_truncated_shard_is_refused_naming_it(data):
    raw = (data / "test-000.npy").read_bytes()
    (data / "test-000.npy").write_bytes(raw[: len(raw) // 2])
    message = refused(data)
    assert message.startswith(f"{data / 'test-000.npy'}: {len(raw) // 2} bytes, its 4 crops take {len(raw)}")


def test_a_manifest_without_its_shard_column_is_refused(data):
    rewrite_manifest(data, lambda t: t.drop_columns(["shard"]))
    assert refused(data) == f"{data / 'manifest.parquet'}: no 'shard' column; {FIX}"


def test_a_manifest_with_fewer_rows_than_recorded_is_refused(data):
    rewrite_manifest(data, lambda t: t.slice(0, t.num_rows - 1))
    assert refused(data) == f"{data / 'manifest.parquet'}: 13 rows, but its record counts 14; {FIX}"


def test_rows_that_leave_out_crops_of_a_shard_are_refused(data):
    rows = [r for r in manifest_rows(data) if not (r["split"] == "test" and r["index"] == 3)]
    recurate(data, rows)  # a consistent record of 13 rows, but test-000.npy holds 4 crops
    assert refused(data) == (
        f"{data / 'manifest.parquet'}: its rows name 3 crops of test-000.npy, which holds 4 (each index 0..3 once); "
        f"{FIX}"
    )


def test_two_dimensional_crops_are_refused(data):
    np.save(data / "test-000.npy", np.zeros((4, CROP * CROP * 3), dtype=np.uint8))
    assert refused(data).startswith(f"{data / 'test-000.npy'}: uint8 array of shape (4, {CROP * CROP * 3})")


def test_the_manifest_given_as_a_shard_is_refused(data):
    rows = [{**r, "shard": "manifest.parquet"} if r["split"] == "test" else r for r in manifest_rows(data)]
    rewrite_manifest(data, lambda t: pa.Table.from_pylist(rows, schema=t.schema))
    assert refused(data) == (
        f"{data / 'manifest.parquet'}: a row names shard 'manifest.parquet', which its record does not list; {FIX}"
    )


@pytest.mark.parametrize("where", ["parent", "absolute"])
def test_a_shard_path_leaving_the_folder_is_refused(data, where):
    outside = data.parent / "outside.npy"
    outside.write_bytes((data / "test-000.npy").read_bytes())
    name = "../outside.npy" if where == "parent" else str(outside)
    recurate(data, [{**r, "shard": name} if r["split"] == "test" else r for r in manifest_rows(data)])
    assert refused(data) == f"{data / 'manifest.parquet'}: shard {name!r} is not a .npy file inside the folder; {FIX}"


def test_a_shard_linked_out_of_the_folder_is_read_by_its_content(data):
    """DVC's symlink cache links every shard to a file outside the folder: the content decides."""
    outside = data.parent / "cache" / "ab12"
    outside.parent.mkdir()
    os.replace(data / "test-000.npy", outside)
    (data / "test-000.npy").symlink_to(outside)
    assert len(store.CuratedSplit(data, "test")) > 0
    (data / "test-000.npy").unlink()
    (data / "test-000.npy").symlink_to("train-000.npy")  # a link to other content
    assert refused(data) == f"{data / 'test-000.npy'}: holds 8 crops, the manifest records 4; {FIX}"


def test_a_folder_of_the_earlier_format_is_refused(data):
    table = pq.read_table(data / "manifest.parquet")
    pq.write_table(table.replace_schema_metadata(None), data / "manifest.parquet")
    assert refused(data) == (
        f"{data / 'manifest.parquet'}: curated by an earlier version (no shard hashes recorded); {FIX}"
    )


def stage_config(tmp_path: Path, crop_size: int = CROP) -> Path:
    cfg = tiny_config()
    cfg["curate"]["crop_size"] = crop_size
    cfg["evaluate"]["roles"] = {"faces": "a", "natural": "a"}
    cfg["evaluate"]["images"] = 2
    cfg["baselines"]["drunet"]["network"] |= {"widths": [4, 8, 8, 8], "blocks": 1}
    cfg["baselines"]["drunet"]["train"] |= {"steps": 2, "batch": 2, "patch": 16, "val_images": 2}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def spoil(data: Path, how: str) -> Path:
    """The file named in the refusal of ``data`` spoiled ``how``."""
    shard = data / "test-000.npy"
    if how == "float32":
        np.save(shard, np.load(shard).astype(np.float32) / 255)
    elif how == "truncated":
        shard.write_bytes(shard.read_bytes()[:1000])
    elif how == "swapped":
        np.save(shard, np.load(shard)[::-1])
    else:
        pq.write_table(
            pq.read_table(data / "manifest.parquet").replace_schema_metadata(None), data / "manifest.parquet"
        )
        return data / "manifest.parquet"
    return shard


@pytest.mark.parametrize("how", ["float32", "truncated", "swapped", "earlier format", "crop size"])
def test_the_evaluation_stage_refuses_a_bad_folder_in_one_line(data, tmp_path, capsys, how):
    config = stage_config(tmp_path, 2 * CROP if how == "crop size" else CROP)
    named = data / "manifest.parquet" if how == "crop size" else spoil(data, how)
    out = tmp_path / "rows.parquet"
    args = ["--config", str(config), "--task", "den", "--dataset", "a", "--data", str(data), "--method", "bm3d"]
    assert load_stage("evaluate").main([*args, "--out", str(out), "--device", "cpu"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"evaluate: error: {named}: ") and FIX in err, err
    assert not out.exists()


@pytest.mark.parametrize("bug", [ValueError("planted bug"), IndexError("planted bug")])
def test_a_bug_in_the_evaluation_keeps_its_traceback(data, tmp_path, monkeypatch, bug):
    def solver(*args, **kwargs):
        raise bug

    monkeypatch.setattr("metadip.pipeline.evaluation.run_denoiser", solver)
    out = tmp_path / "rows.parquet"
    args = ["--config", str(stage_config(tmp_path)), "--task", "den", "--dataset", "a", "--data", str(data)]
    with pytest.raises(type(bug), match="planted bug"):
        load_stage("evaluate").main([*args, "--method", "bm3d", "--out", str(out), "--device", "cpu"])
    assert not out.exists()


def test_an_input_error_deep_in_the_evaluation_is_one_line(data, tmp_path, monkeypatch, capsys):
    def solver(*args, **kwargs):
        raise InputError("planted bad input; the fix")

    monkeypatch.setattr("metadip.pipeline.evaluation.run_denoiser", solver)
    out = tmp_path / "rows.parquet"
    args = ["--config", str(stage_config(tmp_path)), "--task", "den", "--dataset", "a", "--data", str(data)]
    assert load_stage("evaluate").main([*args, "--method", "bm3d", "--out", str(out), "--device", "cpu"]) == 1
    assert capsys.readouterr().err == "evaluate: error: planted bad input; the fix\n"
    assert not out.exists()


def test_the_evaluation_stage_reads_a_good_folder(data, tmp_path, capsys):
    config = stage_config(tmp_path)
    out = tmp_path / "rows.parquet"
    args = ["--config", str(config), "--task", "den", "--dataset", "a", "--data", str(data), "--method", "bm3d"]
    assert load_stage("evaluate").main([*args, "--out", str(out), "--device", "cpu"]) == 0, capsys.readouterr().err
    assert len(pq.read_table(out)) == 1  # shard 0 of evaluate.shards 2


@pytest.mark.parametrize("empty", ["val", "train"])
def test_drunet_training_refuses_an_empty_split_before_any_work(photos, tmp_path, capsys, empty):
    crops = {"val": (8, 0, 2), "train": (0, 2, 2)}[empty]
    fractions = {"val": {"train": 0.75, "val": 0.0, "test": 0.25}, "train": {"train": 0.0, "val": 0.5, "test": 0.5}}
    data = curated(photos, tmp_path / "data", crops=crops, split_fractions=fractions[empty])
    out = tmp_path / "drunet"
    rc = load_stage("train_denoiser").main(
        ["--config", str(stage_config(tmp_path)), "--data", str(data), "--out", str(out)]
    )
    key = "baselines.drunet.train.val_images" if empty == "val" else "baselines.drunet.train"
    assert rc == 1
    assert capsys.readouterr().err.strip() == (
        f"train_denoiser: error: {data}: the {empty} split is empty; curate the dataset with {empty} crops ({key})"
    )
    assert not out.exists()
