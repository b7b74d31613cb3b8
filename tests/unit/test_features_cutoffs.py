"""Cutoff planning: the default plan, short histories, held-out customers, errors naming the fix."""

from __future__ import annotations

import logging
from datetime import date, timedelta

import pandas as pd
import pytest

from churn import columns as c
from churn.cutoffs import (
    BY_CUSTOMERS,
    BY_CUTOFF,
    CALIBRATION,
    FIT,
    GAP,
    IN_TIME,
    OUT_OF_TIME,
    TEST,
    assign_customer_roles,
    check_role_windows,
    evaluation_kind,
    minimum_history_days,
    out_of_time_history_days,
    plan_training,
    required_history_days,
)
from churn.errors import ChurnError
from support.cutoff_plans import AS_OF, params


def plan_for(days: int, **chosen):
    return plan_training(AS_OF - timedelta(days=days - 1), AS_OF, *params(**chosen))


def test_default_plan_has_twelve_cutoffs_thirty_days_apart_ending_a_horizon_before_as_of():
    plan = plan_training(date(2023, 1, 1), AS_OF, *params())
    cutoffs = plan.cutoffs
    assert len(cutoffs) == 12
    assert cutoffs[-1].cutoff == AS_OF - timedelta(days=90)
    assert {(b.cutoff - a.cutoff).days for a, b in zip(cutoffs, cutoffs[1:], strict=False)} == {30}
    roles = [item.role for item in cutoffs]
    assert roles == [FIT] * 6 + [GAP, GAP, CALIBRATION, GAP, GAP, TEST]
    assert (plan.evaluation, plan.calibration) == (OUT_OF_TIME, BY_CUTOFF)
    assert plan.windows == (30, 90, 180, 365) and plan.trend


def test_one_year_of_history_gives_fewer_cutoffs_and_says_so(caplog):
    with caplog.at_level(logging.WARNING, logger="churn"):
        plan = plan_for(365)
    assert [item.role for item in plan.cutoffs][-4:] == [CALIBRATION, GAP, GAP, TEST]
    assert plan.evaluation == OUT_OF_TIME and plan.calibration == BY_CUTOFF
    assert "training cutoffs fit in 365 days" in caplog.text


@pytest.mark.parametrize(("horizon", "days"), [(30, 90), (90, 150), (60, 120)])
def test_the_horizon_plus_sixty_days_trains_on_an_in_time_holdout(horizon, days, caplog):
    with caplog.at_level(logging.WARNING, logger="churn"):
        plan = plan_for(days, horizon=horizon, history=60)
    assert plan.evaluation == IN_TIME and plan.calibration == BY_CUSTOMERS
    assert [item.role for item in plan.cutoffs] == [FIT]
    assert plan.cutoffs[0].label_end == AS_OF
    assert "in-time holdout" in caplog.text
    # windows longer than the 60 days seen at the cutoff are left out, and said so
    assert plan.windows == (30,) and not plan.trend and plan.history_days == 60
    assert "feature windows [90, 180, 365]" in caplog.text


def test_below_the_minimum_the_error_says_how_much_more_history_is_needed():
    need = minimum_history_days(*params(history=60))
    assert need == 150
    plan_for(need, history=60)
    with pytest.raises(ChurnError, match=r"span 143 days.*at least 150 days.*supply 7 more days"):
        plan_for(143, history=60)


def test_the_regimes_switch_exactly_where_the_history_allows():
    chosen = {"history": 60}
    out_of_time = out_of_time_history_days(*params(**chosen))
    separate = required_history_days(*params(**chosen))
    assert out_of_time == 60 + 2 * 90 and separate == 60 + 90 + 6 * 30
    assert plan_for(out_of_time - 1, **chosen).evaluation == IN_TIME
    two = plan_for(out_of_time, **chosen)
    assert (two.evaluation, two.calibration) == (OUT_OF_TIME, BY_CUSTOMERS)
    roles = [item.role for item in two.cutoffs]
    assert roles[0] == FIT and roles[-1] == TEST
    fit_end = max(item.label_end for item in two.cutoffs if item.role == FIT)
    assert fit_end <= two.cutoffs[-1].cutoff  # out of time: the test windows start after
    assert plan_for(separate - 1, **chosen).calibration == BY_CUSTOMERS
    assert plan_for(separate, **chosen).calibration == BY_CUTOFF


def test_kept_windows_are_covered_by_the_history_of_every_cutoff():
    for days in (150, 200, 300, 400, 546, 800):
        plan = plan_for(days, history=60)
        first = AS_OF - timedelta(days=days - 1)
        seen = min((item.cutoff - first).days + 1 for item in plan.cutoffs)
        assert seen == plan.history_days
        assert all(w <= seen for w in plan.windows)
        assert plan.trend == (seen >= 180)


def test_too_few_cutoffs_for_three_roles_falls_back_to_held_out_calibration():
    plan = plan_training(date(2020, 1, 1), AS_OF, *params(count=4))
    assert (plan.evaluation, plan.calibration) == (OUT_OF_TIME, BY_CUSTOMERS)


def _rows(plan, customers=400):
    ids = [f"c{i:04d}" for i in range(customers)]
    return pd.DataFrame(
        {
            c.CUSTOMER_ID: pd.array([i for _ in plan.cutoffs for i in ids], dtype="string"),
            c.CUTOFF: [item.cutoff for item in plan.cutoffs for _ in ids],
            c.ROLE: pd.array([item.role for item in plan.cutoffs for _ in ids], dtype="string"),
        }
    )


def test_in_time_holdout_customers_are_held_out_at_every_cutoff_and_stable():
    plan = plan_for(200, history=60, step=20)
    assert plan.evaluation == IN_TIME and len(plan.cutoffs) == 2
    rows = assign_customer_roles(_rows(plan), plan)
    by_role = {
        role: set(rows.loc[rows[c.ROLE] == role, c.CUSTOMER_ID])
        for role in (FIT, CALIBRATION, TEST)
    }
    assert all(by_role.values())
    assert not (by_role[FIT] & by_role[TEST]) and not (by_role[FIT] & by_role[CALIBRATION])
    assert not (by_role[TEST] & by_role[CALIBRATION])
    newest = max(item.cutoff for item in plan.cutoffs)
    assert set(rows.loc[rows[c.ROLE] == TEST, c.CUTOFF]) == {newest}
    assert 0.1 < len(by_role[TEST]) / 400 < 0.3
    # the same customers are held out whatever else is in the data
    fewer = assign_customer_roles(_rows(plan, 200), plan)
    assert set(fewer.loc[fewer[c.ROLE] == TEST, c.CUSTOMER_ID]) == {
        i for i in by_role[TEST] if int(i[1:]) < 200
    }
    check_role_windows(rows.assign(**{c.CHURNED: 0}), 90)
    assert evaluation_kind(rows[c.CUTOFF], rows[c.ROLE], 90) == IN_TIME


def test_overlapping_windows_that_share_a_customer_are_refused():
    plan = plan_for(200, history=60)
    rows = assign_customer_roles(_rows(plan), plan)
    leaked = rows.copy()
    first_test = leaked.index[leaked[c.ROLE] == TEST][0]
    fit_customer = leaked.loc[leaked[c.ROLE] == FIT, c.CUSTOMER_ID].iloc[0]
    leaked.loc[first_test, c.CUSTOMER_ID] = fit_customer
    with pytest.raises(ChurnError, match="share 1 customer"):
        check_role_windows(leaked, 90)


def test_roles_are_the_same_when_applied_batch_by_batch():
    # the features stage streams its rows and applies the roles per batch; a batch holding only
    # older cutoffs must still know which fit cutoff is the newest (from the plan)
    plan = plan_for(200, history=60, step=20)
    rows = _rows(plan)
    whole = assign_customer_roles(rows, plan)
    ordered = rows.sort_values(c.CUTOFF, kind="stable")
    batches = [ordered.iloc[start : start + 97] for start in range(0, len(ordered), 97)]
    assert any(part[c.CUTOFF].nunique() == 1 for part in batches)
    streamed = pd.concat([assign_customer_roles(part, plan) for part in batches]).loc[whole.index]
    assert streamed[c.ROLE].tolist() == whole[c.ROLE].tolist()
