"""Source fingerprints (the `sources` stage): equal while a source's content is unchanged, changed
when it changes; folders by ingest's own file rules; SQL by a read-only count and newest time;
hashes reused while a file's stat is unchanged; no secret and no time in what is written."""

from __future__ import annotations

import os
import sqlite3
import time

import pytest

from churn.errors import ChurnError
from churn.files import json_text
from churn.ingest.fingerprint import RACY_NS, fingerprint_sources
from support.ingest_support import HEADER, ingest_params

ROWS = HEADER + "00001,a,2024-01-01 10:00:00,5.0\n00002,b,2024-01-02 10:00:00,7.5\n"
NOW = time.time_ns()
OLD = NOW - 10 * RACY_NS  # a file last written well before the run


def _write(path, text: str, mtime_ns: int = OLD) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.utime(path, ns=(mtime_ns, mtime_ns))


def _fingerprint(params, previous=None, environ=None):
    return fingerprint_sources(params, previous or {}, environ or {}, NOW)


def test_the_same_bytes_give_the_same_fingerprint_file_for_file(tmp_path):
    source = tmp_path / "tx.csv"
    _write(source, ROWS)
    first = _fingerprint(ingest_params(source))
    os.utime(source, ns=(OLD + 5, OLD + 5))  # touched, not changed
    second = _fingerprint(ingest_params(source))
    assert json_text(first.report) == json_text(second.report)
    (entry,) = first.report["sources"]["transactions"]["files"]
    assert entry["bytes"] == len(ROWS) and len(entry["sha256"]) == 64
    assert first.report["sources"]["customers"] is None and first.report["sources"]["nps"] is None


def test_changed_content_of_the_same_size_changes_the_fingerprint(tmp_path):
    source = tmp_path / "tx.csv"
    _write(source, ROWS)
    before = _fingerprint(ingest_params(source)).report
    _write(source, ROWS.replace("7.5", "8.5"), OLD + 1)
    after = _fingerprint(ingest_params(source)).report
    assert before != after


def test_a_cached_hash_is_reused_only_while_size_mtime_and_inode_are_unchanged(tmp_path):
    source = tmp_path / "tx.csv"
    _write(source, ROWS)
    first = _fingerprint(ingest_params(source))
    assert (first.files_hashed, first.files_cached) == (1, 0)
    (key,) = first.cache
    assert key == str(source.resolve())
    # a planted hash proves the cache is read instead of the file
    planted = {key: {**first.cache[key], "sha256": "0" * 64}}
    reused = _fingerprint(ingest_params(source), planted)
    assert (reused.files_hashed, reused.files_cached) == (0, 1)
    assert reused.report["sources"]["transactions"]["files"][0]["sha256"] == "0" * 64
    os.utime(source, ns=(OLD + 7, OLD + 7))
    rehashed = _fingerprint(ingest_params(source), planted)
    assert rehashed.files_hashed == 1
    assert rehashed.report == first.report


def test_a_file_written_just_before_the_run_is_hashed_again_next_time(tmp_path):
    source = tmp_path / "tx.csv"
    _write(source, ROWS, mtime_ns=NOW - RACY_NS // 2)
    result = _fingerprint(ingest_params(source))
    assert result.cache == {}  # it may still change within the same mtime tick
    assert result.report["sources"]["transactions"]["files"][0]["bytes"] == len(ROWS)


def test_a_folder_lists_the_files_ingest_reads_sorted(tmp_path):
    folder = tmp_path / "exports"
    _write(folder / "2024-02.csv", ROWS)
    _write(folder / "old" / "2024-01.csv.gz", "not read as text here")
    _write(folder / "README.md", "notes")
    before = _fingerprint(ingest_params(folder)).report["sources"]["transactions"]
    assert before["format"] == "csv"
    assert [f["path"] for f in before["files"]] == [
        str(folder / "2024-02.csv"),
        str(folder / "old" / "2024-01.csv.gz"),
    ]
    _write(folder / "README.md", "other notes")  # not a data file: no change
    assert _fingerprint(ingest_params(folder)).report["sources"]["transactions"] == before
    _write(folder / "2024-03.csv", ROWS)  # a new month: a change
    after = _fingerprint(ingest_params(folder)).report["sources"]["transactions"]
    assert len(after["files"]) == 3


def test_side_tables_are_fingerprinted_and_a_missing_one_names_its_key(tmp_path):
    source, customers = tmp_path / "tx.csv", tmp_path / "crm.csv"
    _write(source, ROWS)
    _write(customers, "customer_id,signup_date\n00001,2023-05-01\n")
    params = ingest_params(source, customers={"source": str(customers)})
    report = _fingerprint(params).report["sources"]
    assert [f["path"] for f in report["customers"]["files"]] == [str(customers)]
    missing = ingest_params(source, nps={"source": str(tmp_path / "nps.csv")})
    with pytest.raises(ChurnError, match=r"nps.csv: not found; fix ingest.nps.source"):
        _fingerprint(missing)


# --------------------------------------------------------------------------- SQL (SQLite)
@pytest.fixture
def shop(tmp_path):
    path = tmp_path / "shop.db"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE orders (customer TEXT, order_id TEXT, ordered_at TEXT, amount REAL)"
        )
        db.executemany(
            "INSERT INTO orders VALUES (?, ?, ?, ?)",
            [
                ("00001", "a", "2024-01-01 10:00:00", 5.0),
                ("00002", "b", "2024-01-02 10:00:00", 7.5),
            ],
        )
    return path


def _add_order(path, ordered_at: str) -> None:
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO orders VALUES ('00003', 'c', ?, 1.0)", (ordered_at,))


def test_a_sql_table_is_fingerprinted_by_row_count_and_newest_timestamp(shop):
    params = ingest_params(f"sqlite:///{shop}", sql={"table": "orders"})
    first = _fingerprint(params).report["sources"]["transactions"]
    assert first["rows"] == 2 and first["newest"] == "2024-01-02 10:00:00"
    assert first["table"] == "orders" and first["timestamp_column"] == "ordered_at"
    assert _fingerprint(params).report["sources"]["transactions"] == first
    _add_order(shop, "2024-01-03 09:00:00")
    after = _fingerprint(params).report["sources"]["transactions"]
    assert (after["rows"], after["newest"]) == (3, "2024-01-03 09:00:00")


def test_a_sql_query_binds_its_values_and_sees_only_its_rows(shop):
    params = ingest_params(
        f"sqlite:///{shop}",
        sql={
            "query": "SELECT * FROM orders WHERE customer = :who",
            "query_params": {"who": "00002"},
        },
    )
    report = _fingerprint(params).report["sources"]["transactions"]
    assert (report["rows"], report["newest"]) == (1, "2024-01-02 10:00:00")
    assert report["query_params"] == {"who": "00002"}
    _add_order(shop, "2024-02-01 00:00:00")  # another customer's order: not in this source
    assert _fingerprint(params).report["sources"]["transactions"] == report


def test_a_sql_source_missing_the_timestamp_column_names_it(shop):
    params = ingest_params(
        f"sqlite:///{shop}", sql={"table": "orders"}, columns={"timestamp": "created"}
    )
    with pytest.raises(ChurnError, match="has no column 'created'"):
        _fingerprint(params)


def test_a_url_from_the_environment_stays_out_of_the_fingerprint(shop):
    environ = {"SHOP_DB": f"sqlite:///{shop}"}
    from_env = _fingerprint(ingest_params("env:SHOP_DB", sql={"table": "orders"}), environ=environ)
    assert str(shop) not in json_text(from_env.report)
    transactions = from_env.report["sources"]["transactions"]
    assert transactions["source"] == "env:SHOP_DB" and len(transactions["url_sha256"]) == 64
    shop.with_name("copy.db").write_bytes(shop.read_bytes())
    elsewhere = {"SHOP_DB": f"sqlite:///{shop.with_name('copy.db')}"}
    moved = _fingerprint(ingest_params("env:SHOP_DB", sql={"table": "orders"}), environ=elsewhere)
    assert moved.report != from_env.report  # the same rows, but another database
