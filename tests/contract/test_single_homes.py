"""One home for each shared idea: opening DuckDB, the metrics that need scikit-learn, durable file
replacement, opening a Parquet file for streaming and the label-window overlap rule each live in
one module, and nothing else in
src/churn writes its own copy (found by reading the source's syntax trees)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "churn"

# idea -> the modules allowed to hold it (paths under src/churn)
HOMES = {
    "duckdb.connect": {"engine.py"},
    "sklearn.metrics": {"metrics.py"},
    "os.replace / os.rename / fsync": {"files.py", "publish/record.py"},
    "label-window overlap": {"cutoffs.py"},
    "pyarrow.parquet.ParquetFile": {"files.py"},
}


def _modules() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(SRC.rglob("*.py")):
        yield path.relative_to(SRC).as_posix(), ast.parse(path.read_text(), str(path))


def _module_aliases(tree: ast.Module, module: str) -> set[str]:
    """Return the names `module` is bound to by `import module [as name]` anywhere in the tree."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.asname or a.name for a in node.names if a.name == module)
    return names


def _imported_from(tree: ast.Module, module: str, wanted: set[str]) -> list[int]:
    """Return the lines of `from module import <one of wanted>`."""
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        and node.module == module
        and any(a.name in wanted for a in node.names)
    ]


def _attribute_uses(tree: ast.Module, modules: set[str], attributes: set[str]) -> list[int]:
    """Return the lines where `<module alias>.<attribute>` is used."""
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr in attributes
        and isinstance(node.value, ast.Name)
        and node.value.id in modules
    ]


def duckdb_connects(tree: ast.Module) -> list[int]:
    """Lines that open a DuckDB connection directly."""
    aliases = _module_aliases(tree, "duckdb")
    return _attribute_uses(tree, aliases, {"connect"}) + _imported_from(tree, "duckdb", {"connect"})


def _is_sklearn_metrics(module: str) -> bool:
    return module == "sklearn.metrics" or module.startswith("sklearn.metrics.")


def sklearn_metrics_imports(tree: ast.Module) -> list[int]:
    """Lines that import scikit-learn's metrics (module or names from it)."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found = any(_is_sklearn_metrics(a.name) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            found = _is_sklearn_metrics(module) or (
                module == "sklearn" and any(a.name == "metrics" for a in node.names)
            )
        else:
            found = False
        if found:
            lines.append(node.lineno)
    return lines


DURABLE = {"replace", "rename", "fsync", "fdatasync"}


def durable_replacements(tree: ast.Module) -> list[int]:
    """Lines that replace or rename a file with os, or flush one to disk, directly."""
    aliases = _module_aliases(tree, "os")
    return _attribute_uses(tree, aliases, DURABLE) + _imported_from(tree, "os", DURABLE)


def _has_addition(node: ast.AST) -> bool:
    return any(
        isinstance(part, ast.BinOp) and isinstance(part.op, ast.Add) for part in ast.walk(node)
    )


def _shifted_comparison(node: ast.AST) -> bool:
    """A single order comparison with an addition on one side, like `start < other + horizon`."""
    return (
        isinstance(node, ast.Compare)
        and len(node.ops) == 1
        and isinstance(node.ops[0], (ast.Lt, ast.LtE, ast.Gt, ast.GtE))
        and (_has_addition(node.left) or _has_addition(node.comparators[0]))
    )


def window_overlaps(tree: ast.Module) -> list[int]:
    """Lines that test two intervals for overlap inline: two order comparisons, each against a
    start plus a length, joined by `and` or `&` (`a < b + h and b < a + h`)."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.And):
            parts = node.values
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitAnd):
            parts = [node.left, node.right]
        else:
            continue
        if sum(_shifted_comparison(part) for part in parts) >= 2:
            lines.append(node.lineno)
    return lines


def parquet_file_opens(tree: ast.Module) -> list[int]:
    """Lines that call pyarrow's ParquetFile directly (a type annotation is not a call): its
    default read-ahead keeps every row group a batch iterator read (files.open_parquet_file)."""
    aliases = _module_aliases(tree, "pyarrow.parquet")
    names = {
        a.asname or a.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == "pyarrow.parquet"
        for a in node.names
        if a.name == "ParquetFile"
    }
    lines = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if (
            isinstance(func, ast.Attribute)
            and func.attr == "ParquetFile"
            and isinstance(func.value, ast.Name)
            and func.value.id in aliases
        ) or (isinstance(func, ast.Name) and func.id in names):
            lines.append(node.lineno)
    return lines


FINDERS = {
    "duckdb.connect": duckdb_connects,
    "sklearn.metrics": sklearn_metrics_imports,
    "os.replace / os.rename / fsync": durable_replacements,
    "label-window overlap": window_overlaps,
    "pyarrow.parquet.ParquetFile": parquet_file_opens,
}


def copies_outside_homes() -> dict[str, list[str]]:
    """Return idea -> 'module:line' for every copy outside the idea's home."""
    found: dict[str, list[str]] = {idea: [] for idea in FINDERS}
    for name, tree in _modules():
        for idea, finder in FINDERS.items():
            if name in HOMES[idea]:
                continue
            found[idea] += [f"{name}:{line}" for line in finder(tree)]
    return found


def test_each_shared_idea_lives_only_in_its_home_module():
    """DuckDB opens in engine.py, scikit-learn's metrics are read in metrics.py, durable file
    replacement is files.py's (and the published record's folder swap), and the label-window
    overlap rule (the leakage guard) is cutoffs.py's: a copy elsewhere drifts from the home."""
    copies = copies_outside_homes()
    assert copies == {idea: [] for idea in FINDERS}, (
        "shared ideas written outside their home module (use the home's function instead): "
        + "; ".join(f"{idea} in {', '.join(where)}" for idea, where in copies.items() if where)
    )


def test_each_home_still_holds_its_idea():
    """The finders still recognise the idea where it lives, so an empty result above means no
    copy, not a finder that stopped matching."""
    trees = dict(_modules())
    assert duckdb_connects(trees["engine.py"])
    assert sklearn_metrics_imports(trees["metrics.py"])
    assert durable_replacements(trees["files.py"])
    assert durable_replacements(trees["publish/record.py"])
    assert parquet_file_opens(trees["files.py"])


CAUGHT = {
    "duckdb.connect": "import duckdb as db\ncon = db.connect()\n",
    "sklearn.metrics": "from sklearn import metrics\n",
    "os.replace / os.rename / fsync": "import os\nos.replace('a', 'b')\n",
    "label-window overlap": (
        "overlap = (lists < cutoff + horizon) & (lists + list_horizon > cutoff)\n"
        "again = start_a < start_b + h and start_b < start_a + h\n"
    ),
    "pyarrow.parquet.ParquetFile": (
        "import pyarrow.parquet as pq\nsource = pq.ParquetFile(path)\n"
        "from pyarrow.parquet import ParquetFile as PF\nagain = PF(path)\n"
    ),
}


def test_the_finders_catch_a_copy_written_the_usual_ways():
    """A copy written in the usual ways is found (the train.py overlap copy this test replaced)."""
    for idea, source in CAUGHT.items():
        assert FINDERS[idea](ast.parse(source)), idea
    inside_a_window = "inside = (day > cutoff) & (day <= cutoff + horizon)\n"
    assert not window_overlaps(ast.parse(inside_a_window))
    annotation = "import pyarrow.parquet as pq\ndef f(source: pq.ParquetFile) -> None: ...\n"
    assert not parquet_file_opens(ast.parse(annotation))
