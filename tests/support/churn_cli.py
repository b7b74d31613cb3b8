"""Run the `churn` command line in a subprocess, from the source tree, as a stage runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from support.paths import ROOT


def run_churn(cwd: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    """Return `python -m churn ARGS` run in `cwd` (output captured as text)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run(
        [sys.executable, "-m", "churn", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
