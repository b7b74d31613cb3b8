"""Cutoff planning for any params (hypothesis): label windows of fit, calibration and test never overlap."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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
    enough = count >= 2 * per_gap + calibration and span >= required_history_days(*chosen)
    if not enough:
        with pytest.raises(ChurnError):
            plan_cutoffs(first, AS_OF, *chosen)
        return
    plan = plan_cutoffs(first, AS_OF, *chosen)
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
    if span >= required_history_days(*chosen):
        assert plan_cutoffs(first, AS_OF, *chosen)
    else:
        with pytest.raises(ChurnError):
            plan_cutoffs(first, AS_OF, *chosen)
