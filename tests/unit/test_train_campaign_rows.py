"""The risk model never learns from labels a campaign may have changed."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from churn.training_rows import campaign_contacted_rows, exclude_campaign_contacts


def _snapshots():
    cutoffs = [dt.date(2025, 1, 1), dt.date(2025, 4, 1), dt.date(2025, 7, 1)]
    return pd.DataFrame(
        {
            "customer_id": pd.array(["a", "a", "a", "b", "c"], dtype="string"),
            "cutoff": [cutoffs[0], cutoffs[1], cutoffs[2], cutoffs[1], cutoffs[1]],
            "role": ["fit", "fit", "test", "fit", "fit"],
            "churned": [0, 1, 0, 1, 0],
            "recency_days": [1, 2, 3, 4, 5],
        }
    )


def _contacted(customer="a", list_date=dt.date(2025, 3, 1)):
    return pd.DataFrame(
        {
            "customer_id": pd.array([customer], dtype="string"),
            "list_id": ["w1"],
            "list_date": [list_date],
            "horizon_days": [90],
        }
    )


def test_rows_whose_label_window_overlaps_a_treated_campaign_are_flagged():
    flags = campaign_contacted_rows(_snapshots(), _contacted(), 90)
    # a's list of 1 March contacts in (1 Mar, 30 May]: it overlaps the label windows of the
    # 1 January cutoff (ends 1 April) and of 1 April, not that of 1 July
    assert flags.tolist() == [True, True, False, False, False]


def test_windows_that_only_touch_do_not_overlap():
    # the list's window (1 Jan - 90 days, 1 Jan] ends where the 1 January label window starts
    flags = campaign_contacted_rows(_snapshots(), _contacted(list_date=dt.date(2024, 10, 3)), 90)
    assert not flags.any()


def test_control_and_never_listed_customers_stay_and_the_exclusion_is_counted():
    kept, summary = exclude_campaign_contacts(_snapshots(), _contacted(), 90)
    assert kept["customer_id"].tolist() == ["a", "b", "c"]
    assert summary["rows_excluded"] == 2 and summary["customers_excluded"] == 1
    assert summary["rows_excluded_by_role"] == {"fit": 2}
    same, none = exclude_campaign_contacts(_snapshots(), None, 90)
    assert len(same) == 5 and none == {"campaign_table": False, "rows_excluded": 0}
