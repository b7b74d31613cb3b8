"""Every feature's exact value on hand-built tables: window edges, same-day buys, refunds, NPS."""

from __future__ import annotations

import math
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from churn.config import EngineParams, FeaturesParams, parse_params
from churn.engine import open_duckdb
from churn.errors import ChurnError
from churn.features.build import open_inputs
from churn.features.definitions import feature_names
from support.features_tables import (
    CUTOFF,
    ENGINE,
    customers_frame,
    day,
    nps_frame,
    snapshot_at,
    transactions_frame,
)

# Customer A buys on window edges: t-365 (outside every window), t-364, t-180 (outside 180d and
# outside the "90 days before" trend window), t-90 (outside 90d, inside the trend's earlier
# window), t-30 (outside 30d), twice on t itself; one refund, one zero row, one purchase after t.
A_ROWS = [
    ("A", day(-365), 10.0),
    ("A", day(-364), 20.0),
    ("A", day(-180), 30.0),
    ("A", day(-90), 40.0),
    ("A", day(-30), 50.0),
    ("A", day(0), 5.0),
    ("A", day(0), 7.0),
    ("A", day(-15), -10.0),
    ("A", day(-10), 0.0),
    ("A", day(15), 25.0),
]
B_ROWS = [("B", day(-121), 100.0)]  # one purchase, in the trend's earlier window
REFUNDS_ONLY = [("C", day(-30), -20.0), ("C", day(-5), -5.0)]
LAPSED = [("D", day(-365), 15.0)]  # last purchase exactly active_within_days ago
JUST_ACTIVE = [("E", day(-364), 15.0)]
FUTURE_ONLY = [("F", day(3), 15.0)]
NO_SIGNUP_DATE = [("G", day(-2), 3.0)]


@pytest.fixture(scope="module")
def snapshot():
    transactions = transactions_frame(
        A_ROWS + B_ROWS + REFUNDS_ONLY + LAPSED + JUST_ACTIVE + FUTURE_ONLY + NO_SIGNUP_DATE
    )
    customers = customers_frame(
        [
            ("A", day(-400), "web", "north"),
            ("B", day(10), "app", "south"),  # signed up after the cutoff: unknown then
            ("D", day(-500), "store", "east"),
            ("G", None, "store", "west"),
        ]
    )
    nps = nps_frame(
        [
            ("A", day(-172), 9),
            ("A", day(0), 6),  # answered on the cutoff day: visible
            ("A", day(1), 10),  # answered after the cutoff: invisible
            ("B", day(-29), 8),
            ("B", day(-29), 7),  # same-day answers: the lower one counts as latest
        ]
    )
    return snapshot_at(transactions, customers=customers, nps=nps)


def row(snapshot, customer):
    return snapshot.loc[(customer, CUTOFF)]


def test_only_customers_with_a_purchase_in_the_active_window_are_eligible(snapshot):
    customers = set(snapshot.index.get_level_values("customer_id"))
    assert customers == {"A", "B", "E", "G"}  # not refunds-only C, lapsed D or future-only F


def test_regular_customer_recency_frequency_spend_and_tenure(snapshot):
    a = row(snapshot, "A")
    assert a["recency_days"] == 0
    assert a["tenure_days"] == 365
    assert a["purchases"] == 7
    assert a["purchase_days"] == 6  # two purchases on the cutoff day count once
    assert a["spend_total"] == pytest.approx(162.0)
    assert a["aov"] == pytest.approx(162.0 / 7)
    assert a["spend_max"] == pytest.approx(50.0)


def test_trailing_windows_exclude_their_lower_edge(snapshot):
    a = row(snapshot, "A")
    assert (a["purchases_30d"], a["spend_30d"]) == (2, pytest.approx(12.0))
    assert (a["purchases_90d"], a["spend_90d"]) == (3, pytest.approx(62.0))
    assert (a["purchases_180d"], a["spend_180d"]) == (4, pytest.approx(102.0))
    assert (a["purchases_365d"], a["spend_365d"]) == (6, pytest.approx(152.0))


def test_trends_compare_last_90_days_with_the_90_before(snapshot):
    a = row(snapshot, "A")
    assert a["purchases_trend"] == pytest.approx((3 - 1) / (3 + 1))
    assert a["spend_trend"] == pytest.approx((62 - 40) / (62 + 40))
    b = row(snapshot, "B")
    assert b["purchases_trend"] == pytest.approx(-1.0)
    assert b["spend_trend"] == pytest.approx(-1.0)
    e = row(snapshot, "E")
    assert pd.isna(e["purchases_trend"]) and pd.isna(e["spend_trend"])  # 0 vs 0


def test_gaps_use_distinct_purchase_dates(snapshot):
    a = row(snapshot, "A")
    gaps = [1, 184, 90, 60, 30]
    mean = sum(gaps) / len(gaps)
    std = math.sqrt(sum((g - mean) ** 2 for g in gaps) / (len(gaps) - 1))
    assert a["gap_mean_days"] == pytest.approx(73.0)
    assert a["gap_std_days"] == pytest.approx(std)
    assert a["gap_cv"] == pytest.approx(std / mean)
    assert a["gap_last_days"] == 30
    assert a["overdue_ratio"] == 0


def test_single_purchase_customer_has_no_gap_features(snapshot):
    b = row(snapshot, "B")
    assert (b["recency_days"], b["tenure_days"], b["purchases"], b["purchase_days"]) == (
        121,
        121,
        1,
        1,
    )
    for name in ("gap_mean_days", "gap_std_days", "gap_cv", "gap_last_days", "overdue_ratio"):
        assert pd.isna(b[name]), name
    assert (b["purchases_90d"], b["spend_90d"]) == (0, 0.0)
    assert b["recency_tenure_ratio"] == 1.0
    assert b["purchase_rate_365d"] == pytest.approx(30 / 122)
    assert pd.isna(b["aov_trend"])


def test_refunds_and_zero_rows_are_counted_but_never_purchases(snapshot):
    a = row(snapshot, "A")
    assert a["refunds"] == 1
    assert a["refund_share"] == pytest.approx(10.0 / 162.0)
    assert a["zero_amount_count"] == 1
    b = row(snapshot, "B")
    assert (b["refunds"], b["refund_share"], b["zero_amount_count"]) == (0, 0.0, 0)


def test_rate_and_ratio_features(snapshot):
    a = row(snapshot, "A")
    assert a["purchase_rate_365d"] == pytest.approx(5 * 30 / 365)
    assert a["recency_tenure_ratio"] == 0
    assert a["aov_trend"] == pytest.approx((62 / 3) / (162 / 7))
    weekdays = {d.weekday() for _, d, amount in A_ROWS if amount > 0 and d <= CUTOFF}
    assert a["weekday_count"] == len(weekdays) == 5
    assert row(snapshot, "B")["weekday_count"] == 1


def test_season_is_the_time_of_year_of_the_cutoff_for_every_customer(snapshot):
    # 2024-06-30 is day 182 of a leap year: angle = 2 pi 181 / 365.25, just before midsummer
    angle = 2 * math.pi * (CUTOFF.timetuple().tm_yday - 1) / 365.25
    assert CUTOFF.timetuple().tm_yday == 182
    assert snapshot["season_sin"].to_numpy() == pytest.approx([math.sin(angle)] * len(snapshot))
    assert snapshot["season_cos"].to_numpy() == pytest.approx([math.cos(angle)] * len(snapshot))
    # New Year's day is angle 0 at any cutoff year
    new_year = snapshot_at(transactions_frame([("A", date(2025, 1, 1), 5.0)]), date(2025, 1, 1))
    assert (new_year["season_sin"].iloc[0], new_year["season_cos"].iloc[0]) == (0.0, 1.0)


def test_season_features_are_optional():
    params = FeaturesParams(season=False)
    assert "season_sin" not in feature_names(params)
    frame = snapshot_at(transactions_frame(A_ROWS), CUTOFF, params=params)
    assert not {"season_sin", "season_cos"} & set(frame.columns)


def test_rhythm_features_compare_the_silence_with_the_longest_gap_before_the_cutoff():
    params = FeaturesParams(rhythm=True)
    assert {"gap_max_days", "recency_gap_max_ratio"} <= set(feature_names(params))
    assert "gap_max_days" not in feature_names(FeaturesParams(rhythm=False))
    # H's 140-day gap ends after the cutoff: invisible, so the longest gap is 10 days
    late_gap = [("H", day(-50), 5.0), ("H", day(-40), 5.0), ("H", day(100), 5.0)]
    frame = snapshot_at(transactions_frame(A_ROWS + B_ROWS + late_gap), CUTOFF, params=params)
    a, b, h = (frame.loc[(name, CUTOFF)] for name in "ABH")
    assert (a["gap_max_days"], a["recency_gap_max_ratio"]) == (184, 0)  # gaps 1, 184, 90, 60, 30
    assert (h["gap_max_days"], h["recency_gap_max_ratio"]) == (10, 4.0)
    assert pd.isna(b["gap_max_days"]) and pd.isna(b["recency_gap_max_ratio"])  # one purchase day


def test_customer_attributes_respect_signup_date(snapshot):
    a = row(snapshot, "A")
    assert (a["channel"], a["region"], a["signup_tenure_days"]) == ("web", "north", 400)
    b = row(snapshot, "B")  # signed up after the cutoff: unknown at the cutoff
    assert pd.isna(b["channel"]) and pd.isna(b["region"]) and pd.isna(b["signup_tenure_days"])
    e = row(snapshot, "E")  # missing from the customers table
    assert pd.isna(e["channel"]) and pd.isna(e["signup_tenure_days"])
    g = row(snapshot, "G")  # unknown signup date: attributes kept, signup tenure unknown
    assert (g["channel"], g["region"]) == ("store", "west") and pd.isna(g["signup_tenure_days"])


def test_nps_uses_answers_up_to_the_cutoff_only(snapshot):
    a = row(snapshot, "A")
    assert a["nps_latest"] == 6
    assert a["nps_class"] == "detractor"
    assert a["nps_trend"] == -3
    assert a["nps_days_since"] == 0
    assert a["nps_answers"] == 2
    b = row(snapshot, "B")
    assert (b["nps_latest"], b["nps_class"], b["nps_trend"]) == (7, "passive", -1)
    assert b["nps_days_since"] == 29
    e = row(snapshot, "E")
    assert pd.isna(e["nps_latest"]) and pd.isna(e["nps_class"]) and pd.isna(e["nps_answers"])


def test_nps_classes_follow_the_standard_bands():
    transactions = transactions_frame([(c, day(-1), 1.0) for c in "PQRS"])
    nps = nps_frame([("P", day(-2), 9), ("Q", day(-2), 8), ("R", day(-2), 7), ("S", day(-2), 0)])
    classes = snapshot_at(transactions, nps=nps)["nps_class"].droplevel("cutoff").to_dict()
    assert classes == {"P": "promoter", "Q": "passive", "R": "passive", "S": "detractor"}


def test_every_feature_is_checked_by_this_module():
    source = Path(__file__).read_text(encoding="utf-8")
    unchecked = [name for name in feature_names(FeaturesParams()) if f'"{name}"' not in source]
    assert unchecked == []


def test_labels_count_purchases_in_the_half_open_horizon():
    transactions = transactions_frame(
        [
            ("edge_in", day(-1), 5.0),
            ("edge_in", day(90), 5.0),  # t + H: inside the horizon
            ("edge_out", day(-1), 5.0),
            ("edge_out", day(91), 5.0),  # t + H + 1: outside
            ("same_day", day(0), 5.0),  # bought on t only: a feature, not a label purchase
            ("refund", day(-1), 5.0),
            ("refund", day(30), -5.0),  # refunds in the horizon are not purchases
            ("zero", day(-1), 5.0),
            ("zero", day(30), 0.0),
        ]
    )
    labels = snapshot_at(transactions, labelled=True)["churned"].droplevel("cutoff").to_dict()
    assert labels == {"edge_in": 0, "edge_out": 1, "same_day": 1, "refund": 1, "zero": 1}


def test_one_query_over_many_cutoffs_equals_one_query_per_cutoff():
    transactions = transactions_frame(A_ROWS + B_ROWS + JUST_ACTIVE + LAPSED)
    cutoffs = [day(-200), day(-90), day(0)]
    together = snapshot_at(transactions, cutoffs)
    alone = pd.concat([snapshot_at(transactions, cutoff) for cutoff in cutoffs])
    pd.testing.assert_frame_equal(together.drop(columns="role"), alone.drop(columns="role"))


def test_missing_column_names_the_table_column_and_fix():
    bad = transactions_frame(A_ROWS).drop_columns(["amount"])
    with pytest.raises(ChurnError, match="column 'amount' is missing.*churn ingest"):
        open_inputs(bad, customers_frame(), nps_frame(), open_duckdb(ENGINE))


def test_wrong_type_names_the_column_and_the_contract_type():
    table = transactions_frame(A_ROWS)
    bad = table.set_column(0, "customer_id", table["customer_id"].cast("large_string"))
    bad = bad.set_column(2, "date", table["timestamp"])
    with pytest.raises(ChurnError, match="column 'date' has type TIMESTAMP.*date32"):
        open_inputs(bad, customers_frame(), nps_frame(), open_duckdb(ENGINE))


def test_duplicate_customers_are_an_error_naming_the_customer():
    customers = customers_frame([("A", day(-5), "web", "x"), ("A", day(-4), "app", "y")])
    with pytest.raises(ChurnError, match="customer_id 'A' appears 2 times"):
        open_inputs(transactions_frame(A_ROWS), customers, nps_frame(), open_duckdb(ENGINE))


def test_invalid_memory_limit_is_an_error_naming_the_key():
    # params.yaml is checked first: the key is named before any stage runs
    with pytest.raises(ChurnError, match="engine = .*memory_limit 'lots': write it like 2GB"):
        parse_params({"engine": {"memory_limit": "lots"}})
    # and DuckDB's own refusal (a value past the check) still names the key
    with pytest.raises(ChurnError, match="engine.memory_limit = 'lots'"):
        open_duckdb(EngineParams.model_construct(memory_limit="lots", threads=1))


def test_customers_without_side_tables_get_null_attributes_same_schema():
    transactions = transactions_frame([("x", day(-3), 9.0), ("x", day(20), 9.0)])
    frame = snapshot_at(transactions, CUTOFF, customers=customers_frame(), nps=nps_frame())
    assert frame[["channel", "region", "nps_class"]].isna().all().all()
    assert frame["channel"].dtype == "string"
