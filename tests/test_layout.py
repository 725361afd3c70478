"""The module layout: no import circle, no import from a layer above (inside functions too), no long class."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).parents[1] / "spacy_distilner"
#: Layers, lowest first: a module may import only from its own layer or below, at module level and inside
#: functions alike (only imports of optional third-party packages may wait for the function that needs them).
#: Modules in no layer (the tools: CLI, server, Ray, training workflows, ONNX export checks, converters, bench)
#: sit above them all.
LAYERS: list[set[str]] = [
    {"errors", "settings", "cache", "cpu", "model_dir", "casing", "allocator"},
    {
        "tokenize", "windows", "batching", "align", "decode", "annotate", "extensions", "backends", "loading",
        "embeddings", "entity_record", "training.loss", "training.lora", "training.heads",
    },
    {"engine"},
    {"component"},
]
#: Lines a class may span.
MAX_CLASS_LINES = 250


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_only(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node of ``tree`` except those under ``if TYPE_CHECKING:``."""
    found, stack = [], [tree]
    while stack:
        node = stack.pop()
        found.append(node)
        stack.extend(child for child in ast.iter_child_nodes(node) if not _type_checking_only(child))
    return found


def _imports(path: Path, source: str | None = None) -> set[str]:
    """Package modules the module at ``path`` (with ``source``, default: its own) imports, wherever the
    import statement is (not under TYPE_CHECKING)."""
    here = _module(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found: set[str] = set()
    for node in _nodes(ast.parse(source if source is not None else path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - node.level + 1] if node.level > 1 else package
            target = ".".join([*base, node.module] if node.module else base).strip(".")
            found.add(target)
            if not node.module:
                found.update(".".join([*base, alias.name]).strip(".") for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == PACKAGE.name:
            found.add(node.module.partition(".")[2])  # type: ignore[union-attr]
        elif isinstance(node, ast.Import):
            found.update(a.name.partition(".")[2] for a in node.names if a.name.split(".")[0] == PACKAGE.name)
    return found - {""}


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
        for target in _imports(path):
            theirs = _layer(target)
            if theirs is None or theirs > mine:
                upward.append(f"{_module(path)} -> {target}")
    assert not upward, upward


def test_no_import_circle() -> None:
    graph = {_module(p): _imports(p) for p in PACKAGE.rglob("*.py")}
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in graph.get(node, ()):
            if nxt not in graph or nxt == node:
                continue
            assert state.get(nxt) != 1, " -> ".join([*trail, node, nxt])
            if nxt not in state:
                visit(nxt, [*trail, node])
        state[node] = 2

    for module in graph:
        if module not in state:
            visit(module, [])


def test_the_layout_check_sees_imports_inside_functions() -> None:
    """An upward import that waits inside a function is seen; one under TYPE_CHECKING is not."""
    late = "def _late() -> None:\n    from .component import DistilNER\n    import spacy_distilner.serve\n"
    typing_only = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..engine import Engine\n"
    assert _imports(PACKAGE / "engine.py", late) == {"component", "serve"}
    assert _imports(PACKAGE / "backends" / "base.py", typing_only) == set()


def test_no_class_is_longer_than_the_limit() -> None:
    long = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and node.end_lineno - node.lineno + 1 > MAX_CLASS_LINES:  # type: ignore[operator]
                long.append(f"{_module(path)}.{node.name}: {node.end_lineno - node.lineno + 1} lines")  # type: ignore[operator]
    assert not long, long
