"""`churn retrain`: the lock, the exit codes a scheduler sees, the pipeline's output as log lines."""

from __future__ import annotations

import io
import logging
import os
import re
import stat
import sys
import time

import pytest

from churn.errors import ChurnError, DataCheckFailed
from churn.logs import add_log_file, get_logger
from churn.retrain import (
    EXIT_BLOCKED,
    EXIT_ERROR,
    EXIT_KEPT,
    EXIT_LOCKED,
    EXIT_NEW_CHAMPION,
    LockHeld,
    ReproResult,
    RetrainSteps,
    child_environ,
    exclusive_lock,
    resolve_command,
    run_repro,
    run_retrain,
)

OK = ReproResult(0, False, ())


@pytest.fixture
def churn_logs(caplog):
    """Let caplog see the `churn` logger (which does not propagate once the CLI set it up)."""
    logger = logging.getLogger("churn")
    before = logger.propagate
    logger.propagate = True
    with caplog.at_level(logging.INFO, logger="churn"):
        yield caplog
    logger.propagate = before


class Fake:
    """Records the order of the steps; the champion moves inside `dvc repro` (its promote stage
    applies the gate) when the challenger wins."""

    def __init__(
        self, champion="1", moves=False, repro=OK, publish_error=None, backtest_error=None
    ):
        self.champion, self.moves, self.result = champion, moves, repro
        self.publish_error, self.backtest_error = publish_error, backtest_error
        self.calls: list[str] = []

    def steps(self) -> RetrainSteps:
        return RetrainSteps(self.version, self.repro, self.publish, self.backtest)

    def version(self):
        return self.champion

    def repro(self, started=None):
        self.calls.append("repro")
        if self.moves and self.result.returncode == 0:
            self.champion = str(int(self.champion or 0) + 1)
        return self.result

    def publish(self):
        self.calls.append("publish")
        if self.publish_error:
            raise self.publish_error

    def backtest(self):
        self.calls.append("backtest")
        if self.backtest_error:
            raise self.backtest_error


def test_a_new_champion_that_is_published_exits_0(tmp_path):
    fake = Fake(moves=True)
    assert run_retrain(fake.steps(), tmp_path / "lock") == EXIT_NEW_CHAMPION
    assert fake.calls == ["repro", "publish", "backtest"]


def test_a_kept_champion_that_is_published_exits_10(tmp_path):
    assert run_retrain(Fake(moves=False).steps(), tmp_path / "lock") == EXIT_KEPT


def test_the_first_champion_set_inside_dvc_repro_counts_as_new(tmp_path):
    fake = Fake(champion=None)

    def repro_that_sets_the_first_champion(started):
        fake.champion = "1"
        return OK

    steps = RetrainSteps(fake.version, repro_that_sets_the_first_champion, fake.publish)
    assert run_retrain(steps, tmp_path / "lock") == EXIT_NEW_CHAMPION


def test_drift_blocking_publication_exits_20_and_still_backtests(tmp_path):
    fake = Fake(moves=True, publish_error=DataCheckFailed("drift: recency_days moved"))
    assert run_retrain(fake.steps(), tmp_path / "lock") == EXIT_BLOCKED
    assert fake.calls[-1] == "backtest"


def test_a_data_check_failing_inside_dvc_repro_exits_20(tmp_path):
    fake = Fake(repro=ReproResult(255, True, ("data check failed: 40% fewer rows",)))
    assert run_retrain(fake.steps(), tmp_path / "lock") == EXIT_BLOCKED
    assert "publish" not in fake.calls


def test_any_other_pipeline_failure_exits_1_without_publishing(tmp_path):
    fake = Fake(repro=ReproResult(255, False, ()))
    assert run_retrain(fake.steps(), tmp_path / "lock") == EXIT_ERROR
    assert fake.calls == ["repro"]


def test_an_error_reading_the_champion_after_the_pipeline_exits_1(tmp_path):
    """Replaces the apply-step error (the gate is applied inside dvc repro now)."""
    fake = Fake()
    versions = iter(["1"])

    def champion_version():
        try:
            return next(versions)
        except StopIteration:
            raise ChurnError("MLflow registry unreachable") from None

    steps = RetrainSteps(champion_version, fake.repro, fake.publish, fake.backtest)
    assert run_retrain(steps, tmp_path / "lock") == EXIT_ERROR
    assert fake.calls == ["repro"]


def test_a_failing_backtest_is_an_error_not_silence(tmp_path):
    fake = Fake(backtest_error=ChurnError("archive unreadable"))
    assert run_retrain(fake.steps(), tmp_path / "lock") == EXIT_ERROR
    assert "publish" in fake.calls


def test_a_second_run_exits_75_at_once_while_the_lock_is_held(tmp_path, churn_logs):
    fake = Fake()
    with exclusive_lock(tmp_path / "lock"):
        started = time.monotonic()
        code = run_retrain(fake.steps(), tmp_path / "lock")
        assert time.monotonic() - started < 1
    assert code == EXIT_LOCKED
    assert fake.calls == []
    assert "another `churn retrain` is running (pid" in churn_logs.text


def test_a_run_skipped_for_the_lock_logs_a_warning_not_an_error(tmp_path, churn_logs):
    with exclusive_lock(tmp_path / "lock"):
        code = run_retrain(Fake().steps(), tmp_path / "lock")
    assert code == EXIT_LOCKED
    skipped = [r for r in churn_logs.records if "another `churn retrain` is running" in r.message]
    assert [r.levelno for r in skipped] == [logging.WARNING]
    assert not [r for r in churn_logs.records if r.levelno >= logging.ERROR]


def test_the_lock_is_free_again_after_a_run(tmp_path):
    with (
        exclusive_lock(tmp_path / "lock"),
        pytest.raises(LockHeld),
        exclusive_lock(tmp_path / "lock"),
    ):
        pass
    with exclusive_lock(tmp_path / "lock"):
        pass


def test_the_pipeline_output_is_relayed_and_a_stage_exit_code_is_read(tmp_path, churn_logs):
    script = (
        "import sys; print('Running stage ingest'); "
        "print('data check failed: 60% fewer rows than the previous run', file=sys.stderr); "
        "print(\"ERROR: failed to reproduce 'ingest': exited with 1\", file=sys.stderr); "
        "sys.exit(255)"
    )
    result = run_repro([sys.executable, "-c", script], cwd=tmp_path)
    assert result.returncode == 255
    assert result.data_check_failed
    assert "| Running stage ingest" in churn_logs.text


def test_a_missing_pipeline_command_is_a_clear_error(tmp_path):
    with pytest.raises(ChurnError, match="not found"):
        run_repro(["no-such-dvc-binary"], cwd=tmp_path)


# --------------------------------------------------------------------------- the scheduler's bare env
def _program(folder, name="dvc"):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("#!/bin/sh\necho from $0\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_the_pipeline_command_is_found_next_to_the_running_python_before_path(tmp_path):
    venv_dvc = _program(tmp_path / "venv" / "bin")
    _program(tmp_path / "usr" / "bin")
    command = resolve_command(
        ("dvc", "repro", "drift"),
        tmp_path / "venv" / "bin" / "python",
        {"PATH": str(tmp_path / "usr" / "bin")},
    )
    assert command == (str(venv_dvc), "repro", "drift")


def test_the_pipeline_command_falls_back_to_path_when_the_venv_lacks_it(tmp_path):
    (tmp_path / "venv" / "bin").mkdir(parents=True)
    system_dvc = _program(tmp_path / "opt" / "bin")
    path = os.pathsep.join(["/nonexistent", str(tmp_path / "opt" / "bin")])
    command = resolve_command(
        ("dvc", "repro"), tmp_path / "venv" / "bin" / "python", {"PATH": path}
    )
    assert command == (str(system_dvc), "repro")


def test_a_pipeline_command_with_a_folder_is_used_as_written(tmp_path):
    command = ("./scripts/repro.sh", "--all")
    assert resolve_command(command, tmp_path / "bin" / "python", {"PATH": ""}) == command


def test_a_pipeline_command_found_nowhere_names_both_places(tmp_path):
    (tmp_path / "venv" / "bin").mkdir(parents=True)
    with pytest.raises(ChurnError, match=r"'dvc' not found in .*venv/bin .* PATH=/usr/bin:/bin"):
        resolve_command(("dvc",), tmp_path / "venv" / "bin" / "python", {"PATH": "/usr/bin:/bin"})


def test_the_pipeline_runs_with_the_venv_first_on_the_inherited_path():
    environ = {"PATH": "/usr/bin:/bin", "HOME": "/home/churn"}
    child = child_environ("/srv/churn/.venv/bin/python", environ)
    assert child == {"PATH": "/srv/churn/.venv/bin:/usr/bin:/bin", "HOME": "/home/churn"}
    assert environ["PATH"] == "/usr/bin:/bin"  # the caller's mapping is not changed


def test_a_stage_command_in_the_child_resolves_to_the_same_venv(tmp_path, churn_logs):
    bin_dir = tmp_path / "venv" / "bin"
    _program(bin_dir, "churn")
    repro = _program(bin_dir, "dvc")
    repro.write_text("#!/bin/sh\nchurn\n")  # what `dvc repro` does: run the stage's `churn ...`
    executable = bin_dir / "python"
    environ = {"PATH": "/usr/bin:/bin"}
    result = run_repro(
        resolve_command(("dvc",), executable, environ),
        cwd=tmp_path,
        env=child_environ(executable, environ),
    )
    assert result.returncode == 0
    assert f"| from {bin_dir / 'churn'}" in churn_logs.text


@pytest.fixture
def restored_churn_logger():
    """Put the `churn` logger's handlers and levels back after a test that adds a log file."""
    logger = logging.getLogger("churn")
    handlers = list(logger.handlers)
    levels = [handler.level for handler in handlers]
    yield logger
    for handler in logger.handlers:
        if handler not in handlers:
            handler.close()
    logger.handlers[:] = handlers
    for handler, level in zip(handlers, levels, strict=True):
        handler.setLevel(level)


def test_the_log_file_is_appended_with_plain_timestamped_lines_and_stderr_keeps_errors(
    tmp_path, restored_churn_logger
):
    path = tmp_path / "logs" / "retrain.log"
    path.parent.mkdir()
    path.write_text("an earlier run\n")
    stderr = logging.StreamHandler(io.StringIO())
    restored_churn_logger.handlers[:] = [stderr]
    restored_churn_logger.setLevel(logging.INFO)
    file_handler = add_log_file(path)
    log = get_logger("retrain")
    log.info("running dvc repro")
    log.warning("lock held")
    log.error("the pipeline failed")
    file_handler.flush()
    lines = path.read_text().splitlines()
    assert lines[0] == "an earlier run"  # appended, never truncated
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d"
    assert re.fullmatch(rf"{stamp} INFO churn.retrain: running dvc repro", lines[1])
    assert re.fullmatch(rf"{stamp} WARNING churn.retrain: lock held", lines[2])
    assert re.fullmatch(rf"{stamp} ERROR churn.retrain: the pipeline failed", lines[3])
    assert len(lines) == 4
    assert stderr.stream.getvalue() == "the pipeline failed\n"  # only what needs a human


def test_a_log_file_in_missing_folders_is_created(tmp_path, restored_churn_logger):
    add_log_file(tmp_path / "logs" / "weekly" / "retrain.log")
    assert (tmp_path / "logs" / "weekly" / "retrain.log").is_file()


def test_orphans_of_a_killed_run_that_cannot_be_stopped_make_the_next_run_exit_75(
    tmp_path, churn_logs, monkeypatch
):
    """The lock is free (its holder died) but the pipeline it started lives on and will not stop:
    the run is skipped like a held lock (75, a warning), not failed (1)."""
    import churn.retrain as retrain

    (tmp_path / "lock").write_text(
        "pid 4242, started 2026-01-01T00:00:00+00:00\nchild process group 4243\n"
    )
    monkeypatch.setattr(retrain, "_group_alive", lambda group: group == 4243)
    signals = []
    monkeypatch.setattr(retrain.os, "killpg", lambda group, sig: signals.append((group, sig)))
    monkeypatch.setattr(retrain, "ORPHAN_GRACE_SECONDS", 0.1)
    fake = Fake()
    code = run_retrain(fake.steps(), tmp_path / "lock")
    assert code == EXIT_LOCKED and fake.calls == []
    assert [sig for _, sig in signals][:2] == [15, 9]
    assert "process group 4243" in churn_logs.text
    assert not [r for r in churn_logs.records if r.levelno >= logging.ERROR]


def test_a_list_already_published_for_the_date_names_the_retrain_flag(tmp_path, churn_logs):
    """A new champion for an already published date stopped `churn retrain` at publish with a
    hint for `churn publish`; the hint now names the retrain flag that passes --force through."""
    refused = ChurnError(
        "exports/at_risk/2024-01-01: a different list is already published for 2024-01-01 "
        "(sha256 aaa, new bbb); rerun with --force to replace it"
    )
    fake = Fake(moves=True, publish_error=refused)
    assert run_retrain(fake.steps(), tmp_path / "lock") == EXIT_ERROR
    assert "rerun `churn retrain --force` to replace it" in churn_logs.text


def test_the_retrain_command_records_its_pipeline_process_group(tmp_path):
    """`churn retrain`'s pipeline step reports the child's process group for the lock file."""
    from pathlib import Path

    from churn.config import Params, RetrainParams
    from churn.lifecycle import retrain_steps

    script = "import os; print(os.getpgid(0) == os.getpid())"
    settings = Params(retrain=RetrainParams(repro_command=(sys.executable, "-c", script)))
    steps = retrain_steps(settings, Path(tmp_path), dict(os.environ), accept_drift=False)
    groups: list[int] = []
    result = steps.repro(groups.append)
    assert result.returncode == 0 and result.tail == ("True",)  # its own process group ...
    assert len(groups) == 1 and groups[0] > 0  # ... recorded by the lock
