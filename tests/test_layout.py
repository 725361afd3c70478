"""The module layout: no import circle, and no module-level import from a layer above."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).parents[1] / "spacy_distilner"
#: Layers, lowest first: a module may import (at module level) only from its own layer or below.
LAYERS: list[set[str]] = [
    {"errors", "settings", "cache", "cpu", "model_dir", "casing", "allocator"},
    {"tokenize", "windows", "batching", "align", "decode", "annotate", "extensions", "backends", "loading", "embeddings"},
    {"engine", "export.onnx"},
    {"component"},
]


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _top_level_imports(path: Path) -> set[str]:
    """Package modules imported at module level (not inside functions, not under TYPE_CHECKING)."""
    here = _module(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - node.level + 1] if node.level > 1 else package
            target = ".".join([*base, node.module] if node.module else base).strip(".")
            found.add(target)
            if not node.module:
                found.update(".".join([*base, alias.name]).strip(".") for alias in node.names)
    return found


def _layer(module: str) -> int | None:
    for i, layer in enumerate(LAYERS):
        if any(module == m or module.startswith(m + ".") for m in layer):
            return i
    return None


def test_no_module_imports_a_layer_above_it() -> None:
    upward = []
    for path in PACKAGE.rglob("*.py"):
        mine = _layer(_module(path))
        if mine is None:
            continue
        for target in _top_level_imports(path):
            theirs = _layer(target)
            if theirs is None or theirs > mine:
                upward.append(f"{_module(path)} -> {target}")
    assert not upward, upward


def test_no_import_circle() -> None:
    graph = {_module(p): _top_level_imports(p) for p in PACKAGE.rglob("*.py")}
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in graph.get(node, ()):
            if nxt not in graph:
                continue
            assert state.get(nxt) != 1, " -> ".join([*trail, node, nxt])
            if nxt not in state:
                visit(nxt, [*trail, node])
        state[node] = 2

    for module in graph:
        if module not in state:
            visit(module, [])
