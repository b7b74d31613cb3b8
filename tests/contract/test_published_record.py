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


def test_scoring_writes_no_archive():
    source = (SRC / "cli.py").read_text()
    score = source[source.index("def score(") : source.index("def drift(")]
    assert "archive" not in score
