"""Ingest integrity: ageing, seasons and first runs pass; broken exports in the newest month block,
naming the file, the column, the values seen and the fix."""

from __future__ import annotations

import datetime as dt

import duckdb
import numpy as np
import pandas as pd
import pytest

from churn.config import IntegrityParams, parse_params
from churn.errors import ChurnError
from churn.ingest.checks import enforce
from churn.ingest.clean import parquet_null_count
from churn.ingest.integrity import SourceInfo, best_hour_shift, check_integrity, plan_periods
from support.integrity_data import (
    amounts_times_100,
    closed_base,
    null_jump,
    renamed_category,
    shifted_hours,
)

SOURCE = SourceInfo(
    "exports/tx.csv",
    "amount_eur",
    ("customer", "ordered_at", "amount_eur", "order_id", "channel", "coupon"),
    {"transaction_id": "order_id", "channel": "channel", "coupon": "coupon"},
)


def _check(transactions: pd.DataFrame, params: IntegrityParams | None = None, previous=None):
    con = duckdb.connect()
    try:
        con.register("transactions", transactions)
        return check_integrity(con, "transactions", params or IntegrityParams(), SOURCE, previous)
    finally:
        con.close()


def _failed(results) -> list[str]:
    return [r.name for r in results if r.status == "fail"]


@pytest.fixture(scope="module")
def two_years() -> pd.DataFrame:
    return closed_base(24)


# --------------------------------------------------------------------------- what must pass
@pytest.mark.parametrize("grown_months", [3, 6, 12])
def test_a_closed_base_grown_by_months_passes_integrity(grown_months):
    results, detail = _check(closed_base(18 + grown_months))
    assert _failed(results) == []
    assert enforce(results) == results
    assert detail["rows_trailing"] > detail["rows_newest"] > 200  # really compared, not skipped
    assert {r.name: r.status for r in results}["integrity_amounts"] == "ok"


def test_a_december_peak_does_not_trip_the_amount_check():
    # the newest period is December: three times the purchases, each a little dearer
    peak = closed_base(24, december_peak=3)
    results, detail = _check(peak)
    assert detail["newest_period"].endswith("2023-12-31")
    assert _failed(results) == []


def test_a_first_run_on_new_data_passes_with_a_note():
    first = closed_base(24)
    first = first[first["date"] < dt.date(2022, 1, 25)]  # three weeks of a new shop
    results, detail = _check(first)
    assert _failed(results) == []
    statuses = {r.name: r.status for r in results}
    assert statuses["integrity_amounts"] == "skipped"
    assert statuses["integrity_schema"] == "skipped"
    assert "no trailing period" in detail["note"]


# --------------------------------------------------------------------------- what must block
def test_amounts_times_100_in_the_new_month_block_naming_file_column_values_and_fix(two_years):
    results, _ = _check(amounts_times_100(two_years))
    assert _failed(results) == ["integrity_amounts"]
    with pytest.raises(ChurnError) as raised:
        enforce(results)
    message = str(raised.value)
    assert "exports/tx.csv" in message and "'amount_eur'" in message
    assert "p50" in message and "newest vs trailing" in message
    assert "cents" in message and "Correct the export" in message
    assert "ingest.integrity.accept: [amounts]" in message


def test_a_renamed_category_blocks_naming_the_new_and_the_gone_level(two_years):
    results, _ = _check(renamed_category(two_years))
    assert _failed(results) == ["integrity_categories_channel"]
    message = next(r.message for r in results if r.status == "fail")
    assert "column 'channel'" in message and "new 'online'" in message and "gone 'web'" in message
    assert "ingest.integrity.accept: [categories:channel]" in message


def test_nulls_jumping_from_2_to_40_percent_block(two_years):
    results, _ = _check(null_jump(two_years, 0.4))
    assert _failed(results) == ["integrity_nulls_coupon"]
    message = next(r.message for r in results if r.status == "fail")
    assert "column 'coupon'" in message and "empty in the newest period" in message
    assert "ingest.integrity.accept: [nulls:coupon]" in message


def test_a_time_zone_shift_blocks_naming_the_hours(two_years):
    results, _ = _check(shifted_hours(two_years, 5))
    assert _failed(results) == ["integrity_timezone"]
    message = next(r.message for r in results if r.status == "fail")
    assert "shifted by +5 hours" in message and "time zone" in message
    assert "ingest.integrity.accept: [timezone]" in message


def test_columns_that_appear_or_disappear_against_the_previous_run_block():
    previous = {"run_at": "2025-05-01T00:00:00+00:00", "columns": ["customer", "ordered_at", "x"]}
    results, _ = _check(closed_base(24), previous=previous)
    schema = next(r for r in results if r.name == "integrity_schema")
    assert schema.status == "fail"
    assert "disappeared: ['x']" in schema.message and "appeared: ['amount_eur'" in schema.message
    assert "ingest.integrity.accept: [schema]" in schema.message


def test_an_accepted_change_warns_once_instead_of_blocking(two_years):
    results, _ = _check(
        amounts_times_100(two_years), IntegrityParams(accept=("amounts", "nulls:coupon"))
    )
    amounts = next(r for r in results if r.name == "integrity_amounts")
    assert amounts.status == "warn" and "accepted by ingest.integrity.accept" in amounts.message
    assert _failed(results) == []


def test_a_broken_column_still_blocks_when_another_column_is_accepted(two_years):
    params = IntegrityParams(accept=("categories:coupon",))
    results, _ = _check(renamed_category(two_years), params)
    assert _failed(results) == ["integrity_categories_channel"]


# --------------------------------------------------------------------------- pieces
def test_periods_are_the_newest_days_the_trailing_days_and_a_year_earlier():
    periods = plan_periods(dt.date(2024, 12, 31), 30, 365)
    assert periods.newest.text() == "2024-12-02..2024-12-31"
    assert periods.trailing.text() == "2023-12-03..2024-12-01"
    assert periods.last_year.text() == "2023-12-04..2024-01-02"  # 364 days: same weekdays


def test_best_hour_shift_finds_a_whole_hour_shift():
    before = np.zeros(24)
    before[[9, 12, 18]] = [0.2, 0.3, 0.5]
    assert best_hour_shift(np.roll(before, 3), before)[:2] == (3, 0.0)
    assert best_hour_shift(before, before) == (0, 0.0, 0.0)


def test_integrity_params_reject_unknown_keys_and_unknown_accepted_checks():
    with pytest.raises(ChurnError, match="unknown key"):
        parse_params({"ingest": {"integrity": {"max_amount_ration": 3}}})
    with pytest.raises(ChurnError, match="must be one of"):
        parse_params({"ingest": {"integrity": {"accept": ["amount"]}}})
    assert parse_params({"ingest": {"integrity": {"accept": ["nulls:coupon"]}}})


def _customers(rename_newest: bool) -> pd.DataFrame:
    rng = np.random.default_rng(17)
    signup = [dt.date(2022, 1, 1) + dt.timedelta(days=int(d)) for d in rng.integers(0, 730, 3000)]
    channel = rng.choice(["web", "app"], 3000)
    if rename_newest:
        channel = np.where(
            (np.array(signup) > dt.date(2023, 12, 1)) & (channel == "web"), "online", channel
        )
    return pd.DataFrame(
        {
            "customer_id": pd.array([f"{i:05d}" for i in range(3000)], dtype="string"),
            "signup_date": signup,
            "channel": pd.array(channel, dtype="string"),
            "region": pd.array(rng.choice(["north", "south"], 3000), dtype="string"),
        }
    )


@pytest.mark.parametrize("renamed", [False, True])
def test_a_channel_renamed_in_the_customers_table_blocks(two_years, renamed):
    con = duckdb.connect()
    con.register("transactions", two_years)
    con.register("customers", _customers(renamed))
    side = ("customers", "exports/customers.csv", {"channel": "channel", "region": "region"})
    results, _ = check_integrity(
        con, "transactions", IntegrityParams(min_rows=50), SOURCE, None, side
    )
    con.close()
    statuses = {r.name: r.status for r in results}
    assert statuses["integrity_customers_categories_region"] == "ok"
    expected = "fail" if renamed else "ok"
    assert statuses["integrity_customers_categories_channel"] == expected
    if renamed:
        message = next(r.message for r in results if r.status == "fail")
        assert "exports/customers.csv: column 'channel'" in message and "new 'online'" in message


def test_parquet_null_count_reads_the_row_group_statistics(tmp_path):
    path = tmp_path / "t.parquet"
    con = duckdb.connect()
    con.execute(
        f"COPY (SELECT i, CASE WHEN i % 7 = 0 THEN NULL ELSE 'x' END AS s FROM range(100000) t(i)) "
        f"TO '{path}' (FORMAT parquet, ROW_GROUP_SIZE 10000)"
    )
    assert parquet_null_count(con, str(path), "s") == 14286  # 0, 7, ..., 99995
    assert parquet_null_count(con, str(path), "i") == 0
    assert parquet_null_count(con, str(path), "not_there") is None
