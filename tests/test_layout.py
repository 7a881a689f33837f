"""The library's layout: subpackages are layers that import only from the layers below them, the
library imports from modules (never through a package's lazy exports, so a run's code identity
names every file it uses), no modules import each other in a circle, and each package's exports
resolve."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "metadip"
#: layer of each subpackage; a module may import from its own subpackage and from lower layers
LAYERS = {
    "core": 0,
    "physics": 1,
    "datasets": 1,
    "models": 2,
    "solvers": 3,
    "meta": 4,
    "pipeline": 5,
    "reporting": 6,
}
SUBPACKAGES = sorted(LAYERS)


def metadip_imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("metadip"):
            names.append(node.module)
        elif isinstance(node, ast.Import):
            names += [a.name for a in node.names if a.name.startswith("metadip")]
    return names


def test_subpackages_are_the_layers():
    found = sorted(p.parent.name for p in PACKAGE.glob("*/__init__.py"))
    assert found == SUBPACKAGES


def test_imports_go_down_the_layers_and_name_modules():
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        own = rel.parts[0] if len(rel.parts) > 1 else None
        for name in metadip_imports(path):
            parts = name.split(".")
            if name in {f"metadip.{p}" for p in SUBPACKAGES}:
                problems.append(f"{rel}: imports the package {name}, not one of its modules")
            if len(parts) < 2 or parts[1] not in LAYERS or own is None:
                continue
            if parts[1] != own and LAYERS[parts[1]] >= LAYERS[own]:
                problems.append(f"{rel}: {own} (layer {LAYERS[own]}) imports {name} (layer {LAYERS[parts[1]]})")
    assert not problems, "\n".join(problems)


def test_no_modules_import_each_other_in_a_circle():
    """Imports inside functions count too: a circle is a design knot even when it does not fail."""
    modules = {
        ".".join(("metadip", *p.relative_to(PACKAGE).with_suffix("").parts)): p
        for p in PACKAGE.rglob("*.py")
        if p.name != "__init__.py"
    }
    graph = {m: {n for n in metadip_imports(p) if n in modules} for m, p in modules.items()}
    done: set[str] = set()

    def circle_from(module: str, path: list[str]) -> list[str] | None:
        if module in path:
            return [*path[path.index(module) :], module]
        if module in done:
            return None
        for name in sorted(graph[module]):
            found = circle_from(name, [*path, module])
            if found:
                return found
        done.add(module)
        return None

    circles = [c for m in sorted(graph) if (c := circle_from(m, []))]
    assert not circles, " -> ".join(circles[0])


@pytest.mark.parametrize("name", SUBPACKAGES)
def test_exports_resolve(name):
    package = importlib.import_module(f"metadip.{name}")
    assert package.__all__ and sorted(dir(package)) == package.__all__
    for export in package.__all__:
        assert getattr(package, export).__module__.startswith(f"metadip.{name}."), export
    with pytest.raises(AttributeError, match="no attribute"):
        package.no_such_name  # noqa: B018
