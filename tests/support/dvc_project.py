"""Test helper: a tmp project folder with the repo's dvc.yaml, where `churn.pipeline` finds files.

`churn publish`, `churn backtest` and `churn retrain` run outside DVC and find the stage files
by reading dvc.yaml through DVC's API, so a tmp project needs dvc.yaml, a params.yaml and a DVC
repository (no git needed).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from support.paths import ROOT


def write_params(folder: Path, **sections: dict[str, Any]) -> Path:
    """Write the repo's params.yaml into `folder` with keys of `sections` replaced."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    for name, values in sections.items():
        params[name] = {**(params.get(name) or {}), **values}
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    return path


DEMO_CONTACTS = "data/raw/contacts.csv"  # the demo's contact log, the ledger stage's --contacts


def without_contact_log(pipeline: dict[str, Any]) -> dict[str, Any]:
    """Return parsed dvc.yaml without the ledger stage's contact log (its --contacts and dep), as
    a project with no contact log has it (`churn init` does the same to the demo's)."""
    stages = {**pipeline["stages"]}
    ledger = {**stages["ledger"]}
    ledger["cmd"] = " ".join(str(ledger["cmd"]).split()).replace(f" --contacts {DEMO_CONTACTS}", "")
    ledger["deps"] = [dep for dep in ledger["deps"] if dep != DEMO_CONTACTS]
    stages["ledger"] = ledger
    return {**pipeline, "stages": stages}


def init_dvc_project(folder: Path, contact_log: bool = False, **sections: dict[str, Any]) -> Path:
    """Copy dvc.yaml (without the demo's contact log unless `contact_log`) and params.yaml (keys
    of `sections` replaced) into `folder`; make it a DVC repository."""
    from dvc.repo import Repo

    folder.mkdir(parents=True, exist_ok=True)
    pipeline = yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))
    if not contact_log:
        pipeline = without_contact_log(pipeline)
    (folder / "dvc.yaml").write_text(yaml.safe_dump(pipeline, sort_keys=False), encoding="utf-8")
    write_params(folder, **sections)
    if not (folder / ".dvc").exists():
        Repo.init(str(folder), no_scm=True).close()
    return folder


def pipeline_env(root: Path) -> dict[str, str]:
    """Make `root` a git + DVC project that runs `dvc repro` on its own copy of src/ with this
    interpreter's tools (an empty suppression list in place); return the environment to run it."""
    import os
    import subprocess
    import sys

    (root / "data").mkdir(exist_ok=True)
    (root / "data" / "suppression.csv").write_text("customer_id\n")
    env = {
        **os.environ,
        "PYTHONPATH": str(root / "src"),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "PYTHONWARNINGS": "ignore",
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    for command in (["git", "init", "-q"], ["dvc", "init", "-q"]):
        subprocess.run(command, cwd=root, env=env, check=True, capture_output=True)
    return env


def copy_pipeline(project_root: Path, root: Path) -> dict[str, Any]:
    """Copy the project's code and dvc.yaml into the new folder `root`; return the project's
    params.yaml as a dict, for the test to change and write there."""
    import shutil

    root.mkdir()
    shutil.copytree(
        project_root / "src", root / "src", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(project_root / "dvc.yaml", root / "dvc.yaml")
    return yaml.safe_load((project_root / "params.yaml").read_text())
