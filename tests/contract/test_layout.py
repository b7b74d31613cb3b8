"""The tree keeps its layers apart: tests and benchmarks never import each other (STYLE.md), so a
benchmark or a one-off experiment can change or go without breaking a test, and the reverse."""

from __future__ import annotations

import ast
from pathlib import Path


def _imported_modules(file: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.add(node.module)
    return modules


def _top(module: str) -> str:
    return module.split(".")[0]


def test_tests_import_no_benchmark(project_root):
    for file in sorted((project_root / "tests").rglob("*.py")):
        imported = {m for m in _imported_modules(file) if _top(m) == "benchmarks"}
        assert not imported, (
            f"{file.relative_to(project_root)} imports {sorted(imported)}: a test of an "
            "experiment lives beside it in benchmarks/experiments/"
        )


def test_benchmarks_import_no_test_code(project_root):
    for file in sorted((project_root / "benchmarks").rglob("*.py")):
        imported = {
            m for m in _imported_modules(file) if _top(m) in ("tests", "support", "conftest")
        }
        assert not imported, (
            f"{file.relative_to(project_root)} imports {sorted(imported)}: shared benchmark code "
            "lives in benchmarks/common.py"
        )
