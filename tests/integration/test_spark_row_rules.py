"""The transaction row rules on Spark (churn.spark.clean) give the DuckDB ingest's clean rows,
quarantine reasons and duplicates on a typed Parquet table: generated rows plus every rule's
edge case; rows in = rows out + rows quarantined + duplicates removed on both engines."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from churn.config import IngestParams
from churn.engine import open_duckdb
from churn.ingest.clean import clean_transactions as clean_on_duckdb
from churn.ingest.sources import open_source
from support.spark_parity import frame_differences, spark_engine

pytestmark = [pytest.mark.slow, pytest.mark.spark]

REJECT_AFTER = datetime(2025, 6, 30, 23, 59, 59)
T0 = datetime(2025, 3, 29, 22, 30, tzinfo=UTC)  # the night Berlin moves to summer time

EDGE_ROWS = [  # customer, ordered_at (UTC instant), amount, order_id
    (None, T0, 5.0, "e1"),
    ("   ", T0, 5.0, "e2"),  # blank id: missing
    ("=HYPERLINK(1)", T0, 5.0, "e3"),
    ("ab\x01c", T0, 5.0, "e4"),
    ("  padded ", T0, 5.0, "e5"),  # trimmed, valid
    ("c_ts_null", None, 5.0, "e6"),
    ("c_future", datetime(2025, 7, 2, tzinfo=UTC), 5.0, "e7"),
    ("c_old", datetime(1850, 1, 1, tzinfo=UTC), 5.0, "e8"),
    ("c_amount_null", T0, None, "e9"),
    ("c_nan", T0, math.nan, "e10"),
    ("c_inf", T0, math.inf, "e11"),
    ("c_ninf", T0, -math.inf, "e12"),
    ("c_huge", T0, 5e12, "e13"),
    ("c_zero", T0, 0.0, "e14"),
    ("c_refund", T0 + timedelta(hours=1), -3.5, "e15"),
    ("c_dup", T0, 7.0, "d1"),  # sent twice: one copy removed
    ("c_dup", T0, 7.0, "d1"),
    ("c_lines", T0, 1.0, "l1"),  # one order's two lines: both kept
    ("c_lines", T0, 2.0, "l1"),
    ("c_reuse_a", T0, 1.0, "r1"),  # an id used by two customers: both quarantined
    ("c_reuse_b", T0, 1.0, "r1"),
    ("c_reuse_day", T0, 1.0, "r2"),  # ...or on two local dates
    ("c_reuse_day", T0 + timedelta(days=2), 1.0, "r2"),
    ("c_no_id", T0, 4.0, None),  # identical rows without an id are kept
    ("c_no_id", T0, 4.0, None),
    ("c_dst", datetime(2025, 3, 30, 1, 30, tzinfo=UTC), 2.0, "e16"),  # 03:30 in Berlin
]


def typed_source(path) -> None:
    """Write a typed Parquet transactions table: 600 generated rows, then the edge cases."""
    rng = np.random.default_rng(3)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    rows = [
        (
            f"{rng.integers(1, 80):05d}",
            start + timedelta(minutes=int(rng.integers(0, 700_000))),
            round(float(rng.gamma(2.0, 20.0)), 2),
            f"o{i}",
        )
        for i in range(600)
    ] + EDGE_ROWS
    customer, ordered_at, amount, order_id = (list(column) for column in zip(*rows, strict=True))
    table = pa.table(
        {
            "customer": pa.array(customer, pa.string()),
            "ordered_at": pa.array(ordered_at, pa.timestamp("us", tz="UTC")),
            "amount": pa.array(amount, pa.float64()),
            "order_id": pa.array(order_id, pa.string()),
        }
    )
    pq.write_table(table, path)


def test_row_rules_on_spark_equal_duckdbs(spark, tmp_path):
    from churn.spark.clean import clean_transactions as clean_on_spark
    from churn.spark.features import to_pandas

    source = tmp_path / "transactions.parquet"
    typed_source(source)
    columns = {"customer_id": "customer", "timestamp": "ordered_at", "amount": "amount"}
    params = IngestParams(source=str(source), columns={**columns, "transaction_id": "order_id"})
    con = open_duckdb(spark_engine(tmp_path))
    required = ["customer", "ordered_at", "amount", "order_id"]
    raw = open_source(
        con, str(source), "parquet", params.csv, required, tmp_path, zone=params.timezone
    )
    on_duckdb = clean_on_duckdb(con, raw, params, REJECT_AFTER)
    on_spark = clean_on_spark(spark, spark.read.parquet(str(source)), params, REJECT_AFTER)

    assert on_spark.rows_read == on_duckdb.rows_read == 600 + len(EDGE_ROWS)
    assert on_spark.quarantined_by_reason == on_duckdb.quarantined_by_reason
    assert on_spark.duplicates_removed == on_duckdb.duplicates_removed == 1
    assert set(on_duckdb.quarantined_by_reason) >= {
        "missing_customer_id", "formula_customer_id", "control_character_customer_id",
        "missing_timestamp", "future_timestamp", "timestamp_out_of_range", "missing_amount",
        "non_finite_amount", "amount_out_of_range", "reused_transaction_id",
    }  # fmt: skip
    clean_duckdb = con.execute(on_duckdb.clean_sql).to_arrow_table().to_pandas()
    clean_spark = to_pandas(on_spark.clean)
    assert on_spark.rows_clean == len(clean_spark) == len(clean_duckdb)
    assert frame_differences(clean_spark, clean_duckdb) == []
    quarantine_duckdb = (
        con.execute(
            f"SELECT source_row, reason, customer_id FROM ({on_duckdb.quarantine_sql}) ORDER BY source_row"
        )
        .to_arrow_table()
        .to_pandas()
    )
    quarantine_spark = to_pandas(on_spark.quarantine)[["source_row", "reason", "customer_id"]]
    assert frame_differences(quarantine_spark, quarantine_duckdb) == []
