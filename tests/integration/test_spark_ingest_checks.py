"""The ingest stage's data checks on Spark: their numbers counted by Spark SQL on the cleaned
frames (churn.spark.aggregates), the decisions shared with DuckDB. On a generated closed base and
on broken exports that trip each blocking integrity check (amounts x100 in the newest month, a
renamed category, nulls from 2% to 40%, a time zone shift, a dropped column, amounts emptied in
the newest month), both engines report the same checks and integrity sections (floats within
1e-9 relative) and block with the same message."""

from __future__ import annotations

import datetime as dt
import functools
import math
from pathlib import Path

import duckdb
import pytest

from churn.config import EngineParams, IngestParams
from churn.errors import DataCheckFailed
from churn.ingest import IngestOutputs, run_ingest
from churn.ingest.aggregates import DuckDBAggregates
from churn.ingest.integrity import IntegrityMeasures, measure_integrity
from churn.ingest.sources import lit
from churn.ingest.stage import integrity_source, local_reject_after
from support.integrity_data import closed_base
from support.integrity_exports import BROKEN, COLUMNS, REJECT_AFTER, with_note, write_export
from support.spark_parity import spark_engine

pytestmark = [pytest.mark.slow, pytest.mark.spark]

RELATIVE = 1e-9
NOW = REJECT_AFTER  # ingest.reject_after is set: the run time only names the history entry


@pytest.fixture(scope="module")
def base():
    return with_note(closed_base(24))


def _params(source: Path, zone: str, accept: tuple[str, ...] = ()) -> IngestParams:
    return IngestParams(
        source=str(source),
        columns=COLUMNS,
        passthrough=("channel", "coupon"),
        timezone=zone,
        reject_after=REJECT_AFTER,
        freshness={"max_age_days": 10, "action": "warn"},
        integrity={"accept": list(accept)},
    )


def _history(base, source: Path, zone: str | None, timezone: str) -> dict:
    """The run history of the same export a month earlier (the schema and volume reference);
    the export at `source` is replaced afterwards."""
    tmp_path = source.parent.parent
    previous = base[base["date"] <= base["date"].max() - dt.timedelta(days=30)]
    write_export(previous, source, zone)
    out = tmp_path / "previous_out"
    _, history = run_ingest(
        _params(source, timezone), EngineParams(), IngestOutputs.in_folder(out), out, {}, NOW,
        {}, tmp_path / "previous_work",
    )  # fmt: skip
    return history


def _run(params, engine, out: Path, history: dict, cleaner=None):
    out.mkdir(parents=True, exist_ok=True)
    work = out / "work"
    work.mkdir(exist_ok=True)
    return run_ingest(
        params, engine, IngestOutputs.in_folder(out), out, history, NOW, {}, work, cleaner
    )[0]


def _check_differences(got: dict, want: dict) -> tuple[list[str], float]:
    """Return what differs between two reports' checks sections (floats within RELATIVE) and
    the largest relative float difference."""
    differences, worst = [], 0.0
    if set(got) != set(want):
        return [f"checks {sorted(set(got) ^ set(want))} on one engine only"], worst
    for name, expected in want.items():
        for field, value in expected.items():
            other = got[name][field]
            if isinstance(value, float) and isinstance(other, float):
                scale = max(abs(value), 1e-300)
                relative = 0.0 if value == other else abs(other - value) / scale
                worst = max(worst, relative)
                if not (relative <= RELATIVE or (math.isnan(value) and math.isnan(other))):
                    differences.append(f"{name}.{field}: {other!r} != {value!r}")
            elif other != value:
                differences.append(f"{name}.{field}: {other!r} != {value!r}")
    return differences, worst


def _measured_on_duckdb(params: IngestParams, out: Path) -> IntegrityMeasures:
    """The DuckDB ingest's numbers, measured again on the clean file it wrote."""
    from churn.ingest import integrity

    con = duckdb.connect()
    try:
        quarantined = integrity.Quarantined(
            f"read_parquet({lit(str(out / 'quarantine.parquet'))})",
            integrity.quarantine_date_sql(None, False, params.timezone),
            0,
            {},
        )
        return measure_integrity(
            DuckDBAggregates(con),
            f"read_parquet({lit(str(out / 'transactions.parquet'))})",
            params.integrity,
            list(integrity_source(params, "", ()).checked),
            integrity.dated_quarantine(quarantined),
        )
    finally:
        con.close()


def _assert_same_measures(got: IntegrityMeasures, want: IntegrityMeasures) -> None:
    assert got.newest_timestamp == want.newest_timestamp
    assert got.periods == want.periods
    assert got.levels == want.levels
    assert set(got.windows) == set(want.windows) == {"newest", "trailing", "last_year"}
    for name, window in want.windows.items():
        other = got.windows[name]
        for field in ("rows", "purchases", "nulls", "hours", "quarantined"):
            assert getattr(other, field) == getattr(window, field), (name, field)
        assert len(other.quantiles) == len(window.quantiles)
        for a, b in zip(other.quantiles, window.quantiles, strict=True):
            assert a == pytest.approx(b, rel=RELATIVE, abs=0), (name, "quantiles")


def _spark_cleaner(params, engine, work: Path, spark):
    """The Spark cleaner, run once: its numbers then serve the blocking and the accepted run."""
    from churn.spark.ingest import spark_cleaner

    work.mkdir(parents=True, exist_ok=True)
    return functools.cache(spark_cleaner(params, engine, work, spark))


@pytest.mark.parametrize(
    ("zone", "timezone"),
    [(None, "UTC"), ("Europe/Berlin", "Europe/Berlin")],
    ids=["naive_utc", "zoned_berlin"],
)
def test_checks_on_spark_equal_duckdbs_on_a_generated_base(tmp_path, base, spark, zone, timezone):
    source = tmp_path / "export" / "orders.parquet"
    history = _history(base, source, zone, timezone)
    write_export(base, source, zone)
    params = _params(source, timezone)
    engine = spark_engine(tmp_path / "spark-local")
    cleaner = _spark_cleaner(params, engine, tmp_path / "spark_work", spark)
    want = _run(params, EngineParams(), tmp_path / "duckdb", history)
    got = _run(params, engine, tmp_path / "spark", history, cleaner)

    differences, worst = _check_differences(got["checks"], want["checks"])
    assert differences == []
    assert got["integrity"] == want["integrity"]
    _, cleaned, _ = cleaner(local_reject_after(params, NOW))
    assert isinstance(cleaned.measures, IntegrityMeasures)  # counted by Spark, not read back
    _assert_same_measures(cleaned.measures, _measured_on_duckdb(params, tmp_path / "duckdb"))
    statuses = {name: check["status"] for name, check in want["checks"].items()}
    # really compared: every period check ran on enough rows, none blocked
    compared = [n for n in statuses if n.startswith("integrity_") and n != "integrity_schema"]
    assert len(compared) >= 7
    assert all(statuses[n] == "ok" for n in compared), want["checks"]
    assert statuses["integrity_schema"] == "ok" and statuses["volume"] == "ok"
    assert statuses["freshness"] in ("ok", "warn")
    assert want["quarantined_by_reason"]["missing_customer_id"] >= 2
    print(f"checks parity ({timezone}): {len(statuses)} checks, max relative difference {worst}")


@pytest.mark.parametrize("case", list(BROKEN))
def test_spark_and_duckdb_block_a_broken_export_with_the_same_message(tmp_path, base, spark, case):
    breaks, entry = BROKEN[case]
    timezone = "Europe/Berlin"
    source = tmp_path / "export" / "orders.parquet"
    history = _history(base, source, None, timezone)
    write_export(breaks(base), source, None)
    params = _params(source, timezone)
    engine = spark_engine(tmp_path / "spark-local")
    cleaner = _spark_cleaner(params, engine, tmp_path / "spark_work", spark)

    with pytest.raises(DataCheckFailed) as duck_error:
        _run(params, EngineParams(), tmp_path / "duckdb", history)
    with pytest.raises(DataCheckFailed) as spark_error:
        _run(params, engine, tmp_path / "spark", history, cleaner)
    assert str(spark_error.value) == str(duck_error.value)
    assert f"ingest.integrity.accept: [{entry}]" in str(duck_error.value)
    assert not (tmp_path / "spark" / "transactions.parquet").exists()

    # accepted once, both write and report the same (the failed check now warns)
    accepted = _params(source, timezone, accept=(entry,))
    want = _run(accepted, EngineParams(), tmp_path / "duckdb", history)
    got = _run(accepted, engine, tmp_path / "spark", history, cleaner)
    differences, worst = _check_differences(got["checks"], want["checks"])
    assert differences == []
    assert got["integrity"] == want["integrity"]
    name = "integrity_" + entry.replace(":", "_")
    assert want["checks"][name]["status"] == "warn"
    _, cleaned, _ = cleaner(local_reject_after(params, NOW))
    _assert_same_measures(cleaned.measures, _measured_on_duckdb(params, tmp_path / "duckdb"))
    print(f"{case}: both blocked alike; max relative difference {worst}")
