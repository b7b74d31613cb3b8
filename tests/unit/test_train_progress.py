"""Training shows progress on long runs: plain log lines, throttled, with the round and the loss."""

from __future__ import annotations

import logging
from types import SimpleNamespace

from churn.train import progress


def _env(iteration: int, end: int = 3000):
    return SimpleNamespace(
        iteration=iteration,
        end_iteration=end,
        evaluation_result_list=[("early_stopping", "binary_logloss", 0.41234, False)],
    )


def test_progress_logs_the_start_and_then_rounds_with_the_loss(caplog):
    with caplog.at_level(logging.INFO, logger="churn"):
        callback = progress("evaluation model", 120_000, 3000, every_seconds=0.0)
        callback(_env(499))
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "evaluation model: boosting up to 3000 rounds on 120000 rows"
    assert lines[1].startswith("evaluation model: round 500 of at most 3000 (17%), ")
    assert lines[1].endswith("early_stopping binary_logloss 0.4123")


def test_progress_is_throttled_so_short_runs_stay_quiet(caplog):
    with caplog.at_level(logging.INFO, logger="churn"):
        callback = progress("refit", 1000, 100, every_seconds=3600.0)
        for iteration in range(100):
            callback(_env(iteration, 100))
    assert len(caplog.records) == 1  # only the start line
