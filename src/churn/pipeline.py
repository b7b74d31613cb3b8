"""Where the pipeline's files are, for commands that run outside DVC (publish, backtest, retrain).

Paths are written once, in dvc.yaml. These commands ask DVC for a stage's command line (its own
parser, with `${...}` resolved) and read it with that stage's own CLI options, so a path moved in
dvc.yaml moves for them too.
"""

from __future__ import annotations

import functools
import shlex
from pathlib import Path
from typing import Any

from churn.errors import ChurnError


def stage_options(stage: str, root: str | Path = ".") -> dict[str, Any]:
    """Return the option values of `churn <stage> ...` as dvc.yaml's stage `stage` runs it."""
    commands = stage_commands(root)
    if stage not in commands:
        raise ChurnError(
            f"dvc.yaml: cannot read stage {stage!r} (no stage of that name: "
            f"{', '.join(sorted(commands))}); run from the project folder"
        )
    if not commands[stage]:
        raise ChurnError(f"dvc.yaml: no stage {stage!r} with a command; restore it")
    argv = shlex.split(" ".join(commands[stage].split()))
    if argv[:2] != ["churn", stage]:
        raise ChurnError(
            f"dvc.yaml: stage {stage!r} runs {' '.join(argv[:2])!r}, expected `churn {stage}`"
        )
    return parse_command(stage, argv[2:])


def stage_commands(root: str | Path = ".") -> dict[str, str]:
    """Return {stage name: its command line} of the project at `root`, as DVC reads dvc.yaml
    (`${...}` resolved from params.yaml). DVC parses the files once per process while they stay
    unchanged: a command such as `churn publish` asks for several stages' paths."""
    folder = Path(root).resolve()
    stamps = tuple(
        (name, path.stat().st_mtime_ns, path.stat().st_size) if path.exists() else (name,)
        for name in ("dvc.yaml", "params.yaml")
        for path in [folder / name]
    )
    return dict(_stage_commands(str(folder), stamps))


@functools.lru_cache(maxsize=8)
def _stage_commands(root: str, stamps: tuple) -> tuple[tuple[str, str], ...]:  # noqa: ARG001
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        with Repo(root) as repo:
            stages = list(repo.index.stages)
    except DvcException as error:
        raise ChurnError(
            f"dvc.yaml: cannot read the stages ({error}); run from the project folder"
        ) from None
    return tuple(
        (stage.name, str(stage.cmd or "")) for stage in stages if getattr(stage, "name", None)
    )


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
