"""A Parquet source folder whose files disagree on the mapped columns: refused by both engines
with the same message (naming the file, the column and the fix) before a row is read, where
Spark alone would fill the file's rows with NULLs; a Delta table whose column was added later
is read as Delta reads it (NULL in the older files' rows), never refused."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from churn.config import EngineParams, IngestParams
from churn.errors import ChurnError
from churn.ingest import IngestOutputs, run_ingest
from support.spark_ingest_data import NOW, generated_rows, write_orders
from support.spark_parity import require_spark, spark_engine

pytestmark = [pytest.mark.slow, pytest.mark.spark]

COLUMNS = {
    "customer_id": "customer",
    "timestamp": "ordered_at",
    "amount": "amount",
    "transaction_id": "order_id",
}
REJECT_AFTER = datetime(2025, 6, 30, 23, 59, 59)


def _ingest(params: IngestParams, engine: EngineParams, out: Path, work: Path, spark: bool):
    from churn.spark.ingest import spark_cleaner

    work.mkdir(parents=True, exist_ok=True)
    cleaner = spark_cleaner(params, engine, work) if spark else None
    return run_ingest(params, engine, IngestOutputs.in_folder(out), out, {}, NOW, {}, work, cleaner)


def _error(params: IngestParams, engine: EngineParams, tmp_path: Path, name: str) -> ChurnError:
    with pytest.raises(ChurnError) as raised:
        _ingest(params, engine, tmp_path / name, tmp_path / f"w-{name}", engine.kind == "spark")
    assert not (tmp_path / name / "transactions.parquet").exists()
    return raised.value


def _drop(path: Path, column: str) -> None:
    pq.write_table(pq.read_table(path).drop_columns([column]), path)


@pytest.mark.parametrize("dropped", ["amount", "store", "order_id"])
def test_a_file_lacking_a_mapped_column_is_refused_alike_on_both_engines(
    tmp_path, monkeypatch, dropped
):
    require_spark()
    import churn.spark.ingest as spark_ingest

    source = tmp_path / "export"
    write_orders(source / "part-a.parquet", generated_rows(1, 300), zoned=True)
    write_orders(source / "part-b.parquet", generated_rows(2, 300), zoned=True)
    _drop(source / "part-b.parquet", dropped)
    params = IngestParams(
        source=str(source), columns=COLUMNS, passthrough=("store",), reject_after=REJECT_AFTER
    )

    def no_read(*args, **kwargs):
        raise AssertionError("Spark read the files before their footers were checked")

    monkeypatch.setattr(spark_ingest, "_read_parquet", no_read)
    on_duckdb = _error(params, EngineParams(), tmp_path, "duckdb")
    on_spark = _error(params, spark_engine(tmp_path / "spark-local"), tmp_path, "spark")
    assert type(on_spark) is type(on_duckdb) is ChurnError
    assert str(on_spark) == str(on_duckdb)
    assert str(on_spark).startswith(f"{source / 'part-b.parquet'}: column {dropped!r} is missing")
    assert "re-export this file or remove it" in str(on_spark)


def test_a_side_table_file_lacking_a_mapped_column_is_refused_alike_on_both_engines(tmp_path):
    require_spark()
    source = tmp_path / "export.parquet"
    write_orders(source, generated_rows(1, 300), zoned=True)
    customers = tmp_path / "customers"
    customers.mkdir()
    ids = [f"{i:05d}" for i in range(1, 60)]
    pq.write_table(
        pa.table(
            {
                "customer_id": ids,
                "signup_date": pa.array([datetime(2024, 1, 1).date()] * len(ids)),
                "channel": ["web"] * len(ids),
                "region": ["north"] * len(ids),
            }
        ),
        customers / "part-a.parquet",
    )
    pq.write_table(
        pa.table({"customer_id": ["10001"], "signup_date": [datetime(2024, 2, 1).date()],
                  "channel": ["store"]}),
        customers / "part-b.parquet",
    )  # fmt: skip
    params = IngestParams(
        source=str(source),
        columns=COLUMNS,
        reject_after=REJECT_AFTER,
        customers={"source": str(customers)},
    )
    on_duckdb = _error(params, EngineParams(), tmp_path, "duckdb")
    on_spark = _error(params, spark_engine(tmp_path / "spark-local"), tmp_path, "spark")
    assert str(on_spark) == str(on_duckdb)
    assert str(on_spark).startswith(f"{customers / 'part-b.parquet'}: column 'region' is missing")


def _delta_with_a_column_added(folder: Path) -> tuple[str, str]:
    """A Delta table written without `store`, then appended to with it (schema evolution);
    return (the older file, the newer file)."""
    from deltalake import DeltaTable, write_deltalake

    def table(rows: list[tuple], with_store: bool) -> pa.Table:
        customer, ordered_at, amount, order_id, store = (list(c) for c in zip(*rows, strict=True))
        columns = {
            "customer": pa.array(customer, pa.string()),
            "ordered_at": pa.array(ordered_at, pa.timestamp("us", tz="UTC")),
            "amount": pa.array(amount, pa.float64()),
            "order_id": pa.array(order_id, pa.string()),
        }
        if with_store:
            columns["store"] = pa.array(store, pa.string())
        return pa.table(columns)

    write_deltalake(str(folder), table(generated_rows(1, 300), False))
    older = set(DeltaTable(str(folder)).file_uris())
    write_deltalake(
        str(folder), table(generated_rows(2, 300), True), mode="append", schema_mode="merge"
    )
    (newer,) = set(DeltaTable(str(folder)).file_uris()) - older
    return older.pop(), newer


@pytest.mark.parametrize("first", ["older", "newer"])
def test_a_delta_column_added_later_is_null_in_the_older_files_rows(tmp_path, monkeypatch, first):
    """Delta fills a column its older files lack with NULL: not refused. The table's schema
    comes from its log, so the result does not depend on which file Spark would take a schema
    from (both orders of the files tried)."""
    require_spark()
    pytest.importorskip("deltalake")
    import churn.spark.sources as spark_sources

    source = tmp_path / "orders"
    older, newer = _delta_with_a_column_added(source)
    assert "store" not in pq.read_schema(older).names
    # the live files under names that sort (and are listed) with `first` first: Spark without
    # a schema takes it from one file's footer, and the older one lacks the column
    names = ("0-first.parquet", "1-second.parquet")
    ordered = [older, newer] if first == "older" else [newer, older]
    renamed = []
    for name, path in zip(names, ordered, strict=True):
        renamed.append(str(source / name))
        shutil.copyfile(path, renamed[-1])
    monkeypatch.setattr(spark_sources, "delta_files", lambda folder, table=None: renamed)
    params = IngestParams(
        source=str(source), columns=COLUMNS, passthrough=("store",), reject_after=REJECT_AFTER
    )
    report, _ = _ingest(
        params, spark_engine(tmp_path / "spark-local"), tmp_path / "out", tmp_path / "w", True
    )
    clean = pd.read_parquet(tmp_path / "out" / "transactions.parquet")
    assert report["format"] == "delta" and report["rows_read"] == 600
    older_ids = {f"o1-{i}" for i in range(300)}
    from_older = clean["transaction_id"].isin(older_ids)
    assert from_older.sum() == 300 and clean.loc[from_older, "store"].isna().all()
    assert clean.loc[~from_older, "store"].notna().all()
