"""Blocking data-integrity checks: the newest period of the clean transactions against the trailing
ones (amount quantiles, category sets, null shares, time zone) and the source's columns against the
previous run's. Broken data stops here; ageing customers, which only PSI sees, never do.

Each check has two steps: an aggregate step (measure_integrity, measure_levels) whose SQL, in
DuckDB's dialect, runs on either engine through churn.ingest.aggregates.Aggregates (DuckDB on the
written files, Spark on its cleaned frames), and one decision step (decide_integrity) in Python
that turns those numbers into results and messages, the same for both engines."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any

import duckdb
import numpy as np

from churn import columns as C
from churn.ingest.aggregates import Aggregates, DuckDBAggregates
from churn.ingest.checks import CheckResult
from churn.ingest.clean import offset_expr, strip_expr, text_timestamp_expr
from churn.ingest.rejects import Reason
from churn.ingest.sources import ident, lit

YEAR_DAYS = 364  # a year back to the same weekday: a weekly rhythm lines up
HOURS = 24


@dataclass(frozen=True)
class Window:
    """A period of transaction dates: (start, end], both calendar dates."""

    name: str
    start: date
    end: date

    def where(self) -> str:
        """Return the SQL condition selecting the period's rows."""
        return f"{ident(C.DATE)} > {lit(self.start.isoformat())}::DATE AND {ident(C.DATE)} <= {lit(self.end.isoformat())}::DATE"

    def text(self) -> str:
        """Return the period as 'first day..last day'."""
        return f"{self.start + timedelta(days=1)}..{self.end}"


@dataclass(frozen=True)
class Periods:
    """The newest period, the trailing one before it and the newest period a year earlier."""

    newest: Window
    trailing: Window
    last_year: Window


@dataclass(frozen=True)
class SourceInfo:
    """What the messages name: the source, and the source column behind each clean column."""

    label: str  # the file or masked URL
    amount: str  # source column of the amount
    source_columns: tuple[str, ...]  # every column of the source as read (schema check)
    checked: dict[str, str]  # clean column -> source column, for categories and nulls
    # clean column -> source column of the required ones (customer id, timestamp, amount)
    required: dict[str, str] = field(default_factory=dict)


def plan_periods(newest_date: date, newest_days: int, trailing_days: int) -> Periods:
    """Return the newest, trailing and same-period-last-year windows ending at `newest_date`."""
    newest_start = newest_date - timedelta(days=newest_days)
    return Periods(
        Window("newest", newest_start, newest_date),
        Window("trailing", newest_start - timedelta(days=trailing_days), newest_start),
        Window(
            "last_year",
            newest_start - timedelta(days=YEAR_DAYS),
            newest_date - timedelta(days=YEAR_DAYS),
        ),
    )


def _accepted(check: str, column: str | None, accept: Sequence[str]) -> bool:
    return check in accept or (column is not None and f"{check}:{column}" in accept)


def _result(
    check: str,
    column: str | None,
    failed: bool,
    message: str,
    accept: Sequence[str],
    value: float | None = None,
    limit: float | None = None,
) -> CheckResult:
    name = f"integrity_{check}" + (f"_{column}" if column else "")
    if not failed:
        return CheckResult(name, "ok", message, value, limit)
    if _accepted(check, column, accept):
        entry = f"{check}:{column}" if column else check
        return CheckResult(
            name,
            "warn",
            f"{message} [accepted by ingest.integrity.accept: {entry}; remove it after this run]",
            value,
            limit,
        )
    return CheckResult(name, "fail", message, value, limit)


def _fix(check: str, column: str | None) -> str:
    entry = f"{check}:{column}" if column else check
    return (
        f"; if this change is real and reviewed, accept it once with `ingest.integrity.accept: "
        f"[{entry}]` in params.yaml (remove it after this run)"
    )


# --------------------------------------------------------------------------- aggregate step
# The numbers every check decides on, counted by SQL written once in DuckDB's dialect and run
# by an Aggregates object: DuckDB on the written files, or Spark on its cleaned frames (the SQL
# transpiled). The decisions below read only these numbers, so both engines decide alike.
WINDOWS = ("newest", "trailing", "last_year")


@dataclass(frozen=True)
class WindowCounts:
    """What one period (newest, trailing, same period last year) holds."""

    rows: int  # clean transactions dated in the period
    purchases: int  # of which with a positive amount
    quantiles: tuple[float, ...]  # per-purchase amount quantiles (empty without purchases)
    nulls: Mapping[str, int]  # checked column -> rows where it is NULL
    hours: tuple[int, ...]  # rows per hour of day of the timestamp, 0..23
    quarantined: Mapping[str, int]  # reason -> quarantined transactions dated in the period


@dataclass(frozen=True)
class Levels:
    """A category column's rows per value in the newest and trailing periods (NULLs left out)."""

    rows_newest: int  # non-NULL rows of the newest period
    rows_trailing: int
    newest: Mapping[str, int]  # value -> rows, values in sorted order
    trailing: Mapping[str, int]
    complete: bool  # False: more than ingest.integrity.max_levels values (then not all listed)


@dataclass(frozen=True)
class IntegrityMeasures:
    """The aggregate step's result: every number the transaction checks decide on."""

    newest_timestamp: datetime | None  # of the clean transactions (the freshness check)
    periods: Periods | None  # None: no clean transactions to compare
    windows: Mapping[str, WindowCounts] = field(default_factory=dict)  # by Window.name
    levels: Mapping[str, Levels] = field(default_factory=dict)  # text columns, in checked order


def _filtered_count(condition: str) -> str:
    return f"count(*) FILTER (WHERE {condition})"


def dated_quarantine(quarantined: Quarantined) -> str:
    """Return SQL of the quarantined transactions: (reason, date), date NULL when undatable."""
    return (
        f"(SELECT {ident(C.REASON)} AS reason, {quarantined.date_sql} AS {ident(C.DATE)} "
        f"FROM {quarantined.table} WHERE {ident(C.QUARANTINE_TABLE)} = 'transactions')"
    )


def _newest_quarantined_date(run: Aggregates, dated: str) -> date | None:
    """Return the newest date of a quarantined transaction (timestamps in the future or outside
    the representable range left out): when the newest days lost their amounts, the newest
    period must still end on them."""
    left_out = ", ".join(
        lit(str(reason)) for reason in (Reason.FUTURE_TIMESTAMP, Reason.TIMESTAMP_OUT_OF_RANGE)
    )
    ((newest,),) = run.rows(
        f"SELECT max({ident(C.DATE)}) FROM {dated} WHERE reason NOT IN ({left_out})"
    )
    # DuckDB returns dates Python cannot hold (before year 1) as text: no period ends there
    return newest if isinstance(newest, date) else None


def _measure_windows(
    run: Aggregates,
    table: str,
    periods: Periods,
    quantiles: Sequence[float],
    checked: Sequence[str],
    dated: str | None,
) -> dict[str, WindowCounts]:
    """Count each period's rows, purchases, amount quantiles, NULLs, hours and quarantined rows
    (four small-result queries, each one pass over the periods' rows)."""
    windows = [getattr(periods, name) for name in WINDOWS]
    anywhere = " OR ".join(f"({w.where()})" for w in windows)
    # each row's periods flagged once; they overlap (the trailing year holds last year's
    # month), so counts are taken per combination of flags and added up per period here
    flag_names = [f"__in_{w.name}" for w in windows]
    flags = ", ".join(f"{w.where()} AS {name}" for w, name in zip(windows, flag_names, strict=True))
    flagged = f"(SELECT *, {flags} FROM {table} WHERE {anywhere}) AS flagged"
    by_flags = ", ".join(flag_names)
    amount = ident(C.AMOUNT)
    counted = run.rows(
        f"SELECT {by_flags}, count(*), count(*) FILTER (WHERE {amount} > 0)"
        + "".join(f", count(*) - count({ident(c)})" for c in checked)
        + f" FROM {flagged} GROUP BY {by_flags}"
    )
    qs = ", ".join(str(float(q)) for q in quantiles)
    (quantile_row,) = run.rows(
        "SELECT "
        + ", ".join(
            f"quantile_cont({amount}, [{qs}]) FILTER (WHERE {name} AND {amount} > 0)"
            for name in flag_names
        )
        + f" FROM {flagged}"
    )
    hour = f"hour({ident(C.TIMESTAMP)})"
    by_hour = run.rows(
        f"SELECT {by_flags}, {hour}, count(*) FROM {flagged} GROUP BY {by_flags}, {hour}"
    )
    by_reason = []
    if dated is not None:
        by_reason = run.rows(
            f"SELECT reason, {', '.join(_filtered_count(w.where()) for w in windows)} "
            f"FROM {dated} WHERE {anywhere} GROUP BY reason"
        )
    result = {}
    for i, w in enumerate(windows):
        inside = [found[len(windows) :] for found in counted if found[i]]
        hours = [0] * HOURS
        for found in by_hour:
            if found[i] and found[len(windows)] is not None:
                hours[int(found[len(windows)])] += int(found[len(windows) + 1])
        result[w.name] = WindowCounts(
            rows=sum(int(found[0]) for found in inside),
            purchases=sum(int(found[1]) for found in inside),
            quantiles=tuple(float(v) for v in (quantile_row[i] or [])),
            nulls={c: sum(int(found[2 + j]) for found in inside) for j, c in enumerate(checked)},
            hours=tuple(hours),
            quarantined={str(r[0]): int(r[1 + i]) for r in by_reason if r[1 + i]},
        )
    return result


def measure_levels(
    run: Aggregates, table: str, periods: Periods, columns: Sequence[str], max_levels: int
) -> dict[str, Levels]:
    """Count each category column's values in the newest and trailing periods; at most
    max_levels + 1 values come back per column (more: an id or free text, not checked)."""
    if not columns:
        return {}
    newest, trailing = periods.newest.where(), periods.trailing.where()
    (totals,) = run.rows(
        "SELECT "
        + ", ".join(
            f"count({ident(c)}) FILTER (WHERE {newest}), count({ident(c)}) FILTER (WHERE {trailing})"
            for c in columns
        )
        + f" FROM {table}"
    )
    levels = {}
    for i, column in enumerate(columns):
        col = ident(column)
        found = run.rows(
            f"SELECT {col}, {_filtered_count(newest)}, {_filtered_count(trailing)} FROM {table} "
            f"WHERE ({newest} OR {trailing}) AND {col} IS NOT NULL GROUP BY {col} "
            f"LIMIT {max_levels + 1}"
        )
        found = sorted(found, key=lambda r: r[0])  # the same order on every engine
        levels[column] = Levels(
            rows_newest=int(totals[2 * i]),
            rows_trailing=int(totals[2 * i + 1]),
            newest={r[0]: int(r[1]) for r in found if r[1]},
            trailing={r[0]: int(r[2]) for r in found if r[2]},
            complete=len(found) <= max_levels,
        )
    return levels


def measure_integrity(
    run: Aggregates,
    table: str,
    params,  # churn.config.IntegrityParams
    checked: Sequence[str],
    dated: str | None = None,
) -> IntegrityMeasures:
    """The checks' aggregate step on the clean transactions `table` (and the quarantined ones,
    `dated`: SQL of (reason, date) as dated_quarantine returns): the newest timestamp, the
    periods ending at the newest date, and each period's counts; the `checked` columns' NULLs,
    and the values of those that hold text. With integrity off, the newest timestamp only."""
    ((newest_date, newest_timestamp),) = run.rows(
        f"SELECT max({ident(C.DATE)}), max({ident(C.TIMESTAMP)}) FROM {table}"
    )
    if not params.enabled:
        return IntegrityMeasures(newest_timestamp, None)
    if newest_date is not None and dated is not None:
        newest_date = max(newest_date, _newest_quarantined_date(run, dated) or newest_date)
    if newest_date is None:
        return IntegrityMeasures(newest_timestamp, None)
    periods = plan_periods(newest_date, params.newest_days, params.trailing_days)
    types = run.types(table)
    text_columns = [c for c in checked if c != C.TRANSACTION_ID and types.get(c) == "VARCHAR"]
    return IntegrityMeasures(
        newest_timestamp,
        periods,
        _measure_windows(run, table, periods, params.amount_quantiles, checked, dated),
        measure_levels(run, table, periods, text_columns, params.max_levels),
    )


def customers_relation(table: str, columns: Sequence[str]) -> str:
    """Return SQL of the customers who have a signup date, dated by it (the customers'
    category check compares signups of the newest period with the trailing one's)."""
    kept = ", ".join(ident(c) for c in columns)
    return (
        f"(SELECT {ident(C.SIGNUP_DATE)} AS {ident(C.DATE)}, {kept} FROM {table} "
        f"WHERE {ident(C.SIGNUP_DATE)} IS NOT NULL) AS signed_up"
    )


# --------------------------------------------------------------------------- amounts
def _worst_ratio(newest: Sequence[float], before: Sequence[float]) -> float:
    """Return the newest/before quantile ratio furthest from 1 (in log terms)."""
    ratios = [(n / b) if b > 0 else math.inf for n, b in zip(newest, before, strict=True) if n > 0]
    return max(ratios, key=lambda r: abs(math.log(r)) if 0 < r < math.inf else math.inf)


def check_amounts(measures: IntegrityMeasures, params, source: SourceInfo) -> CheckResult:
    """Fail when per-purchase amount quantiles of the newest period moved by more than
    max_amount_ratio against the trailing period and (when there is one) the same period a year
    earlier. Quantiles of single purchases, not sums: a December peak sells more, not dearer."""
    quantiles, periods, windows = params.amount_quantiles, measures.periods, measures.windows
    n_new, q_new = windows["newest"].purchases, windows["newest"].quantiles
    n_old, q_old = windows["trailing"].purchases, windows["trailing"].quantiles
    if n_new < params.min_rows or n_old < params.min_rows:
        return CheckResult(
            "integrity_amounts",
            "skipped",
            f"not enough purchases to compare (newest {periods.newest.text()}: {n_new}, trailing "
            f"{periods.trailing.text()}: {n_old}; ingest.integrity.min_rows = {params.min_rows}); "
            "a first run or a short export passes",
        )
    ratio = _worst_ratio(q_new, q_old)
    limit = params.max_amount_ratio
    failed = not (1 / limit <= ratio <= limit)
    compared = "the trailing period"
    if failed:
        n_year, q_year = windows["last_year"].purchases, windows["last_year"].quantiles
        if n_year >= params.min_rows:
            year_ratio = _worst_ratio(q_new, q_year)
            if 1 / limit <= year_ratio <= limit:
                failed = False  # seasonal: the same period a year earlier looked alike
                ratio, compared = year_ratio, "the same period a year earlier"
    shown = ", ".join(
        f"p{round(q * 100)} {n:.4g} vs {o:.4g}"
        for q, n, o in zip(quantiles, q_new, q_old, strict=True)
    )
    message = (
        f"{source.label}: column {source.amount!r} (ingest.columns.amount): per-purchase amounts of "
        f"the newest period {periods.newest.text()} against the trailing {periods.trailing.text()}: "
        f"{shown} (newest vs trailing; worst ratio x{ratio:.3g}, limit x{limit:g} against "
        f"{compared})"
    )
    if failed:
        message += (
            ": the amounts changed scale in the newest period only. Did the export switch units "
            "(cents vs whole currency) or currency? Correct the export" + _fix("amounts", None)
        )
    return _result("amounts", None, failed, message, params.accept, ratio, limit)


# --------------------------------------------------------------------------- categories
def check_categories(
    levels: Mapping[str, Levels], periods: Periods, params, source: SourceInfo
) -> list[CheckResult]:
    """Fail when more than max_new_level_share of the newest period's rows of a text column hold
    levels the trailing period never had (a renamed category, currency or channel)."""
    results = []
    for column, counted in levels.items():
        newest, trailing = counted.newest, counted.trailing
        n_new, n_old = counted.rows_newest, counted.rows_trailing
        name = source.checked.get(column, column)
        if n_new < params.min_rows or n_old < params.min_rows:
            results.append(
                CheckResult(
                    f"integrity_categories_{column}",
                    "skipped",
                    f"column {name!r}: not enough rows to compare (newest {n_new}, trailing "
                    f"{n_old}; ingest.integrity.min_rows = {params.min_rows})",
                )
            )
            continue
        if not counted.complete:
            results.append(
                CheckResult(
                    f"integrity_categories_{column}",
                    "skipped",
                    f"column {name!r}: more than ingest.integrity.max_levels = "
                    f"{params.max_levels} distinct values (an id or free text, not a category)",
                )
            )
            continue
        unseen = sorted((lvl for lvl in newest if lvl not in trailing), key=lambda v: -newest[v])
        gone = sorted(
            (lvl for lvl in trailing if lvl not in newest and trailing[lvl] / n_old >= 0.01),
            key=lambda v: -trailing[v],
        )
        share = sum(newest[lvl] for lvl in unseen) / n_new
        failed = share > params.max_new_level_share
        message = (
            f"{source.label}: column {name!r}: {share:.1%} of the newest period's rows "
            f"({periods.newest.text()}) hold values never seen in the trailing period "
            f"(limit {params.max_new_level_share:.0%})"
        )
        if unseen:
            message += ": new " + ", ".join(f"{v!r} ({newest[v] / n_new:.1%})" for v in unseen[:5])
        if gone:
            message += "; gone " + ", ".join(
                f"{v!r} (was {trailing[v] / n_old:.1%})" for v in gone[:5]
            )
        if failed:
            message += (
                ". A renamed category, currency or channel splits one group in two for the model; "
                "correct the export (or map the old and new names to one)"
                + _fix("categories", column)
            )
        results.append(
            _result(
                "categories",
                column,
                failed,
                message,
                params.accept,
                share,
                params.max_new_level_share,
            )
        )
    return results


# --------------------------------------------------------------------------- nulls
def check_nulls(
    measures: IntegrityMeasures, params, source: SourceInfo, nullable_columns: Sequence[str]
) -> list[CheckResult]:
    """Fail when a column's share of nulls in the newest period exceeds the trailing share by more
    than max_null_increase (2% -> 40%: a broken join or a dropped field upstream)."""
    periods = measures.periods
    results = []
    for column in nullable_columns:
        shares = {}
        counts = {}
        for window in (periods.newest, periods.trailing):
            counted = measures.windows[window.name]
            n, nulls = counted.rows, counted.nulls[column]
            counts[window.name] = n
            shares[window.name] = nulls / n if n else 0.0
        name = source.checked.get(column, column)
        if counts["newest"] < params.min_rows or counts["trailing"] < params.min_rows:
            results.append(
                CheckResult(
                    f"integrity_nulls_{column}",
                    "skipped",
                    f"column {name!r}: not enough rows to compare (newest {counts['newest']}, "
                    f"trailing {counts['trailing']}; ingest.integrity.min_rows = {params.min_rows})",
                )
            )
            continue
        increase = shares["newest"] - shares["trailing"]
        failed = increase > params.max_null_increase
        message = (
            f"{source.label}: column {name!r}: {shares['newest']:.1%} empty in the newest period "
            f"{periods.newest.text()} against {shares['trailing']:.1%} in the trailing "
            f"{periods.trailing.text()} (newest vs trailing; limit +{params.max_null_increase:.0%})"
        )
        if failed:
            message += (
                ": the export lost values in its newest rows (a broken join or a dropped field); "
                "correct the export" + _fix("nulls", column)
            )
        results.append(
            _result(
                "nulls", column, failed, message, params.accept, increase, params.max_null_increase
            )
        )
    return results


# --------------------------------------------------------------------------- required columns
# The quarantine reasons that mean a required column's value is missing or unusable: such rows
# never reach the clean table, so the null check above cannot see them.
REQUIRED_REASONS: dict[str, tuple[str, ...]] = {
    C.CUSTOMER_ID: (Reason.MISSING_CUSTOMER_ID, Reason.FORMULA_CUSTOMER_ID),
    C.TIMESTAMP: (Reason.MISSING_TIMESTAMP, Reason.UNPARSEABLE_TIMESTAMP),
    C.AMOUNT: (Reason.MISSING_AMOUNT, Reason.NON_NUMERIC_AMOUNT, Reason.NON_FINITE_AMOUNT),
}
_REQUIRED_WORDS = {
    C.CUSTOMER_ID: "empty or a spreadsheet formula",
    C.TIMESTAMP: "empty or not a timestamp",
    C.AMOUNT: "empty or not a number",
}


@dataclass(frozen=True)
class QuarantineCounts:
    """How many transactions this run read and quarantined, by reason (the cleaner's counts)."""

    rows_read: int
    by_reason: Mapping[str, int]

    @property
    def undated(self) -> int:
        """Return the number of rows quarantined for a missing or unparseable timestamp."""
        return undated_rows(self.by_reason)


@dataclass(frozen=True)
class Quarantined:
    """The transactions this run quarantined, in a DuckDB relation: what the required-column
    check counts."""

    table: str  # SQL relation with quarantine.parquet's columns (table, reason, original values)
    date_sql: str  # SQL over that relation: the row's DATE from its original timestamp, or NULL
    rows_read: int
    by_reason: Mapping[str, int]

    @property
    def counts(self) -> QuarantineCounts:
        """Return the counts the decisions read."""
        return QuarantineCounts(self.rows_read, self.by_reason)


def undated_rows(by_reason: Mapping[str, int]) -> int:
    """Return how many quarantined rows have no usable timestamp (they fit in no period)."""
    return sum(int(by_reason.get(str(reason), 0)) for reason in REQUIRED_REASONS[C.TIMESTAMP])


def quarantine_date_sql(timestamp_format: str | None, dayfirst: bool, timezone: str) -> str:
    """Return SQL giving a quarantined row's DATE from its original timestamp text, parsed as
    ingest parses it (NULL when it cannot be parsed)."""
    text = strip_expr(f"CAST({ident(C.TIMESTAMP)} AS VARCHAR)")
    parsed = text_timestamp_expr(text, offset_expr(text), timestamp_format, dayfirst, timezone)
    return f"CAST({parsed} AS DATE)"


def _required_column(source: SourceInfo, column: str) -> tuple[str, str]:
    """Return (source column, params key) that a message about a required column names."""
    return source.required.get(column, column), f"ingest.columns.{column}"


def check_required_nulls(
    measures: IntegrityMeasures,
    params,
    source: SourceInfo,
    quarantined: QuarantineCounts,
    previous: dict[str, Any] | None,
) -> list[CheckResult]:
    """Fail when the share of rows whose customer id or amount is missing or unusable (quarantined)
    rose by more than max_null_increase in the newest period against the trailing one, and when
    the share of rows without a usable timestamp rose by as much against the previous run (such
    rows have no date, so they fit in no period: the rows added since the previous run stand in
    for the newest period). Quarantined rows are gone from the clean data, so a jump in the newest
    period reads downstream as customers who stopped buying, even when the overall quarantine
    share stays under ingest.max_quarantine_share."""
    periods = measures.periods
    counts: dict[str, Mapping[str, int]] = {}
    totals: dict[str, int] = {}
    for window in (periods.newest, periods.trailing):
        counted = measures.windows[window.name]
        counts[window.name] = counted.quarantined
        totals[window.name] = counted.rows + sum(counted.quarantined.values())
    results = []
    for column in (C.CUSTOMER_ID, C.AMOUNT):
        name, key = _required_column(source, column)
        reasons = REQUIRED_REASONS[column]
        if totals["newest"] < params.min_rows or totals["trailing"] < params.min_rows:
            results.append(
                CheckResult(
                    f"integrity_nulls_{column}",
                    "skipped",
                    f"column {name!r} ({key}): not enough rows to compare (newest "
                    f"{totals['newest']}, trailing {totals['trailing']}; "
                    f"ingest.integrity.min_rows = {params.min_rows})",
                )
            )
            continue
        bad = {w: sum(counts[w].get(str(r), 0) for r in reasons) for w in ("newest", "trailing")}
        shares = {w: bad[w] / totals[w] for w in bad}
        by_reason = ", ".join(
            f"{r} {counts['newest'][str(r)]}" for r in reasons if counts["newest"].get(str(r))
        )
        results.append(
            _required_result(
                column,
                name,
                key,
                shares["newest"],
                shares["trailing"],
                f"{bad['newest']} of {totals['newest']} rows of the newest period "
                f"{periods.newest.text()}" + (f": {by_reason}" if by_reason else ""),
                f"the trailing {periods.trailing.text()} ({bad['trailing']} of "
                f"{totals['trailing']})",
                params,
                source,
            )
        )
    results.append(_check_undated(quarantined, params, source, previous))
    return results


def _check_undated(
    quarantined: QuarantineCounts, params, source: SourceInfo, previous: dict[str, Any] | None
) -> CheckResult:
    """The timestamp part of check_required_nulls: this run's undated rows against the previous
    run's (recorded in --state as `undated_rows` of `rows_read`)."""
    name, key = _required_column(source, C.TIMESTAMP)
    undated, rows = quarantined.undated, quarantined.rows_read
    if previous is None or previous.get("undated_rows") is None or not previous.get("rows_read"):
        return CheckResult(
            f"integrity_nulls_{C.TIMESTAMP}",
            "skipped",
            f"column {name!r} ({key}): rows without a usable timestamp fit in no period, so they "
            f"are compared with the previous run's share; none recorded yet ({undated} of {rows} "
            "rows now; recorded for the next run)",
        )
    before, before_rows = int(previous["undated_rows"]), int(previous["rows_read"])
    added = rows - before_rows
    if added >= params.min_rows:
        newest_share = max(undated - before, 0) / added
        newest = f"{max(undated - before, 0)} of the {added} rows added since the previous run"
    else:  # a rolling export that did not grow: its whole share against the previous one
        newest_share = undated / rows if rows else 0.0
        newest = f"{undated} of the {rows} rows read (the export did not grow by min_rows)"
    return _required_result(
        C.TIMESTAMP,
        name,
        key,
        newest_share,
        before / before_rows,
        newest,
        f"the previous run ({before} of {before_rows}, at {previous.get('run_at', '?')})",
        params,
        source,
    )


def _required_result(
    column: str,
    name: str,
    key: str,
    newest: float,
    trailing: float,
    newest_text: str,
    trailing_text: str,
    params,
    source: SourceInfo,
) -> CheckResult:
    increase = newest - trailing
    failed = increase > params.max_null_increase
    message = (
        f"{source.label}: required column {name!r} ({key}): {newest:.1%} {_REQUIRED_WORDS[column]} "
        f"({newest_text}) against {trailing:.1%} in {trailing_text} (newest vs trailing; limit "
        f"+{params.max_null_increase:.0%})"
    )
    if failed:
        message += (
            ": these rows are quarantined, so the newest period would look as if customers "
            "stopped buying. The export lost values in its newest rows (a broken join, a dropped "
            "or renamed field, a changed format); correct the export and rerun, or check the "
            f"mapping {key}" + _fix("nulls", column)
        )
    return _result(
        "nulls", column, failed, message, params.accept, increase, params.max_null_increase
    )


# --------------------------------------------------------------------------- time zone
def _hour_shares(window: WindowCounts) -> tuple[int, np.ndarray]:
    counts = np.array(window.hours, dtype="float64")
    total = counts.sum()
    return int(total), counts / total if total else counts


def best_hour_shift(newest: np.ndarray, before: np.ndarray) -> tuple[int, float, float]:
    """Return (shift in hours, distance at that shift, distance unshifted) that best lines the
    newest hour-of-day shares up with the earlier ones: newest[h] ~ before[h - shift]."""
    unshifted = float(np.abs(newest - before).sum())
    best, best_distance = 0, unshifted
    for shift in sorted(range(-12, 13), key=abs):
        distance = float(np.abs(newest - np.roll(before, shift)).sum())
        if distance < best_distance - 1e-12:
            best, best_distance = shift, distance
    return best, best_distance, unshifted


def check_timezone(measures: IntegrityMeasures, params, source: SourceInfo) -> CheckResult:
    """Fail when the newest period's hour-of-day profile matches the trailing one only after a
    shift by whole hours (a changed time zone or UTC offset in the export)."""
    periods, windows = measures.periods, measures.windows
    n_new, new = _hour_shares(windows["newest"])
    n_old, old = _hour_shares(windows["trailing"])
    if n_new < params.min_rows or n_old < params.min_rows:
        return CheckResult(
            "integrity_timezone",
            "skipped",
            f"not enough rows to compare hour-of-day profiles (newest {n_new}, trailing {n_old}; "
            f"ingest.integrity.min_rows = {params.min_rows})",
        )
    shift, shifted, unshifted = best_hour_shift(new, old)
    failed = shift != 0 and unshifted > params.max_profile_distance and shifted < unshifted / 2
    if failed:
        n_year, year = _hour_shares(windows["last_year"])
        if n_year >= params.min_rows:
            year_shift, year_shifted, year_unshifted = best_hour_shift(new, year)
            if year_shift == 0 or year_unshifted <= params.max_profile_distance:
                failed = False  # the same season a year earlier looked alike (daylight saving)
    message = (
        f"{source.label}: hour of day of the timestamps: the newest period {periods.newest.text()} "
        f"against the trailing {periods.trailing.text()} differ by {unshifted:.2f} (sum of share "
        f"differences, limit {params.max_profile_distance:g}); shifted by {shift:+d} h they differ "
        f"by {shifted:.2f}; peak hour {int(np.argmax(new))}:00 vs {int(np.argmax(old))}:00 "
        "(newest vs trailing)"
    )
    if failed:
        message += (
            f": the newest timestamps look shifted by {shift:+d} hours. Did the export's time "
            "zone or UTC offset change? Correct the export (or the offset it writes, and "
            "ingest.timezone)" + _fix("timezone", None)
        )
    return _result(
        "timezone", None, failed, message, params.accept, unshifted, params.max_profile_distance
    )


# --------------------------------------------------------------------------- schema
def check_schema(
    source: SourceInfo, previous: dict[str, Any] | None, accept: Sequence[str]
) -> CheckResult:
    """Fail when the source's columns differ from the previous run's (recorded in --state)."""
    before = (previous or {}).get("columns")
    if before is None:
        return CheckResult(
            "integrity_schema",
            "skipped",
            f"{source.label}: no previous run recorded its columns; {len(source.source_columns)} "
            "columns recorded for the next run",
        )
    now = list(source.source_columns)
    appeared = [c for c in now if c not in before]
    gone = [c for c in before if c not in now]
    failed = bool(appeared or gone)
    message = f"{source.label}: {len(now)} columns, previous run {len(before)}"
    if appeared:
        message += f"; appeared: {appeared}"
    if gone:
        message += f"; disappeared: {gone}"
    if failed:
        message += (
            " (previous run at " + str(previous.get("run_at", "?")) + "): the export's layout "
            "changed, so a column may now hold something else. Correct the export (or update "
            "ingest.columns / ingest.passthrough)" + _fix("schema", None)
        )
    return _result("schema", None, failed, message, accept)


# --------------------------------------------------------------------------- side tables
def check_customer_categories(
    levels: Mapping[str, Levels], periods: Periods, params, label: str, checked: dict[str, str]
) -> list[CheckResult]:
    """Category check of the customers table (channel, region): customers who signed up in the
    newest period against those who signed up in the trailing one (levels: measure_levels on
    customers_relation)."""
    if not checked:
        return []
    info = SourceInfo(label, "", (), checked)
    return [
        replace(r, name=r.name.replace("integrity_categories_", "integrity_customers_categories_"))
        for r in check_categories(levels, periods, params, info)
    ]


# --------------------------------------------------------------------------- all
def decide_integrity(
    measures: IntegrityMeasures,
    params,  # churn.config.IntegrityParams
    source: SourceInfo,
    previous: dict[str, Any] | None,
    customers: tuple[Mapping[str, Levels], str, dict[str, str]] | None = None,
    quarantined: QuarantineCounts | None = None,
) -> tuple[list[CheckResult], dict[str, Any]]:
    """The integrity checks' decision step, the same for every engine: from the measured numbers
    (and, given `customers` = (levels of the customers' categories by signup date, source label,
    clean -> source column), the customers' category check; given `quarantined`, the required
    columns' missing or unusable values), return the results (fail = block) and the periods
    compared, for the ingest report."""
    if not params.enabled:
        return [CheckResult("integrity", "skipped", "ingest.integrity.enabled is false")], {}
    results = [check_schema(source, previous, params.accept)]
    periods = measures.periods
    if periods is None:
        results.append(CheckResult("integrity", "skipped", "no clean transactions to compare"))
        return results, {}
    results.append(check_amounts(measures, params, source))
    results += check_categories(measures.levels, periods, params, source)
    results += check_nulls(measures, params, source, list(source.checked))
    if quarantined is not None:
        results += check_required_nulls(measures, params, source, quarantined, previous)
    results.append(check_timezone(measures, params, source))
    if customers is not None:
        results += check_customer_categories(customers[0], periods, params, *customers[1:])
    trailing_rows = measures.windows["trailing"].rows
    detail = {
        "newest_period": periods.newest.text(),
        "trailing_period": periods.trailing.text(),
        "same_period_last_year": periods.last_year.text(),
        "rows_newest": measures.windows["newest"].rows,
        "rows_trailing": trailing_rows,
        "accepted": list(params.accept),
    }
    if trailing_rows < params.min_rows:
        detail["note"] = (
            "no trailing period to compare with (a first run or a short export): the period "
            "checks passed without comparing"
        )
    return results, detail


def measure_customer_levels(
    run: Aggregates, customers_table: str, periods: Periods, params, checked: dict[str, str]
) -> dict[str, Levels]:
    """The customers' category check's aggregate step: values of `checked` by signup period."""
    relation = customers_relation(customers_table, list(checked))
    return measure_levels(run, relation, periods, list(checked), params.max_levels)


def check_integrity(
    con: duckdb.DuckDBPyConnection,
    table: str,
    params,  # churn.config.IntegrityParams
    source: SourceInfo,
    previous: dict[str, Any] | None,
    customers: tuple[str, str, dict[str, str]] | None = None,
    quarantined: Quarantined | None = None,
    measures: IntegrityMeasures | None = None,
    customer_levels: Mapping[str, Levels] | None = None,
) -> tuple[list[CheckResult], dict[str, Any]]:
    """Run every integrity check: measure the clean transactions `table` on DuckDB, unless
    `measures` holds them already (counted by the engine that cleaned: Spark), and, given
    `customers` = (table, label, clean -> source column), the customers' categories by signup
    date on DuckDB, unless `customer_levels` holds them (counted by Spark: measure_customer_levels
    on its clean customers); given `quarantined`, the quarantined transactions; then
    decide_integrity."""
    if not params.enabled:
        return decide_integrity(IntegrityMeasures(None, None), params, source, previous)
    run = DuckDBAggregates(con)
    if measures is None:
        dated = dated_quarantine(quarantined) if quarantined is not None else None
        measures = measure_integrity(run, table, params, list(source.checked), dated)
    levels = None
    if customers is not None and measures.periods is not None:
        table_c, label, checked = customers
        if customer_levels is None:
            customer_levels = measure_customer_levels(
                run, table_c, measures.periods, params, checked
            )
        levels = (customer_levels, label, checked)
    counts = quarantined.counts if quarantined is not None else None
    return decide_integrity(measures, params, source, previous, levels, counts)
