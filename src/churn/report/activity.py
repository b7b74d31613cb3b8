"""Retention figures aggregated from raw transactions by SQL (the rows never reach pandas).

The SQL is written once, in DuckDB's dialect; an Aggregates runner executes it: DuckDB here
(DuckDBAggregates), Spark in churn.spark.report (transpiled by sqlglot). Only the small
aggregated frames come back.

The churn definition used throughout: a *purchase* is a transaction with amount > 0; a customer is
*active* at the end of day t when they made a purchase dated in (t - active_within_days, t]. A
customer's purchase days therefore form *spells* of continuous activity: a spell starts on a
purchase day and ends active_within_days - 1 days after its last purchase. Period figures compare
who is active at the end of the day before a period starts with who is active at its last day.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

import duckdb
import pandas as pd

from churn.columns import AMOUNT, ANSWERED_AT, CUSTOMER_ID, DATE, NPS_SCORE
from churn.errors import ChurnError
from churn.report.periods import Period, period_index_sql

_NUMERIC_TYPES = ("DOUBLE", "FLOAT", "DECIMAL", "BIGINT", "INTEGER", "HUGEINT", "SMALLINT")
_view_numbers = itertools.count()


@dataclass(frozen=True)
class TransactionSpan:
    """What the report needs to know about the transactions before aggregating them."""

    rows: int
    first_date: date
    last_date: date


class Aggregates(Protocol):
    """Where the report's SQL (DuckDB's dialect) runs; tables are the engine's own (a DuckDB
    relation, a Spark DataFrame) or small pandas frames."""

    def types(self, table: Any) -> dict[str, str]:
        """Return column -> DuckDB type name of `table`."""
        ...

    def registered(self, **tables: Any) -> AbstractContextManager[dict[str, str]]:
        """Register the tables under unique view names for one block (key -> view name)."""
        ...

    def frame(self, sql: str) -> pd.DataFrame:
        """Return the (small) result of a query as pandas, with DuckDB's dtypes."""
        ...

    def rows(self, sql: str) -> list[tuple]:
        """Return the (few) rows of a query."""
        ...

    def materialized(self, sql: str) -> AbstractContextManager[Any]:
        """Yield the query's result computed once (a table to register again); freed after."""
        ...


@contextlib.contextmanager
def registered(con: duckdb.DuckDBPyConnection, **tables: object) -> Iterator[dict[str, str]]:
    """Register relations/frames under unique view names for one block; unregister afterwards."""
    names = {key: f"_report_{key}_{next(_view_numbers)}" for key in tables}
    for key, table in tables.items():
        con.register(names[key], table)
    try:
        yield names
    finally:
        for name in names.values():
            con.unregister(name)


@dataclass(frozen=True)
class DuckDBAggregates:
    """Aggregates on a DuckDB connection (tables: relations on it, or pandas frames)."""

    con: duckdb.DuckDBPyConnection

    def types(self, table: duckdb.DuckDBPyRelation) -> dict[str, str]:
        """Return column -> DuckDB type name of the relation."""
        return dict(zip(table.columns, (str(t) for t in table.types), strict=True))

    def registered(self, **tables: object) -> AbstractContextManager[dict[str, str]]:
        """Register the tables under unique view names for one block."""
        return registered(self.con, **tables)

    def frame(self, sql: str) -> pd.DataFrame:
        """Return the query's result as pandas."""
        return self.con.sql(sql).df()

    def rows(self, sql: str) -> list[tuple]:
        """Return the query's rows."""
        return self.con.sql(sql).fetchall()

    @contextlib.contextmanager
    def materialized(self, sql: str) -> Iterator[duckdb.DuckDBPyRelation]:
        """Yield the query's result as a temporary DuckDB table, dropped afterwards."""
        name = f"_report_runs_{next(_view_numbers)}"
        self.con.execute(f"CREATE TEMP TABLE {name} AS {sql}")
        try:
            yield self.con.table(name)
        finally:
            self.con.execute(f"DROP TABLE IF EXISTS {name}")


def check_transactions(aggregates: Aggregates, transactions: Any, source: str) -> TransactionSpan:
    """Return row count and date range; raise ChurnError naming the column when the input is bad."""
    types = aggregates.types(transactions)
    fix = "the report reads the clean transactions written by `churn ingest`"
    for column in (CUSTOMER_ID, DATE, AMOUNT):
        if column not in types:
            raise ChurnError(
                f"{source}: column '{column}' is missing (columns: {', '.join(types)}); {fix}"
            )
    if types[CUSTOMER_ID] != "VARCHAR":
        raise ChurnError(
            f"{source}: column '{CUSTOMER_ID}' has type {types[CUSTOMER_ID]}, expected strings "
            f"(ids like 00001 must keep their zeros); {fix}"
        )
    if types[DATE] != "DATE":
        raise ChurnError(
            f"{source}: column '{DATE}' has type {types[DATE]}, expected DATE (the calendar day "
            f"in ingest.timezone); {fix}"
        )
    if not types[AMOUNT].startswith(_NUMERIC_TYPES):
        raise ChurnError(f"{source}: column '{AMOUNT}' has type {types[AMOUNT]}; {fix}")
    with aggregates.registered(transactions=transactions) as views:
        rows, no_id, no_date, bad_amount, first, last = aggregates.rows(
            f"""
            SELECT count(*),
                count(*) FILTER (WHERE {CUSTOMER_ID} IS NULL),
                count(*) FILTER (WHERE {DATE} IS NULL),
                count(*) FILTER (WHERE {AMOUNT} IS NULL OR NOT isfinite({AMOUNT})),
                min({DATE}), max({DATE})
            FROM {views["transactions"]}
            """
        )[0]
    for column, count in ((CUSTOMER_ID, no_id), (DATE, no_date), (AMOUNT, bad_amount)):
        if count:
            raise ChurnError(
                f"{source}: column '{column}' has {count} missing or non-finite values; {fix}, "
                "which quarantines such rows"
            )
    if rows == 0:
        raise ChurnError(f"{source}: no transactions; nothing to report")
    return TransactionSpan(rows=rows, first_date=first, last_date=last)


def summarize_sales(
    aggregates: Aggregates, transactions: Any, period: Period, as_of: date
) -> pd.DataFrame:
    """Return per period index: orders, buyers, repeat buyers, gross sales, refunds, revenue split.

    Money is summed as DECIMAL(18, 4) (a hundredth of a cent) so totals are exact and identical
    from run to run (and on both engines); sums widen automatically, so they cannot overflow.
    """
    with aggregates.registered(transactions=transactions) as views:
        return aggregates.frame(
            f"""
            WITH per_customer AS (
                SELECT {CUSTOMER_ID} AS customer_id, {period_index_sql(period, DATE)} AS p,
                    count(*) FILTER (WHERE {AMOUNT} > 0) AS orders,
                    coalesce(sum(CAST({AMOUNT} AS DECIMAL(18, 4))) FILTER (WHERE {AMOUNT} > 0), 0)
                        AS gross,
                    coalesce(sum(CAST({AMOUNT} AS DECIMAL(18, 4))) FILTER (WHERE {AMOUNT} < 0), 0)
                        AS refunds,
                    sum(CAST({AMOUNT} AS DECIMAL(18, 4))) AS net
                FROM {views["transactions"]}
                WHERE {DATE} <= DATE '{as_of.isoformat()}'
                GROUP BY {CUSTOMER_ID}, {period_index_sql(period, DATE)}
            ),
            c AS (  -- first_p: period of the customer's first purchase (null: refunds only)
                -- (a CASE, not FILTER: Spark has no FILTER on window aggregates)
                SELECT *, min(CASE WHEN orders > 0 THEN p END) OVER (PARTITION BY customer_id)
                    AS first_p
                FROM per_customer
            )
            SELECT c.p AS period_index,
                CAST(sum(c.orders) AS BIGINT) AS orders,
                count(*) FILTER (WHERE c.orders > 0) AS buyers,
                count(*) FILTER (WHERE c.orders > 0 AND (c.first_p < c.p OR c.orders >= 2))
                    AS repeat_buyers,
                CAST(sum(c.gross) AS DOUBLE) AS gross_sales,
                CAST(sum(c.refunds) AS DOUBLE) AS refunds,
                CAST(sum(c.net) AS DOUBLE) AS revenue,
                CAST(coalesce(sum(c.net) FILTER (WHERE c.first_p = c.p), 0) AS DOUBLE)
                    AS revenue_new,
                CAST(coalesce(sum(c.net) FILTER (WHERE c.first_p IS DISTINCT FROM c.p), 0)
                    AS DOUBLE) AS revenue_returning
            FROM c
            GROUP BY c.p
            ORDER BY c.p
            """
        )


def _days_between(earlier: str, later: str) -> str:
    # date_diff, not `later - earlier`: on Spark a date difference is an interval, not days
    return f"date_diff('day', {earlier}, {later})"


def active_spells_sql(
    transactions_view: str, period: Period, active_within_days: int, as_of: date
) -> str:
    """Return SQL giving, per customer, each run of consecutive period ends they were active at.

    Columns: customer_id, lo, hi (period indices whose last day the customer was active on, all
    of lo..hi), first_time (the run began with the customer's first purchase ever). Runs from
    different spells that touch (lapsed and came back inside one period) are merged, because the
    report only looks at period ends.
    """
    window = active_within_days
    # One pass over the purchases flags the first and last purchase of each spell (a gap of more
    # than `window` days ends one); only those rows are then paired up, so no DISTINCT, running
    # sum or group-by runs over all rows. Same-day purchases have gap 0 and never split a spell.
    return f"""
        WITH purchases AS (
            SELECT {CUSTOMER_ID} AS customer_id, {DATE} AS day
            FROM {transactions_view}
            WHERE {AMOUNT} > 0 AND {DATE} <= DATE '{as_of.isoformat()}'
        ),
        flagged_days AS (
            SELECT customer_id, day,
                coalesce({_days_between("lag(day) OVER w", "day")} > {window}, true) AS is_first,
                coalesce({_days_between("day", "lead(day) OVER w")} > {window}, true) AS is_last
            FROM purchases
            WINDOW w AS (PARTITION BY customer_id ORDER BY day)
        ),
        edges AS (
            SELECT * FROM flagged_days WHERE is_first OR is_last
        ),
        paired AS (
            SELECT customer_id, is_first, day AS first_day,
                CASE WHEN is_last THEN day ELSE lead(day) OVER e END + {window - 1} AS last_day,
                row_number() OVER e = 1 AS first_spell
            FROM edges
            WINDOW e AS (PARTITION BY customer_id ORDER BY day, is_last)
        ),
        spells AS (
            SELECT customer_id, first_day, last_day, first_spell FROM paired WHERE is_first
        ),
        ranges AS (
            SELECT customer_id, first_spell,
                {period_index_sql(period, "first_day")} AS lo,
                {period_index_sql(period, "(last_day + 1)")} - 1 AS hi
            FROM spells
        ),
        flagged AS (
            SELECT *,
                CASE WHEN lo <= lag(hi) OVER (PARTITION BY customer_id ORDER BY lo) + 1
                    THEN 0 ELSE 1 END AS starts_run
            FROM ranges WHERE lo <= hi
        ),
        runs AS (
            SELECT *,
                sum(starts_run) OVER (PARTITION BY customer_id ORDER BY lo
                    ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS run
            FROM flagged
        )
        SELECT customer_id, min(lo) AS lo, max(hi) AS hi, bool_or(first_spell) AS first_time
        FROM runs GROUP BY customer_id, run
    """


@contextlib.contextmanager
def active_runs(
    aggregates: Aggregates,
    transactions: Any,
    period: Period,
    active_within_days: int,
    as_of: date,
) -> Iterator[Any]:
    """Yield the customers' activity runs (see active_spells_sql), computed once (a temporary
    DuckDB table, a cached Spark frame) and shared by the period counts and the NPS churn."""
    with aggregates.registered(transactions=transactions) as views:
        runs = active_spells_sql(views["transactions"], period, active_within_days, as_of)
        with aggregates.materialized(runs) as table:
            yield table


def count_flows(aggregates: Aggregates, runs: Any) -> pd.DataFrame:
    """Return per period index: customers who became active (all / first-time) and who were lost.

    `joined` counts customers active at the period's end but not at the previous period's end;
    `lost` counts the reverse. Active counts follow as running sums, so CE = CS + CN - lost holds
    by construction.
    """
    with aggregates.registered(runs=runs) as views:
        return aggregates.frame(
            f"""
            SELECT period_index, CAST(sum(joined) AS BIGINT) AS joined,
                CAST(sum(first_time) AS BIGINT) AS first_time, CAST(sum(lost) AS BIGINT) AS lost
            FROM (
                SELECT lo AS period_index, 1 AS joined, CAST(first_time AS INTEGER) AS first_time,
                    0 AS lost
                FROM {views["runs"]}
                UNION ALL
                SELECT hi + 1, 0, 0, 1 FROM {views["runs"]}
            ) AS moves
            GROUP BY period_index
            ORDER BY period_index
            """
        )


def count_cohorts(
    aggregates: Aggregates, transactions: Any, period: Period, as_of: date, last_period: int
) -> pd.DataFrame:
    """Return (cohort, periods_since_first, customers): who bought again k periods after joining.

    The cohort is the period of a customer's first purchase; only periods up to `last_period`
    (the newest complete one) are counted.
    """
    with aggregates.registered(transactions=transactions) as views:
        return aggregates.frame(
            f"""
            WITH bought AS (
                SELECT DISTINCT {CUSTOMER_ID} AS customer_id,
                    {period_index_sql(period, DATE)} AS p
                FROM {views["transactions"]}
                WHERE {AMOUNT} > 0 AND {DATE} <= DATE '{as_of.isoformat()}'
            ),
            cohorts AS (
                SELECT customer_id, min(p) AS cohort FROM bought GROUP BY customer_id
            )
            SELECT c.cohort, b.p - c.cohort AS periods_since_first, count(*) AS customers
            FROM bought b JOIN cohorts c ON b.customer_id = c.customer_id
            WHERE b.p <= {int(last_period)}
            GROUP BY c.cohort, b.p - c.cohort
            ORDER BY c.cohort, periods_since_first
            """
        )


def count_churn_by_nps(
    aggregates: Aggregates, runs: Any, answers: pd.DataFrame, periods: pd.DataFrame
) -> pd.DataFrame:
    """Return per (period_index, nps_group): customers active at the start and how many were lost.

    A customer's group is set by their latest answer given before the period started (never
    a later one), so the figure is what a marketer could have known at the time. `periods` holds
    period_index and period_start of the periods to count; `answers` is one score per customer
    and day (see nps_answers_by_day).
    """
    bounds = periods[["period_index", "period_start"]].assign(
        period_start=lambda frame: pd.to_datetime(frame["period_start"])
    )
    # the latest earlier answer is the one whose span [answered, next answer) holds the start:
    # an equi-join with a range filter (one row per customer and period, as DuckDB's ASOF JOIN,
    # which Spark has none of); answers are one per customer and day, so spans do not overlap
    with aggregates.registered(runs=runs, answers=answers, bounds=bounds) as views:
        return aggregates.frame(
            f"""
            WITH respondents AS (
                SELECT * FROM {views["runs"]}
                WHERE customer_id IN (SELECT {CUSTOMER_ID} FROM {views["answers"]})
            ),
            starts AS (  -- active at the end of period p - 1 = at the start of period p
                SELECT customer_id, p AS period_index, p = hi + 1 AS lost
                FROM (SELECT customer_id, hi, unnest(range(lo + 1, hi + 2)) AS p FROM respondents)
                    AS spread
            ),
            dated AS (
                SELECT s.customer_id, s.period_index, s.lost, b.period_start
                FROM starts s JOIN {views["bounds"]} b ON s.period_index = b.period_index
            ),
            answered AS (
                SELECT {CUSTOMER_ID} AS customer_id, {NPS_SCORE} AS score,
                    CAST({ANSWERED_AT} AS TIMESTAMP) AS answered_from
                FROM {views["answers"]}
            ),
            spans AS (
                SELECT *, lead(answered_from) OVER (PARTITION BY customer_id ORDER BY answered_from)
                    AS answered_until
                FROM answered
            ),
            grouped AS (
                SELECT d.period_index,
                    CASE WHEN a.score >= 9 THEN 'promoter'
                        WHEN a.score >= 7 THEN 'passive'
                        ELSE 'detractor' END AS nps_group,
                    d.lost
                FROM dated d JOIN spans a
                    ON d.customer_id = a.customer_id
                    AND d.period_start > a.answered_from
                    AND (a.answered_until IS NULL OR d.period_start <= a.answered_until)
            )
            SELECT period_index, nps_group,
                count(*) AS customers_start,
                count(*) FILTER (WHERE lost) AS customers_lost
            FROM grouped
            GROUP BY period_index, nps_group
            ORDER BY period_index, nps_group, customers_start, customers_lost
            """
        )
