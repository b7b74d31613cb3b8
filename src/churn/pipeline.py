"""Where the pipeline's files are, for commands that run outside DVC (publish, backtest, retrain).

Paths are written once, in dvc.yaml. These commands ask DVC for a stage's command line (its own
parser, with `${...}` resolved) and read it with that stage's own CLI options, so a path moved in
dvc.yaml moves for them too.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from churn.errors import ChurnError


def stage_options(stage: str, root: str | Path = ".") -> dict[str, Any]:
    """Return the option values of `churn <stage> ...` as dvc.yaml's stage `stage` runs it."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        repo = Repo(str(root))
        found = list(repo.stage.collect(stage))
    except DvcException as error:
        raise ChurnError(
            f"dvc.yaml: cannot read stage {stage!r} ({error}); run from the project folder"
        ) from None
    if len(found) != 1 or not found[0].cmd:
        raise ChurnError(f"dvc.yaml: no stage {stage!r} with a command; restore it")
    argv = shlex.split(" ".join(str(found[0].cmd).split()))
    if argv[:2] != ["churn", stage]:
        raise ChurnError(
            f"dvc.yaml: stage {stage!r} runs {' '.join(argv[:2])!r}, expected `churn {stage}`"
        )
    return parse_command(stage, argv[2:])


def parse_command(command: str, args: list[str]) -> dict[str, Any]:
    """Return the options of `churn <command> args` parsed by that command's own CLI definition."""
    import typer

    from churn.cli import app

    group = typer.main.get_command(app)
    cli_command = group.commands.get(command)  # type: ignore[attr-defined]
    if cli_command is None:
        raise ChurnError(f"dvc.yaml: `churn {command}` is not a churn command")
    context = cli_command.make_context(command, list(args), resilient_parsing=True)
    return dict(context.params)


def stage_path(stage: str, option: str, root: str | Path = ".") -> Path:
    """Return the path a stage's `--option` names in dvc.yaml (relative to the project folder)."""
    value = stage_options(stage, root).get(option)
    if value is None:
        raise ChurnError(f"dvc.yaml: stage {stage!r} gives no --{option.replace('_', '-')}")
    return Path(root) / Path(value)


def exports_path(root: str | Path = ".") -> Path:
    """Return the published-lists record: the folder dvc.yaml's ledger stage reads (--exports)."""
    return stage_path("ledger", "exports", root)


def backtest_report_path(root: str | Path = ".") -> Path:
    """Return the backtest report `churn backtest` writes: the file dvc.yaml's report stage reads
    when it exists (--backtest)."""
    return stage_path("report", "backtest", root)
