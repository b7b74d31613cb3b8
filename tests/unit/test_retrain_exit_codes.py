"""`churn retrain`: the lock, the exit codes a scheduler sees, the pipeline's output as log lines."""

from __future__ import annotations

import logging
import sys
import time

import pytest

from churn.errors import ChurnError, DataCheckFailed
from churn.retrain import (
    EXIT_BLOCKED,
    EXIT_ERROR,
    EXIT_KEPT,
    EXIT_LOCKED,
    EXIT_NEW_CHAMPION,
    LockHeld,
    ReproResult,
    RetrainSteps,
    exclusive_lock,
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
    """Records the order of the steps; the champion moves when the gate is applied."""

    def __init__(
        self, champion="1", moves=False, repro=OK, publish_error=None, backtest_error=None
    ):
        self.champion, self.moves, self.result = champion, moves, repro
        self.publish_error, self.backtest_error = publish_error, backtest_error
        self.calls: list[str] = []

    def steps(self) -> RetrainSteps:
        return RetrainSteps(self.version, self.repro, self.apply, self.publish, self.backtest)

    def version(self):
        return self.champion

    def repro(self):
        self.calls.append("repro")
        return self.result

    def apply(self):
        self.calls.append("apply")
        if self.moves:
            self.champion = str(int(self.champion or 0) + 1)
        return self.moves

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
    assert fake.calls == ["repro", "apply", "publish", "backtest"]


def test_a_kept_champion_that_is_published_exits_10(tmp_path):
    assert run_retrain(Fake(moves=False).steps(), tmp_path / "lock") == EXIT_KEPT


def test_the_first_champion_set_inside_dvc_repro_counts_as_new(tmp_path):
    fake = Fake(champion=None)

    def repro_that_sets_the_first_champion():
        fake.champion = "1"
        return OK

    steps = RetrainSteps(fake.version, repro_that_sets_the_first_champion, fake.apply, fake.publish)
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


def test_an_error_applying_the_gate_exits_1(tmp_path):
    fake = Fake()

    def apply_fails():
        raise ChurnError("models/champion/ holds version 2, but reports/promotion.json chose 3")

    steps = RetrainSteps(fake.version, fake.repro, apply_fails, fake.publish)
    assert run_retrain(steps, tmp_path / "lock") == EXIT_ERROR


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
