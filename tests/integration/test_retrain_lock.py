"""`churn retrain` as a process: a second run exits 75 at once while another holds the lock."""

from __future__ import annotations

import os
import subprocess
import sys

from churn.retrain import (
    EXIT_LOCKED,
)


def test_the_command_exits_75_at_once_while_another_process_holds_the_lock(tmp_path, project_root):
    (tmp_path / "params.yaml").write_text((project_root / "params.yaml").read_text())
    env = {**os.environ, "PYTHONPATH": str(project_root / "src"), "PYTHONWARNINGS": "ignore"}
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time; from churn.retrain import exclusive_lock\n"
            "with exclusive_lock('.churn-retrain.lock'):\n"
            "    print('locked', flush=True); time.sleep(60)",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        second = subprocess.run(
            [sys.executable, "-m", "churn", "retrain"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        holder.kill()
        holder.wait()
    assert second.returncode == EXIT_LOCKED
    assert "another `churn retrain` is running (pid" in second.stderr
    assert not (tmp_path / "dvc.lock").exists()
