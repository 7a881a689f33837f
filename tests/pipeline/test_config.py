"""Config files: duplicate keys, non-finite numbers and values beyond the schema's maxima are
refused with one line naming the key; every shipped config and overlay validates."""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from importlib import resources

import pytest
import yaml
from snakemake.utils import update_config
from workflow_helpers import ROOT

from metadip.pipeline.config import (
    MAX_STEPS,
    SCHEMA,
    SCHEMA_NAME,
    ConfigError,
    check_config_files,
    load_config,
    workflow_config,
)

BASE = ROOT / "config" / "config.yaml"
OVERLAYS = sorted(p.name for p in (ROOT / "config").glob("*.yaml") if p.name not in ("config.yaml", "protocol.yaml"))


def _base() -> dict:
    return yaml.safe_load(BASE.read_text())


def _write(path, text: str):
    path.write_text(text)
    return path


@pytest.mark.parametrize("overlay", [None, *OVERLAYS])
def test_every_shipped_config_validates(overlay):
    config = _base()
    if overlay is not None:
        update_config(config, yaml.safe_load((ROOT / "config" / overlay).read_text()))
    check_config_files([BASE] + ([ROOT / "config" / overlay] if overlay else []))
    workflow_config(config, "config", _base())
    assert load_config(BASE)["meta"]["image_size"] <= 1024


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf"])
def test_a_non_finite_sigma_in_a_file_is_refused_naming_the_key(tmp_path, value):
    path = _write(tmp_path / "c.yaml", f"evaluate:\n  tasks:\n    den: {{kind: denoising, sigma: {value}}}\n")
    with pytest.raises(ConfigError, match=r"^\S*c\.yaml: evaluate/tasks/den/sigma: -?(nan|inf) is not a finite number"):
        load_config(path)


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("evaluate:\n  tasks:\n    den: {kind: denoising, sigma: 1.0e+30}\n", "evaluate/tasks/den/sigma"),
        ("meta:\n  image_size: 100000000\n", "meta/image_size"),
        ("meta:\n  image_size: 1.0e+8\n", "meta/image_size"),
        ("curate:\n  crop_size: 4096\n", "curate/crop_size"),
        ("meta:\n  methods:\n    m: {arch: dip, outer: {tasks: [{kind: denoising, sigma: 300}]}}\n", "sigma"),
        (
            "ablation:\n  transfer:\n    tasks:\n      t: {kind: denoising, sigma: 1000}\n",
            "ablation/transfer/tasks/t/sigma",
        ),
        ("evaluate:\n  methods:\n    d: {kind: dip, label: D, network_of: m, steps: 1000000000}\n", "steps"),
        ("evaluate:\n  images: 1000000\n", "evaluate/images"),
        ("evaluate:\n  batch: 100000\n", "evaluate/batch"),
    ],
)
def test_a_value_beyond_its_maximum_is_refused_naming_the_key(tmp_path, text, where):
    with pytest.raises(ConfigError, match=rf"c\.yaml: \S*{where}: .* is greater than the maximum"):
        load_config(_write(tmp_path / "c.yaml", text))


@pytest.mark.parametrize("value", ["nan", "inf", "-Infinity", "1e30"])
def test_a_command_line_sigma_is_checked_after_it_is_read_as_a_number(value):
    config = _base()
    config["evaluate"]["tasks"]["den_25"]["sigma"] = value  # as Snakemake passes --config 'evaluate={...}'
    with pytest.raises(ConfigError, match=r"^--config: evaluate/tasks/den_25/sigma: .*(not a finite number|maximum)"):
        workflow_config(copy.deepcopy(config), "--config", _base())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("seed: 1\ncurate: {}\nseed: 2\n", "duplicate key 'seed' at line 3 (first at line 1)"),
        (
            "meta:\n  image_size: 64\n  gpus: 1\n  image_size: 128\n",
            "duplicate key 'image_size' at line 4 (first at line 2)",
        ),
        ("evaluate:\n  tasks:\n    den: {kind: denoising, sigma: 25, sigma: 15}\n", "duplicate key 'sigma' at line 3"),
    ],
)
def test_a_duplicate_key_is_refused_naming_the_file_key_and_line(tmp_path, text, message):
    path = _write(tmp_path / "c.yaml", text)
    with pytest.raises(ConfigError, match=rf"^\S*c\.yaml: {re.escape(message)}"):
        load_config(path)
    with pytest.raises(ConfigError, match=rf"^\S*c\.yaml: {re.escape(message)}"):
        check_config_files([BASE, path])


def test_check_config_files_reads_overlays_without_validating_them(tmp_path):
    partial = _write(tmp_path / "overlay.yaml", "evaluate: {images: 3}\nanchors: &a {x: 1}\nmerged: {<<: *a, x: 2}\n")
    check_config_files([BASE, partial])  # a partial overlay and a YAML merge override are fine
    with pytest.raises(ConfigError, match=r"missing\.yaml: config file not found"):
        check_config_files([BASE, tmp_path / "missing.yaml"])
    with pytest.raises(ConfigError, match=r"list\.yaml: expected a mapping at the top level"):
        check_config_files([_write(tmp_path / "list.yaml", "- 1\n")])


def test_max_steps_is_the_schemas_bound_on_every_step_count():
    schema = yaml.safe_load(SCHEMA.read_text())
    found = []

    def walk(node, key=""):
        if isinstance(node, dict):
            if key.endswith("steps") and "maximum" in node:
                found.append(node["maximum"])
            for k, v in node.items():
                walk(v, k)

    walk(schema)
    assert len(found) >= 7 and set(found) == {MAX_STEPS}


def test_the_schema_is_read_from_the_package_and_named_where_it_lies(tmp_path):
    schema = yaml.safe_load(resources.files("metadip.pipeline").joinpath("config.schema.yaml").read_text())
    assert SCHEMA.name == "config.schema.yaml" and yaml.safe_load(SCHEMA.read_text()) == schema
    assert {"seed", "curate", "meta", "evaluate"} <= set(schema["properties"]) and "meta_method" in schema["$defs"]
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "config.schema.yaml" in pyproject["tool"]["setuptools"]["package-data"]["metadip.pipeline"]
    assert (ROOT / "src" / SCHEMA_NAME).is_file()
    with pytest.raises(ConfigError, match=rf"seed: 'x' is not of type 'integer' \(see {SCHEMA_NAME}\)$"):
        load_config(_write(tmp_path / "c.yaml", "seed: x\n"))


def test_a_wheel_built_from_the_source_carries_the_schema(tmp_path):
    """Built from a copy (pip writes build/ and *.egg-info into the tree it builds)."""
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "src", tmp_path / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    pip = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q"]
    subprocess.run([*pip, "-w", str(tmp_path / "out"), str(tmp_path)], check=True, capture_output=True)
    (wheel,) = (tmp_path / "out").glob("metadip-*.whl")
    assert "metadip/pipeline/config.schema.yaml" in zipfile.ZipFile(wheel).namelist()


def test_a_json_config_file_is_read_as_json_with_its_duplicate_keys_refused(tmp_path):
    """Snakemake reads a config file as JSON first: tab-indented JSON (not YAML) is accepted."""
    good, dup = tmp_path / "good.json", tmp_path / "dup.json"
    good.write_text('{\n\t"seed": 1\n}\n')
    dup.write_text('{"seed": 1, "seed": 2}\n')
    check_config_files([good])
    with pytest.raises(ConfigError, match=r"dup\.json: duplicate key 'seed'; keep one$"):
        check_config_files([dup])
