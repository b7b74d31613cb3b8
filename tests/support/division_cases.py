"""Hand-built tables where a feature's denominator is 0 or tiny: zero spend, zero-amount refunds,
one purchase, same-day purchases (the division-safety tests on DuckDB and Spark share them)."""

from __future__ import annotations

from datetime import date

import pyarrow as pa

from churn.config import ChurnParams, FeaturesParams
from churn.features.build import open_inputs
from churn.features.sql import day_number, snapshot_sql
from support.features_tables import (
    CUTOFF,
    _connection,
    customers_frame,
    day,
    nps_frame,
    transactions_frame,
)

# the training cutoffs the cases are computed at (newest = CUTOFF); labels read (t, t + 90]
CUTOFFS = [date(2024, 3, 2), date(2024, 4, 1), CUTOFF]

DIVISION_ROWS = [
    # purchases so small that the spend rounds to 0 (1/10000 units), plus a real refund:
    # refund_share and aov_trend would divide by a zero spend
    ("zero_spend", day(-200), 0.00001),
    ("zero_spend", day(-40), 0.00004),
    ("zero_spend", day(-10), 0.00002),
    ("zero_spend", day(-5), -5.0),
    # the same with every purchase inside the trend window and none before it
    ("zero_spend_recent", day(-3), 0.00001),
    ("zero_spend_recent", day(-2), 0.00001),
    # refunds and zero rows whose amounts round to 0, around one real purchase
    ("zero_refunds", day(-50), 12.5),
    ("zero_refunds", day(-20), -0.00001),
    ("zero_refunds", day(-20), 0.0),
    ("zero_refunds", day(-1), -0.00004),
    # a single purchase, on the cutoff itself (tenure 0, no gaps)
    ("single_on_cutoff", day(0), 9.99),
    # a single purchase long before the cutoff
    ("single_old", day(-300), 3.0),
    # several purchases on one day only (no gap between distinct dates)
    ("same_day", day(-7), 5.0),
    ("same_day", day(-7), 5.0),
    ("same_day", day(-7), 0.00001),
    # two purchase dates with equal gaps (gap_std 0, gap_cv 0)
    ("even_gaps", day(-20), 4.0),
    ("even_gaps", day(-10), 4.0),
    ("even_gaps", day(0), 4.0),
    # buys once after a refund-only past and again after the cutoff (label 0)
    ("refund_first", day(-100), -3.0),
    ("refund_first", day(-60), 8.0),
    ("refund_first", day(30), 8.0),
]


def division_transactions() -> pa.Table:
    """Return the clean transactions of the division edge cases."""
    return transactions_frame(DIVISION_ROWS)


def division_customers() -> pa.Table:
    """Return a customers table covering some of the cases (signup on the cutoff, after it)."""
    return customers_frame(
        [
            ("zero_spend", day(-400), "web", "north"),
            ("single_on_cutoff", day(0), "app", "south"),
            ("same_day", day(5), "store", "east"),
        ]
    )


def division_nps() -> pa.Table:
    """Return NPS answers for the cases: two on one day, one on the cutoff."""
    return nps_frame(
        [
            ("zero_spend", day(-30), 3),
            ("zero_spend", day(-30), 9),
            ("single_on_cutoff", day(0), 10),
        ]
    )


def duckdb_features(labelled: bool) -> pa.Table:
    """Return the feature query's raw Arrow result on DuckDB for the division cases.

    Labelled: the training query over CUTOFFS; else the as-of query at CUTOFF (literal cutoff).
    Raw Arrow, not pandas, so a NaN written by the engine stays apart from a NULL.
    """
    con = open_inputs(
        division_transactions(), division_customers(), division_nps(), con=_connection()
    )
    if labelled:
        con.register("cutoffs", cutoff_table())
    return con.sql(feature_sql(labelled)).to_arrow_table()


def feature_sql(labelled: bool) -> str:
    """Return the DuckDB feature query the division cases run (default params)."""
    if labelled:
        return snapshot_sql(ChurnParams(), FeaturesParams(), max(CUTOFFS), with_labels=True)
    single = (CUTOFF, "score")
    return snapshot_sql(ChurnParams(), FeaturesParams(), CUTOFF, False, single_cutoff=single)


def cutoff_table() -> pa.Table:
    """Return the `cutoffs` table the labelled query joins (as the features stage builds it)."""
    return pa.table(
        {
            "cutoff": pa.array(CUTOFFS, pa.date32()),
            "cutoff_day": pa.array([day_number(item) for item in CUTOFFS], pa.int32()),
            "role": pa.array(["fit"] * (len(CUTOFFS) - 1) + ["test"], pa.string()),
        }
    )
