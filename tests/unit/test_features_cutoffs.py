"""Cutoff planning: label windows of fit, calibration and test never overlap; short histories."""

from __future__ import annotations

import logging
from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from churn.config import CutoffsParams, FeaturesParams, RolesParams
from churn.errors import ChurnError
from churn.features.cutoffs import (
    CALIBRATION,
    FIT,
    GAP,
    TEST,
    plan_cutoffs,
    required_history_days,
)

AS_OF = date(2025, 12, 31)


def params(horizon=90, count=12, step=30, history=90, calibration=1) -> FeaturesParams:
    return FeaturesParams(
        horizon_days=horizon,
        cutoffs=CutoffsParams(count=count, step_days=step, min_history_days=history),
        roles=RolesParams(calibration_cutoffs=calibration),
    )


def test_default_plan_has_twelve_cutoffs_thirty_days_apart_ending_a_horizon_before_as_of():
    plan = plan_cutoffs(date(2023, 1, 1), AS_OF, params())
    assert len(plan) == 12
    assert plan[-1].cutoff == AS_OF - timedelta(days=90)
    assert {(b.cutoff - a.cutoff).days for a, b in zip(plan, plan[1:], strict=False)} == {30}
    roles = [item.role for item in plan]
    assert roles == [FIT] * 6 + [GAP, GAP, CALIBRATION, GAP, GAP, TEST]


def test_one_year_of_history_gives_fewer_cutoffs_and_says_so(caplog):
    with caplog.at_level(logging.WARNING, logger="churn"):
        plan = plan_cutoffs(AS_OF - timedelta(days=364), AS_OF, params())
    assert [item.role for item in plan] == [FIT, GAP, GAP, CALIBRATION, GAP, GAP, TEST]
    assert "only 7 of 12 training cutoffs" in caplog.text


def test_too_little_history_says_how_many_days_are_needed():
    need = required_history_days(params())
    assert need == 90 + 6 * 30 + 90 + 1
    plan_cutoffs(AS_OF - timedelta(days=need - 1), AS_OF, params())  # exactly enough
    with pytest.raises(ChurnError, match=f"span {need - 1} days.*at least {need} days"):
        plan_cutoffs(AS_OF - timedelta(days=need - 2), AS_OF, params())


def test_too_few_cutoffs_for_three_roles_is_an_error_naming_the_key():
    with pytest.raises(ChurnError, match="features.cutoffs.count = 4 is too few"):
        plan_cutoffs(date(2020, 1, 1), AS_OF, params(count=4))


@settings(max_examples=200, deadline=None)
@given(
    horizon=st.integers(1, 120),
    count=st.integers(1, 30),
    step=st.integers(1, 90),
    history=st.integers(0, 200),
    calibration=st.integers(1, 3),
    span=st.integers(1, 2000),
)
def test_label_windows_of_fit_calibration_and_test_never_overlap(
    horizon, count, step, history, calibration, span
):
    chosen = params(horizon, count, step, history, calibration)
    first = AS_OF - timedelta(days=span - 1)
    per_gap = -(-horizon // step)
    enough = count >= 2 * per_gap + calibration and span >= required_history_days(chosen)
    if not enough:
        with pytest.raises(ChurnError):
            plan_cutoffs(first, AS_OF, chosen)
        return
    plan = plan_cutoffs(first, AS_OF, chosen)
    by_role = {
        role: [item for item in plan if item.role == role] for role in (FIT, CALIBRATION, TEST)
    }
    assert len(by_role[TEST]) == 1 and len(by_role[CALIBRATION]) == calibration and by_role[FIT]
    test = by_role[TEST][0]
    assert test.cutoff == max(item.cutoff for item in plan)
    assert all(item.label_end <= AS_OF for item in plan)
    assert all(item.cutoff >= first + timedelta(days=history) for item in plan)
    assert all(item.label_end <= test.cutoff for item in by_role[CALIBRATION])
    oldest_calibration = min(item.cutoff for item in by_role[CALIBRATION])
    assert all(item.label_end <= oldest_calibration for item in by_role[FIT])
    # a gap cutoff is one whose label window would overlap the next role's
    for item in plan:
        if item.role == GAP:
            assert item.label_end > test.cutoff or item.label_end > oldest_calibration


@settings(max_examples=100, deadline=None)
@given(span=st.integers(300, 2000))
def test_required_history_is_exact_for_the_default_spacing(span):
    chosen = params()
    first = AS_OF - timedelta(days=span - 1)
    if span >= required_history_days(chosen):
        assert plan_cutoffs(first, AS_OF, chosen)
    else:
        with pytest.raises(ChurnError):
            plan_cutoffs(first, AS_OF, chosen)
