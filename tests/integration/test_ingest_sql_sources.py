"""SQL sources: SQLite always, the machine's PostgreSQL when reachable; read-only and injection-safe."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from churn.errors import ChurnError
from support.ingest_support import run
from support.services import POSTGRES_DSN, require

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
COLUMNS = {"customer_id": "customer", "timestamp": "ordered_at", "amount": "amount",
           "transaction_id": "order_id"}  # fmt: skip


@pytest.fixture
def sqlite_db(tmp_path):
    path = tmp_path / "shop.db"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE orders (customer TEXT, order_id TEXT, ordered_at TEXT, amount REAL)"
        )
        db.executemany(
            "INSERT INTO orders VALUES (?, ?, ?, ?)",
            [
                ("00001", "a", "2024-01-01 10:00:00", 5.0),
                ("00002", "b", "2024-01-02 10:00:00", -1.0),
                ("00002", "b", "2024-01-02 10:00:00", -1.0),
                ("", "c", "2024-01-03 10:00:00", 2.0),
            ],
        )
    return path


def test_sqlite_table_is_snapshotted_hashed_and_cleaned(tmp_path, sqlite_db):
    result = run(tmp_path, f"sqlite:///{sqlite_db}", sql={"table": "orders"}, columns=COLUMNS)
    assert result.transactions["customer_id"].tolist() == ["00001", "00002"]
    assert result.report["duplicates_removed"] == 1
    assert result.report["quarantined_by_reason"] == {"missing_customer_id": 1}
    snapshot = result.report["snapshot"]
    digest = hashlib.sha256(Path(snapshot["path"]).read_bytes()).hexdigest()
    assert snapshot["sha256"] == digest and snapshot["rows"] == 4
    assert result.report["format"] == "sql"


def test_snapshot_of_unchanged_data_has_the_same_hash(tmp_path, sqlite_db):
    first = run(tmp_path, f"sqlite:///{sqlite_db}", sql={"table": "orders"}, columns=COLUMNS)
    second = run(tmp_path, f"sqlite:///{sqlite_db}", sql={"table": "orders"}, columns=COLUMNS)
    assert first.report["snapshot"]["sha256"] == second.report["snapshot"]["sha256"]


def test_query_values_are_bound_not_pasted(tmp_path, sqlite_db):
    sneaky = "00001' OR '1'='1"
    with pytest.raises(ChurnError, match="no data rows"):  # the value matched no customer
        run(
            tmp_path,
            f"sqlite:///{sqlite_db}",
            sql={
                "query": "SELECT * FROM orders WHERE customer = :who",
                "query_params": {"who": sneaky},
            },
            columns=COLUMNS,
        )


def test_query_with_a_bound_value_selects_rows(tmp_path, sqlite_db):
    result = run(
        tmp_path,
        f"sqlite:///{sqlite_db}",
        sql={
            "query": "SELECT * FROM orders WHERE customer = :who",
            "query_params": {"who": "00002"},
        },
        columns=COLUMNS,
    )
    assert result.transactions["customer_id"].tolist() == ["00002"]


def test_query_with_a_second_statement_is_refused_before_it_runs(tmp_path, sqlite_db):
    with pytest.raises(ChurnError, match="more than one statement"):
        run(
            tmp_path,
            f"sqlite:///{sqlite_db}",
            sql={"query": "WITH x AS (SELECT 1) SELECT * FROM orders; DELETE FROM orders"},
            columns=COLUMNS,
        )


def test_missing_table_is_an_error_naming_it(tmp_path, sqlite_db):
    with pytest.raises(ChurnError, match="'shipments' not found"):
        run(tmp_path, f"sqlite:///{sqlite_db}", sql={"table": "shipments"}, columns=COLUMNS)


def test_missing_column_in_table_is_an_error_listing_columns(tmp_path, sqlite_db):
    with pytest.raises(ChurnError, match="no column 'client'"):
        run(
            tmp_path,
            f"sqlite:///{sqlite_db}",
            sql={"table": "orders"},
            columns={**COLUMNS, "customer_id": "client"},
        )


def test_url_from_environment_never_reaches_the_report(tmp_path, sqlite_db):
    result = run(
        tmp_path,
        "env:SHOP_DB",
        environ={"SHOP_DB": f"sqlite:///{sqlite_db}"},
        sql={"table": "orders"},
        columns=COLUMNS,
    )
    assert result.report["source"] == "env:SHOP_DB"
    assert str(sqlite_db) not in json.dumps(result.report)


# --------------------------------------------------------------------------- PostgreSQL
def _postgres():
    import psycopg

    require("postgres")
    return psycopg.connect(POSTGRES_DSN, connect_timeout=2)


@pytest.fixture
def pg_table():
    """A uniquely named table in the local PostgreSQL, dropped afterwards."""
    conn = _postgres()
    conn.autocommit = True
    name = f"churn_ingest_{uuid.uuid4().hex[:12]}"
    conn.execute(f"CREATE SEQUENCE {name}_seq")
    conn.execute(
        f"CREATE TABLE {name} (customer text, order_id text, ordered_at timestamptz, "
        "amount numeric(10, 2), note text)"
    )
    with conn.cursor() as cur:
        cur.executemany(
            f"INSERT INTO {name} VALUES (%s, %s, %s, %s, %s)",
            [
                ("00001", "a", datetime(2024, 1, 1, 9, 0, tzinfo=UTC), Decimal("10.50"), "x"),
                ("00001", "b", datetime(2024, 7, 1, 9, 0, tzinfo=UTC), Decimal("-2.00"), "y"),
                ("00002", "c", datetime(2024, 1, 2, 9, 0, tzinfo=UTC), Decimal("0.00"), None),
                ("00002", "c", datetime(2024, 1, 2, 9, 0, tzinfo=UTC), Decimal("0.00"), None),
                (None, "d", datetime(2024, 1, 3, 9, 0, tzinfo=UTC), Decimal("1.00"), None),
            ],
        )
    try:
        yield name
    finally:
        conn.execute(f"DROP TABLE IF EXISTS {name}")
        conn.execute(f"DROP SEQUENCE IF EXISTS {name}_seq")
        conn.close()


@pytest.mark.postgres
def test_postgres_table_is_read_typed_and_converted_to_local_time(tmp_path, pg_table):
    result = run(tmp_path, PG_URL, sql={"table": pg_table}, columns=COLUMNS, passthrough=["note"])
    clean = result.transactions
    assert clean["customer_id"].tolist() == ["00001", "00001", "00002"]
    assert clean["timestamp"].tolist() == [
        pd.Timestamp("2024-01-01 10:00"),  # UTC+1 in winter
        pd.Timestamp("2024-07-01 11:00"),  # UTC+2 in summer
        pd.Timestamp("2024-01-02 10:00"),
    ]
    assert clean["amount"].tolist() == [10.5, -2.0, 0.0]
    assert clean["note"].tolist()[:2] == ["x", "y"]
    assert result.report["duplicates_removed"] == 1
    assert result.report["quarantined_by_reason"] == {"missing_customer_id": 1}
    assert result.report["snapshot"]["rows"] == 5


@pytest.mark.postgres
def test_postgres_query_runs_read_only(tmp_path, pg_table):
    writing = f"SELECT *, nextval('{pg_table}_seq') FROM {pg_table}"  # a SELECT that writes
    with pytest.raises(ChurnError, match="read-only transaction"):
        run(tmp_path, PG_URL, sql={"query": writing}, columns=COLUMNS)


@pytest.mark.postgres
def test_postgres_injection_through_table_name_is_refused(tmp_path, pg_table):
    with pytest.raises(ChurnError, match="plain"):
        run(tmp_path, PG_URL, sql={"table": f"{pg_table}; DROP TABLE {pg_table}"}, columns=COLUMNS)


@pytest.mark.postgres
def test_postgres_password_from_environment_is_masked_in_errors(tmp_path, pg_table):
    result = run(
        tmp_path,
        "postgresql://postgres@127.0.0.1:5432/test",
        environ={"PGPASSWORD": "not-needed-with-trust"},
        sql={"query": f"SELECT * FROM {pg_table} WHERE amount > :min", "query_params": {"min": 0}},
        columns=COLUMNS,
    )
    assert result.report["rows_read"] == 2
    assert "not-needed-with-trust" not in json.dumps(result.report)
    with pytest.raises(ChurnError) as caught:
        run(
            tmp_path,
            "postgresql://postgres@127.0.0.1:5432/no_such_db_here",
            environ={"PGPASSWORD": "hunter2"},
            sql={"table": pg_table},
            columns=COLUMNS,
        )
    assert "hunter2" not in str(caught.value)


@pytest.mark.postgres
def test_postgres_fingerprint_counts_read_only_and_hides_the_password(pg_table):
    from churn.files import json_text
    from churn.ingest.fingerprint import fingerprint_sources
    from support.ingest_support import ingest_params

    environ = {"PGPASSWORD": "hunter2"}
    params = ingest_params(PG_URL, sql={"table": pg_table}, columns=COLUMNS)
    result = fingerprint_sources(params, {}, environ, 0)
    transactions = result.report["sources"]["transactions"]
    assert transactions["source"] == PG_URL and "hunter2" not in json_text(result.report)
    assert transactions["rows"] == 5
    assert datetime.fromisoformat(transactions["newest"]) == datetime(2024, 7, 1, 9, tzinfo=UTC)
    with _postgres() as conn:
        conn.execute(f"INSERT INTO {pg_table} VALUES ('00003', 'e', '2024-08-01Z', 3, NULL)")
    again = fingerprint_sources(params, {}, environ, 0).report["sources"]["transactions"]
    assert again["rows"] == 6 and again["newest"] != transactions["newest"]
    writing = ingest_params(
        PG_URL,
        sql={"query": f"SELECT *, nextval('{pg_table}_seq') FROM {pg_table}"},
        columns=COLUMNS,
    )
    with pytest.raises(ChurnError, match="read-only transaction"):
        fingerprint_sources(writing, {}, environ, 0)


class _Batches:
    """Stands in for a SQLAlchemy result: keys() and partitions()."""

    def __init__(self, names, *batches):
        self._names, self._batches = names, batches

    def keys(self):
        return self._names

    def partitions(self):
        yield from self._batches


def test_snapshot_batches_with_different_decimal_precision_and_null_columns(tmp_path):
    from churn.ingest.sql import _write_batches

    result = _Batches(
        ["amount", "note"],
        [(Decimal("1.50"), None), (Decimal("2.25"), None)],
        [(Decimal("123456.789"), "x")],
    )
    rows = _write_batches(result, tmp_path / "snap.parquet")
    table = pd.read_parquet(tmp_path / "snap.parquet")
    assert rows == 3
    assert table["amount"].tolist() == [1.5, 2.25, 123456.789]
    assert table["note"].tolist()[2] == "x"
