"""A Delta Lake (or Iceberg, Hudi) folder is refused as a source, never read file by file."""

from __future__ import annotations

import pytest

from churn.errors import ChurnError
from churn.ingest.sources import list_files
from churn.ingest.table_formats import find_table_folder, refuse_table_folders
from support.ingest_support import run, write_csv
from support.table_folders import (
    write_delta_table,
    write_hudi_table,
    write_iceberg_table,
    write_plain_parquet,
)

TX = "00001,a,2024-01-01 10:00:00,1\n"
COLUMNS = {"customer_id": "customer", "timestamp": "ordered_at", "amount": "amount"}


def test_a_delta_folder_is_refused_with_the_reason_and_the_fix(tmp_path):
    table = write_delta_table(tmp_path / "orders")
    with pytest.raises(ChurnError) as error:
        refuse_table_folders(str(table), "ingest.source")
    message = str(error.value)
    assert message.startswith(f"{table}: ingest.source points at a Delta Lake table")
    assert "_delta_log" in message
    assert "deleted and updated rows" in message and "VACUUM" in message
    assert "Export the table's current version to Parquet or CSV" in message
    assert "spark.read.format('delta')" in message and "deltalake" in message


def test_a_file_inside_a_partitioned_delta_table_is_refused(tmp_path):
    table = write_delta_table(tmp_path / "orders", partitioned=True)
    part = table / "day=2024-01-01" / "part-00000-v0.snappy.parquet"
    assert find_table_folder(part) == (table.absolute(), "Delta Lake")
    with pytest.raises(ChurnError, match=r"a Delta Lake table in .*orders\)"):
        list_files(str(part), "parquet")


def test_a_folder_holding_a_delta_table_below_it_is_refused(tmp_path):
    write_plain_parquet(tmp_path / "raw" / "plain")
    table = write_delta_table(tmp_path / "raw" / "orders")
    assert find_table_folder(tmp_path / "raw") == (table.absolute(), "Delta Lake")
    with pytest.raises(ChurnError, match="ingest.customers.source points at a Delta Lake"):
        list_files(str(tmp_path / "raw"), "parquet", "ingest.customers.source")


@pytest.mark.parametrize(
    ("write", "name", "marker"),
    [
        (write_iceberg_table, "Apache Iceberg", "metadata/*.metadata.json"),
        (write_hudi_table, "Apache Hudi", ".hoodie"),
    ],
)
def test_iceberg_and_hudi_folders_are_refused_too(tmp_path, write, name, marker):
    table = write(tmp_path / "orders")
    with pytest.raises(ChurnError, match=f"points at a {name} table") as error:
        list_files(str(table), "parquet")
    assert marker in str(error.value)


def test_plain_files_and_folders_pass(tmp_path):
    plain = write_plain_parquet(tmp_path / "plain")
    assert find_table_folder(plain) is None
    assert [p.name for p in list_files(str(plain), "parquet")] == ["part-0.parquet"]
    csv = write_csv(tmp_path, TX)
    assert find_table_folder(csv) is None


def test_ingest_refuses_a_delta_transactions_source_before_reading_it(tmp_path):
    table = write_delta_table(tmp_path / "orders")
    with pytest.raises(ChurnError, match="ingest.source points at a Delta Lake table"):
        run(tmp_path, table, format="parquet", columns=COLUMNS)
    with pytest.raises(ChurnError, match="ingest.source points at a Delta Lake table"):
        run(tmp_path, table, columns=COLUMNS)  # format auto: the folder holds Parquet
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("side", ["customers", "nps"])
def test_ingest_refuses_a_delta_side_table(tmp_path, side):
    table = write_delta_table(tmp_path / side)
    spec = {"source": str(table), "columns": {"customer_id": "customer"}}
    if side == "customers":
        spec["columns"]["signup_date"] = "ordered_at"
    else:
        spec["columns"] |= {"answered_at": "ordered_at", "score": "amount"}
    with pytest.raises(ChurnError, match=f"ingest.{side}.source points at a Delta Lake table"):
        run(tmp_path, write_csv(tmp_path, TX), **{side: spec})
