"""Calendar periods (week / month / quarter) as integer indices, shared by SQL and pandas."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Literal

Period = Literal["week", "month", "quarter"]

_WEEK_ORIGIN = date(1970, 1, 5)  # a Monday: weeks run Monday to Sunday (ISO)
_MONTH_NAMES = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def period_index_sql(period: Period, column: str) -> str:
    """Return a DuckDB expression giving the integer period index (BIGINT) of a DATE expression;
    it transpiles to Spark SQL with the same values (date_diff: on Spark a date minus a date is
    an interval, not days)."""
    if period == "month":
        return f"CAST(year({column}) * 12 + month({column}) - 1 AS BIGINT)"
    if period == "quarter":
        return f"CAST(year({column}) * 4 + quarter({column}) - 1 AS BIGINT)"
    if period == "week":
        origin = f"DATE '{_WEEK_ORIGIN.isoformat()}'"
        return f"CAST(floor(date_diff('day', {origin}, {column}) / 7) AS BIGINT)"
    raise ValueError(f"unknown period {period!r}; use week, month or quarter")


def period_index(period: Period, day: date) -> int:
    """Return the integer index of the period containing `day` (same numbering as the SQL)."""
    if period == "month":
        return day.year * 12 + day.month - 1
    if period == "quarter":
        return day.year * 4 + (day.month - 1) // 3
    if period == "week":
        return (day - _WEEK_ORIGIN).days // 7
    raise ValueError(f"unknown period {period!r}; use week, month or quarter")


def period_start(period: Period, index: int) -> date:
    """Return the first calendar day of period `index`."""
    if period == "month":
        return date(index // 12, index % 12 + 1, 1)
    if period == "quarter":
        return date(index // 4, (index % 4) * 3 + 1, 1)
    if period == "week":
        return _WEEK_ORIGIN + timedelta(days=7 * index)
    raise ValueError(f"unknown period {period!r}; use week, month or quarter")


def period_end(period: Period, index: int) -> date:
    """Return the last calendar day of period `index`."""
    return period_start(period, index + 1) - timedelta(days=1)


def period_label(period: Period, index: int) -> str:
    """Return a short label a reader recognises: 'Mar 2024', 'Q1 2024', 'wk 2024-03-04'."""
    start = period_start(period, index)
    if period == "month":
        return f"{_MONTH_NAMES[start.month - 1]} {start.year}"
    if period == "quarter":
        return f"Q{(start.month - 1) // 3 + 1} {start.year}"
    return f"wk {start.isoformat()}"


def last_complete_period(period: Period, as_of: date) -> int:
    """Return the index of the newest period that ends on or before `as_of`."""
    return period_index(period, as_of + timedelta(days=1)) - 1
