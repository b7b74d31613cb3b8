"""The ingest stage with engine.kind: spark (the row rules on Spark, the rest by the shared code
on what Spark wrote) writes the DuckDB ingest's four tables, report and run history on typed
Parquet sources: generated rows plus hand-built edge cases (every quarantine reason, re-sent
rows within and across files, an order's lines, reused ids, nulls, a DST night); every column
compared. A Delta table is read at its current version (a deleted customer never comes back),
and refused with the fix when no Delta reader is at hand."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from churn.config import EngineParams, IngestParams
from churn.errors import ChurnError
from churn.ingest import IngestOutputs, run_ingest
from support.spark_ingest_data import (
    EDGE_ROWS,
    NOW,
    T0,
    side_tables,
    typed_folder,
)
from support.spark_ingest_data import generated_rows as _rows
from support.spark_ingest_data import write_orders as _write
from support.spark_parity import (
    assert_same_output_files,
    frame_differences,
    require_spark,
    spark_engine,
)

pytestmark = [pytest.mark.slow, pytest.mark.spark]

OUTPUTS = ("transactions", "quarantine", "customers", "nps")


def _ingest(params: IngestParams, engine: EngineParams, out: Path, work: Path, spark: bool):
    from churn.spark.ingest import spark_cleaner

    work.mkdir(parents=True, exist_ok=True)
    cleaner = spark_cleaner(params, engine, work) if spark else None
    return run_ingest(params, engine, IngestOutputs.in_folder(out), out, {}, NOW, {}, work, cleaner)


def _float_diff(left: pd.Series, right: pd.Series) -> float:
    a, b = left.to_numpy(dtype="float64"), right.to_numpy(dtype="float64")
    both = np.isfinite(a) & np.isfinite(b)
    if not both.any():
        return 0.0
    scale = np.maximum(np.abs(b[both]), 1e-300)
    return float(np.max(np.abs(a[both] - b[both]) / scale))


@pytest.mark.parametrize(
    ("zoned", "with_ids", "zone"),
    [(True, True, "Europe/Berlin"), (False, False, "UTC"), ("mixed", True, "Europe/Berlin")],
    # mixed: a naive file (Berlin wall-clock times) and a zoned one (converted to Berlin time)
    ids=["zoned_with_ids_berlin", "naive_without_ids_utc", "naive_and_zoned_files_berlin"],
)
def test_ingest_on_spark_writes_duckdbs_outputs(tmp_path, zoned, with_ids, zone):
    require_spark()
    source = typed_folder(tmp_path / "export", zoned)
    if zoned == "mixed":
        from churn.spark.ingest import timestamp_kinds

        kinds = timestamp_kinds(sorted(source.glob("part-*.parquet")))
        assert set(kinds["ordered_at"]) == {"naive", "zoned"}
    columns = {"customer_id": "customer", "timestamp": "ordered_at", "amount": "amount"}
    if with_ids:
        columns["transaction_id"] = "order_id"
    params = IngestParams(
        source=str(source),
        columns=columns,
        passthrough=("store",),
        timezone=zone,
        reject_after=datetime(2025, 6, 30, 23, 59, 59),
        **side_tables(tmp_path),
    )
    engine = spark_engine(tmp_path / "spark-local")
    duck_report, duck_history = _ingest(
        params, EngineParams(), tmp_path / "duckdb", tmp_path / "w1", spark=False
    )
    spark_report, spark_history = _ingest(
        params, engine, tmp_path / "spark", tmp_path / "w2", spark=True
    )

    assert spark_report == duck_report
    assert spark_history == duck_history
    assert duck_report["rows_read"] == 1800 + len(EDGE_ROWS) + 1
    assert duck_report["rows_read"] == (
        duck_report["rows_clean"] + duck_report["quarantined"] + duck_report["duplicates_removed"]
    )
    reasons = set(duck_report["quarantined_by_reason"])
    assert reasons >= {
        "missing_customer_id", "formula_customer_id", "control_character_customer_id",
        "missing_timestamp", "future_timestamp", "timestamp_out_of_range", "missing_amount",
        "non_finite_amount", "amount_out_of_range",
    }  # fmt: skip
    if with_ids:
        assert "reused_transaction_id" in reasons
        # within a file and across the two; with mixed files the re-sent row's copy is zoned
        # and its original naive: an hour or two apart in Berlin, so not the same row any more
        assert duck_report["duplicates_removed"] == (1 if zoned == "mixed" else 2)
    else:
        assert duck_report["exact_duplicates"] >= 3 and duck_report["duplicates_removed"] == 0
    cells, worst = 0, 0.0
    for _, want, got in assert_same_output_files(tmp_path / "duckdb", tmp_path / "spark", OUTPUTS):
        cells += want.size
        for column in want.columns:
            if pd.api.types.is_float_dtype(want[column]):
                worst = max(worst, _float_diff(got[column], want[column]))
    quarantine = pd.read_parquet(tmp_path / "spark" / "quarantine.parquet")
    assert quarantine["detail"].notna().all()
    assert set(quarantine["source_file"].dropna()) <= {
        str(source / "part-a.parquet"),
        str(source / "part-b.parquet"),
        str(tmp_path / "customers.csv"),
    }
    print(f"ingest parity ({zone}): {cells} cells compared, max relative float difference {worst}")


def _delta_source(folder: Path) -> Path:
    from deltalake import DeltaTable, write_deltalake

    rows = _rows(4, 400) + [("erased", T0, 12.0, "x1", "s1"), ("erased", T0, 13.0, "x2", "s2")]
    customer, ordered_at, amount, order_id, store = (list(c) for c in zip(*rows, strict=True))
    table = pa.table(
        {
            "customer": pa.array(customer, pa.string()),
            "ordered_at": pa.array(ordered_at, pa.timestamp("us", tz="UTC")),
            "amount": pa.array(amount, pa.float64()),
            "order_id": pa.array(order_id, pa.string()),
            "store": pa.array(store, pa.string()),
        }
    )
    write_deltalake(str(folder), table)
    DeltaTable(str(folder)).delete("customer = 'erased'")  # the old file stays until VACUUM
    return folder


def test_a_delta_table_is_read_at_its_current_version(tmp_path):
    require_spark()
    pytest.importorskip("deltalake")
    source = _delta_source(tmp_path / "orders")
    files = list(source.glob("*.parquet"))
    assert len(files) >= 2  # the deleted rows' file is still in the folder
    params = IngestParams(
        source=str(source),
        columns={"customer_id": "customer", "timestamp": "ordered_at", "amount": "amount"},
        reject_after=datetime(2025, 6, 30, 23, 59, 59),
    )
    report, _ = _ingest(
        params, spark_engine(tmp_path / "spark-local"), tmp_path / "out", tmp_path / "w", True
    )
    clean = pd.read_parquet(tmp_path / "out" / "transactions.parquet")
    assert report["format"] == "delta"
    assert report["rows_read"] == 400
    assert "erased" not in set(clean["customer_id"])
    assert len(clean) == report["rows_clean"] > 0


def test_a_delta_table_without_a_delta_reader_is_refused_with_the_fix(tmp_path, monkeypatch):
    require_spark()
    pytest.importorskip("deltalake")
    source = _delta_source(tmp_path / "orders")
    monkeypatch.setitem(sys.modules, "deltalake", None)  # no delta-rs; local Spark has no Delta
    params = IngestParams(
        source=str(source),
        columns={"customer_id": "customer", "timestamp": "ordered_at", "amount": "amount"},
    )
    with pytest.raises(ChurnError, match=r"Delta table.*install the `spark` extra.*delta-spark"):
        _ingest(
            params, spark_engine(tmp_path / "spark-local"), tmp_path / "out", tmp_path / "w", True
        )
    assert not (tmp_path / "out" / "transactions.parquet").exists()


@pytest.mark.parametrize("kind", ["temp view", "table in a database"])
def test_a_catalog_table_is_ingested_like_the_same_rows_in_a_parquet_file(tmp_path, kind):
    require_spark()
    from churn.spark.session import open_spark

    source = tmp_path / "orders.parquet"
    _write(source, _rows(5, 600) + EDGE_ROWS, zoned=True)
    columns = {"customer_id": "customer", "timestamp": "ordered_at", "amount": "amount"}
    columns["transaction_id"] = "order_id"
    common = {"columns": columns, "reject_after": datetime(2025, 6, 30, 23, 59, 59)}
    engine = spark_engine(tmp_path / "spark-local")
    spark = open_spark(engine)  # the stage's session (getOrCreate) finds the table
    name = "orders"
    if kind == "temp view":
        spark.read.parquet(str(source)).createOrReplaceTempView(name)
    else:  # a managed table: files Spark wrote under the database's location, read by name
        name = "churn_sales.orders"
        location = str((tmp_path / "warehouse").absolute())
        spark.sql(f"CREATE DATABASE IF NOT EXISTS churn_sales LOCATION '{location}'")
        spark.read.parquet(str(source)).write.mode("overwrite").saveAsTable(name)
    table = IngestParams(source=name, format="table", **common)
    try:
        report, _ = _ingest(table, engine, tmp_path / "spark", tmp_path / "w2", spark=True)
    finally:
        if kind != "temp view":
            open_spark(engine).sql("DROP DATABASE IF EXISTS churn_sales CASCADE")
    expected, _ = _ingest(
        IngestParams(source=str(source), **common),
        EngineParams(),
        tmp_path / "duckdb",
        tmp_path / "w1",
        spark=False,
    )
    assert report["format"] == "table"
    for key in ("rows_read", "rows_clean", "quarantined_by_reason", "duplicates_removed"):
        assert report[key] == expected[key], key
    for name in ("transactions", "quarantine"):
        want = pd.read_parquet(tmp_path / "duckdb" / f"{name}.parquet")
        got = pd.read_parquet(tmp_path / "spark" / f"{name}.parquet")
        if name == "quarantine":  # the table's files are Spark's own: compare the rest
            want, got = want.drop(columns="source_file"), got.drop(columns="source_file")
        assert frame_differences(got, want) == [], name
