"""Artifacts (meta-inits, trained denoisers): safetensors weights + a JSON sidecar that is enough
to rebuild the model.

``<stem>.safetensors`` holds the prior's parameters and buffers (latent z, Fourier features) and
the inner-loop step sizes (``log_lr``); ``<stem>.json`` holds the architecture and its
hyper-parameters, the inner-loop settings, the learned step sizes in readable form, the training
config and its hash, the dataset manifest hash, the seed, the git commit, package versions and
the sha256 of the weights file, and the sha256 of what defines the model's behaviour.  Loading
never unpickles, checks the sidecar's structure (:data:`SIDECAR_SCHEMAS`), the weights hash and the
behaviour hash, rebuilds the network from the sidecar alone and refuses any mismatch with a
one-line reason naming the file (and the field) and the fix.

The behaviour hash (``behaviour_sha256``) is the sha256 of the canonical JSON (sorted keys, no
spaces) of the sidecar's behaviour-defining sections: ``architecture``, ``inner`` and
``step_sizes`` of a meta-init, ``architecture`` of a denoiser.  ``behaviour_fields`` holds a short
hash per field (``inner.momentum``, ``architecture.config.latent_scale``, ...) only to name what
was edited; ``training_config_hash`` is checked against ``training_config`` too (the CLI reads
the test-time number of steps from it).  Sidecars of format ``/1`` (written before these hashes
were recorded) are refused: their content cannot be verified; re-run the training or
``dvc pull`` current artifacts.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any, Literal, get_args, get_origin, get_type_hints

import jsonschema
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from metadip.core.atomic import atomic_path, write_text
from metadip.core.errors import InputError
from metadip.core.hashing import config_hash, file_sha256
from metadip.meta.inner_loop import InnerSettings, MetaModel, architecture, build_model
from metadip.models.denoisers import DRUNet, DRUNetConfig
from metadip.models.networks import DIPConfig, SirenConfig

FORMAT = "metadip.meta-init/2"


class ArtifactError(InputError):
    """A meta-init artifact is missing, tampered with, or does not match what was asked for."""


def git_commit() -> str:
    """HEAD of the repository this package lives in ('unknown' outside a git checkout)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            check=False,
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=10,
        )
        return out.stdout.strip() if out.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def package_versions() -> dict[str, str]:
    names = ("metadip", "torch", "numpy", "safetensors")
    versions = {"python": platform.python_version()}
    for n in names:
        try:
            versions[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            versions[n] = "unknown"
    return versions


def _paths(path: str | os.PathLike) -> tuple[Path, Path]:
    p = Path(path)
    stem = p.with_suffix("") if p.suffix in (".safetensors", ".json") else p
    return stem.with_name(stem.name + ".safetensors"), stem.with_name(stem.name + ".json")


def artifact_paths(path: str | os.PathLike) -> tuple[Path, Path]:
    """(weights, sidecar) of an artifact given as its stem, .safetensors or .json."""
    return _paths(path)


DENOISER_FORMAT = "metadip.denoiser/2"

# -- the sidecar's structure (JSON schema) and behaviour hash --------------------------------------


def _type_schema(tp: Any) -> dict[str, Any]:
    """JSON schema of a config field's annotation (bool, int, float, str, Literal, tuple)."""
    simple = {bool: "boolean", int: "integer", float: "number", str: "string"}
    if tp in simple:
        return {"type": simple[tp]}
    origin, args = get_origin(tp), get_args(tp)
    if origin is Literal:
        return {"enum": list(args)}
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return {"type": "array", "items": _type_schema(args[0])}
    if origin is tuple:
        return {
            "type": "array",
            "prefixItems": [_type_schema(a) for a in args],
            "minItems": len(args),
            "maxItems": len(args),
        }
    raise TypeError(f"no JSON schema for the annotation {tp!r}")


def _object(properties: dict[str, Any], optional: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": properties,
        "required": [k for k in properties if k not in optional],
    }


def _dataclass_schema(cls: type, optional: tuple[str, ...] = ()) -> dict[str, Any]:
    """Every field of a config dataclass, of its annotated type, and nothing else (``optional``:
    the fields a record may leave out)."""
    return _object({name: _type_schema(tp) for name, tp in get_type_hints(cls).items()}, optional)


_HEX64 = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
_COMMON = {
    "git_commit": {"type": "string"},
    "versions": {"type": "object", "additionalProperties": {"type": "string"}},
    "weights_file": {"type": "string"},
    "weights_sha256": _HEX64,
    "behaviour_sha256": _HEX64,
    "behaviour_fields": {"type": "object", "additionalProperties": {"type": "string"}},
}

#: the JSON schema of each sidecar format; ``architecture.config`` is checked against
#: :data:`ARCHITECTURE_SCHEMAS` of its ``architecture.kind``
SIDECAR_SCHEMAS: dict[str, dict[str, Any]] = {
    FORMAT: _object(
        {
            "format": {"const": FORMAT},
            "architecture": _object(
                {"kind": {"enum": ["dip", "siren"]}, "config": {"type": "object"}, "seed": {"type": "integer"}}
            ),
            "inner": _dataclass_schema(InnerSettings, optional=("lr_per_element", "lr_noise_exponent")),
            "step_sizes": _object(
                {
                    "param_names": {"type": "array", "items": {"type": "string"}},
                    # α per inner step and parameter tensor; with inner.lr_noise_exponent, α at σ = 25/255
                    "alpha": {"type": "array", "items": {"type": "array", "items": {"type": "number"}}},
                    # γ of inner.lr_noise_exponent: the step sizes at noise level σ are α · (σ / (25/255))^γ
                    "noise_exponent": {"type": "number"},
                },
                optional=("noise_exponent",),
            ),
            "training_config": {"type": "object"},
            "training_config_hash": {"type": "string"},
            "dataset_manifest_sha256": {"type": "string"},
            "seed": {"type": "integer"},
            **_COMMON,
            "training_summary": {"type": "object"},  # meta-training's validation curve (stages/meta_train.py)
            "step_hash": {"type": "string"},  # the workflow step's record (metadip.pipeline.records)
        },
        optional=("training_summary", "step_hash"),
    ),
    DENOISER_FORMAT: _object(
        {
            "format": {"const": DENOISER_FORMAT},
            "architecture": _object({"kind": {"const": "drunet"}, "config": {"type": "object"}}),
            "source": {"type": "string"},
            "training_config": {"type": ["object", "null"]},
            "training_config_hash": {"type": ["string", "null"]},
            "dataset_manifest_sha256": {"type": "string"},
            "seed": {"type": ["integer", "null"]},
            **_COMMON,
            "step_hash": {"type": "string"},
        },
        optional=("step_hash",),
    ),
}
ARCHITECTURE_SCHEMAS = {
    "dip": _dataclass_schema(DIPConfig, optional=("norm",)),  # norm: only when not BatchNorm
    "siren": _dataclass_schema(SirenConfig),
    "drunet": _dataclass_schema(DRUNetConfig),
}
#: the sections of a sidecar that define the model's behaviour (covered by ``behaviour_sha256``)
BEHAVIOUR_SECTIONS = {FORMAT: ("architecture", "inner", "step_sizes"), DENOISER_FORMAT: ("architecture",)}
#: formats written before the behaviour hash, refused (their content cannot be verified)
OLD_FORMATS = {"metadip.meta-init/1": FORMAT, "metadip.denoiser/1": DENOISER_FORMAT}


def canonical_json(value: Any) -> str:
    """Sorted keys, no whitespace, ASCII: the same text for the same content, however it was formatted."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def behaviour_sha256(meta: dict[str, Any], fmt: str = FORMAT) -> str:
    """sha256 of the canonical JSON of the sidecar's :data:`BEHAVIOUR_SECTIONS`."""
    return hashlib.sha256(canonical_json({k: meta[k] for k in BEHAVIOUR_SECTIONS[fmt]}).encode()).hexdigest()


def _leaves(value: Any, name: str) -> dict[str, Any]:
    if isinstance(value, dict) and value:
        return {k: v for key, sub in value.items() for k, v in _leaves(sub, f"{name}.{key}").items()}
    return {name: value}


def behaviour_fields(meta: dict[str, Any], fmt: str = FORMAT) -> dict[str, str]:
    """A short hash per behaviour-defining field (``inner.momentum``, ...): names what was edited."""
    leaves = {k: v for section in BEHAVIOUR_SECTIONS[fmt] for k, v in _leaves(meta[section], section).items()}
    return {k: hashlib.sha256(canonical_json(v).encode()).hexdigest()[:16] for k, v in sorted(leaves.items())}


def _training_config_hash(training_config: Any, fmt: str) -> str | None:
    if fmt == DENOISER_FORMAT and not training_config:
        return None
    return config_hash(training_config)


def _json_type(value: Any) -> str:
    return {
        dict: "an object",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def _field(path: list[Any]) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _describe(err: jsonschema.ValidationError, prefix: list[str]) -> str:
    """One phrase naming the field of a schema violation."""
    path = [*prefix, *err.absolute_path]
    field = _field(path) or "the top level"
    if err.validator == "additionalProperties":
        extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
        return "unexpected field " + ", ".join(repr(_field([*path, k])) for k in extra)
    if err.validator == "required":
        missing = [k for k in err.validator_value if k not in err.instance]
        return "missing field " + ", ".join(repr(_field([*path, k])) for k in missing)
    if err.validator == "type":
        want = err.validator_value if isinstance(err.validator_value, list) else [err.validator_value]
        return f"field {field!r} is {_json_type(err.instance)}, expected {' or '.join(want)}"
    if err.validator in ("enum", "const"):
        allowed = err.validator_value if err.validator == "enum" else [err.validator_value]
        return f"field {field!r} is {json.dumps(err.instance)[:60]}, expected {' or '.join(map(json.dumps, allowed))}"
    if err.validator == "pattern":
        return f"field {field!r} is not a sha256 (64 lowercase hex digits)"
    return f"field {field!r}: {err.message[:150]}"


def _check_structure(sidecar: Path, meta: Any, fmt: str, what: str, hint: str) -> None:
    """Refuse (one line naming the file and the field) a sidecar that does not match the schema of ``fmt``."""
    if not isinstance(meta, dict):
        raise ArtifactError(
            f"{sidecar}: malformed {what} sidecar: the top level is {_json_type(meta)}, expected an object; "
            f"restore the file ({hint})"
        )
    got = meta.get("format")
    if OLD_FORMATS.get(got) == fmt:
        raise ArtifactError(
            f"{sidecar}: format {got} predates the behaviour hash that {fmt} records and checks, so its content "
            f"cannot be verified; {hint} to get a current one"
        )
    if got != fmt:
        raise ArtifactError(f"{sidecar}: not a {fmt} sidecar (format {json.dumps(got)[:60]})")
    err = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(SIDECAR_SCHEMAS[fmt]).iter_errors(meta))
    prefix: list[str] = []
    if err is None:
        config_schema = ARCHITECTURE_SCHEMAS[meta["architecture"]["kind"]]
        err = jsonschema.exceptions.best_match(
            jsonschema.Draft202012Validator(config_schema).iter_errors(meta["architecture"]["config"])
        )
        prefix = ["architecture", "config"]
    if err is not None:
        raise ArtifactError(f"{sidecar}: malformed {what} sidecar: {_describe(err, prefix)}; restore the file ({hint})")


def _check_behaviour(sidecar: Path, meta: dict[str, Any], fmt: str, what: str, hint: str) -> None:
    """Refuse a sidecar whose behaviour-defining content or training config differs from what was saved."""
    changed = []
    if behaviour_sha256(meta, fmt) != meta["behaviour_sha256"]:
        now, saved = behaviour_fields(meta, fmt), meta["behaviour_fields"]
        changed = sorted(k for k in now.keys() | saved.keys() if now.get(k) != saved.get(k)) or list(
            BEHAVIOUR_SECTIONS[fmt]
        )
    if _training_config_hash(meta["training_config"], fmt) != meta["training_config_hash"]:
        changed.append("training_config")
    if changed:
        names = ", ".join(changed[:6]) + (f" (+{len(changed) - 6} more)" if len(changed) > 6 else "")
        raise ArtifactError(
            f"{sidecar}: {names} changed since the {what} was saved (the sidecar's hashes do not match); "
            f"restore the original file ({hint})"
        )


def _sidecar_content(meta: dict[str, Any], fmt: str, what: str) -> dict[str, Any]:
    """``meta`` with its behaviour hashes, checked against the schema (a bug surfaces at save, not at load)."""
    meta = json.loads(json.dumps(meta))  # the content as it will be read back (tuples -> lists)
    meta.update(behaviour_sha256=behaviour_sha256(meta, fmt), behaviour_fields=behaviour_fields(meta, fmt))
    _check_structure(Path(f"<{what} sidecar>"), meta, fmt, what, "this is a bug in the code that saves it")
    return meta


# -- meta-inits -------------------------------------------------------------------------------------


def save_meta_init(
    model: MetaModel,
    path: str | os.PathLike,
    *,
    training_config: dict[str, Any],
    dataset_manifest_sha256: str,
    seed: int,
    extra: dict[str, Any] | None = None,
) -> tuple[Path, Path]:
    """Write ``<stem>.safetensors`` and ``<stem>.json`` atomically; returns both paths.

    ``extra``: more top-level sidecar entries, among the optional ones of the schema (``training_summary``)."""
    weights, sidecar = _paths(path)
    allowed = set(SIDECAR_SCHEMAS[FORMAT]["properties"]) - set(SIDECAR_SCHEMAS[FORMAT]["required"])
    if set(extra or {}) - allowed:
        raise ValueError(
            f"extra sidecar entries {sorted(set(extra or {}) - allowed)} are not in the schema (allowed: "
            f"{sorted(allowed)})"
        )
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    alphas = model.step_sizes().detach().cpu()
    step_sizes = {"param_names": model.param_names, "alpha": alphas.tolist()}
    if model.inner.lr_noise_exponent:
        step_sizes["noise_exponent"] = model.lr_noise_exponent.item()
    meta = {
        "format": FORMAT,
        "architecture": architecture(model),
        "inner": model.inner.to_dict(),
        "step_sizes": step_sizes,
        "training_config": training_config,
        "training_config_hash": config_hash(training_config),
        "dataset_manifest_sha256": dataset_manifest_sha256,
        "seed": seed,
        "git_commit": git_commit(),
        "versions": package_versions(),
        "weights_file": weights.name,
        "weights_sha256": "0" * 64,  # set below, once the weights are written
        **(extra or {}),
    }
    meta = _sidecar_content(meta, FORMAT, "meta-init")
    with atomic_path(weights) as tmp:
        save_file(state, str(tmp), metadata={"format": FORMAT})
    meta["weights_sha256"] = file_sha256(weights)
    write_text(sidecar, json.dumps(meta, indent=2) + "\n")
    return weights, sidecar


_META_INIT_HINT = "`dvc pull` the meta-init, re-download it, or re-run meta-training"
_DENOISER_HINT = "`dvc pull` the denoiser or re-run stages/train_denoiser.py"


def read_sidecar(
    path: str | os.PathLike, fmt: str = FORMAT, what: str = "meta-init", hint: str = _META_INIT_HINT
) -> dict[str, Any]:
    """The JSON sidecar of an artifact (``path``: stem, .safetensors or .json), checked for its format
    and structure (:data:`SIDECAR_SCHEMAS`); not yet for its hashes (:func:`load_meta_init` does)."""
    _, sidecar = _paths(path)
    if not sidecar.is_file():
        raise ArtifactError(f"{sidecar}: {what} sidecar not found ({hint})")
    try:
        meta = json.loads(sidecar.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ArtifactError(f"{sidecar}: not valid JSON ({err}); restore the file ({hint})") from None
    except OSError as err:
        raise ArtifactError(f"{sidecar}: cannot be read ({err.strerror})") from None
    _check_structure(sidecar, meta, fmt, what, hint)
    return meta


def _verified(path: str | os.PathLike, fmt: str, what: str, hint: str) -> tuple[Path, Path, dict[str, Any]]:
    """(weights, sidecar, sidecar content) once the sidecar is well-formed and unedited and the weights'
    sha256 matches it."""
    weights, sidecar = _paths(path)
    meta = read_sidecar(sidecar, fmt, what, hint)
    if not weights.is_file():
        raise ArtifactError(f"{weights}: {what} weights not found ({hint})")
    if file_sha256(weights) != meta["weights_sha256"]:
        raise ArtifactError(
            f"{weights}: sha256 does not match {sidecar.name}; the file was modified or belongs to another "
            f"{what} ({hint})"
        )
    _check_behaviour(sidecar, meta, fmt, what, hint)
    return weights, sidecar, meta


def _load_weights(weights: Path, what: str, hint: str) -> dict[str, Any]:
    try:
        return load_file(str(weights))
    except (SafetensorError, OSError) as err:
        raise ArtifactError(
            f"{weights}: not a readable safetensors file, truncated or corrupt ({str(err).splitlines()[0][:120]}); "
            f"restore it ({hint})"
        ) from None


def load_meta_init(
    path: str | os.PathLike,
    expect_architecture: dict[str, Any] | None = None,
    expect_training_config_hash: str | None = None,
    expect_dataset_manifest_sha256: str | None = None,
) -> MetaModel:
    """Load a meta-init saved by :func:`save_meta_init` (``path``: the stem, .safetensors or .json).

    Refuses (:class:`ArtifactError`) a missing file, a malformed sidecar, weights whose sha256
    differs from the sidecar's, a sidecar whose behaviour-defining content or training config was
    edited since it was saved, unreadable weights, weights that do not fit the sidecar's
    architecture, and an architecture, training config hash or dataset manifest hash other than
    the expected ones.
    """
    weights, sidecar, meta = _verified(path, FORMAT, "meta-init", _META_INIT_HINT)
    if expect_architecture is not None and meta["architecture"] != expect_architecture:
        raise ArtifactError(
            f"{sidecar}: architecture {meta['architecture']} differs from the expected {expect_architecture}"
        )
    if expect_training_config_hash is not None and meta.get("training_config_hash") != expect_training_config_hash:
        raise ArtifactError(
            f"{sidecar}: trained with config hash {meta.get('training_config_hash')}, "
            f"expected {expect_training_config_hash}; retrain or point to the matching meta-init"
        )
    if (
        expect_dataset_manifest_sha256 is not None
        and meta.get("dataset_manifest_sha256") != expect_dataset_manifest_sha256
    ):
        raise ArtifactError(
            f"{sidecar}: trained on a dataset with manifest sha256 {meta.get('dataset_manifest_sha256')}, "
            f"expected {expect_dataset_manifest_sha256}; retrain on this dataset or point to the matching meta-init"
        )
    try:
        model = build_model(meta["architecture"], meta["inner"])
    except (ValueError, TypeError, KeyError) as err:
        raise ArtifactError(
            f"{sidecar}: cannot build the model it describes ({err}); restore the file ({_META_INIT_HINT})"
        ) from None
    state = _load_weights(weights, "meta-init", _META_INIT_HINT)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        first = str(err).splitlines()[1].strip() if len(str(err).splitlines()) > 1 else str(err)
        raise ArtifactError(f"{weights}: weights do not fit the architecture in {sidecar.name} ({first})") from None
    return model


# -- denoisers --------------------------------------------------------------------------------------


def save_denoiser(
    net: DRUNet,
    path: str | os.PathLike,
    *,
    source: str,
    training_config: dict[str, Any] | None = None,
    dataset_manifest_sha256: str = "",
    seed: int | None = None,
    step_hash: str | None = None,
) -> tuple[Path, Path]:
    """Write a DRUNet as ``<stem>.safetensors`` + ``<stem>.json`` (``source``: "trained" or the official
    file; ``step_hash``: the workflow step's record, :mod:`metadip.pipeline.records`)."""
    weights, sidecar = _paths(path)
    meta = {
        "format": DENOISER_FORMAT,
        "architecture": {"kind": "drunet", "config": net.config.to_dict()},
        "source": source,
        "training_config": training_config,
        "training_config_hash": _training_config_hash(training_config, DENOISER_FORMAT),
        "dataset_manifest_sha256": dataset_manifest_sha256,
        "seed": seed,
        "git_commit": git_commit(),
        "versions": package_versions(),
        "weights_file": weights.name,
        "weights_sha256": "0" * 64,
        **({"step_hash": step_hash} if step_hash is not None else {}),
    }
    meta = _sidecar_content(meta, DENOISER_FORMAT, "denoiser")
    with atomic_path(weights) as tmp:
        save_file(
            {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()},
            str(tmp),
            metadata={"format": DENOISER_FORMAT},
        )
    meta["weights_sha256"] = file_sha256(weights)
    write_text(sidecar, json.dumps(meta, indent=2) + "\n")
    return weights, sidecar


def load_denoiser(path: str | os.PathLike, channels: int | None = None) -> DRUNet:
    """Load a DRUNet saved by :func:`save_denoiser`; checks the sidecar, the hashes and the channel count."""
    weights, sidecar, meta = _verified(path, DENOISER_FORMAT, "denoiser", _DENOISER_HINT)
    try:
        net = DRUNet(DRUNetConfig.from_dict(meta["architecture"]["config"]))
    except (ValueError, TypeError, KeyError) as err:
        raise ArtifactError(
            f"{sidecar}: cannot build the DRUNet it describes ({err}); restore the file ({_DENOISER_HINT})"
        ) from None
    if channels is not None and net.config.channels != channels:
        raise ArtifactError(
            f"{weights}: a {net.config.channels}-channel DRUNet, but {channels}-channel images are to be denoised"
        )
    state = _load_weights(weights, "denoiser", _DENOISER_HINT)
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise ArtifactError(
            f"{weights}: weights do not fit the architecture in {sidecar.name} ({str(err).splitlines()[-1].strip()})"
        ) from None
    return net.eval()
