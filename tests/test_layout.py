"""The package layout of STYLE.md: imports point one way, and only restore/models imports torch."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("restore", "patches", "hints", "jobs", "catalog")
# Which of our packages each may import (cli may import any).
ALLOWED = {
    "patches": set(),
    "hints": set(),
    "restore": {"patches", "hints"},
    "catalog": {"restore"},  # ingest probes scans with restore.scanio.probe
    "jobs": {"restore", "catalog", "patches", "hints"},
}
HEAVY_ML = {"torch", "timm", "torchvision"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_imports_point_one_way() -> None:
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            ours = _imports(path) & set(PACKAGES)
            own = {package}
            assert ours - own <= ALLOWED[package], f"{path.relative_to(REPO)} imports {sorted(ours - own - ALLOWED[package])}"


def test_only_models_import_torch() -> None:
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            if path.is_relative_to(REPO / "restore" / "models"):
                continue
            assert not (_imports(path) & HEAVY_ML), f"{path.relative_to(REPO)} imports torch/timm"


def test_every_module_says_what_it_is_for() -> None:
    for path in [REPO / "cli.py", *(p for pkg in PACKAGES for p in (REPO / pkg).rglob("*.py"))]:
        assert ast.get_docstring(ast.parse(path.read_text())), f"{path.relative_to(REPO)} has no module docstring"


# Cycles known to the lead and left to their owners, each as the set of modules it runs
# through; a cycle not listed fails, and so does a listed one that is gone (remove it here).
KNOWN_CYCLES: set[frozenset[str]] = set()  # none: keep it that way


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _import_graph() -> dict[str, set[str]]:
    """Each of our modules -> the modules of ours it imports, anywhere in the file: at module
    level and inside functions alike (an import inside a function hides a cycle from Python
    until that function runs; it is one all the same). `from package import module` counts
    as importing the module."""
    paths = [REPO / "cli.py", *(p for package in PACKAGES for p in sorted((REPO / package).rglob("*.py")))]
    modules = {_module_name(path): path for path in paths}

    def ours(dotted: str) -> str | None:
        parts = dotted.split(".")
        while parts and ".".join(parts) not in modules:
            parts.pop()
        return ".".join(parts) or None

    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        targets: list[str] = []
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                targets += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from this module's package, up level - 1
                    base = ".".join([*package[: len(package) - node.level + 1], *([node.module] if node.module else [])])
                targets += [base, *(f"{base}.{alias.name}" for alias in node.names)]
        graph[name] = {target for target in map(ours, targets) if target is not None and target != name}
    return graph


def _cyclic_groups(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """The groups of modules that import each other, directly or not (Tarjan's strongly
    connected components of more than one module)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[frozenset[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for other in sorted(graph[module]):
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            group = {stack.pop()}
            while module not in group:
                group.add(stack.pop())
            if len(group) > 1:
                groups.append(frozenset(group))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return groups


def _cycle_in(group: frozenset[str], graph: dict[str, set[str]]) -> str:
    """The shortest way from the group's first module back to itself, for the message."""
    start = min(group)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        reached = []
        for module in frontier:
            for other in sorted(graph[module] & group):
                if other == start:
                    return " -> ".join([*paths[module], start])
                if other not in paths:
                    paths[other] = [*paths[module], other]
                    reached.append(other)
        frontier = reached
    raise AssertionError(f"{sorted(group)} holds no cycle")


def test_no_import_cycles() -> None:
    graph = _import_graph()
    groups = _cyclic_groups(graph)
    new = [f"{_cycle_in(group, graph)}  (all of: {', '.join(sorted(group))})" for group in groups if group not in KNOWN_CYCLES]
    assert not new, "import cycles:\n" + "\n".join(new)
    gone = KNOWN_CYCLES - set(groups)
    assert not gone, f"no longer cycles, remove them from KNOWN_CYCLES: {[sorted(group) for group in gone]}"
