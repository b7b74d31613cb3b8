"""Reason phrases: each compares a value with a reference and speaks only when it is worse."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churn.score.phrasing import Customer, build_references, phrase_feature

BANDS = [90, 365, 730]


def _peers() -> pd.DataFrame:
    # three customers like them (tenure 365-730 days) and two long-standing ones
    return pd.DataFrame(
        {
            "tenure_days": [400, 500, 600, 1000, 1200],
            "recency_days": [10, 20, 30, 300, 300],
            "gap_last_days": [10.0, 12.0, 14.0, 50.0, 50.0],
            "gap_cv": [0.4, 0.5, 0.6, 2.0, 2.0],
            "purchase_rate_365d": [1.0, 1.2, 1.4, 0.1, 0.1],
            "spend_90d": [200.0, 300.0, 400.0, 0.0, 0.0],
            "refunds": [0, 0, 1, 5, 5],
            "weekday_count": [3, 4, 5, 1, 1],
            "nps_latest": [8.0, 9.0, np.nan, 2.0, 2.0],
        }
    )


def _phrase(feature: str, **values):
    frame = pd.DataFrame({k: [v] for k, v in {"tenure_days": 450, **values}.items()})
    columns = {name: frame[name].to_numpy(dtype=object) for name in frame.columns}
    return phrase_feature(feature, Customer(columns, 0, build_references(_peers(), BANDS)))


@pytest.mark.parametrize(
    ("feature", "values", "expected"),
    [
        (
            "recency_days",
            {"recency_days": 355, "gap_mean_days": 2.0, "purchase_days": 3},
            ("recency_vs_own_rhythm", "no purchase for 355 days; usually buys every 2 days"),
        ),
        (
            # one gap is no habit: compare with customers like them instead
            "recency_days",
            {"recency_days": 355, "gap_mean_days": 2.0, "purchase_days": 2},
            (
                "recency_vs_peers",
                "no purchase for 355 days; customers like them last bought 20 days ago",
            ),
        ),
        (
            "gap_last_days",
            {"gap_last_days": 40.0, "gap_mean_days": 15.0},
            ("gap_last_vs_own_rhythm", "last gap between purchases 40 days; usually 15 days"),
        ),
        (
            "gap_last_days",
            {"gap_last_days": 20.0, "gap_mean_days": 30.0},
            (
                "gap_last_vs_peers",
                "last gap between purchases 20 days; customers like them 12 days",
            ),
        ),
        (
            "gap_cv",
            {"gap_cv": 1.5},
            (
                "gap_spread_vs_peers",
                "irregular buying: gaps vary 150% around their average; customers like them 50%",
            ),
        ),
        (
            "purchase_rate_365d",
            {"purchase_rate_365d": 0.4},
            (
                "purchase_rate_vs_peers",
                "0.4 purchases a month over the last year; customers like them 1.2",
            ),
        ),
        (
            "spend_90d",
            {"spend_90d": 50.0},
            (
                "spend_window_vs_peers",
                "spent 50.00 in the last 90 days; customers like them spent 300.00",
            ),
        ),
        (
            "purchases_trend",
            {"purchases_trend": -0.5, "purchases_90d": 2, "purchases_180d": 8},
            ("purchases_trend_vs_own", "2 purchases in the last 90 days; 6 in the 90 days before"),
        ),
        (
            "spend_trend",
            {"spend_trend": -0.6},
            ("spend_trend_vs_own", "spend down 75% on the period before"),
        ),
        (
            "aov_trend",
            {"aov_trend": 0.7, "aov": 45.0},
            ("aov_trend_vs_own", "recent orders average 31.50; usually 45.00"),
        ),
        (
            "refunds",
            {"refunds": 3},
            ("refunds_vs_peers", "3 refunds; customers like them 0"),
        ),
        (
            "weekday_count",
            {"weekday_count": 1},
            ("weekdays_vs_peers", "buys on 1 day of the week; customers like them on 4"),
        ),
        (
            "nps_latest",
            {"nps_latest": np.nan},
            ("nps_unanswered", "has not answered the NPS survey; 67% of customers like them have"),
        ),
        (
            "tenure_days",
            {},
            (
                "tenure_vs_population",
                "customer for only 1.2 years; half of customers for over 1.6 years",
            ),
        ),
    ],
)
def test_a_phrase_compares_the_value_with_its_reference(feature, values, expected):
    assert _phrase(feature, **values) == expected


@pytest.mark.parametrize(
    ("feature", "values"),
    [
        ("gap_last_days", {"gap_last_days": 5.0, "gap_mean_days": 15.0}),  # shorter than both
        ("gap_cv", {"gap_cv": 0.3}),  # more regular than customers like them
        ("purchase_rate_365d", {"purchase_rate_365d": 2.0}),
        ("spend_90d", {"spend_90d": 500.0}),
        ("purchases_trend", {"purchases_trend": 0.2, "purchases_90d": 6, "purchases_180d": 10}),
        ("spend_trend", {"spend_trend": 0.3}),  # spend up: good news, no reason
        ("aov_trend", {"aov_trend": 1.2, "aov": 45.0}),
        ("refunds", {"refunds": 0}),  # a non-event
        ("nps_latest", {"nps_latest": 10.0}),  # a promoter
        ("nps_days_since", {"nps_days_since": 400}),  # no honest plain-word reading
        ("recency_days", {"recency_days": 3, "gap_mean_days": 20.0}),
    ],
)
def test_a_value_no_worse_than_its_reference_is_no_reason(feature, values):
    assert _phrase(feature, **values) is None


def test_tenure_reads_nothing_when_it_rounds_to_the_population_median():
    # CDNOW: one cohort, everyone about 1.1 years: "customer for 1.1 years" explains nothing
    population = pd.DataFrame({"tenure_days": [400, 410, 420]})
    frame = pd.DataFrame({"tenure_days": [405]})
    columns = {"tenure_days": frame["tenure_days"].to_numpy(dtype=object)}
    customer = Customer(columns, 0, build_references(population, BANDS))
    assert phrase_feature("tenure_days", customer) is None
