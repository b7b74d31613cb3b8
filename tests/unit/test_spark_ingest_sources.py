"""Which transactions sources the Spark ingest reads (typed tables) and which go through the
DuckDB ingest first (text exports, SQL); Delta tables fingerprinted by their transaction log;
a Spark catalog table refused on the DuckDB engine with the fix."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from churn.config import EngineParams, IngestParams
from churn.errors import ChurnError
from churn.ingest import IngestOutputs, run_ingest
from churn.ingest.fingerprint import fingerprint_sources
from churn.spark.ingest import typed_source

COLUMNS = {"customer_id": "customer", "timestamp": "ordered_at", "amount": "amount"}


def _parquet(path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"customer": ["a"], "ordered_at": [1], "amount": [1.0]}), path)


def test_typed_tables_go_to_spark_and_text_exports_to_duckdb(tmp_path):
    _parquet(tmp_path / "tx.parquet")
    _parquet(tmp_path / "folder" / "part-0.parquet")
    _parquet(tmp_path / "delta" / "part-0.parquet")
    (tmp_path / "delta" / "_delta_log").mkdir()
    (tmp_path / "tx.csv").write_text("customer,ordered_at,amount\na,2024-01-01,1\n")
    cases = {
        str(tmp_path / "tx.parquet"): "parquet",
        str(tmp_path / "folder"): "parquet",
        str(tmp_path / "delta"): "delta",
        str(tmp_path / "tx.csv"): None,
        "postgresql://db.example/shop": None,
    }
    for source, kind in cases.items():
        sql = {"table": "orders"} if source.startswith("postgresql") else {}
        params = IngestParams(source=source, columns=COLUMNS, sql=sql)
        assert typed_source(params) == kind, source
    table = IngestParams(source="sales.orders", format="table", columns=COLUMNS)
    assert typed_source(table) == "table"


def _commit(folder, number: int, actions: list[dict]) -> None:
    log = folder / "_delta_log"
    log.mkdir(parents=True, exist_ok=True)
    text = "\n".join(json.dumps(a) for a in actions) + "\n"
    (log / f"{number:020d}.json").write_text(text)


def test_a_delta_table_is_fingerprinted_by_its_log_and_changes_with_a_commit(tmp_path):
    folder = tmp_path / "orders"
    _parquet(folder / "part-0.parquet")
    _commit(folder, 0, [{"add": {"path": "part-0.parquet", "dataChange": True}}])
    params = IngestParams(source=str(folder), columns=COLUMNS)
    first = fingerprint_sources(params, {}, {}, 0).report["sources"]["transactions"]
    again = fingerprint_sources(params, {}, {}, 0).report["sources"]["transactions"]
    assert first == again and first["format"] == "delta"
    assert [entry["path"].endswith(".json") for entry in first["files"]] == [True]
    _commit(folder, 1, [{"remove": {"path": "part-0.parquet", "dataChange": True}}])
    changed = fingerprint_sources(params, {}, {}, 0).report["sources"]["transactions"]
    assert changed != first and len(changed["files"]) == 2


def _duckdb_ingest(params: IngestParams, tmp_path) -> None:
    """Run the DuckDB ingest of `params` into tmp_path/out."""
    run_ingest(
        params,
        EngineParams(),
        IngestOutputs.in_folder(tmp_path / "out"),
        tmp_path,
        {},
        datetime(2025, 1, 1, tzinfo=UTC),
        {},
        tmp_path,
    )


def test_a_catalog_table_is_refused_by_the_duckdb_ingest_with_the_fix(tmp_path):
    params = IngestParams(source="sales.orders", format="table", columns=COLUMNS)
    with pytest.raises(ChurnError, match=r"Spark catalog.*engine.kind: spark"):
        _duckdb_ingest(params, tmp_path)
    assert not (tmp_path / "out").exists()


def _two_files(folder, dropped: str) -> None:
    """One export in two Parquet files, the second without the column `dropped`."""
    folder.mkdir(parents=True)
    full = {"customer": ["a"], "ordered_at": [1], "amount": [1.0], "store": ["s1"]}
    pq.write_table(pa.table(full), folder / "part-a.parquet")
    pq.write_table(
        pa.table({k: v for k, v in full.items() if k != dropped}), folder / "part-b.parquet"
    )


@pytest.mark.parametrize("dropped", ["amount", "store"])
def test_a_parquet_file_lacking_a_mapped_column_is_refused_from_its_footer_on_both_engines(
    tmp_path, dropped
):
    from churn.spark.ingest import _open

    folder = tmp_path / "orders"
    _two_files(folder, dropped)
    params = IngestParams(source=str(folder), columns=COLUMNS, passthrough=("store",))
    with pytest.raises(ChurnError) as on_duckdb:
        _duckdb_ingest(params, tmp_path)
    # the Spark ingest's check runs on the footers before Spark reads a row: no session needed
    required = ["customer", "ordered_at", "amount", "store"]
    with pytest.raises(ChurnError) as on_spark:
        _open(None, str(folder), "parquet", "UTC", required)
    message = (
        f"{folder / 'part-b.parquet'}: column {dropped!r} is missing in this file but present "
        f"in others of {folder}; the folder mixes schemas; re-export this file or remove it"
    )
    assert str(on_duckdb.value) == str(on_spark.value) == message
