"""The scheduler examples of docs/scheduling.md, read from the doc and run in a bare environment."""

from __future__ import annotations

import ast
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from support.paths import ROOT

DOC = ROOT / "docs" / "scheduling.md"
DOC_PROJECT = "/srv/churn"  # where the doc's examples expect the project (venv in .venv)
BARE_PATH = "/usr/bin:/bin"  # what cron, systemd and most runners give a job


@dataclass(frozen=True)
class Example:
    """One scheduler example: how its scheduler runs it, and which exit codes count as success.

    `shell` is the argv prefix the scheduler uses (the script is appended); `cwd` the folder it
    starts in (None: the job's home); `skipped` the exit codes of a run skipped for the lock that
    the scheduler treats as fine.
    """

    name: str
    shell: tuple[str, ...]
    script: str
    cwd: str | None
    skipped: frozenset[int]
    environment: tuple[str, ...] = field(default=())

    def in_project(self, project: Path) -> Example:
        """Return the example with the doc's /srv/churn replaced by `project`."""
        return Example(
            self.name,
            self.shell,
            self.script.replace(DOC_PROJECT, str(project)),
            None if self.cwd is None else self.cwd.replace(DOC_PROJECT, str(project)),
            self.skipped,
            tuple(item.replace(DOC_PROJECT, str(project)) for item in self.environment),
        )

    def run(self, home: Path, timeout: float = 900) -> subprocess.CompletedProcess:
        """Run the example under `env -i PATH=/usr/bin:/bin HOME=home`, as its scheduler would."""
        bare = [
            "env",
            "-i",
            f"PATH={BARE_PATH}",
            f"HOME={home}",
            # not part of the bare environment the test is about: keeps MLflow off the network
            "MLFLOW_DISABLE_TELEMETRY=true",
            *self.environment,
        ]
        return subprocess.run(
            [*bare, *self.shell, self.script],
            cwd=self.cwd or home,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )


def _blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", text, flags=re.M | re.S)


def cron_examples(text: str) -> list[Example]:
    """Each cron line: the command after the five schedule fields, run by /bin/sh in $HOME."""
    examples = []
    for block in _blocks(text, "cron"):
        for line in block.splitlines():
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            fields = line.split(maxsplit=5)
            assert len(fields) == 6, f"{DOC.name}: cron line without a command: {line!r}"
            assert all(re.fullmatch(r"[\d*/,-]+", f) for f in fields[:5]), line
            assert "%" not in fields[5], f"cron ends the command at '%': {line!r}"
            # cron does not look at the exit code; a skipped run must only print nothing
            examples.append(
                Example(
                    f"cron-{len(examples) + 1}",
                    ("sh", "-c"),
                    fields[5],
                    None,
                    frozenset({0, 75}),
                )
            )
    return examples


def systemd_example(text: str) -> Example:
    """The service unit: ExecStart (an absolute path, no shell) in WorkingDirectory with Environment."""
    (unit,) = [block for block in _blocks(text, "ini") if "[Service]" in block]
    settings: dict[str, list[str]] = {}
    for line in unit.splitlines():
        if "=" in line and not line.lstrip().startswith(("#", ";", "[")):
            key, value = line.split("=", 1)
            settings.setdefault(key.strip(), []).append(value.strip())
    (exec_start,) = settings["ExecStart"]
    argv = shlex.split(exec_start)
    assert argv[0].startswith("/"), f"systemd wants an absolute ExecStart: {exec_start!r}"
    environment = tuple(
        item for value in settings.get("Environment", []) for item in shlex.split(value)
    )
    success = {0} | {
        int(code) for value in settings.get("SuccessExitStatus", []) for code in value.split()
    }
    (working_directory,) = settings["WorkingDirectory"]
    return Example(
        "systemd",
        ("bash", "-c"),
        f"exec {shlex.join(argv)}",
        working_directory,
        frozenset(success),
        environment,
    )


def airflow_example(text: str) -> Example:
    """The BashOperator: its bash_command (string pieces joined as Python does) run in its cwd."""
    (block,) = _blocks(text, "python")
    calls = [
        node
        for node in ast.walk(ast.parse(block))
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "BashOperator"
    ]
    (call,) = calls
    keywords = {keyword.arg: ast.literal_eval(keyword.value) for keyword in call.keywords}
    assert "{{" not in keywords["bash_command"]  # Airflow renders bash_command with Jinja
    return Example(
        "airflow",
        ("bash", "-c"),
        keywords["bash_command"],
        keywords["cwd"],
        frozenset({keywords["skip_on_exit_code"]}),
    )


def github_actions_example(text: str) -> Example:
    """The job's `run:` step in defaults.run.working-directory, with the runner's `bash -e`."""
    (block,) = _blocks(text, "yaml")
    (job,) = yaml.safe_load(block)["jobs"].values()
    uses = [step["uses"] for step in job["steps"] if "uses" in step]
    assert not [u for u in uses if u.startswith("actions/checkout")], "checkout cleans the folder"
    (run,) = [step["run"] for step in job["steps"] if "run" in step]
    return Example(
        "github-actions",
        ("bash", "-e", "-c"),
        run,
        job["defaults"]["run"]["working-directory"],
        frozenset({0}),
    )


def read_examples(doc: Path = DOC) -> list[Example]:
    """Return every scheduler example of the doc."""
    text = doc.read_text(encoding="utf-8")
    return [
        *cron_examples(text),
        systemd_example(text),
        airflow_example(text),
        github_actions_example(text),
    ]


def make_project(root: Path, source: Path) -> Path:
    """Turn `root` into a project folder as the doc expects: the venv at .venv, params, dvc.yaml, git."""
    root.mkdir(parents=True, exist_ok=True)
    venv = root / ".venv"
    if not venv.exists():
        venv.symlink_to(Path(sys.executable).parents[1], target_is_directory=True)
    for name in ("params.yaml", "dvc.yaml"):
        if not (root / name).exists():
            (root / name).write_text((source / name).read_text())
    if not (root / ".git").exists():
        subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    return root
