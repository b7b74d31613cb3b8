"""Retention figures per period, checked against a small example computed by hand.

The example (active_within_days = 40, months January to April 2024, as of 30 April):

    001  buys 10 Jan (20), 5 Feb (30)                    active 10 Jan .. 15 Mar -> lost in March
    002  buys 20 Jan (50), refund 25 Jan (-10)           active 20 Jan .. 28 Feb -> lost in February
         buys again 15 Apr (40)                          more than 40 days later -> won back in April
    003  buys 10 Feb (15) and 20 Feb (25)                active 10 Feb .. 30 Mar -> lost in March
    004  buys 31 Mar (60)                                new on the last day of March
    005  only a refund on 2 Feb (-5): bought before the data began, never a purchase here
    006  buys 8 on 15 Jan, 10 Feb, 10 Mar, 10 Apr         active throughout
    007  buys 20 Apr (100)                               new in April

A zero-amount row of 006 on 30 April only says the data runs to the as-of date (churn.as_of may
not lie after the last transaction date).

Active at the end of: Dec {} | Jan {001 002 006} | Feb {001 003 006} | Mar {004 006}
                      | Apr {002 004 006 007}
"""

from __future__ import annotations

from datetime import date

import duckdb
import pandas as pd
import pytest

from churn.errors import ChurnError
from churn.report import build_report
from churn.report.activity import DuckDBAggregates
from support.report_data import EXAMPLE_SETTINGS, report_for, report_settings, transactions_frame

D = date
EXAMPLE = [
    ("001", D(2024, 1, 10), 20.0),
    ("001", D(2024, 2, 5), 30.0),
    ("002", D(2024, 1, 20), 50.0),
    ("002", D(2024, 1, 25), -10.0),
    ("002", D(2024, 4, 15), 40.0),
    ("003", D(2024, 2, 10), 15.0),
    ("003", D(2024, 2, 20), 25.0),
    ("004", D(2024, 3, 31), 60.0),
    ("005", D(2024, 2, 2), -5.0),
    ("006", D(2024, 1, 15), 8.0),
    ("006", D(2024, 2, 10), 8.0),
    ("006", D(2024, 3, 10), 8.0),
    ("006", D(2024, 4, 10), 8.0),
    ("007", D(2024, 4, 20), 100.0),
    ("006", D(2024, 4, 30), 0.0),  # not a purchase: the export runs to 30 April (churn.as_of)
]
NPS_ANSWERS = [
    ("001", D(2024, 1, 12), 3),  # detractor before March: counts for March, when 001 is lost
    ("006", D(2024, 1, 20), 10),  # promoter
    ("003", D(2024, 2, 29), 9),  # promoter, answered the day before March: counts for March
    ("002", D(2024, 2, 10), 7),  # passive, but 002 is never active at a later period start
    ("006", D(2024, 3, 5), 8),  # passive: replaces 006's promoter answer from April on
    ("004", D(2024, 4, 2), 10),  # given after April began: not used for April's churn
]


@pytest.fixture(scope="module")
def example():
    nps = pd.DataFrame(NPS_ANSWERS, columns=["customer_id", "answered_at", "nps_score"])
    return report_for(EXAMPLE, nps=nps)


def column(report, name):
    return report.periods.set_index("period")[name].to_dict()


def test_customer_counts_per_month_match_the_hand_computed_example(example):
    assert column(example, "customers_start") == {
        "Jan 2024": 0,
        "Feb 2024": 3,
        "Mar 2024": 3,
        "Apr 2024": 2,
    }
    assert column(example, "customers_new") == {
        "Jan 2024": 3,
        "Feb 2024": 1,
        "Mar 2024": 1,
        "Apr 2024": 2,
    }
    assert column(example, "customers_won_back") == {
        "Jan 2024": 0,
        "Feb 2024": 0,
        "Mar 2024": 0,
        "Apr 2024": 1,
    }
    assert column(example, "customers_lost") == {
        "Jan 2024": 0,
        "Feb 2024": 1,
        "Mar 2024": 2,
        "Apr 2024": 0,
    }
    assert column(example, "customers_end") == {
        "Jan 2024": 3,
        "Feb 2024": 3,
        "Mar 2024": 2,
        "Apr 2024": 4,
    }


def test_retention_rate_subtracts_new_customers_before_dividing_by_customers_at_start(example):
    # April: CS = 2 (004, 006), CN = 2 (002 won back, 007 new), CE = 4.
    # Retention = (4 - 2) / 2 x 100 = 100 %, not CE / CS = 200 %.
    rates = column(example, "retention_rate_pct")
    assert rates["Apr 2024"] == 100.0
    assert rates["Feb 2024"] == 66.67  # (3 - 1) / 3
    assert rates["Mar 2024"] == 33.33  # (2 - 1) / 3
    assert pd.isna(rates["Jan 2024"])  # nobody at the start: undefined, not 0 or 100


def test_churn_rate_is_lost_over_customers_at_start(example):
    assert column(example, "churn_rate_pct") == pytest.approx(
        {"Jan 2024": float("nan"), "Feb 2024": 33.33, "Mar 2024": 66.67, "Apr 2024": 0.0},
        nan_ok=True,
    )


def test_sales_figures_per_month_match_the_hand_computed_example(example):
    assert column(example, "orders") == {
        "Jan 2024": 3,
        "Feb 2024": 4,
        "Mar 2024": 2,
        "Apr 2024": 3,
    }
    assert column(example, "gross_sales") == {
        "Jan 2024": 78.0,
        "Feb 2024": 78.0,
        "Mar 2024": 68.0,
        "Apr 2024": 148.0,
    }
    assert column(example, "refunds") == {
        "Jan 2024": -10.0,
        "Feb 2024": -5.0,
        "Mar 2024": 0.0,
        "Apr 2024": 0.0,
    }
    assert column(example, "revenue") == {
        "Jan 2024": 68.0,
        "Feb 2024": 73.0,
        "Mar 2024": 68.0,
        "Apr 2024": 148.0,
    }
    assert column(example, "aov") == {
        "Jan 2024": 26.0,  # 78 / 3: refunds are not orders
        "Feb 2024": 19.5,
        "Mar 2024": 34.0,
        "Apr 2024": 49.33,
    }


def test_revenue_splits_into_new_and_returning_customers(example):
    # February: 003 is new (15 + 25); 001 (30), 006 (8) and 005's refund (-5) are returning.
    assert column(example, "revenue_new") == {
        "Jan 2024": 68.0,
        "Feb 2024": 40.0,
        "Mar 2024": 60.0,
        "Apr 2024": 100.0,
    }
    assert column(example, "revenue_returning") == {
        "Jan 2024": 0.0,
        "Feb 2024": 33.0,
        "Mar 2024": 8.0,
        "Apr 2024": 48.0,
    }


def test_repeat_purchase_rate_counts_earlier_buyers_and_several_purchases_in_the_month(example):
    # February: 001 and 006 bought before, 003 bought twice in February -> 3 of 3.
    # March: 006 yes, 004 (first and only purchase) no -> 1 of 2.
    assert column(example, "buyers") == {
        "Jan 2024": 3,
        "Feb 2024": 3,
        "Mar 2024": 2,
        "Apr 2024": 3,
    }
    assert column(example, "repeat_purchase_rate_pct") == {
        "Jan 2024": 0.0,
        "Feb 2024": 100.0,
        "Mar 2024": 50.0,
        "Apr 2024": 66.67,
    }


def test_months_with_less_history_than_the_activity_window_are_marked_warm_up(example):
    # data starts 10 Jan; 10 Jan + 40 days = 19 Feb: months starting before it warm up
    assert column(example, "warm_up") == {
        "Jan 2024": True,
        "Feb 2024": True,
        "Mar 2024": False,
        "Apr 2024": False,
    }


def test_nps_per_month_is_promoters_minus_detractors_among_that_months_answers(example):
    assert column(example, "nps_answers") == {
        "Jan 2024": 2,
        "Feb 2024": 2,
        "Mar 2024": 1,
        "Apr 2024": 1,
    }
    assert column(example, "nps") == {
        "Jan 2024": 0.0,  # one promoter, one detractor
        "Feb 2024": 50.0,  # one promoter, one passive
        "Mar 2024": 0.0,  # one passive
        "Apr 2024": 100.0,  # one promoter
    }


def test_churn_by_nps_group_uses_the_latest_answer_given_before_each_month(example):
    # March (settled): 001 detractor, lost; 003 promoter, lost; 006 promoter, stays.
    # April (settled): 006 now passive (5 Mar answer), stays; 004 answered only on 2 Apr.
    groups = example.churn_by_nps.set_index("nps_group")
    assert groups["customers_start"].to_dict() == {
        "promoter": 2,
        "passive": 1,
        "detractor": 1,
        "no answer yet": 1,
    }
    assert groups["customers_lost"].to_dict() == {
        "promoter": 1,
        "passive": 0,
        "detractor": 1,
        "no answer yet": 0,
    }
    assert groups["churn_rate_pct"].to_dict() == {
        "promoter": 50.0,
        "passive": 0.0,
        "detractor": 100.0,
        "no answer yet": 0.0,
    }


def test_cohort_matrix_matches_the_hand_computed_example(example):
    cells = example.cohorts.set_index(["cohort", "periods_since_first"])
    assert cells["customers"].to_dict() == {
        ("Jan 2024", 0): 3,  # 001 002 006
        ("Jan 2024", 1): 2,  # 001 006 bought in February
        ("Jan 2024", 2): 1,  # 006
        ("Jan 2024", 3): 2,  # 002 006
        ("Feb 2024", 0): 1,  # 003
        ("Feb 2024", 1): 0,
        ("Feb 2024", 2): 0,
        ("Mar 2024", 0): 1,  # 004
        ("Mar 2024", 1): 0,
        ("Apr 2024", 0): 1,  # 007; 005 never purchased, so it is in no cohort
    }
    assert cells.loc["Jan 2024", "retention_pct"].tolist() == [100.0, 66.67, 33.33, 66.67]
    assert cells.loc["Jan 2024", "cohort_size"].unique().tolist() == [3]


def test_a_customer_who_lapses_and_returns_inside_one_month_counts_as_retained():
    # active_within_days 31: 008 is active until 9 Mar, lapses, buys again on 20 Mar.
    rows = [("008", D(2024, 1, 1), 5.0), ("008", D(2024, 2, 8), 5.0), ("008", D(2024, 3, 20), 5.0)]
    rows.append(("008", D(2024, 3, 31), 0.0))  # not a purchase: the data runs to as_of
    report = report_for(rows, report_settings(active_within_days=31, as_of=D(2024, 3, 31)))
    march = report.periods.set_index("period").loc["Mar 2024"]
    assert (march["customers_start"], march["customers_new"], march["customers_lost"]) == (1, 0, 0)
    assert march["retention_rate_pct"] == 100.0


def test_the_current_unfinished_month_is_left_out():
    rows = [("001", D(2024, 1, 10), 5.0), ("001", D(2024, 2, 10), 5.0)]
    report = report_for(rows, report_settings(active_within_days=40))  # as_of = 10 Feb
    assert report.periods["period"].tolist() == ["Jan 2024"]


def test_transactions_after_as_of_are_ignored():
    rows = [*EXAMPLE, ("009", D(2024, 5, 3), 999.0), ("001", D(2024, 5, 3), 1.0)]
    later = report_for(rows)
    pd.testing.assert_frame_equal(later.periods, report_for(EXAMPLE).periods)


def test_quarterly_periods_aggregate_the_same_transactions():
    # A quarter needs a window of at least 92 days. With 92 days 002's gap (86 days) is no lapse,
    # and 004 (31 Mar + 91 days = 30 Jun) is still active on the last day of Q2.
    settings = report_settings(active_within_days=92, period="quarter", as_of=D(2024, 6, 30))
    rows = [*EXAMPLE, ("006", D(2024, 6, 30), 0.0)]  # not a purchase: the data runs to as_of
    q1, q2 = report_for(rows, settings).periods.itertuples(index=False)
    assert (q1.customers_start, q1.customers_new, q1.customers_lost, q1.customers_end) == (
        0,
        5,
        0,
        5,
    )
    assert (q2.customers_start, q2.customers_new, q2.customers_lost, q2.customers_end) == (
        5,
        1,
        2,
        4,
    )
    assert q2.retention_rate_pct == 60.0  # (4 - 1) / 5
    assert q1.revenue + q2.revenue == pytest.approx(68 + 73 + 68 + 148)


def test_missing_amount_column_is_an_error_naming_the_column():
    con = duckdb.connect()
    frame = transactions_frame(EXAMPLE).drop(columns="amount")
    with pytest.raises(ChurnError, match="column 'amount' is missing"):
        build_report(DuckDBAggregates(con), con.from_df(frame), *EXAMPLE_SETTINGS)


def test_numeric_customer_ids_are_an_error():
    con = duckdb.connect()
    frame = transactions_frame(EXAMPLE).astype({"customer_id": "int64"})
    with pytest.raises(ChurnError, match="customer_id' has type BIGINT"):
        build_report(DuckDBAggregates(con), con.from_df(frame), *EXAMPLE_SETTINGS)


def test_timestamps_in_the_date_column_are_an_error_with_the_fix():
    con = duckdb.connect()
    frame = transactions_frame(EXAMPLE).assign(date=lambda f: pd.to_datetime(f["date"]))
    with pytest.raises(ChurnError, match="'date' has type TIMESTAMP.*expected DATE"):
        build_report(DuckDBAggregates(con), con.from_df(frame), *EXAMPLE_SETTINGS)


def test_data_shorter_than_one_period_is_an_error_suggesting_a_shorter_period():
    rows = [("001", D(2024, 1, 10), 5.0), ("001", D(2024, 1, 20), 5.0)]
    with pytest.raises(ChurnError, match="no complete month; choose a shorter report.period"):
        report_for(rows, report_settings(active_within_days=40))


def test_an_activity_window_shorter_than_a_period_is_rejected_by_the_params():
    from churn.config import parse_params

    with pytest.raises(ChurnError, match="churn.active_within_days = 30 is shorter than a month"):
        parse_params({"churn": {"active_within_days": 30}})
