"""Uplift targeting: the campaign-row check, metrics, policies and the gate's data minimum."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from churn.config import UpliftParams, parse_params
from churn.errors import ChurnError
from churn.uplift.data import campaign_feature_columns, check_campaign_rows
from churn.uplift.gate import NOT_ENOUGH, USE_RISK_VALUE, run_uplift_gate, split_campaigns
from churn.uplift.policy import choose_actions, choose_contacts, risk_value_list, uplift_list
from churn.uplift.qini import (
    ipw_incremental_profit,
    qini_coefficient,
    qini_curve,
    uplift_at_k,
)


def _rows(campaigns: int = 2, per_campaign: int = 4) -> pd.DataFrame:
    frames = []
    for number in range(campaigns):
        start = pd.Timestamp("2024-01-01") + pd.Timedelta(days=60 * number)
        frames.append(
            pd.DataFrame(
                {
                    "customer_id": [f"{i:05d}" for i in range(per_campaign)],
                    "campaign_id": f"list-{number}",
                    "campaign_date": start,
                    "label_end": start + pd.Timedelta(days=90),
                    "treated": [1, 0] * (per_campaign // 2),
                    "control_share": 0.5,
                    "retained": [1, 1, 0, 0][:per_campaign] * (per_campaign // 4 or 1),
                    "expected_value": 100.0,
                    "churn_probability": 0.5,
                    "recency_days": np.arange(per_campaign, dtype=float),
                    "channel": ["web", "app"] * (per_campaign // 2),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


# --------------------------------------------------------------------------- campaign rows
def test_campaign_rows_are_typed_and_features_are_the_other_columns():
    rows = check_campaign_rows(_rows())
    assert rows["customer_id"].iloc[0] == "00000"
    assert rows["treated"].dtype == "int8"
    assert campaign_feature_columns(rows) == ["recency_days", "channel"]


@pytest.mark.parametrize(
    ("column", "value", "expected"),
    [
        ("treated", 2, "column 'treated' must be 0 or 1; 1 row(s) (first: row 3, value 2)"),
        ("retained", None, "column 'retained' must be 0 or 1"),
        ("control_share", 0.0, "column 'control_share' must be a number in (0.0, 1.0)"),
        ("churn_probability", 1.5, "column 'churn_probability' must be a number in [0.0, 1.0]"),
        ("expected_value", -1.0, "column 'expected_value' must be a number in [0.0, inf]"),
        ("label_end", "not a date", "column 'label_end' must be a date"),
    ],
)
def test_bad_campaign_values_name_column_row_and_value(column, value, expected):
    rows = _rows()
    rows[column] = rows[column].astype(object)
    rows.loc[2, column] = value
    with pytest.raises(ChurnError, match=re.escape(f"campaigns.parquet: {expected}")):
        check_campaign_rows(rows, "campaigns.parquet")


def test_missing_columns_and_repeated_customers_are_refused():
    with pytest.raises(ChurnError, match=r"column\(s\) \['retained'\] missing"):
        check_campaign_rows(_rows().drop(columns="retained"))
    repeated = pd.concat([_rows(1), _rows(1).head(1)], ignore_index=True)
    with pytest.raises(ChurnError, match="1 repeated"):
        check_campaign_rows(repeated)


def test_a_campaign_with_two_control_shares_is_refused():
    rows = _rows(1)
    rows.loc[0, "control_share"] = 0.2
    with pytest.raises(ChurnError, match="campaign 'list-0' has more than one"):
        check_campaign_rows(rows)


# --------------------------------------------------------------------------- metrics
def test_qini_curve_counts_incremental_responders_best_first():
    outcome = np.array([1, 0, 1, 0])
    treated = np.array([1, 1, 0, 0])
    score = np.array([0.9, 0.8, 0.7, 0.6])
    x, y = qini_curve(outcome, score, treated)
    # top 1: 1 treated responder; top 2: still 1; top 3: 1 - 1 x (2/1) = -1; all: 1 - 1 x 2/2 = 0
    assert x.tolist() == [0, 1, 2, 3, 4]
    assert y.tolist() == [0, 1, 1, -1, 0]


def test_qini_coefficient_is_one_for_the_perfect_order_and_minus_for_the_reverse():
    outcome = np.array([1, 0, 0, 1, 1, 0])
    treated = np.array([1, 1, 0, 0, 1, 0])
    perfect = outcome * treated - outcome * (1 - treated)
    assert qini_coefficient(outcome, perfect, treated) == pytest.approx(1.0)
    assert qini_coefficient(outcome, -perfect, treated) < 0
    assert qini_coefficient(outcome, perfect, np.ones(6)) is None


def test_uplift_at_k_is_treated_minus_control_rate_in_the_top_share():
    outcome = np.array([1, 0, 1, 1, 0, 0])
    treated = np.array([1, 0, 1, 0, 1, 0])
    score = np.array([6, 5, 4, 3, 2, 1])
    # top 4: treated 1,1 -> 1.0; control 0,1 -> 0.5
    assert uplift_at_k(outcome, score, treated, 4 / 6) == pytest.approx(0.5)
    assert uplift_at_k(outcome, score, treated, 1 / 6) is None  # no control in the top 1


def test_ipw_profit_weights_each_arm_by_its_assignment_probability():
    profit = ipw_incremental_profit(
        retained=np.array([1, 1, 0]),
        treated=np.array([1, 0, 0]),
        control_share=np.array([0.2, 0.2, 0.2]),
        value=np.array([80.0, 80.0, 80.0]),
        contact_cost=5.0,
    )
    assert profit.tolist() == pytest.approx([80 / 0.8 - 5, -80 / 0.2 - 5, -5])
    augmented = ipw_incremental_profit(
        np.array([1, 0]),
        np.array([1, 0]),
        np.array([0.5, 0.5]),
        np.array([10.0, 10.0]),
        1.0,
        retention_control=np.array([0.5, 0.5]),
        retention_treated=np.array([0.7, 0.7]),
    )
    # m1 - m0 + T (y - m1) / e - C (y - m0) / (1 - e)
    assert augmented.tolist() == pytest.approx(
        [(0.2 + 0.3 / 0.5) * 10 - 1, (0.2 + 0.5 / 0.5) * 10 - 1]
    )


# --------------------------------------------------------------------------- policies
def test_uplift_list_never_holds_customers_a_contact_pushes_away():
    uplift = np.array([0.3, -0.2, 0.05, -0.01])
    value = np.array([10.0, 1000.0, 100.0, 50.0])
    chosen = uplift_list(uplift, value, 1.0, 3, np.array(["a", "b", "c", "d"]))
    assert chosen.tolist() == [True, False, True, False]


def test_risk_value_list_takes_the_highest_value_at_risk_ties_by_id():
    chosen = risk_value_list(
        np.array([0.5, 0.5, 0.9]), np.array([10.0, 10.0, 1.0]), 1, np.array(["b", "a", "c"])
    )
    assert chosen.tolist() == [False, True, False]


def test_contacts_are_profitable_covered_customers_plus_seeded_exploration():
    candidates = pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(8)],
            "expected_value": [100.0] * 8,
            "covered": [True, True, True, True, False, False, False, False],
        }
    )
    uplift = np.array([0.2, 0.01, -0.1, 0.1, 0.5, 0.5, 0.5, 0.5])
    chosen = choose_contacts(candidates, uplift, 5.0, None, 0.5, seed=3)
    # c1's profit is 0.01 x 100 - 5 < 0, c2 is pushed away; outside the covered ones, 1 explored
    assert chosen.loc[chosen["covered"], "contact"].tolist() == [True, False, False, True]
    assert int(chosen["explore"].sum()) == 1
    assert not chosen.loc[chosen["covered"], "explore"].any()
    again = choose_contacts(candidates.iloc[::-1], uplift[::-1], 5.0, None, 0.5, seed=3)
    assert set(again.loc[again["explore"], "customer_id"]) == set(
        chosen.loc[chosen["explore"], "customer_id"]
    )
    none = choose_contacts(candidates, uplift, 5.0, None, 0.0, seed=3)
    assert not none["explore"].any()
    capped = choose_contacts(candidates, uplift, 5.0, 1, 0.0, seed=3)
    assert capped.loc[capped["contact"], "customer_id"].tolist() == ["c0"]


def test_actions_by_profit_only_when_assigned_at_random():
    by_action = {
        "any": np.array([0.1, 0.1]),
        "call": np.array([0.2, 0.0]),
        "offer": np.array([0.05, 0.3]),
    }
    value = np.array([100.0, 100.0])
    actions, uplift = choose_actions(by_action, value, 5.0, np.array(["offer", "call"]), True)
    assert actions.tolist() == ["call", "offer"]
    assert uplift.tolist() == [0.2, 0.3]
    actions, uplift = choose_actions(by_action, value, 5.0, np.array(["offer", "call"]), False)
    assert actions.tolist() == ["offer", "call"]
    assert uplift.tolist() == [0.1, 0.1]


# --------------------------------------------------------------------------- gate minimum
def test_split_holds_out_the_newest_and_trains_on_label_windows_ending_before_them():
    rows = check_campaign_rows(_rows(campaigns=5))  # every 60 days, 90-day windows
    split = split_campaigns(rows, 0.25)
    # newest 2 held out (list-3 starts day 180); list-2 (day 120, ends 210) overlaps it: unused
    assert split.holdout == ["list-3", "list-4"]
    assert split.training == ["list-0", "list-1"]


def test_gate_keeps_risk_value_with_too_few_campaigns_and_says_why():
    rows = check_campaign_rows(_rows(campaigns=3))
    outcome = run_uplift_gate(rows, UpliftParams(), 5.0)
    assert outcome.report["policy_in_use"] == USE_RISK_VALUE
    assert outcome.report["reason"].startswith(f"{NOT_ENOUGH}: 3 matured randomized campaign(s)")
    assert outcome.report["comparison"] is None


def test_gate_keeps_risk_value_with_too_few_control_customers():
    rows = check_campaign_rows(_rows(campaigns=8))
    outcome = run_uplift_gate(rows, UpliftParams(min_control_rows=300), 5.0)
    assert "training campaigns hold" in outcome.report["reason"]
    assert "uplift.min_control_rows" in outcome.report["reason"]


def test_uplift_params_are_validated_like_the_others():
    with pytest.raises(ChurnError, match="uplift.exploration_share"):
        parse_params({"uplift": {"exploration_share": 0.9}})
    with pytest.raises(ChurnError, match="uplift.min_campain: unknown key.*min_campaigns"):
        parse_params({"uplift": {"min_campain": 4}})
