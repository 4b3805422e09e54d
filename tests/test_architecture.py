"""The shape of the code, checked from its imports: no import cycles, and the domain never imports handlers.

Every `import` and `from … import` in bot/, handlers/ and models/ counts, wherever it stands (inside
functions and `if TYPE_CHECKING:` blocks too): a cycle hidden in a function is still a cycle to a reader.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bot", "handlers", "models")
# The composition root: the only modules of bot/ that wire handlers in.
COMPOSITION_ROOT = {"bot.app", "bot.server", "bot.cli"}  # and the demo package (bot.demo.*)


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    files = {module_name(path): path for package in PACKAGES for path in (ROOT / package).rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in files}
    for name, path in files.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = name.split(".") if is_package else name.split(".")[:-1]
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join([*anchor, base] if base else anchor)
                targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
            for target in targets:
                # `from bot.crisis import timeline` names a module; `from bot.crisis.plan import Plan` does not.
                while target and target not in files:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
                    # Importing a module runs its packages' __init__ first: from another package, that is
                    # an import of the package too (bot.publishing → bot.exports.sections runs bot/exports).
                    own = name if is_package else name.rpartition(".")[0]
                    parent = target.rpartition(".")[0]
                    while parent and parent in files and not (own == parent or own.startswith(parent + ".")):
                        graph[name].add(parent)
                        parent = parent.rpartition(".")[0]
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_checker_sees_a_cycle_through_a_package_init(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """a.x imports b.y: that runs b/__init__, which imports b.z, which imports a.x — a cycle at import time."""
    for path, text in {"a/__init__.py": "", "a/x.py": "from b.y import Y\n", "b/__init__.py": "from b import z\n",
                       "b/y.py": "Y = 1\n", "b/z.py": "from a.x import X\n"}.items():
        (tmp_path / path).parent.mkdir(exist_ok=True)
        (tmp_path / path).write_text(text)
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    monkeypatch.setattr(sys.modules[__name__], "PACKAGES", ("a", "b"))
    assert cycles(import_graph()) == [["a.x", "b", "b.z"]]


def test_the_checker_sees_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles() -> None:
    assert cycles(import_graph()) == []


def test_the_domain_never_imports_handlers() -> None:
    graph = import_graph()
    offenders = {
        name: sorted(t for t in targets if t == "handlers" or t.startswith("handlers."))
        for name, targets in graph.items()
        if name.startswith("bot") and name not in COMPOSITION_ROOT and not name.startswith("bot.demo")
    }
    assert {name: targets for name, targets in offenders.items() if targets} == {}


def test_models_import_neither_slack_nor_handlers() -> None:
    graph = import_graph()
    for name, targets in graph.items():
        if name.startswith("models"):
            assert not any(t.startswith(("handlers", "bot.flows", "bot.demo")) for t in targets), name
