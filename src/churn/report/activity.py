"""Retention figures aggregated from raw transactions in DuckDB (the rows never reach pandas).

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
from dataclasses import dataclass
from datetime import date

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


def check_transactions(
    con: duckdb.DuckDBPyConnection, transactions: duckdb.DuckDBPyRelation, source: str
) -> TransactionSpan:
    """Return row count and date range; raise ChurnError naming the column when the input is bad."""
    types = dict(zip(transactions.columns, (str(t) for t in transactions.types), strict=True))
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
    with registered(con, transactions=transactions) as views:
        rows, no_id, no_date, bad_amount, first, last = con.sql(
            f"""
            SELECT count(*),
                count(*) FILTER (WHERE {CUSTOMER_ID} IS NULL),
                count(*) FILTER (WHERE {DATE} IS NULL),
                count(*) FILTER (WHERE {AMOUNT} IS NULL OR NOT isfinite({AMOUNT})),
                min({DATE}), max({DATE})
            FROM {views["transactions"]}
            """
        ).fetchall()[0]
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
    con: duckdb.DuckDBPyConnection,
    transactions: duckdb.DuckDBPyRelation,
    period: Period,
    as_of: date,
) -> pd.DataFrame:
    """Return per period index: orders, buyers, repeat buyers, gross sales, refunds, revenue split.

    Money is summed as DECIMAL(18, 4) (a hundredth of a cent) so totals are exact and identical
    from run to run; sums widen automatically, so they cannot overflow.
    """
    with registered(con, transactions=transactions) as views:
        return con.sql(
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
                GROUP BY ALL
            ),
            c AS (  -- first_p: period of the customer's first purchase (null: refunds only)
                SELECT *, min(p) FILTER (WHERE orders > 0) OVER (PARTITION BY customer_id)
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
        ).df()


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
                coalesce(day - lag(day) OVER w > {window}, true) AS is_first,
                coalesce(lead(day) OVER w - day > {window}, true) AS is_last
            FROM purchases
            WINDOW w AS (PARTITION BY customer_id ORDER BY day)
        ),
        edges AS (
            SELECT * FROM flagged_days WHERE is_first OR is_last
        ),
        spells AS (
            SELECT customer_id, day AS first_day,
                CASE WHEN is_last THEN day ELSE lead(day) OVER e END + {window - 1} AS last_day,
                row_number() OVER e = 1 AS first_spell
            FROM edges
            WINDOW e AS (PARTITION BY customer_id ORDER BY day, is_last)
            QUALIFY is_first
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
    con: duckdb.DuckDBPyConnection,
    transactions: duckdb.DuckDBPyRelation,
    period: Period,
    active_within_days: int,
    as_of: date,
) -> Iterator[duckdb.DuckDBPyRelation]:
    """Yield the customers' activity runs (see active_spells_sql) as a temporary DuckDB table.

    Computed once and shared by the period counts and the NPS churn, then dropped.
    """
    name = f"_report_runs_{next(_view_numbers)}"
    with registered(con, transactions=transactions) as views:
        runs = active_spells_sql(views["transactions"], period, active_within_days, as_of)
        con.execute(f"CREATE TEMP TABLE {name} AS {runs}")
    try:
        yield con.table(name)
    finally:
        con.execute(f"DROP TABLE IF EXISTS {name}")


def count_flows(con: duckdb.DuckDBPyConnection, runs: duckdb.DuckDBPyRelation) -> pd.DataFrame:
    """Return per period index: customers who became active (all / first-time) and who were lost.

    `joined` counts customers active at the period's end but not at the previous period's end;
    `lost` counts the reverse. Active counts follow as running sums, so CE = CS + CN - lost holds
    by construction.
    """
    with registered(con, runs=runs) as views:
        return con.sql(
            f"""
            SELECT period_index, CAST(sum(joined) AS BIGINT) AS joined,
                CAST(sum(first_time) AS BIGINT) AS first_time, CAST(sum(lost) AS BIGINT) AS lost
            FROM (
                SELECT lo AS period_index, 1 AS joined, CAST(first_time AS INTEGER) AS first_time,
                    0 AS lost
                FROM {views["runs"]}
                UNION ALL
                SELECT hi + 1, 0, 0, 1 FROM {views["runs"]}
            )
            GROUP BY period_index
            ORDER BY period_index
            """
        ).df()


def count_cohorts(
    con: duckdb.DuckDBPyConnection,
    transactions: duckdb.DuckDBPyRelation,
    period: Period,
    as_of: date,
    last_period: int,
) -> pd.DataFrame:
    """Return (cohort, periods_since_first, customers): who bought again k periods after joining.

    The cohort is the period of a customer's first purchase; only periods up to `last_period`
    (the newest complete one) are counted.
    """
    with registered(con, transactions=transactions) as views:
        return con.sql(
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
            FROM bought b JOIN cohorts c USING (customer_id)
            WHERE b.p <= {int(last_period)}
            GROUP BY ALL
            ORDER BY c.cohort, periods_since_first
            """
        ).df()


def count_churn_by_nps(
    con: duckdb.DuckDBPyConnection,
    runs: duckdb.DuckDBPyRelation,
    answers: pd.DataFrame,
    periods: pd.DataFrame,
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
    with registered(con, runs=runs, answers=answers, bounds=bounds) as views:
        return con.sql(
            f"""
            WITH respondents AS (
                SELECT * FROM {views["runs"]}
                WHERE customer_id IN (SELECT {CUSTOMER_ID} FROM {views["answers"]})
            ),
            starts AS (  -- active at the end of period p - 1 = at the start of period p
                SELECT customer_id, p AS period_index, p = hi + 1 AS lost
                FROM (SELECT customer_id, hi, unnest(range(lo + 1, hi + 2)) AS p FROM respondents)
            ),
            dated AS (
                SELECT s.*, b.period_start
                FROM starts s JOIN {views["bounds"]} b USING (period_index)
            )
            SELECT d.period_index,
                CASE WHEN a.{NPS_SCORE} >= 9 THEN 'promoter'
                    WHEN a.{NPS_SCORE} >= 7 THEN 'passive'
                    ELSE 'detractor' END AS nps_group,
                count(*) AS customers_start,
                count(*) FILTER (WHERE d.lost) AS customers_lost
            FROM dated d ASOF JOIN {views["answers"]} a
                ON d.customer_id = a.{CUSTOMER_ID}
                AND d.period_start > CAST(a.{ANSWERED_AT} AS TIMESTAMP)
            GROUP BY ALL
            ORDER BY ALL
            """
        ).df()
