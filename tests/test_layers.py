"""The architecture, enforced: layers import only downward, and no two modules import each
other (directly or around a loop), outside ``TYPE_CHECKING`` blocks.

    foundation  runtime/, memory/      (neither imports the other, nor anything above)
    stages      sleep/
    services    bot/*.py
    front ends  bot/cli/, bot/discord/, bot/terminal.py, bot/bench/, bot/__main__.py

    .venv/bin/python -m pytest -q tests/test_layers.py
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("runtime", "memory", "sleep", "bot")
FRONT = ("bot.cli", "bot.discord", "bot.bench", "bot.terminal", "bot.__main__")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer(module: str) -> int:
    if module.startswith(("runtime", "memory")):
        return 0
    if module.startswith("sleep"):
        return 1
    if module.startswith(FRONT):
        return 3
    return 2  # the services: bot/*.py (and the package's empty __init__)


def imports(path: Path) -> set[str]:
    """Project modules ``path`` imports anywhere (functions included), TYPE_CHECKING aside."""
    tree = ast.parse(path.read_text())
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip |= {id(n) for n in ast.walk(node)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        found |= {n for n in names if n.split(".")[0] in PACKAGES}
    return found


def graph() -> dict[str, set[str]]:
    files = [p for pkg in PACKAGES for p in (REPO / pkg).rglob("*.py")]
    modules = {module_name(p): p for p in files}
    edges = {}
    for name, path in modules.items():
        # "from sleep import pipeline" names a module; "from sleep.x import f" names x
        edges[name] = {i for i in imports(path) if i in modules and i != name}
    return edges


def test_layers_import_only_downward() -> None:
    upward = [f"{m} -> {d}" for m, deps in graph().items() for d in deps
              if layer(d) > layer(m)]
    assert upward == []


def test_runtime_and_memory_stay_apart() -> None:
    crossing = [f"{m} -> {d}" for m, deps in graph().items() for d in deps
                if {m.split(".")[0], d.split(".")[0]} == {"runtime", "memory"}]
    assert crossing == []


def test_no_import_cycles() -> None:
    edges = graph()
    cycles = []

    def visit(node: str, path: list[str], on_path: set[str], done: set[str]) -> None:
        for dep in sorted(edges.get(node, ())):
            if dep in on_path:
                cycles.append(" -> ".join(path[path.index(dep):] + [dep]))
            elif dep not in done:
                on_path.add(dep)
                visit(dep, path + [dep], on_path, done)
                on_path.discard(dep)
        done.add(node)

    done: set[str] = set()
    for start in sorted(edges):
        if start not in done:
            visit(start, [start], {start}, done)
    assert cycles == []
