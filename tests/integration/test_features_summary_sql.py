"""The summary-only SQL (BG/NBD fits) gives the feature SQL's summary columns, row for row."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import pytest

from churn.config import ChurnParams, FeaturesParams, load_params
from churn.cutoffs import Cutoff
from churn.engine import open_duckdb
from churn.features.bgnbd_columns import SUMMARY_COLUMNS
from churn.features.build import _snapshot_query, open_inputs
from churn.features.sql import day_number, summary_sql
from support.features_tables import (
    CUTOFF,
    ENGINE,
    customers_frame,
    day,
    nps_frame,
    transactions_frame,
)
from support.paths import ROOT


def _both(con, cutoffs: list[date], churn: ChurnParams, params: FeaturesParams):
    """Return (the feature SQL's summary columns, summary_sql's rows) at the cutoffs."""
    plan = [Cutoff(cutoff, "ledger", None) for cutoff in cutoffs]
    full = con.sql(_snapshot_query(con, plan, churn, params, False)).df()[SUMMARY_COLUMNS]
    single = (cutoffs[0], "ledger") if len(cutoffs) == 1 else None
    # several cutoffs: summary_sql joins the `cutoffs` table _snapshot_query registered
    summary = con.sql(summary_sql(churn, params, max(cutoffs), single_cutoff=single)).df()
    return full, summary


def _assert_equal(full: pd.DataFrame, summary: pd.DataFrame) -> None:
    assert list(summary.columns) == SUMMARY_COLUMNS
    pd.testing.assert_frame_equal(summary, full, check_exact=True)


@pytest.mark.parametrize("several", [False, True], ids=["one cutoff", "several cutoffs"])
def test_summary_sql_equals_the_feature_sql_summary_on_generated_data(generated_interim, several):
    interim = generated_interim(1500, 7, days=1095, chunk_customers=1000)
    settings = load_params(ROOT / "params.yaml")
    last = pd.read_parquet(interim / "transactions.parquet", columns=["date"])["date"].max()
    last = pd.Timestamp(last).date()
    offsets = (400, 300, 120, 0) if several else (120,)
    cutoffs = [last - timedelta(days=offset) for offset in offsets]
    con = open_duckdb(settings.engine, ordered=False)
    try:
        open_inputs(*(interim / f"{n}.parquet" for n in ("transactions", "customers", "nps")), con)
        full, summary = _both(con, cutoffs, settings.churn, settings.features)
    finally:
        con.close()
    assert len(full) > 500
    if several:
        assert full["cutoff"].nunique() == len(cutoffs)
    _assert_equal(full, summary)


# (customer, day offset from CUTOFF, amount): histories at the summary's edges
EDGE_ROWS = [
    ("a-one-purchase", -10, 20.0),
    ("b-same-day-twice", -50, 10.0),
    ("b-same-day-twice", -50, 15.0),
    ("b-same-day-twice", -5, 12.0),
    ("c-refund-between", -90, 30.0),
    ("c-refund-between", -60, -30.0),
    ("c-refund-between", -60, 8.0),
    ("c-refund-between", -30, 9.0),
    ("d-refunds-only", -20, -5.0),
    ("d-refunds-only", -10, -6.0),
    ("e-zero-amounts", -40, 0.0),
    ("e-zero-amounts", -40, 11.0),
    ("e-zero-amounts", -15, 0.0),
    ("f-on-the-cutoff", 0, 7.0),
    ("f-on-the-cutoff", -365, 7.0),
    ("g-after-the-cutoff", 1, 9.0),
    ("g-after-the-cutoff", 30, 9.0),
    ("h-lapsed-by-one-day", -365, 40.0),
    ("h-lapsed-by-one-day", -700, 40.0),
    ("i-active-by-one-day", -364, 40.0),
    ("i-active-by-one-day", -800, 40.0),
    ("j-many", -300, 5.0),
    ("j-many", -200, 5.0),
    ("j-many", -200, -1.0),
    ("j-many", -100, 5.0),
    ("j-many", -1, 5.0),
    ("j-many", 3, 5.0),
    ("00007", -2, 1.0),
]


@pytest.mark.parametrize(
    "cutoffs",
    [[CUTOFF], [day(-60), day(-10), CUTOFF, day(20)]],
    ids=["one cutoff", "several cutoffs"],
)
def test_summary_sql_equals_the_feature_sql_summary_on_edge_cases(cutoffs):
    transactions = transactions_frame(
        [(cid, day(offset), amount) for cid, offset, amount in EDGE_ROWS]
    )
    con = open_duckdb(ENGINE, ordered=False)
    try:
        open_inputs(transactions, customers_frame(), nps_frame(), con)
        full, summary = _both(con, cutoffs, ChurnParams(), FeaturesParams(bgnbd=True))
    finally:
        con.close()
    at_cutoff = full[full["cutoff"] == pd.Timestamp(CUTOFF)].set_index("customer_id")
    # the edges are really exercised: eligibility by one day, same-day and refund-only histories
    assert "i-active-by-one-day" in at_cutoff.index
    assert "h-lapsed-by-one-day" not in at_cutoff.index
    assert "d-refunds-only" not in at_cutoff.index
    assert "g-after-the-cutoff" not in at_cutoff.index
    assert at_cutoff.loc["b-same-day-twice", "purchase_days"] == 2
    assert at_cutoff.loc["c-refund-between", "purchase_days"] == 3
    assert at_cutoff.loc["f-on-the-cutoff", "recency_days"] == 0
    _assert_equal(full, summary)


def test_summary_sql_reads_no_customers_nor_nps_table():
    sql = summary_sql(ChurnParams(), FeaturesParams(), CUTOFF, single_cutoff=(CUTOFF, "ledger"))
    assert "customers" not in sql and "nps" not in sql
    assert f"WHERE day <= {day_number(CUTOFF)}" in sql
    con = open_duckdb(ENGINE, ordered=False)
    try:
        con.register("transactions", transactions_frame([("x", day(-3), 5.0)]))
        rows = con.sql(sql).fetchall()
    finally:
        con.close()
    assert rows == [("x", CUTOFF, 1, 3, 3)]
