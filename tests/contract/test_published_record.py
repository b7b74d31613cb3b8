"""The archive the backtest reads is the record of what was published, with one writer."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "churn"


def test_only_the_record_module_writes_the_published_lists():
    """The archive the backtest reads is the record of what was published: one writer."""
    writers = set()
    for path in SRC.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                name = getattr(node.func, "attr", getattr(node.func, "id", None))
                if name in ("publish_lists", "_append_event", "_install_folder"):
                    writers.add(path.relative_to(SRC).as_posix())
    assert writers <= {"publish/record.py", "lifecycle.py"}, writers


def test_no_dvc_stage_imports_past_lists_into_the_record():
    """Past lists enter the record only through `churn import-lists` (lifecycle.py), which no
    DVC stage runs: `dvc repro` and `dvc exp run` never write what the backtest reads."""
    callers = set()
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            name = getattr(getattr(node, "func", None), "attr", None) or getattr(
                getattr(node, "func", None), "id", None
            )
            if isinstance(node, ast.Call) and name == "import_lists":
                callers.add(path.relative_to(SRC).as_posix())
    assert callers == {"lifecycle.py"}, callers


WRITES = (
    "write_bytes",
    "write_text",
    "write_json",
    "write_parquet",
    "write_csv",
    "open",
    "to_csv",
    "to_parquet",
    "to_excel",
    "unlink",
    "rename",
    "mkdir",
    "rmtree",
)


def test_the_marketing_page_writes_only_through_the_record():
    """The page records downloads with the record's own function and writes no file itself."""
    callers, writes = set(), set()
    for path in (SRC / "app").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                name = getattr(node.func, "attr", getattr(node.func, "id", None))
                if name == "record_download":
                    callers.add(path.name)
                if name in WRITES:
                    writes.add(f"{path.name}: {name}")
    assert callers == {"server.py"}
    assert writes == set(), writes


def test_scoring_writes_no_archive():
    source = (SRC / "cli.py").read_text()
    score = source[source.index("def score(") : source.index("def drift(")]
    assert "archive" not in score
