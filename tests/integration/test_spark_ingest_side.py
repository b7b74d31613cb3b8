"""The side tables on Spark (churn.spark.side): typed customers and NPS tables cleaned by Spark SQL
give the DuckDB ingest's clean customers and NPS tables, quarantine rows (reason and detail) and
report sections, and the same customers' category check; generated rows plus a hand-built edge
case for each quarantine reason and for the dedupe (repeats within and across files, conflicting
or not, a repeat whose first row is quarantined). A text date column goes through the DuckDB
ingest, with the same outputs."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from churn.config import EngineParams, IngestParams
from churn.ingest import IngestOutputs, run_ingest
from support.spark_ingest_data import NOW, generated_rows, write_orders
from support.spark_parity import assert_same_output_files, spark_engine

pytestmark = [pytest.mark.slow, pytest.mark.spark]

OUTPUTS = ("transactions", "quarantine", "customers", "nps")
IDS = [f"{i:05d}" for i in range(1, 150)]  # the generated orders' customers
DAY = date(2025, 3, 1)
AT = datetime(2025, 3, 29, 23, 30, tzinfo=UTC)  # 00:30 on March 30 in Berlin

CUSTOMER_EDGES = [  # customer_id, signup_date, channel, region
    (None, DAY, "web", "north"),  # missing_customer_id
    ("   ", DAY, "web", "north"),  # blank: missing_customer_id
    ("=cmd|' /C calc'!A0", DAY, "web", "north"),  # formula_customer_id
    ("+49 30 1234", DAY, "web", "north"),  # formula_customer_id
    ("x\x07y", DAY, "web", "north"),  # control_character_customer_id
    ("c_old", date(1850, 1, 1), "web", "north"),  # date_out_of_range
    ("c_no_signup", None, "app", None),  # valid: no signup date, no region
    ("  c_padded\t", DAY, " web ", "north"),  # trimmed id and channel
    ("Zed", DAY, "web", "north"),  # upper, lower and non-ASCII ids: one sort order
    ("apple", DAY, "web", "north"),
    ("\u00e9lan", DAY, "web", "north"),
    ("c_twice", DAY, "web", "north"),  # repeated in the same file with another channel
    ("c_twice", DAY, "app", "north"),
    ("c_same", DAY, "web", "south"),  # repeated identically (counted, no warning)
    ("c_same", DAY, "web", "south"),
    ("c_first_bad", date(1850, 1, 1), "web", "north"),  # quarantined; its repeat is kept
    ("c_first_bad", DAY, "store", "north"),
]
CUSTOMER_REPEATS = [  # in the second file: repeats of the first file's ids
    ("00007", date(2024, 2, 2), "store", "east"),  # conflicting with the first row
    ("c_same", DAY, "web", "south"),
]

NPS_EDGES = [  # customer_id, answered_at (UTC instant), score (text)
    (None, AT, "5"),  # missing_customer_id
    ("=1+1", AT, "5"),  # formula_customer_id
    ("a\x1fb", AT, "5"),  # control_character_customer_id
    ("00001", None, "5"),  # missing_date
    ("00001", datetime(2025, 7, 2, tzinfo=UTC), "5"),  # future_date
    ("00001", datetime(1850, 1, 1, tzinfo=UTC), "5"),  # date_out_of_range
    ("00001", AT, None),  # missing_score
    ("00001", AT, "  "),  # blank: missing_score
    ("00001", AT, "abc"),  # non_numeric_score
    ("00001", AT, "7d"),  # non_numeric_score (Java would read it as 7.0)
    ("00001", AT, "11"),  # score_out_of_range
    ("00001", AT, "-1"),
    ("00001", AT, "7.5"),
    ("00001", AT, "NaN"),
    ("00001", AT, "Infinity"),
    ("c_valid", AT, " 8 "),  # valid: 8
    ("c_valid", AT, "8.0"),
    ("c_valid", AT, "1e1"),  # valid: 10
    ("c_one_day", AT + timedelta(hours=9), "9"),  # one day, two answers: sorted by time
    ("c_one_day", AT + timedelta(hours=8), "3"),
    ("c_one_day", AT + timedelta(hours=8), "3"),  # a repeated answer is kept
]


def _customer_rows(seed: int) -> list[tuple]:
    rng = np.random.default_rng(seed)
    return [
        (
            cid,
            date(2024, 1, 1) + timedelta(days=int(rng.integers(0, 545))),
            ["web", "store", "app"][int(rng.integers(0, 3))],
            ["north", "south"][int(rng.integers(0, 2))],
        )
        for cid in IDS
    ]


def _nps_rows(seed: int) -> list[tuple]:
    rng = np.random.default_rng(seed)
    return [
        (
            IDS[int(rng.integers(0, len(IDS)))],
            datetime(2025, 1, 1, tzinfo=UTC) + timedelta(minutes=int(rng.integers(0, 250_000))),
            str(int(rng.integers(0, 11))),
        )
        for _ in range(120)
    ]


def _write_customers(path: Path, rows: list[tuple], signup: str) -> None:
    """signup: 'date' (a DATE column) or 'text' (ISO text; text values kept as they are)."""
    ids, signups, channels, regions = (list(c) for c in zip(*rows, strict=True))
    if signup == "text":
        signups = [d.isoformat() if isinstance(d, date) else d for d in signups]
        kind = pa.string()
    else:
        kind = pa.date32()
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(
        pa.table(
            {
                "customer_id": pa.array(ids, pa.string()),
                "signup_date": pa.array(signups, kind),
                "channel": pa.array(channels, pa.string()),
                "region": pa.array(regions, pa.string()),
            }
        ),
        path,
    )


def _write_nps(path: Path, rows: list[tuple], zoned: bool, numeric: bool) -> None:
    """zoned: UTC instants (else naive wall-clock times); numeric: scores as doubles."""
    ids, answered, scores = (list(c) for c in zip(*rows, strict=True))
    if not zoned:
        answered = [None if t is None else t.replace(tzinfo=None) for t in answered]
    if numeric:
        scores = [_as_number(s) for s in scores]
    pq.write_table(
        pa.table(
            {
                "customer_id": pa.array(ids, pa.string()),
                "answered_at": pa.array(answered, pa.timestamp("us", tz="UTC" if zoned else None)),
                "score": pa.array(scores, pa.float64() if numeric else pa.string()),
            }
        ),
        path,
    )


def _as_number(text: str | None) -> float | None:
    try:
        return None if text is None or not text.strip() else float(text)
    except ValueError:
        return math.nan  # a number column cannot hold 'abc': NaN, out of range


def _sources(folder: Path, signup: str, zoned: bool, numeric: bool) -> dict:
    """The transactions (two typed files), a customers folder of two files and an NPS file."""
    write_orders(folder / "orders" / "part-a.parquet", generated_rows(1, 400), zoned=True)
    write_orders(folder / "orders" / "part-b.parquet", generated_rows(2, 400), zoned=True)
    first = _customer_rows(4)[:100] + CUSTOMER_EDGES
    if signup == "text":  # unparseable_date (DuckDB's rule)
        first += [("c_bad_text", "not a date", "web", "north")]
        first += [("c_bad_month", "2024-13-01", "web", "north")]
    second = _customer_rows(4)[100:] + CUSTOMER_REPEATS
    _write_customers(folder / "customers" / "part-a.parquet", first, signup)
    _write_customers(folder / "customers" / "part-b.parquet", second, signup)
    _write_customers(folder / "customers" / ".hidden.parquet", _customer_rows(5)[:3], signup)
    _write_nps(folder / "nps.parquet", _nps_rows(6) + NPS_EDGES, zoned, numeric)
    return {
        "source": str(folder / "orders"),
        "columns": {"customer_id": "customer", "timestamp": "ordered_at", "amount": "amount"},
        "customers": {"source": str(folder / "customers")},
        "nps": {"source": str(folder / "nps.parquet")},
    }


def _ingest(params: IngestParams, engine: EngineParams, out: Path, work: Path, spark=None):
    from churn.spark.ingest import spark_cleaner

    work.mkdir(parents=True, exist_ok=True)
    cleaner = spark_cleaner(params, engine, work, spark) if spark is not None else None
    return run_ingest(params, engine, IngestOutputs.in_folder(out), out, {}, NOW, {}, work, cleaner)


@pytest.mark.parametrize(
    ("signup", "zoned", "numeric", "zone", "on_spark"),
    [
        ("date", True, False, "Europe/Berlin", {"customers", "nps"}),
        # text signup dates: the customers go through the DuckDB ingest, NPS stays on Spark
        ("text", False, True, "UTC", {"nps"}),
    ],
    ids=["typed_dates_text_scores_berlin", "text_signups_numeric_scores_utc"],
)
def test_side_tables_on_spark_give_duckdbs_tables_quarantine_and_report(
    tmp_path, spark, monkeypatch, signup, zoned, numeric, zone, on_spark
):
    from churn.ingest import integrity

    counted_on = []  # which engine counted the customers' category check, run by run
    measure = integrity.measure_customer_levels

    def spy(run, *args):
        counted_on.append(type(run).__name__)
        return measure(run, *args)

    monkeypatch.setattr(integrity, "measure_customer_levels", spy)
    from pyspark import StorageLevel

    cached = []  # what the Spark ingest caches must be unpersisted when it is done
    frames = type(spark.range(1))  # the session's DataFrame class (classic or Connect)
    cache = frames.cache

    def cache_spy(frame):
        cached.append(frame)
        return cache(frame)

    monkeypatch.setattr(frames, "cache", cache_spy)
    views = {t.name for t in spark.catalog.listTables() if t.isTemporary}
    params = IngestParams(
        timezone=zone,
        reject_after=datetime(2025, 6, 30, 23, 59, 59),
        max_quarantine_share=0.5,  # the edge cases are a large share of small tables
        **_sources(tmp_path, signup, zoned, numeric),
    )
    duck_report, duck_history = _ingest(
        params, EngineParams(), tmp_path / "duckdb", tmp_path / "w1"
    )
    spark_report, spark_history = _ingest(
        params, spark_engine(tmp_path / "spark-local"), tmp_path / "spark", tmp_path / "w2", spark
    )
    assert len(cached) == 1 + len(on_spark)  # the transactions' and each side table's rows
    assert [f.storageLevel for f in cached] == [StorageLevel.NONE] * len(cached)
    assert {t.name for t in spark.catalog.listTables() if t.isTemporary} == views
    # the side tables Spark cleaned left their part files; the others none
    assert {
        n for n in ("customers", "nps") if (tmp_path / "w2" / f"spark_{n}").is_dir()
    } == on_spark
    spark_counter = "SparkAggregates" if "customers" in on_spark else "DuckDBAggregates"
    assert counted_on == ["DuckDBAggregates", spark_counter]
    assert spark_report == duck_report
    assert spark_history == duck_history
    assert_same_output_files(tmp_path / "duckdb", tmp_path / "spark", OUTPUTS)

    customers, nps = duck_report["customers_table"], duck_report["nps_table"]
    for table in (customers, nps):
        assert (
            table["rows_read"]
            == table["rows_clean"] + table["quarantined"] + table["duplicates_removed"]
        )
    texts = 2 if signup == "text" else 0
    assert customers["rows_read"] == len(IDS) + len(CUSTOMER_EDGES) + len(CUSTOMER_REPEATS) + texts
    assert customers["files_skipped"] == {
        "hidden": [str(tmp_path / "customers" / ".hidden.parquet")]
    }
    assert customers["duplicates_removed"] == 4  # c_twice, c_same twice, 00007
    assert customers["duplicate_ids_conflicting"] == 2  # c_twice, 00007
    expected = {"missing_customer_id": 2, "formula_customer_id": 2}
    expected |= {"control_character_customer_id": 1}
    if signup == "date":
        expected["date_out_of_range"] = 2
    else:
        expected |= {"unparseable_date": 2, "date_out_of_range": 2}
    assert customers["quarantined_by_reason"] == expected
    nps_reasons = nps["quarantined_by_reason"]
    assert set(nps_reasons) >= {
        "missing_customer_id", "formula_customer_id", "control_character_customer_id",
        "missing_date", "future_date", "date_out_of_range", "missing_score",
        "score_out_of_range",
    }  # fmt: skip
    if not numeric:
        assert nps_reasons["non_numeric_score"] == 2
    checks = duck_report["checks"]
    assert {n for n in checks if n.startswith("integrity_customers_categories_")} == {
        "integrity_customers_categories_channel",
        "integrity_customers_categories_region",
    }
    clean = pd.read_parquet(tmp_path / "spark" / "customers.parquet")
    kept = clean.set_index("customer_id")
    assert kept.loc["c_twice", "channel"] == "web" and kept.loc["c_first_bad", "channel"] == "store"
    assert kept.loc["c_padded", "channel"] == "web"
    answers = pd.read_parquet(tmp_path / "spark" / "nps.parquet")
    assert answers.loc[answers["customer_id"] == "c_one_day", "nps_score"].tolist() == [3, 3, 9]
    valid = answers[answers["customer_id"] == "c_valid"]
    assert sorted(valid["nps_score"]) == [8, 8, 10]
    # 23:30 UTC is the next day in Berlin; naive times are taken as wall-clock time
    assert set(valid["answered_at"]) == {date(2025, 3, 30) if zoned else date(2025, 3, 29)}
