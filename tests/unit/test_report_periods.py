"""Report calendar: week, month and quarter indices agree between Python and DuckDB."""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import pytest

from churn.report.periods import (
    last_complete_period,
    period_end,
    period_index,
    period_index_sql,
    period_label,
    period_start,
)

PERIODS = ("week", "month", "quarter")


@pytest.mark.parametrize(
    ("period", "day", "start", "end", "label"),
    [
        ("month", date(2024, 2, 14), date(2024, 2, 1), date(2024, 2, 29), "Feb 2024"),
        ("quarter", date(2024, 5, 31), date(2024, 4, 1), date(2024, 6, 30), "Q2 2024"),
        ("week", date(2024, 3, 6), date(2024, 3, 4), date(2024, 3, 10), "wk 2024-03-04"),
        ("week", date(2024, 3, 10), date(2024, 3, 4), date(2024, 3, 10), "wk 2024-03-04"),
    ],
)
def test_a_day_falls_in_the_period_with_these_bounds_and_label(period, day, start, end, label):
    index = period_index(period, day)
    assert period_start(period, index) == start
    assert period_end(period, index) == end
    assert period_label(period, index) == label


@pytest.mark.parametrize("period", PERIODS)
def test_duckdb_and_python_number_periods_the_same_way(period):
    days = [date(2019, 12, 28) + timedelta(days=k) for k in range(0, 900, 7)]
    days += [date(2024, 2, 29), date(2023, 12, 31), date(2024, 1, 1)]
    con = duckdb.connect()
    for day in days:
        (sql_index,) = con.sql(
            f"SELECT {period_index_sql(period, f'DATE {day.isoformat()!r}')}"
        ).fetchall()[0]
        assert sql_index == period_index(period, day), day


@pytest.mark.parametrize(
    ("period", "as_of", "newest_complete"),
    [
        ("month", date(2024, 3, 31), date(2024, 3, 1)),
        ("month", date(2024, 3, 30), date(2024, 2, 1)),
        ("quarter", date(2024, 12, 31), date(2024, 10, 1)),
        ("week", date(2024, 3, 9), date(2024, 2, 26)),  # a Saturday: that week is not over
    ],
)
def test_only_periods_ending_on_or_before_as_of_are_complete(period, as_of, newest_complete):
    assert period_start(period, last_complete_period(period, as_of)) == newest_complete
