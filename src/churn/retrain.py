"""`churn retrain` for schedulers: one lock, `dvc repro` with the gate applied, publish, backtest."""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from churn.errors import DATA_CHECK_PREFIX, ChurnError, DataCheckFailed
from churn.files import rewrite_open_file
from churn.logs import get_logger

log = get_logger("retrain")

EXIT_NEW_CHAMPION = 0  # a new champion, list published
EXIT_KEPT = 10  # champion kept, list published
EXIT_BLOCKED = 20  # publication blocked by drift or data checks
EXIT_LOCKED = 75  # another run holds the lock (EX_TEMPFAIL: try again later)
EXIT_ERROR = 1


class LockHeld(ChurnError):
    """Another `churn retrain` holds the lock file (or its orphaned pipeline is still running)."""


ORPHAN_GRACE_SECONDS = 10.0  # SIGTERM to an orphaned pipeline, then SIGKILL after this long
_CHILD_LINE = "child process group"
_CHILD = re.compile(rf"{_CHILD_LINE} (\d+)")


class RetrainLock:
    """The held lock file: records this run's pid and, once started, its pipeline's process group."""

    def __init__(self, fd: int, header: str) -> None:
        self._fd, self._header = fd, header

    def record_child(self, group: int) -> None:
        """Write the pipeline's process group, so a run after a kill -9 can stop its orphans.

        rewrite_open_file is imported with this module, not here: the group must reach the file
        at once after the pipeline starts, before a kill -9 of this run could leave it unrecorded.
        """
        text = f"{self._header}{_CHILD_LINE} {group}\n".encode()
        rewrite_open_file(self._fd, text)


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, but not ours to signal
    return True


def stop_orphans(previous: str, path: Path, grace: float | None = None) -> None:
    """Stop the pipeline a killed run left behind (its process group, recorded in the lock file).

    We hold the lock, so the run that recorded the group is gone; a group still alive is an
    orphan that would collide with this run (DVC's own lock: "busy"). Raise LockHeld when it
    cannot be stopped: the scheduler then retries later (exit 75).
    """
    grace = ORPHAN_GRACE_SECONDS if grace is None else grace
    found = _CHILD.search(previous)
    if found is None:
        return
    group = int(found.group(1))
    if not _group_alive(group):
        return
    owner = previous.splitlines()[0] if previous.strip() else "unknown run"
    log.warning(
        "%s: the run that held it (%s) is gone but its pipeline (process group %d) still runs; "
        "stopping it",
        path,
        owner,
        group,
    )
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, min(grace, 5.0))):
        try:
            os.killpg(group, sig)
        except ProcessLookupError:
            return
        except PermissionError:
            break
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not _group_alive(group):
                return
            time.sleep(0.05)
    if _group_alive(group):
        raise LockHeld(
            f"{path}: the pipeline of a killed run (process group {group}) is still running and "
            "could not be stopped; skipped, another run holds the lock — stop that group "
            f"(`kill -- -{group}`) or wait for it"
        )


@contextlib.contextmanager
def exclusive_lock(path: str | Path) -> Iterator[RetrainLock]:
    """Hold an fcntl lock on `path` for the block; raise LockHeld at once if another process has it.

    The lock dies with its process (even on kill -9); the pipeline a killed run left running is
    found through the process group recorded in the file, and stopped before this run goes on.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "unknown process"
            holder = holder.splitlines()[0]
            raise LockHeld(
                f"{path}: another `churn retrain` is running ({holder}); this run exits without "
                "doing anything. Let it finish: the lock is released when that process ends"
            ) from None
        try:
            previous = os.pread(fd, 4096, 0).decode("utf-8", "replace")
            stop_orphans(previous, path)
        except BaseException:
            fcntl.flock(fd, fcntl.LOCK_UN)
            raise
        os.ftruncate(fd, 0)
        stamp = dt.datetime.now().astimezone().isoformat(timespec="seconds")
        header = f"pid {os.getpid()}, started {stamp}\n"
        os.pwrite(fd, header.encode(), 0)
        try:
            yield RetrainLock(fd, header)
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def resolve_command(
    command: Sequence[str], executable: str | Path, environ: Mapping[str, str]
) -> tuple[str, ...]:
    """Return `command` with its program made absolute: looked up first next to `executable`
    (the virtualenv's bin folder), then on the PATH in `environ`.

    A scheduler starts `.venv/bin/churn` with a bare PATH (`/usr/bin:/bin`) that does not hold
    the venv, so a plain PATH lookup would miss (or pick another install of) `dvc`. A program
    given with a slash (`./run.sh`, `/opt/dvc/bin/dvc`) is used as written.
    """
    if not command:
        raise ChurnError("retrain.repro_command: empty; set it in params.yaml, e.g. [dvc, repro]")
    program = command[0]
    if os.sep in program:
        return tuple(command)
    bin_dir = str(Path(executable).parent)
    path = environ.get("PATH", os.defpath)
    found = shutil.which(program, path=bin_dir) or shutil.which(program, path=path)
    if found is None:
        raise ChurnError(
            f"retrain.repro_command: {program!r} not found in {bin_dir} (the environment running "
            f"churn) nor on PATH={path}; install DVC in this environment or set "
            "retrain.repro_command in params.yaml"
        )
    return (found, *command[1:])


def child_environ(executable: str | Path, environ: Mapping[str, str]) -> dict[str, str]:
    """Return the environment for the pipeline command: `environ` with the folder of `executable`
    put first on PATH, so the stage commands in dvc.yaml (`churn ...`) run from the same venv."""
    bin_dir = str(Path(executable).parent)
    inherited = environ.get("PATH", os.defpath)
    return {**environ, "PATH": os.pathsep.join([bin_dir, inherited]) if inherited else bin_dir}


@dataclass(frozen=True)
class ReproResult:
    """How `dvc repro` ended: its exit code, whether a data check stopped it, the last lines."""

    returncode: int
    data_check_failed: bool
    tail: tuple[str, ...]


def _child_setup(parent: int) -> Callable[[], None]:
    """Return the child's pre-exec step: its own process group (so the whole pipeline can be
    stopped as one), and on Linux a SIGTERM when this process dies, even by kill -9."""
    prctl = None
    if sys.platform.startswith("linux"):
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before the fork

    def setup() -> None:
        os.setpgid(0, 0)
        if prctl is not None:
            prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
            if os.getppid() != parent:  # the parent died before the signal was armed
                os._exit(1)

    return setup


_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def run_repro(
    command: Sequence[str],
    cwd: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    started: Callable[[int], None] | None = None,
) -> ReproResult:
    """Run the pipeline command (in `env`, or this process's environment), relaying its output as
    log lines; return how it ended.

    The command runs in its own process group, reported to `started` (the lock file records it),
    and on Linux it is sent SIGTERM if this process dies.
    """
    log.info("running %s", " ".join(command))
    tail: deque[str] = deque(maxlen=40)
    data_check = False
    try:
        process = subprocess.Popen(
            list(command),
            cwd=cwd,
            env=None if env is None else dict(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            bufsize=1,
            preexec_fn=_child_setup(os.getpid()),  # noqa: PLW1509 - no threads started here
        )
    except FileNotFoundError:
        raise ChurnError(
            f"retrain.repro_command: {command[0]!r} not found; install DVC in this environment "
            "or set retrain.repro_command in params.yaml"
        ) from None
    if started is not None:
        started(process.pid)  # the group id is the child's pid (setpgid(0, 0))
    assert process.stdout is not None
    for line in process.stdout:
        line = line.rstrip()
        if not line:
            continue
        tail.append(line)
        data_check = data_check or line.startswith(DATA_CHECK_PREFIX)
        log.info("| %s", line)
    return ReproResult(process.wait(), data_check, tuple(tail))


@dataclass(frozen=True)
class RetrainSteps:
    """The steps of one retraining run, injected so each can be tested (and faked) on its own."""

    champion_version: Callable[[], str | None]
    # the pipeline, its promote stage applying the gate; given a callback that records the
    # pipeline's process group in the lock file
    repro: Callable[[Callable[[int], None]], ReproResult]
    publish: Callable[[], None]  # raises DataCheckFailed when a gate (drift, data) blocks it
    backtest: Callable[[], None] | None = None


def run_retrain(steps: RetrainSteps, lock_file: str | Path) -> int:
    """Run the steps under the lock and return the scheduler exit code (0, 10, 20, 75 or 1)."""
    try:
        with exclusive_lock(lock_file) as lock:
            return _run_locked(steps, lock)
    except LockHeld as error:
        # not a failure: the running one does the work, the next slot runs again (EX_TEMPFAIL)
        log.warning("%s", error)
        return EXIT_LOCKED


def _run_locked(steps: RetrainSteps, lock: RetrainLock) -> int:
    try:
        before = steps.champion_version()
        log.info("champion before this run: %s", before or "none")
        result = steps.repro(lock.record_child)
        if result.returncode != 0:
            if result.data_check_failed:
                log.error("publication blocked: a data check stopped the pipeline (see above)")
                _backtest(steps)
                return EXIT_BLOCKED
            log.error("the pipeline failed (exit %d); nothing was published", result.returncode)
            hint = killed_hint(result)
            if hint:
                log.error("%s", hint)
            return EXIT_ERROR
        after = steps.champion_version()
        if after != before:
            log.info("new champion: version %s (was %s)", after, before or "none")
        else:
            log.info("champion kept: version %s", after)
        try:
            steps.publish()
            blocked = False
        except DataCheckFailed as error:
            log.error("publication blocked: %s", error)
            blocked = True
        except ChurnError as error:
            # publish's own hint names its flag; `churn retrain --force` passes it through
            raise ChurnError(
                str(error).replace("rerun with --force", "rerun `churn retrain --force`")
            ) from None
        backtest_ok = _backtest(steps)
    except ChurnError as error:
        log.error("%s", error)
        return EXIT_ERROR
    except Exception:
        log.exception("retrain failed with an unexpected error")
        return EXIT_ERROR
    if blocked:
        return EXIT_BLOCKED
    if not backtest_ok:
        return EXIT_ERROR
    return EXIT_NEW_CHAMPION if after != before else EXIT_KEPT


def _backtest(steps: RetrainSteps) -> bool:
    """Run the backtest if configured; a failure is logged and reported, never hidden."""
    if steps.backtest is None:
        return True
    try:
        steps.backtest()
    except ChurnError as error:
        log.error("backtest failed: %s", error)
        return False
    return True


KILLED_CODES = (137, -9)  # 128 + SIGKILL from a shell, -SIGKILL from Popen
_STAGE_KILLED = re.compile(
    r"failed to reproduce '(?P<stage>[^']+)'.*exited with (?P<code>-9|137)\b"
)
_KILLED = re.compile(r"exited with (?P<code>-9|137)\b")


def killed_hint(result: ReproResult) -> str | None:
    """Return the out-of-memory hint when the kernel killed a stage (DVC's "exited with -9/137"
    line) or the pipeline command itself; None for other failures."""
    from churn.engine import killed_by_system  # the same hint as DuckDB's out-of-memory error

    for line in reversed(result.tail):
        found = _STAGE_KILLED.search(line)
        if found:
            stage = found["stage"]
            return killed_by_system(f"stage '{stage}'", int(found["code"]), stage)
    for line in reversed(result.tail):
        found = _KILLED.search(line)
        if found:
            return killed_by_system("a pipeline stage", int(found["code"]))
    if result.returncode in KILLED_CODES:
        return killed_by_system("the pipeline command", result.returncode)
    return None
