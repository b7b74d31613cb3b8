"""cli.py stays thin: each command is its options, its help and one call into its stage's home
(churn.<stage>, or churn.<stage>.stage in a package), which reads, decides and writes. A command
that grows a file read, a frame or a decision of its own fails here (found in the syntax tree)."""

from __future__ import annotations

import ast
from pathlib import Path

from churn.cli import STAGE_PARAMS

CLI = Path(__file__).resolve().parents[2] / "src" / "churn" / "cli.py"

# Statements a command may hold besides its docstring and imports: the call (and at most one
# assignment feeding it, such as the params sections it passes on).
MAX_STATEMENTS = 2
# Where a stage's wiring lives when its home is not churn.<stage>
HOMES = {"check": "churn.config", "sources": "churn.ingest"}
# Reading or writing files, or working on frames: the stage's business, not the command's
FILE_WORK = {
    "open", "read_text", "write_text", "read_bytes", "write_bytes", "read_parquet", "to_parquet",
    "read_csv", "to_csv", "read_json", "write_json", "write_csv", "write_parquet", "loads",
    "dumps", "unlink", "rmtree", "mkdir", "iterdir", "is_file", "exists", "TableStream",
}  # fmt: skip
FRAME_AND_FILE_MODULES = {"pandas", "numpy", "pyarrow", "duckdb", "json", "tempfile", "shutil",
                          "os", "churn.files"}  # fmt: skip


def _functions(tree: ast.Module) -> list[ast.FunctionDef]:
    return [node for node in tree.body if isinstance(node, ast.FunctionDef)]


def _is_command(function: ast.FunctionDef) -> bool:
    return any(
        isinstance(d, ast.Call) and isinstance(d.func, ast.Attribute) and d.func.attr in (
            "command", "callback"
        )
        for d in function.decorator_list
    )  # fmt: skip


def _command_name(function: ast.FunctionDef) -> str:
    for decorator in function.decorator_list:
        if isinstance(decorator, ast.Call) and decorator.args:
            first = decorator.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                return first.value
    return function.name


def _body(function: ast.FunctionDef) -> list[ast.stmt]:
    """The statements that do the work: no docstring, no imports."""
    body = function.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    return [s for s in body if not isinstance(s, (ast.Import, ast.ImportFrom))]


def _imported(node: ast.AST) -> set[str]:
    found = set()
    for part in ast.walk(node):
        if isinstance(part, ast.Import):
            found.update(alias.name for alias in part.names)
        elif isinstance(part, ast.ImportFrom) and part.module:
            found.add(part.module)
    return found


def _called(node: ast.AST) -> set[str]:
    names = set()
    for part in ast.walk(node):
        if isinstance(part, ast.Call):
            func = part.func
            names.add(func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", ""))
    return names


def violations(source: str) -> list[str]:
    """Return how the commands in `source` (cli.py's text) are not thin."""
    tree = ast.parse(source)
    found = []
    stages = set(STAGE_PARAMS) | {"check"}
    for function in _functions(tree):
        where = f"cli.py:{function.lineno} {function.name}"
        if _is_command(function):
            statements = _body(function)
            if len(statements) > MAX_STATEMENTS:
                found.append(
                    f"{where}: {len(statements)} statements (at most {MAX_STATEMENTS}: call the "
                    "stage's run)"
                )
            name = _command_name(function)
            if name in stages:
                home = HOMES.get(name, f"churn.{name}")
                homes = {m for m in _imported(function) if m == home or m.startswith(home + ".")}
                if not homes:
                    found.append(f"{where}: the `{name}` stage command calls nothing in {home}")
        work = _called(function) & FILE_WORK
        if work:
            found.append(f"{where}: reads or writes files itself ({', '.join(sorted(work))})")
        modules = {
            m
            for m in _imported(function)
            if m in FRAME_AND_FILE_MODULES or m.split(".")[0] in FRAME_AND_FILE_MODULES - {"churn"}
        }
        if modules:
            found.append(f"{where}: imports {', '.join(sorted(modules))}")
    module_level = {
        m
        for node in tree.body
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for m in _imported(node)
        if m in FRAME_AND_FILE_MODULES or m.split(".")[0] in FRAME_AND_FILE_MODULES - {"churn"}
    }
    if module_level:
        found.append(f"cli.py imports {', '.join(sorted(module_level))} at module level")
    return found


def test_every_command_is_one_call_into_its_stage():
    found = violations(CLI.read_text(encoding="utf-8"))
    assert not found, "cli.py is not thin:\n" + "\n".join(found)


FAT_COMMAND = '''
import json
from pathlib import Path

@app.command()
def drift(report: Path, params: Path) -> None:
    """PSI."""
    import pandas as pd
    from churn.files import write_json

    settings = _stage_params("drift", params)
    rows = pd.read_parquet("x.parquet")
    result = {"rows": len(rows)}
    write_json(result, report)


@app.command()
def train(params: Path) -> None:
    """Fit."""
    from churn.evaluate.stage import run

    run(params)
'''


def test_the_check_finds_a_command_doing_its_stages_work():
    """The checks themselves can fail: the shape of the commands before issue 11."""
    found = "\n".join(violations(FAT_COMMAND))
    assert "drift: 4 statements" in found
    assert "drift: reads or writes files itself (read_parquet, write_json)" in found
    assert "drift: imports churn.files, pandas" in found
    assert "train: the `train` stage command calls nothing in churn.train" in found
    assert "imports json at module level" in found
