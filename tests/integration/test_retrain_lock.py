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


# --------------------------------------------------------------------------- kill -9 of retrain
FAKE_PIPELINE = """
import fcntl, os, subprocess, sys, time
lock = open("fake-dvc.lock", "a")
try:
    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
except BlockingIOError:
    print("ERROR: Unable to acquire lock. Most likely another DVC process is running", flush=True)
    sys.exit(1)
if os.path.exists("quick"):
    print("pipeline done", flush=True)
    sys.exit(0)
# a stage command under the pipeline, sharing its lock as DVC's stages share the repo
stage = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"],
                         pass_fds=[lock.fileno()])
with open("pids.tmp", "w") as out:
    out.write(f"{os.getpid()} {stage.pid}")
os.replace("pids.tmp", "pids")
time.sleep(600)
"""

DRIVER = """
import sys
from churn.logs import setup_logging
from churn.retrain import RetrainSteps, run_repro, run_retrain
setup_logging(False)
repro = lambda started: run_repro([sys.executable, "fake_pipeline.py"], started=started)
sys.exit(run_retrain(RetrainSteps(lambda: "1", repro, lambda: None), "retrain.lock"))
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie has finished: only its exit status waits to be read
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0] != "Z"


def _wait_until(condition, timeout: float = 15.0) -> bool:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_after_kill_9_of_retrain_the_pipeline_dies_and_the_next_run_goes_on(tmp_path, project_root):
    """kill -9 of `churn retrain` alone left its `dvc repro` running, and the next retrain failed
    with DVC's "busy" and exit 1. Now the pipeline gets SIGTERM when its parent dies, the lock file
    records its process group, and the next run stops what is left (here: a stage) and goes on."""
    import signal

    (tmp_path / "fake_pipeline.py").write_text(FAKE_PIPELINE)
    env = {**os.environ, "PYTHONPATH": str(project_root / "src"), "PYTHONWARNINGS": "ignore"}
    first = subprocess.Popen(
        [sys.executable, "-c", DRIVER], cwd=tmp_path, env=env, stderr=subprocess.PIPE
    )
    stage = pipeline = None
    try:
        assert _wait_until(lambda: (tmp_path / "pids").exists(), 60)
        pipeline, stage = map(int, (tmp_path / "pids").read_text().split())
        assert "child process group" in (tmp_path / "retrain.lock").read_text()
        first.send_signal(signal.SIGKILL)
        first.wait()
        assert _wait_until(lambda: not _alive(pipeline)), "the pipeline outlived its parent"
        assert _alive(stage)  # its stage is an orphan still holding the pipeline's lock

        (tmp_path / "quick").write_text("")
        second = subprocess.run(
            [sys.executable, "-c", DRIVER],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        first.kill()
        for pid in (pipeline, stage):
            if pid is not None and _alive(pid):
                os.kill(pid, signal.SIGKILL)
    assert "Unable to acquire lock" not in second.stderr
    assert "pipeline done" in second.stderr
    assert "still runs; stopping it" in second.stderr
    assert second.returncode == 10, second.stderr[-2000:]
    assert not _alive(stage)
