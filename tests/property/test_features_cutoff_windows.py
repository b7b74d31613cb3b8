"""Cutoff planning for any params (hypothesis): every plan keeps label windows apart or customers apart."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from churn.cutoffs import (
    BY_CUTOFF,
    CALIBRATION,
    FIT,
    GAP,
    IN_TIME,
    TEST,
    minimum_history_days,
    plan_training,
    windows_overlap,
)
from churn.errors import ChurnError
from support.cutoff_plans import AS_OF, params


@settings(max_examples=300, deadline=None)
@given(
    horizon=st.integers(1, 120),
    count=st.integers(1, 30),
    step=st.integers(1, 90),
    history=st.integers(1, 200),
    calibration=st.integers(1, 3),
    span=st.integers(1, 2000),
)
def test_any_history_from_the_minimum_gets_a_plan_whose_roles_never_share_outcomes(
    horizon, count, step, history, calibration, span
):
    chosen = params(horizon, count, step, history, calibration)
    first = AS_OF - timedelta(days=span - 1)
    if span < minimum_history_days(*chosen):
        with pytest.raises(ChurnError, match="more days of history"):
            plan_training(first, AS_OF, *chosen)
        return
    plan = plan_training(first, AS_OF, *chosen)
    cutoffs = plan.cutoffs
    assert cutoffs and len(cutoffs) <= count
    assert all(item.label_end <= AS_OF for item in cutoffs)
    assert all((item.cutoff - first).days + 1 >= history for item in cutoffs)
    seen = min((item.cutoff - first).days + 1 for item in cutoffs)
    assert seen == plan.history_days and all(w <= seen for w in plan.windows)
    by_role = {
        role: [i.cutoff for i in cutoffs if i.role == role]
        for role in (FIT, CALIBRATION, TEST, GAP)
    }
    assert by_role[FIT]
    if plan.evaluation == IN_TIME:
        # customers, not dates, are held out: every cutoff is a fit cutoff before the hash split
        assert not by_role[TEST] and not by_role[CALIBRATION]
        return
    (test,) = by_role[TEST]
    assert test == max(item.cutoff for item in cutoffs)
    trained = by_role[FIT] + by_role[CALIBRATION]
    assert not windows_overlap(min(trained), max(trained), test, test, horizon)
    if plan.calibration == BY_CUTOFF:
        assert len(by_role[CALIBRATION]) == calibration
        assert not windows_overlap(
            min(by_role[FIT]),
            max(by_role[FIT]),
            min(by_role[CALIBRATION]),
            max(by_role[CALIBRATION]),
            horizon,
        )
    else:
        assert not by_role[CALIBRATION]
