"""The layout holds: no import circle between the project's modules, and the API floor imports no
plug-in package (tasks, systems, recipes live above it; harness/plugins.py names them as strings)."""
from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO_ROOT

PACKAGES = ("harness", "tasks", "baselines", "models", "training", "leaderboards")
PLUGIN_PACKAGES = ("tasks", "baselines", "models", "training", "leaderboards")
FLOOR = ("harness.errors", "harness.records", "harness.registry", "harness.task", "harness.system",
         "harness.plugins", "harness.jsonio", "harness.cachedir")
"""The API every plug-in imports; none of these may import a plug-in package."""


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    return {module_name(p): p for package in PACKAGES for p in (REPO_ROOT / package).rglob("*.py")}


def imports_of(path: Path, modules: dict[str, Path]) -> set[str]:
    """Every project module ``path`` imports, at any depth of the file (function-level and
    ``TYPE_CHECKING`` imports too: two rooms that name each other lean on each other)."""
    found: set[str] = set()
    this = module_name(path)
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = this.split(".")[: len(this.split(".")) - node.level + (path.name == "__init__.py")]
                base = ".".join(package + ([base] if base else []))
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != this:
                found.add(name)
    return found


def graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {name: imports_of(path, modules) for name, path in modules.items()}


def test_no_import_circle() -> None:
    edges = graph()
    # A package importing its own submodules (re-exports in __init__) is not a circle between rooms.
    edges = {m: {d for d in deps if not d.startswith(m + ".")} for m, deps in edges.items()}
    state: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(edges.get(node, ())):
            if state.get(dep) == 1:
                circles.append(stack[stack.index(dep):] + [dep])
            elif dep not in state:
                visit(dep)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
    assert not circles, "import circles:\n" + "\n".join(" -> ".join(c) for c in circles)


def test_floor_imports_no_plugin_package() -> None:
    edges = graph()
    bad = {m: sorted(d for d in deps if d.split(".")[0] in PLUGIN_PACKAGES)
           for m, deps in edges.items() if m in FLOOR}
    assert not {m: d for m, d in bad.items() if d}, bad


def test_floor_modules_exist() -> None:
    assert set(FLOOR) <= set(project_modules())


def test_the_walker_sees_a_circle(tmp_path: Path) -> None:
    """The check can fail: two modules that import each other are found."""
    a = REPO_ROOT / "harness" / "_layout_probe_a.py"
    b = REPO_ROOT / "harness" / "_layout_probe_b.py"
    try:
        a.write_text("from harness import _layout_probe_b\n")
        b.write_text("def f():\n    from harness._layout_probe_a import x\n")
        edges = graph()
        assert "harness._layout_probe_b" in edges["harness._layout_probe_a"]
        assert "harness._layout_probe_a" in edges["harness._layout_probe_b"]
    finally:
        a.unlink(missing_ok=True)
        b.unlink(missing_ok=True)
