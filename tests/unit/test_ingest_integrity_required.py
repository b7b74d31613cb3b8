"""Ingest integrity of the required columns (customer id, timestamp, amount): rows missing them are
quarantined, so a jump in the newest period must block even when the overall quarantine share
stays under ingest.max_quarantine_share."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest

from churn import columns as C
from churn.config import IntegrityParams
from churn.errors import ChurnError
from churn.ingest.checks import enforce
from churn.ingest.integrity import (
    Quarantined,
    SourceInfo,
    check_integrity,
    quarantine_date_sql,
    undated_rows,
)
from support.integrity_data import closed_base, newest_month, quarantine_rows

SOURCE = SourceInfo(
    "exports/tx.csv",
    "amount_eur",
    ("customer", "ordered_at", "amount_eur", "order_id", "channel", "coupon"),
    {"transaction_id": "order_id", "channel": "channel", "coupon": "coupon"},
    {C.CUSTOMER_ID: "customer", C.TIMESTAMP: "ordered_at", C.AMOUNT: "amount_eur"},
)
DATES = quarantine_date_sql(None, False, "UTC")


@pytest.fixture(scope="module")
def two_years() -> pd.DataFrame:
    return closed_base(24)


def _check(clean, quarantine, params=None, previous=None, rows_read=None, by_reason=None):
    con = duckdb.connect()
    try:
        con.register("transactions", clean)
        con.register("quarantine", quarantine)
        quarantined = Quarantined(
            "quarantine",
            DATES,
            rows_read if rows_read is not None else len(clean) + len(quarantine),
            by_reason if by_reason is not None else quarantine[C.REASON].value_counts().to_dict(),
        )
        results, _ = check_integrity(
            con,
            "transactions",
            params or IntegrityParams(),
            SOURCE,
            previous,
            quarantined=quarantined,
        )
        return {r.name: r for r in results}
    finally:
        con.close()


def _failed(results) -> list[str]:
    return [name for name, r in results.items() if r.status == "fail"]


def test_amounts_empty_in_30_percent_of_the_newest_month_block_under_the_quarantine_share(
    two_years,
):
    clean, quarantine = quarantine_rows(two_years, C.AMOUNT, newest_share=0.3)
    assert len(quarantine) / len(two_years) < 0.05  # max_quarantine_share alone lets it through
    results = _check(clean, quarantine)
    assert _failed(results) == ["integrity_nulls_amount"]
    with pytest.raises(ChurnError) as raised:
        enforce(list(results.values()))
    message = str(raised.value)
    assert "exports/tx.csv: required column 'amount_eur' (ingest.columns.amount)" in message
    newest = int(newest_month(two_years).sum())
    lost = int((quarantine[C.TIMESTAMP] > "2023-12-01 23:59:59").sum())
    assert f"{lost / newest:.1%} empty or not a number ({lost} of {newest} rows" in message
    assert "missing_amount" in message and "newest vs trailing" in message
    assert "look as if customers stopped buying" in message and "correct the export" in message
    assert "ingest.integrity.accept: [nulls:amount]" in message


def test_a_steady_small_share_of_empty_amounts_passes(two_years):
    clean, quarantine = quarantine_rows(two_years, C.AMOUNT, newest_share=0.01, trailing_share=0.01)
    results = _check(clean, quarantine)
    assert _failed(results) == []
    assert results["integrity_nulls_amount"].status == "ok"
    assert results["integrity_nulls_customer_id"].status == "ok"


def test_customer_ids_missing_in_the_newest_month_block(two_years):
    clean, quarantine = quarantine_rows(two_years, C.CUSTOMER_ID, newest_share=0.25)
    results = _check(clean, quarantine)
    assert _failed(results) == ["integrity_nulls_customer_id"]
    message = results["integrity_nulls_customer_id"].message
    assert "required column 'customer' (ingest.columns.customer_id)" in message
    assert "empty or a spreadsheet formula" in message and "missing_customer_id" in message


def test_newest_days_with_no_amount_at_all_still_fall_in_the_newest_period(two_years):
    # the last 10 days lost every amount: the clean data ends 10 days early, the check must not
    clean, quarantine = quarantine_rows(two_years, C.AMOUNT, 1.0, 0.0, newest_days=10)
    assert clean[C.DATE].max() < two_years[C.DATE].max()
    results = _check(clean, quarantine)
    assert _failed(results) == ["integrity_nulls_amount"]
    assert f"..{two_years[C.DATE].max()}" in results["integrity_nulls_amount"].message


def test_an_accepted_jump_warns_instead_of_blocking(two_years):
    clean, quarantine = quarantine_rows(two_years, C.AMOUNT, newest_share=0.3)
    results = _check(clean, quarantine, IntegrityParams(accept=("nulls:amount",)))
    assert _failed(results) == []
    assert results["integrity_nulls_amount"].status == "warn"


def test_undated_rows_are_compared_with_the_previous_run(two_years):
    clean, quarantine = quarantine_rows(two_years, C.AMOUNT, 0.001, 0.001)
    undated = {"unparseable_timestamp": 900, "missing_timestamp": 30}
    assert undated_rows(undated) == 930
    previous = {"run_at": "2025-05-01T00:00:00+00:00", "rows_read": 20_000, "undated_rows": 4}
    # 3,000 rows added since the previous run, 926 of them without a usable timestamp
    results = _check(clean, quarantine, previous=previous, rows_read=23_000, by_reason=undated)
    assert _failed(results) == ["integrity_nulls_timestamp"]
    message = results["integrity_nulls_timestamp"].message
    assert (
        "required column 'ordered_at' (ingest.columns.timestamp): 30.9% empty or not a " in message
    )
    assert "926 of the 3000 rows added since the previous run" in message
    assert "0.0% in the previous run (4 of 20000" in message

    steady = {"unparseable_timestamp": 5}
    results = _check(clean, quarantine, previous=previous, rows_read=23_000, by_reason=steady)
    assert results["integrity_nulls_timestamp"].status == "ok"


def test_undated_rows_are_only_recorded_on_a_first_run(two_years):
    clean, quarantine = quarantine_rows(two_years, C.AMOUNT, 0.001, 0.001)
    results = _check(clean, quarantine, by_reason={"unparseable_timestamp": 900})
    timestamp = results["integrity_nulls_timestamp"]
    assert timestamp.status == "skipped" and "recorded for the next run" in timestamp.message
