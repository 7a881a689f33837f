"""Load and validate the project configuration (``config/config.yaml``) against its JSON schema.

The schema (``config.schema.yaml`` beside this module, shipped as package data: :data:`SCHEMA`)
carries the defaults; :func:`load_config` fills them in, so every consumer (stages, Snakemake, DVC
params) reads one fully specified dict.
"""

from __future__ import annotations

import copy
import functools
import json
import math
import os
import re
from collections.abc import Hashable, Iterable
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from metadip.core.errors import InputError
from metadip.meta.ablation import variant_method
from metadip.pipeline.plan import claimed_ids, image_caps, method_ids, pnp_grid_key

#: the JSON schema (draft 2020-12, written as YAML) of the config, with its defaults
SCHEMA = resources.files("metadip.pipeline") / "config.schema.yaml"
#: where error messages send the reader: the schema inside the package (under ``src/`` in a checkout)
SCHEMA_NAME = "metadip/pipeline/config.schema.yaml"

DEFAULT_CONFIG = "config/config.yaml"

#: the most steps of any solve or training run (the schema's maximum of every step count)
MAX_STEPS = 100_000

#: mappings whose entries an overlay config may remove by setting them to ``null``
REMOVABLE = ("curate.datasets", "meta.methods", "evaluate.tasks", "evaluate.methods", "ablation.variants")


class ConfigError(InputError):
    """The configuration file is missing, unreadable or violates the schema."""


class DuplicateKeyError(yaml.constructor.ConstructorError):
    """A YAML mapping names one key twice; ``problem`` says which key, on which lines."""


class StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader that refuses a key given twice in one mapping (at any level), which
    the safe loader would silently resolve to the last value."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # a merge (<<) may be overridden
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, Hashable):
                continue  # the base loader's error
            line = key_node.start_mark.line + 1
            if key in seen:
                raise DuplicateKeyError(
                    None, None, f"duplicate key '{key}' at line {line} (first at line {seen[key]}); keep one"
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def _with_defaults(cls):
    """A validator class that also fills in schema ``default`` values (jsonschema FAQ recipe)."""
    validate_properties = cls.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub and name not in instance:
                    instance[name] = json.loads(json.dumps(sub["default"]))
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(cls, {"properties": set_defaults})


_Validator = _with_defaults(jsonschema.Draft202012Validator)


def validate_config(config: dict[str, Any], source: str = "config") -> dict[str, Any]:
    """Validate ``config`` in place (defaults filled in) and return it; raise :class:`ConfigError`."""
    _raise_first_error(_load_schema(), config, source)
    return config


def validate_definition(instance: dict[str, Any], definition: str, source: str) -> dict[str, Any]:
    """Validate ``instance`` in place against the schema's ``$defs/<definition>`` (defaults filled in)."""
    defs = _load_schema()["$defs"]
    _raise_first_error({"$ref": f"#/$defs/{definition}", "$defs": defs}, instance, source)
    return instance


@functools.cache
def _load_schema() -> dict[str, Any]:
    """The parsed :data:`SCHEMA`, read once per process (validation never modifies it)."""
    return yaml.safe_load(SCHEMA.read_text())


def _non_finite(node: Any, where: tuple[str, ...] = ()) -> tuple[tuple[str, ...], float] | None:
    """(key path, value) of the first NaN or infinite number in ``node`` (mappings and lists
    searched depth first), or None."""
    if isinstance(node, float) and not math.isfinite(node):
        return where, node
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        found = _non_finite(value, (*where, str(key)))
        if found is not None:
            return found
    return None


def _raise_first_error(schema: dict[str, Any], instance: Any, source: str) -> None:
    """Validate (filling defaults); raise :class:`ConfigError` naming the first non-finite number
    or else the first failing key (JSON-schema bounds do not hold NaN back)."""
    found = _non_finite(instance)
    if found is not None:
        raise ConfigError(
            f"{source}: {'/'.join(found[0]) or '(top level)'}: {found[1]} is not a finite number; give one"
        )
    errors = sorted(_Validator(schema).iter_errors(instance), key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        where = "/".join(map(str, e.absolute_path)) or "(top level)"
        raise ConfigError(f"{source}: {where}: {e.message} (see {SCHEMA_NAME})")


def _scalar(text: str, types: set[str]) -> Any:
    """``text`` read as one of the JSON-schema ``types`` (integer, number, boolean, null); unchanged
    when it reads as none of them."""
    low = text.strip().lower()
    if "null" in types and low in ("null", "none", "~"):
        return None
    if "boolean" in types and low in ("true", "false"):
        return low == "true"
    for kind, parse in (("integer", int), ("number", float)):
        if kind in types:
            try:
                return parse(text)
            except ValueError:
                pass
    return text


def _coerce_command_line_strings(config: dict[str, Any], schema: dict[str, Any]) -> None:
    """Snakemake reads a nested ``--config 'evaluate={images: 3}'`` with every leaf a string: turn a
    string where the schema wants a number, boolean or null into that type, in place (repeated while
    a pass changes something: filling a fixed mapping's defaults can reveal further leaves)."""
    changed = True
    while changed:
        changed = False
        for err in list(_Validator(schema).iter_errors(config)):
            if err.validator != "type" or not isinstance(err.instance, str) or not err.absolute_path:
                continue
            types = {err.validator_value} if isinstance(err.validator_value, str) else set(err.validator_value)
            value = _scalar(err.instance, types)
            if value is not err.instance:  # a string becomes a non-string: never fixed twice
                *parents, last = err.absolute_path
                node = config
                for key in parents:
                    node = node[key]
                node[last] = value
                changed = True


def _drop_removed(config: dict[str, Any]) -> None:
    """Delete the entries set to ``null`` in the :data:`REMOVABLE` mappings, in place."""
    for dotted in REMOVABLE:
        node: Any = config
        for part in dotted.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            for key in [k for k, v in node.items() if v is None]:
                del node[key]


def _in_order_of(config: Any, base: Any) -> Any:
    """``config`` with the keys of every mapping in ``base``'s order, keys ``base`` lacks after them."""
    if not isinstance(config, dict) or not isinstance(base, dict):
        return config
    keys = [k for k in base if k in config] + [k for k in config if k not in base]
    return {k: _in_order_of(config[k], base.get(k)) for k in keys}


def workflow_config(config: dict[str, Any], source: str, base: dict[str, Any] | None = None) -> dict[str, Any]:
    """The workflow's config as Snakemake merged it (``config/config.yaml``, then each
    ``--configfile`` overlay, then ``--config`` values), validated: a copy with the entries an overlay
    set to ``null`` removed, command-line strings read as the schema's types, defaults filled in and
    the cross-references checked. Raises :class:`ConfigError` naming the first bad key.

    ``base``: the default config file's content; mappings keep its key order, an overlay's new keys
    after its own (Snakemake builds the merge from the overlays first, so their keys would lead, and
    key order is the order of the tables' rows and columns)."""
    merged = _in_order_of(copy.deepcopy(config), base)
    _drop_removed(merged)
    _coerce_command_line_strings(merged, _load_schema())
    return check_pipeline_config(validate_config(merged, source), source)


def _json_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object's mapping; :class:`ConfigError` for a key given twice."""
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise ConfigError(f"duplicate key '{key}'; keep one")
        seen[key] = value
    return seen


def _read_yaml(path: Path, text: str | None = None) -> dict[str, Any]:
    """The mapping in config file ``path`` (empty file: {}): JSON when it parses as JSON (as
    Snakemake reads a config file), else YAML read with :class:`StrictLoader`; ``text``: the file's
    content when already read."""
    try:
        text = path.read_text() if text is None else text
        try:
            config = json.loads(text, object_pairs_hook=_json_pairs)
        except ConfigError as err:
            raise ConfigError(f"{path}: {err}") from None
        except ValueError:
            config = yaml.load(text, Loader=StrictLoader) or {}
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except DuplicateKeyError as err:
        raise ConfigError(f"{path}: {err.problem}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err})") from None
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return config


def check_config_files(paths: Iterable[str | os.PathLike]) -> None:
    """Read each YAML config file (the default config and every overlay) with the strict loader;
    raise :class:`ConfigError` naming the file and the first duplicate key (with its line), or a
    file that is missing, not YAML or not a mapping. Their merge is validated by
    :func:`workflow_config`."""
    for path in paths:
        _read_yaml(Path(path))


def load_config(path: str | os.PathLike, text: str | None = None) -> dict[str, Any]:
    """Read a YAML config file (duplicate keys refused), validate it and fill in defaults; ``text``:
    its content when the caller has read it already (e.g. to check its hash)."""
    path = Path(path)
    return validate_config(_read_yaml(path, text), source=str(path))


def _dataset_problems(config: dict[str, Any]) -> list[str]:
    """``evaluate.roles`` and ``meta.train_dataset`` name datasets of ``curate.datasets``."""
    datasets, meta = config["curate"]["datasets"], config["meta"]
    problems = [
        f"evaluate.roles.{role}: no dataset '{name}' under curate.datasets"
        for role, name in config["evaluate"]["roles"].items()
        if name not in datasets
    ]
    if meta["methods"] and meta["train_dataset"] not in datasets:
        problems.append(f"meta.train_dataset: no dataset '{meta['train_dataset']}' under curate.datasets")
    return problems


def _method_kind_problems(config: dict[str, Any], name: str) -> list[str]:
    """``evaluate.methods.<name>``: its references and the keys only some kinds of method have."""
    methods = config["evaluate"]["methods"]
    m, problems = methods[name], []
    ref = {"meta": "init", "dip": "network_of"}.get(m["kind"])
    if ref and m.get(ref) not in config["meta"]["methods"]:
        problems.append(f"evaluate.methods.{name}.{ref}: no method '{m.get(ref)}' under meta.methods")
    if m["kind"] in ("denoiser", "pnp") and "denoiser" not in m:
        problems.append(f"evaluate.methods.{name}: kind '{m['kind']}' needs a denoiser (bm3d or drunet)")
    ref = m.get("speed_reference")
    if ref is not None and (m["kind"] != "meta" or methods.get(ref, {}).get("kind") != "dip"):
        problems.append(
            f"evaluate.methods.{name}.speed_reference: needs a meta method and a dip method under evaluate.methods "
            f"(got '{ref}')"
        )
    if m.get("self_ensemble") and (m["kind"], m.get("denoiser")) != ("denoiser", "drunet"):
        problems.append(
            f"evaluate.methods.{name}.self_ensemble: only a denoiser method with denoiser drunet has it; remove it"
        )
    if m.get("random_init") and m["kind"] != "meta":
        problems.append(f"evaluate.methods.{name}.random_init: only a meta method has a meta-init to replace")
    return problems


def _method_count_problems(evaluate: dict[str, Any], name: str) -> list[str]:
    """``evaluate.methods.<name>``: its image count, averaged outputs and reported steps in range."""
    m, problems = evaluate["methods"][name], []
    low = max(evaluate["min_photos"], evaluate["qualitative_images"])
    if "images" in m and not low <= m["images"] <= evaluate["images"]:
        problems.append(
            f"evaluate.methods.{name}.images: {m['images']} lies outside [max(evaluate.min_photos, "
            f"evaluate.qualitative_images), evaluate.images] = [{low}, {evaluate['images']}]; set it in that range or "
            "remove it"
        )
    if "average_last" in m and m["kind"] != "meta":
        problems.append(f"evaluate.methods.{name}.average_last: only a meta method averages its outputs; remove it")
    elif "average_last" in m and m["average_last"] > m["steps"]:
        problems.append(
            f"evaluate.methods.{name}.average_last: {m['average_last']} outputs exceed steps={m['steps']}; "
            "set it to at most steps"
        )
    if m["kind"] == "dip" and any(k > m["steps"] for k in m.get("report_at") or []):
        problems.append(f"evaluate.methods.{name}.report_at: steps beyond steps={m['steps']}")
    return problems


def _pnp_grid_problems(config: dict[str, Any], name: str) -> list[str]:
    """``baselines.pnp.grid`` has a grid for PnP method ``name`` on each CS/PR task of ``evaluate.tasks``."""
    m, grid = config["evaluate"]["methods"][name], config["baselines"]["pnp"]["grid"]
    if m["kind"] != "pnp" or "denoiser" not in m:
        return []
    return [
        f"baselines.pnp.grid: no grid '{key}' for method '{name}' on task '{t}'"
        for t, spec in config["evaluate"]["tasks"].items()
        if spec["kind"] != "denoising" and (key := pnp_grid_key(spec["kind"], m["denoiser"])) not in grid
    ]


def _method_problems(config: dict[str, Any]) -> list[str]:
    """Every method of ``evaluate.methods`` in turn: references, kind-specific keys, counts, PnP grids."""
    return [
        problem
        for name in config["evaluate"]["methods"]
        for problem in (
            *_method_kind_problems(config, name),
            *_method_count_problems(config["evaluate"], name),
            *_pnp_grid_problems(config, name),
        )
    ]


def _claims_problems(config: dict[str, Any]) -> list[str]:
    """With ``claims.enabled``: replicates run on as many images, and every claimed id is evaluated."""
    claims, methods = config["claims"], config["evaluate"]["methods"]
    if not claims["enabled"]:
        return []
    caps, ids = image_caps(methods), method_ids(methods)
    problems = [
        f"claims.replicates.{method}: its replicates run on different numbers of images "
        "(evaluate.methods.<m>.images); give them the same"
        for method, reps in claims["replicates"].items()
        if len({caps.get(i) for i in (method, *reps)}) > 1
    ]
    problems += [
        f"claims.{key}: no method '{name}' among the evaluated ids ({', '.join(sorted(ids))}); "
        "name one or set claims.enabled: false"
        for key, name in claimed_ids(claims)
        if name not in ids
    ]
    return problems


def _ratio_problems(config: dict[str, Any]) -> list[str]:
    """Every CS/PR task setting (evaluation, ablation, transfer) has a ratio m/n."""
    ab = config["ablation"]
    sections = (
        ("evaluate", config["evaluate"]["tasks"]),
        ("ablation", ab["tasks"]),
        ("ablation.transfer", ab["transfer"]["tasks"]),
    )
    return [
        f"{section}.tasks.{t}: kind '{spec['kind']}' needs a ratio m/n"
        for section, tasks in sections
        for t, spec in tasks.items()
        if spec["kind"] != "denoising" and spec.get("ratio") is None
    ]


def _ablation_problems(config: dict[str, Any]) -> list[str]:
    """With ``ablation.enabled``: its method, transfer dataset, DIP and reference exist, and every
    variant is a valid meta method."""
    ab, meta_methods = config["ablation"], config["meta"]["methods"]
    if not ab["enabled"]:
        return []
    problems = []
    if ab["method"] not in meta_methods:
        problems.append(f"ablation.method: no method '{ab['method']}' under meta.methods")
    transfer = ab["transfer"]
    if transfer["dataset"] is not None and transfer["dataset"] not in config["curate"]["datasets"]:
        problems.append(f"ablation.transfer.dataset: no dataset '{transfer['dataset']}' under curate.datasets")
    if transfer["dataset"] is not None and not transfer["tasks"]:
        problems.append("ablation.transfer.tasks: name at least one task setting to score on the transfer dataset")
    if ab["dip"] is not None and config["evaluate"]["methods"].get(ab["dip"], {}).get("kind") != "dip":
        problems.append(
            f"ablation.dip: no method '{ab['dip']}' of kind dip under evaluate.methods; name one, or null for none"
        )
    if ab["reference"] not in ab["variants"]:
        problems.append(f"ablation.reference: no variant '{ab['reference']}' under ablation.variants")
    elif ab["method"] in meta_methods:
        problems += _variant_problems(ab, meta_methods[ab["method"]])
    return problems


def _variant_problems(ab: dict[str, Any], method: dict[str, Any]) -> list[str]:
    """Each ``ablation.variants`` entry applied to the ablated meta ``method`` is a valid meta method."""
    problems = []
    for name, overrides in ab["variants"].items():
        variant = variant_method(method, overrides, ab["outer_steps"], ab["test_steps"])
        try:
            validate_definition(variant, "meta_method", source=f"ablation.variants.{name}")
        except ConfigError as err:
            problems.append(str(err))
    return problems


#: the sections whose entries are named by the user; a name is a path component and a wildcard
NAMED_SECTIONS = (
    ("curate", "datasets"),
    ("meta", "methods"),
    ("evaluate", "tasks"),
    ("evaluate", "methods"),
    ("ablation", "variants"),
)


def _name_problems(config: dict[str, Any]) -> list[str]:
    """Entry names that are not letters, digits, '_' and '-' (a '.' would split the dotted keys the
    steps declare, metadip.pipeline.steps)."""
    out = []
    for section, entries in NAMED_SECTIONS:
        for name in config.get(section, {}).get(entries, {}) or {}:
            if not re.fullmatch(r"[A-Za-z0-9_-]+", str(name)):
                out.append(f"{section}.{entries}: name {name!r} may hold only letters, digits, '_' and '-'; rename it")
    return out


def check_pipeline_config(config: dict[str, Any], source: str = "config") -> dict[str, Any]:
    """Cross-checks of a validated config that the schema cannot express (names that refer to other
    sections); returns ``config`` or raises :class:`ConfigError` naming the first problem and the fix."""
    problems = [
        *_name_problems(config),
        *_dataset_problems(config),
        *_method_problems(config),
        *_claims_problems(config),
        *_ratio_problems(config),
        *_ablation_problems(config),
    ]
    if problems:
        raise ConfigError(
            f"{source}: {problems[0]}" + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else "")
        )
    return config
