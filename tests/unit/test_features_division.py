"""Every division in the feature query is NULL-safe: no inf/NaN on DuckDB, no ANSI abort on Spark."""

from __future__ import annotations

import math

import pyarrow as pa
import pyarrow.compute as pc
import pytest
import sqlglot
from sqlglot import exp

from churn.config import ChurnParams, FeaturesParams
from churn.features.sql import snapshot_sql, spark_sql
from support.division_cases import CUTOFFS, duckdb_features
from support.features_tables import CUTOFF

QUERIES = {
    "training": lambda params: snapshot_sql(ChurnParams(), params, CUTOFF, with_labels=True),
    "as_of": lambda params: snapshot_sql(
        ChurnParams(), params, CUTOFF, False, single_cutoff=(CUTOFF, "score")
    ),
}
PARAMS = {
    "default": FeaturesParams(),
    "other_windows": FeaturesParams(windows=(7, 90, 400), trend_days=60, season=False),
}


def _unsafe_divisions(sql: str, dialect: str) -> list[str]:
    """Return every division / modulo whose denominator may be 0 (neither NULLIF(x, 0) nor a
    non-zero number literal)."""
    unsafe = []
    for node in sqlglot.parse_one(sql, read=dialect).find_all(exp.Div, exp.IntDiv, exp.Mod):
        denominator = node.expression
        while isinstance(denominator, exp.Paren):
            denominator = denominator.this
        if isinstance(denominator, exp.Literal) and not denominator.is_string:
            if float(denominator.this) != 0:
                continue
        elif isinstance(denominator, exp.Nullif) and denominator.expression == exp.Literal.number(
            0
        ):
            continue
        unsafe.append(node.sql(dialect=dialect))
    return unsafe


@pytest.mark.parametrize("params", PARAMS.values(), ids=PARAMS.keys())
@pytest.mark.parametrize("query", QUERIES.values(), ids=QUERIES.keys())
def test_every_division_in_the_feature_sql_is_null_safe_on_both_dialects(query, params):
    duckdb_sql = query(params)
    assert _unsafe_divisions(duckdb_sql, "duckdb") == []
    assert _unsafe_divisions(spark_sql(duckdb_sql), "spark") == []


def test_the_safety_check_finds_a_bare_division():
    assert _unsafe_divisions("SELECT a / b, a / 2, a / NULLIF(b, 0), a % 0 FROM t", "duckdb") == [
        "a / b",
        "a % 0",
    ]


@pytest.mark.parametrize("labelled", [True, False], ids=["training", "as_of"])
def test_edge_cases_write_no_inf_or_nan_into_any_feature(labelled):
    table = duckdb_features(labelled)
    assert table.num_rows >= (12 if labelled else 8)
    for name in table.column_names:
        column = table.column(name)
        if pa.types.is_floating(column.type):
            bad = pc.sum(pc.or_(pc.is_nan(column), pc.is_inf(column))).as_py() or 0
            assert bad == 0, f"{name}: {bad} inf/NaN values"


@pytest.fixture(scope="module")
def as_of_rows():
    return {row["customer_id"]: row for row in duckdb_features(labelled=False).to_pylist()}


def test_spend_that_rounds_to_zero_leaves_refund_share_and_aov_trend_undefined(as_of_rows):
    row = as_of_rows["zero_spend"]
    assert row["spend_total"] == 0.0
    assert row["aov"] == 0.0
    assert row["refunds"] == 1
    assert row["refund_share"] is None  # 5.00 refunded out of 0.00 spent: undefined, not inf
    assert row["aov_trend"] is None  # 0.00 / 0.00: undefined, not NaN
    assert row["spend_trend"] is None  # (0 - 0) / (0 + 0)
    recent = as_of_rows["zero_spend_recent"]
    assert recent["aov_trend"] is None
    assert recent["refund_share"] is None
    assert recent["purchases_trend"] == 1.0


def test_refunds_that_round_to_zero_give_a_zero_refund_share(as_of_rows):
    row = as_of_rows["zero_refunds"]
    assert row["refunds"] == 2
    assert row["zero_amount_count"] == 1
    assert row["refund_share"] == 0.0
    assert row["aov_trend"] == 1.0
    assert row["gap_mean_days"] is None  # one purchase date: no gap
    assert row["overdue_ratio"] is None


def test_single_purchase_on_the_cutoff_has_no_tenure_ratio(as_of_rows):
    row = as_of_rows["single_on_cutoff"]
    assert (row["tenure_days"], row["recency_days"]) == (0, 0)
    assert row["recency_tenure_ratio"] is None
    assert row["purchase_rate_365d"] == 30.0  # one purchase day in a 1-day observed year
    assert row["gap_mean_days"] is None and row["gap_cv"] is None
    assert row["aov_trend"] == 1.0


def test_same_day_purchases_count_as_one_purchase_date(as_of_rows):
    row = as_of_rows["same_day"]
    assert (row["purchases"], row["purchase_days"]) == (3, 1)
    assert row["recency_tenure_ratio"] == 1.0
    assert row["gap_mean_days"] is None and row["overdue_ratio"] is None
    assert math.isclose(row["aov"], 10.0 / 3)  # the 0.00001 purchase rounds to 0.0000


def test_even_gaps_give_zero_spread(as_of_rows):
    row = as_of_rows["even_gaps"]
    assert (row["gap_mean_days"], row["gap_std_days"], row["gap_cv"]) == (10.0, 0.0, 0.0)
    assert row["overdue_ratio"] == 0.0


def test_edge_cases_reach_every_training_cutoff():
    table = duckdb_features(labelled=True)
    assert set(table.column("cutoff").to_pylist()) == set(CUTOFFS)
