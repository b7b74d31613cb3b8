"""The integrity checks' two steps apart: the decision reads only measured numbers (hand-built
here), the aggregate step's SQL transpiles to Spark's exact percentile, and a column with more
values than max_levels brings at most max_levels + 1 of them back."""

from __future__ import annotations

import datetime as dt

import duckdb
import pandas as pd

from churn.config import IntegrityParams
from churn.ingest.aggregates import DuckDBAggregates
from churn.ingest.integrity import (
    IntegrityMeasures,
    Levels,
    SourceInfo,
    WindowCounts,
    decide_integrity,
    measure_levels,
    plan_periods,
)
from churn.spark.clean import to_spark_sql

SOURCE = SourceInfo("exports/tx.parquet", "amount_eur", ("customer", "amount_eur"), {})
PERIODS = plan_periods(dt.date(2024, 6, 30), 30, 365)


def _window(rows: int, quantiles: tuple[float, ...], hours: tuple[int, ...]) -> WindowCounts:
    return WindowCounts(rows, rows, quantiles, {}, hours, {})


def _measures(newest_quantiles: tuple[float, ...]) -> IntegrityMeasures:
    hours = tuple([10] * 24)
    return IntegrityMeasures(
        dt.datetime(2024, 6, 30, 18),
        PERIODS,
        {
            "newest": _window(240, newest_quantiles, hours),
            "trailing": _window(2400, (10.0, 20.0, 30.0, 40.0), tuple(100 for _ in range(24))),
            "last_year": _window(0, (), tuple([0] * 24)),
        },
    )


def test_the_amounts_decision_blocks_on_measured_quantiles_100_times_larger():
    results, detail = decide_integrity(
        _measures((1000.0, 2000.0, 3000.0, 4000.0)), IntegrityParams(), SOURCE, None
    )
    amounts = next(r for r in results if r.name == "integrity_amounts")
    assert amounts.status == "fail" and amounts.value == 100.0
    assert "p25 1000 vs 10" in amounts.message and "worst ratio x100" in amounts.message
    assert detail["rows_newest"] == 240 and detail["rows_trailing"] == 2400
    timezone = next(r for r in results if r.name == "integrity_timezone")
    assert timezone.status == "ok" and timezone.value == 0.0  # equal hour shares


def test_the_amounts_decision_passes_the_same_scale():
    results, _ = decide_integrity(
        _measures((11.0, 21.0, 29.0, 41.0)), IntegrityParams(), SOURCE, None
    )
    assert {r.name: r.status for r in results}["integrity_amounts"] == "ok"


def test_quantile_cont_is_transpiled_to_sparks_exact_percentile():
    sql = "SELECT quantile_cont(amount, [0.25, 0.5]) FILTER (WHERE amount > 0) FROM t"
    assert " ".join(to_spark_sql(sql).split()) == (  # pretty-printed: one clause a line
        "SELECT PERCENTILE(amount, ARRAY(0.25, 0.5)) FILTER(WHERE amount > 0) FROM t"
    )


def test_a_column_with_more_values_than_max_levels_comes_back_cut_and_is_skipped():
    days = [dt.date(2024, 6, 20)] * 5 + [dt.date(2024, 3, 1)] * 5
    table = pd.DataFrame({"date": days, "note": [f"n{i}" for i in range(10)]})
    con = duckdb.connect()
    con.register("t", table)
    levels = measure_levels(DuckDBAggregates(con), "t", PERIODS, ["note"], max_levels=3)
    con.close()
    note = levels["note"]
    assert not note.complete
    assert (note.rows_newest, note.rows_trailing) == (5, 5)  # counted in full all the same
    assert len(note.newest) + len(note.trailing) == 4  # max_levels + 1 values, no more
    params = IntegrityParams(min_rows=5, max_levels=3)
    measures = IntegrityMeasures(
        None, PERIODS, _measures((11.0, 21.0, 29.0, 41.0)).windows, {"note": note}
    )
    results, _ = decide_integrity(measures, params, SOURCE, None)
    skipped = next(r for r in results if r.name == "integrity_categories_note")
    assert (
        skipped.status == "skipped"
        and "more than ingest.integrity.max_levels = 3" in skipped.message
    )


def test_levels_come_back_sorted_whatever_order_the_engine_returns():
    counted = Levels(3, 0, {"b": 1, "a": 2}, {}, True)
    table = pd.DataFrame({"date": [dt.date(2024, 6, 20)] * 3, "channel": ["b", "a", "a"]})
    con = duckdb.connect()
    con.register("t", table)
    levels = measure_levels(DuckDBAggregates(con), "t", PERIODS, ["channel"], max_levels=10)
    con.close()
    assert levels["channel"] == counted
    assert list(levels["channel"].newest) == ["a", "b"]
