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
