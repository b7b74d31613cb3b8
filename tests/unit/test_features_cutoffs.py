"""Cutoff planning: the default plan, short histories, and errors that name the key."""

from __future__ import annotations

import logging
from datetime import date, timedelta

import pytest

from churn.cutoffs import (
    CALIBRATION,
    FIT,
    GAP,
    TEST,
    plan_cutoffs,
    required_history_days,
)
from churn.errors import ChurnError
from support.cutoff_plans import AS_OF, params


def test_default_plan_has_twelve_cutoffs_thirty_days_apart_ending_a_horizon_before_as_of():
    plan = plan_cutoffs(date(2023, 1, 1), AS_OF, *params())
    assert len(plan) == 12
    assert plan[-1].cutoff == AS_OF - timedelta(days=90)
    assert {(b.cutoff - a.cutoff).days for a, b in zip(plan, plan[1:], strict=False)} == {30}
    roles = [item.role for item in plan]
    assert roles == [FIT] * 6 + [GAP, GAP, CALIBRATION, GAP, GAP, TEST]


def test_one_year_of_history_gives_fewer_cutoffs_and_says_so(caplog):
    with caplog.at_level(logging.WARNING, logger="churn"):
        plan = plan_cutoffs(AS_OF - timedelta(days=364), AS_OF, *params())
    assert [item.role for item in plan] == [FIT, GAP, GAP, CALIBRATION, GAP, GAP, TEST]
    assert "only 7 of 12 training cutoffs" in caplog.text


def test_too_little_history_says_how_many_days_are_needed():
    need = required_history_days(*params())
    assert need == 90 + 6 * 30 + 90 + 1
    plan_cutoffs(AS_OF - timedelta(days=need - 1), AS_OF, *params())  # exactly enough
    with pytest.raises(ChurnError, match=f"span {need - 1} days.*at least {need} days"):
        plan_cutoffs(AS_OF - timedelta(days=need - 2), AS_OF, *params())


def test_too_few_cutoffs_for_three_roles_is_an_error_naming_the_key():
    with pytest.raises(ChurnError, match="features.cutoffs.count = 4 is too few"):
        plan_cutoffs(date(2020, 1, 1), AS_OF, *params(count=4))
