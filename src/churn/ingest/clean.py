"""Typing raw transactions in DuckDB SQL: reasons for bad rows, duplicates, clean sorted output."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import duckdb

from churn import columns as C
from churn.errors import ChurnError
from churn.ingest.reasons import Reason
from churn.ingest.sources import RawTable, fresh_name, ident, lit, resolve_columns

WHITESPACE = " \t\r\n"
FORMULA_PREFIXES = ("=", "+", "-", "@")  # OWASP CSV-injection characters
DAYFIRST_FORMATS = ("%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%d/%m/%Y", "%d.%m.%Y %H:%M:%S",
                    "%d.%m.%Y %H:%M", "%d.%m.%Y", "%d-%m-%Y %H:%M:%S", "%d-%m-%Y %H:%M",
                    "%d-%m-%Y")  # fmt: skip
MONTHFIRST_FORMATS = ("%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M", "%m/%d/%Y", "%m/%d/%Y %I:%M:%S %p",
                      "%m/%d/%Y %I:%M %p", "%m-%d-%Y %H:%M:%S", "%m-%d-%Y")  # fmt: skip
ISO_SLASH_FORMATS = ("%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y/%m/%d")
# An ISO time followed by a UTC offset: "...10:00:00+02:00", "...10:00-0500"
OFFSET_PATTERN = r"\d:\d\d(:\d\d(\.\d+)?)?\s*[+-]\d\d(:?\d\d)?$"
NUMERIC_TYPES = ("DOUBLE", "FLOAT", "REAL", "DECIMAL", "INTEGER", "BIGINT", "SMALLINT",
                 "TINYINT", "HUGEINT", "UBIGINT", "UINTEGER", "USMALLINT", "UTINYINT")  # fmt: skip


@dataclass(frozen=True)
class CleanedTable:
    """Result of cleaning one source: DuckDB relations plus counts that must add up."""

    name: str  # transactions / customers / nps
    clean_sql: str  # SELECT of the clean rows in output column order, sorted
    quarantine_sql: str  # SELECT of quarantined rows in the quarantine schema
    rows_read: int
    quarantined_by_reason: dict[str, int]
    duplicates_removed: int
    stats: dict[str, object] = field(default_factory=dict)

    @property
    def quarantined(self) -> int:
        """Return the number of quarantined rows."""
        return sum(self.quarantined_by_reason.values())

    @property
    def rows_clean(self) -> int:
        """Return the number of clean rows (counted in the clean relation, not derived)."""
        return int(self.stats["rows_clean"])  # type: ignore[arg-type]

    def assert_rows_conserved(self) -> None:
        """Raise AssertionError unless rows_read == rows_clean + quarantined + duplicates_removed."""
        total = self.rows_clean + self.quarantined + self.duplicates_removed
        assert self.rows_read == total, (
            f"{self.name}: rows not conserved: read {self.rows_read} != clean {self.rows_clean} "
            f"+ quarantined {self.quarantined} + duplicates {self.duplicates_removed}"
        )


def timestamp_expr(
    column: str, dtype: str, fmt: str | None, dayfirst: bool, zone: str, where: str
) -> str:
    """Return SQL turning a source column into a naive local TIMESTAMP in `zone` (NULL if bad)."""
    col = ident(column)
    base = dtype.split("(")[0].upper()
    if base in ("TIMESTAMP", "TIMESTAMP_NS", "TIMESTAMP_MS", "TIMESTAMP_S", "DATETIME"):
        return f"CAST({col} AS TIMESTAMP)"  # naive values are wall-clock time in the zone
    if base in ("TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ"):
        return f"timezone({lit(zone)}, {col})"
    if base == "DATE":
        return f"CAST({col} AS TIMESTAMP)"
    if base != "VARCHAR":
        raise ChurnError(
            f"{where}: column {column!r} has type {dtype}; timestamps must be text, timestamp or "
            "date columns; convert it in the export or map another column"
        )
    text = f"trim({col}, {lit(WHITESPACE)})"
    if fmt is not None:
        aware = "%z" in fmt or "%Z" in fmt
        parsed = f"try_strptime({text}, {lit(fmt)})"
        return f"timezone({lit(zone)}, {parsed})" if aware else parsed
    fallbacks = (DAYFIRST_FORMATS if dayfirst else MONTHFIRST_FORMATS) + ISO_SLASH_FORMATS
    fallback_list = "[" + ", ".join(lit(f) for f in fallbacks) + "]"
    # An offset is honoured by converting to the zone; without one the value is local time.
    # (DuckDB's plain TIMESTAMP cast would silently drop an offset, so it is detected first.)
    return f"""(CASE
        WHEN {text} = '' THEN NULL
        WHEN right({text}, 1) IN ('Z', 'z')
             OR (length({text}) > 16 AND regexp_matches({text}, {lit(OFFSET_PATTERN)}))
        THEN timezone({lit(zone)}, try_cast({text} AS TIMESTAMPTZ))
        ELSE coalesce(try_cast({text} AS TIMESTAMP), try_strptime({text}, {fallback_list}))
    END)"""


def has_offset_expr(column: str, dtype: str) -> str:
    """Return SQL that is true when a text timestamp carries its own UTC offset."""
    if dtype.upper() != "VARCHAR":
        return "false"
    text = f"trim({ident(column)}, {lit(WHITESPACE)})"
    return (
        f"(right({text}, 1) IN ('Z', 'z') OR (length({text}) > 16 AND "
        f"regexp_matches({text}, {lit(OFFSET_PATTERN)})))"
    )


def amount_expr(column: str, dtype: str, decimal: str, thousands: str | None, where: str) -> str:
    """Return SQL turning a source column into DOUBLE (NULL when not a number)."""
    col = ident(column)
    base = dtype.split("(")[0].upper()
    if base in NUMERIC_TYPES:
        return f"CAST({col} AS DOUBLE)"
    if base != "VARCHAR":
        raise ChurnError(
            f"{where}: column {column!r} has type {dtype}; amounts must be numbers or text; "
            "fix the export or map another column"
        )
    text = f"trim({col}, {lit(WHITESPACE)})"
    if thousands is not None:
        text = f"replace({text}, {lit(thousands)}, '')"
    if decimal == ",":
        # a '.' left over is ambiguous (1.234 = 1234 or 1.234?): it makes the value non-numeric
        text = f"(CASE WHEN contains({text}, '.') THEN NULL ELSE replace({text}, ',', '.') END)"
    return f"try_cast({text} AS DOUBLE)"


def id_expr(column: str, dtype: str) -> str:
    """Return SQL for an id as trimmed text; empty becomes NULL."""
    return f"nullif(trim(CAST({ident(column)} AS VARCHAR), {lit(WHITESPACE)}), '')"


def formula_expr(id_sql: str) -> str:
    """Return SQL true when an id would run as a spreadsheet formula."""
    prefixes = ", ".join(lit(p) for p in FORMULA_PREFIXES)
    return f"left({id_sql}, 1) IN ({prefixes})"


def _text(column: str) -> str:
    return f"CAST({ident(column)} AS VARCHAR)"


def _shown(column: str) -> str:
    """SQL for a quoted, shortened original value for details."""
    return f"coalesce('''' || left({_text(column)}, 80) || '''', 'empty')"


def clean_transactions(
    con: duckdb.DuckDBPyConnection,
    raw: RawTable,
    params,  # churn.config.IngestParams
    reject_after: datetime,
) -> CleanedTable:
    """Type transactions, give each bad row a reason, handle duplicates; counts are computed."""
    mapping = {
        C.CUSTOMER_ID: params.columns.customer_id,
        C.TIMESTAMP: params.columns.timestamp,
        C.AMOUNT: params.columns.amount,
    }
    if params.columns.transaction_id:
        mapping[C.TRANSACTION_ID] = params.columns.transaction_id
    for name in params.passthrough:
        mapping[name] = name
    src = resolve_columns(raw, mapping, "ingest.columns")
    t = raw.types
    cust, ts, amt = src[C.CUSTOMER_ID], src[C.TIMESTAMP], src[C.AMOUNT]
    tx = src.get(C.TRANSACTION_ID)
    where = raw.label
    ts_sql = timestamp_expr(
        ts, t[ts], params.timestamp_format, params.dayfirst, params.timezone, where
    )
    amount_sql = amount_expr(amt, t[amt], params.csv.decimal, params.csv.thousands, where)
    cid_sql = id_expr(cust, t[cust])
    tx_sql = id_expr(tx, t[tx]) if tx else "CAST(NULL AS VARCHAR)"
    reject = lit(reject_after.strftime("%Y-%m-%d %H:%M:%S.%f"))
    passthrough = [src[name] for name in params.passthrough]
    pass_cols = "".join(f", {ident(p)}" for p in passthrough)

    typed = fresh_name("txn_typed")
    reason_sql = f"""CASE
        WHEN __cid IS NULL THEN '{Reason.MISSING_CUSTOMER_ID}'
        WHEN {formula_expr("__cid")} THEN '{Reason.FORMULA_CUSTOMER_ID}'
        WHEN nullif(trim({_text(ts)}, {lit(WHITESPACE)}), '') IS NULL
            THEN '{Reason.MISSING_TIMESTAMP}'
        WHEN __ts IS NULL THEN '{Reason.UNPARSEABLE_TIMESTAMP}'
        WHEN __ts > CAST({reject} AS TIMESTAMP) THEN '{Reason.FUTURE_TIMESTAMP}'
        WHEN nullif(trim({_text(amt)}, {lit(WHITESPACE)}), '') IS NULL
            THEN '{Reason.MISSING_AMOUNT}'
        WHEN __amt IS NULL THEN '{Reason.NON_NUMERIC_AMOUNT}'
        WHEN NOT isfinite(__amt) THEN '{Reason.NON_FINITE_AMOUNT}'
    END"""
    originals: list[tuple[str, str | None]] = [(C.CUSTOMER_ID, cust), (C.TIMESTAMP, ts)]
    originals += [(C.AMOUNT, amt), (C.TRANSACTION_ID, tx)]
    originals += [(p, p) for p in passthrough]
    orig_sql = "".join(
        f", CASE WHEN __reason IS NOT NULL THEN {_text(source) if source else 'NULL'} END "
        f"AS {ident('__orig_' + out)}"
        for out, source in originals
    )
    source_cols = sorted({cust, ts, amt, *passthrough, *([tx] if tx else [])})
    detail_sql = _transaction_detail(cust, ts, amt, params, reject_after)
    con.execute(
        f"""CREATE TEMP TABLE {typed} AS
        SELECT __file, __row, __cid, __ts, __amt, __tx {pass_cols}, __reason, __offset,
               __trimmed {orig_sql},
               CASE WHEN __reason IS NOT NULL THEN {detail_sql} END AS __detail
        FROM (
            SELECT *, {reason_sql} AS __reason FROM (
                SELECT __file, __row, {cid_sql} AS __cid, {ts_sql} AS __ts,
                       {amount_sql} AS __amt, {tx_sql} AS __tx,
                       {has_offset_expr(ts, t[ts])} AS __offset,
                       CAST({ident(cust)} AS VARCHAR) <> {cid_sql} AS __trimmed,
                       {", ".join(ident(c) for c in source_cols)}
                FROM {raw.relation}
            )
        )"""
    )
    if t[cust].upper() != "VARCHAR":
        stats_warning = (
            f"column {cust!r} is {t[cust]}, not text: leading zeros in customer ids "
            "cannot be recovered; export ids as text"
        )
    else:
        stats_warning = None

    reasons = dict(
        con.execute(
            f"SELECT __reason, count(*) FROM {typed} WHERE __reason IS NOT NULL GROUP BY ALL"
        ).fetchall()
    )
    malformed_sql = None
    if raw.malformed is not None:
        (n_bad,) = con.execute(f"SELECT count(*) FROM {raw.malformed}").fetchone()
        reasons[str(Reason.MALFORMED_LINE)] = int(n_bad)
        malformed_sql = (
            f"SELECT 'transactions' AS {ident('table')}, __file AS source_file, CAST(__row AS BIGINT) AS "
            f"source_row, '{Reason.MALFORMED_LINE}' AS reason, "
            f"'line ' || (__row + 1) || ': ' || error || ': ' || left(raw_line, 200) AS detail, "
            + ", ".join(f"CAST(NULL AS VARCHAR) AS {ident(out)}" for out, _ in originals)
            + f" FROM {raw.malformed}"
        )

    # Duplicates among valid rows only, so a bad first copy never hides a good second one.
    dups = fresh_name("txn_dups")
    out_cols = ["__cid", "__ts", "__amt", "__tx", *passthrough]
    conflicting = 0
    exact_duplicates = 0
    if tx:
        con.execute(
            f"""CREATE TEMP TABLE {dups} AS
            SELECT __file, __row, conflicting FROM (
                SELECT __file, __row, row_number() OVER w AS rn,
                       (__cid, __ts, __amt) IS DISTINCT FROM
                       first_value((__cid, __ts, __amt)) OVER w
                       AS conflicting
                FROM {typed}
                WHERE __reason IS NULL AND __tx IS NOT NULL
                  AND __tx IN (
                    SELECT __tx FROM {typed}
                    WHERE __reason IS NULL AND __tx IS NOT NULL
                    GROUP BY ALL HAVING count(*) > 1)
                WINDOW w AS (PARTITION BY __tx ORDER BY __file, __row)
            ) WHERE rn > 1"""
        )
        (conflicting,) = con.execute(f"SELECT count(*) FROM {dups} WHERE conflicting").fetchone()
    else:
        group = ", ".join(ident(c) for c in out_cols)
        (exact_duplicates,) = con.execute(
            f"SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM {typed} "
            f"WHERE __reason IS NULL GROUP BY {group})"
        ).fetchone()
        keep = "false" if params.drop_exact_duplicates else "true"
        con.execute(
            f"""CREATE TEMP TABLE {dups} AS
            SELECT __file, __row, false AS conflicting FROM (
                SELECT __file, __row, row_number() OVER (PARTITION BY {group}
                    ORDER BY __file, __row) AS rn
                FROM {typed} WHERE __reason IS NULL AND NOT {keep}
            ) WHERE rn > 1"""
        )
    (duplicates,) = con.execute(f"SELECT count(*) FROM {dups}").fetchone()

    clean_from = f"{typed} t"
    if duplicates:
        clean_from += f" ANTI JOIN {dups} d ON t.__file = d.__file AND t.__row = d.__row"
    select_cols = (
        f"t.__cid AS {ident(C.CUSTOMER_ID)}, t.__ts AS {ident(C.TIMESTAMP)}, "
        f"CAST(t.__ts AS DATE) AS {ident(C.DATE)}, t.__amt AS {ident(C.AMOUNT)}, "
        f"t.__tx AS {ident(C.TRANSACTION_ID)}" + "".join(f", t.{ident(p)}" for p in passthrough)
    )
    clean_sql = (
        f"SELECT {select_cols} FROM {clean_from} WHERE t.__reason IS NULL "
        f"ORDER BY t.__cid, t.__ts, t.__file, t.__row"
    )
    quarantine_sql = (
        f"SELECT 'transactions' AS {ident('table')}, __file AS source_file, CAST(__row AS BIGINT) AS source_row, "
        f"__reason AS reason, __detail AS detail, "
        + ", ".join(f"{ident('__orig_' + out)} AS {ident(out)}" for out, _ in originals)
        + f" FROM {typed} WHERE __reason IS NOT NULL"
    )
    if malformed_sql:
        quarantine_sql = f"{quarantine_sql} UNION ALL {malformed_sql}"

    stats_row = con.execute(
        f"""SELECT count(*), count(DISTINCT t.__cid),
               count(*) FILTER (t.__amt < 0), count(*) FILTER (t.__amt = 0),
               count(*) FILTER (t.__amt > 0),
               CAST(min(t.__ts) AS VARCHAR), CAST(max(t.__ts) AS VARCHAR),
               CAST(min(t.__ts)::DATE AS VARCHAR),
               CAST(max(t.__ts)::DATE AS VARCHAR),
               count(*) FILTER (t.__offset), count(*) FILTER (t.__trimmed),
               count(*) FILTER (t.__tx IS NULL)
        FROM {clean_from} WHERE t.__reason IS NULL"""
    ).fetchone()
    keys = ("rows_clean", "customers", "refunds_kept", "zero_amounts_kept", "purchases",
            "timestamp_min", "timestamp_max", "date_min", "date_max", "timestamps_with_offset",
            "customer_ids_trimmed", "missing_transaction_ids")  # fmt: skip
    stats: dict[str, object] = dict(zip(keys, stats_row, strict=True))
    if tx is None:
        stats.pop("missing_transaction_ids")
        stats["exact_duplicates"] = int(exact_duplicates)
        stats["exact_duplicates_kept"] = (
            0 if params.drop_exact_duplicates else int(exact_duplicates)
        )
    else:
        stats["duplicate_ids_conflicting"] = int(conflicting)
    if stats_warning:
        stats["warnings"] = [stats_warning]
    result = CleanedTable(
        name="transactions",
        clean_sql=clean_sql,
        quarantine_sql=quarantine_sql,
        rows_read=raw.rows_read,
        quarantined_by_reason={str(k): int(v) for k, v in sorted(reasons.items())},
        duplicates_removed=int(duplicates),
        stats=stats,
    )
    result.assert_rows_conserved()
    return result


def _transaction_detail(cust: str, ts: str, amt: str, params, reject_after: datetime) -> str:
    """Return SQL building a one-line human explanation for a quarantined row."""
    fmt = params.timestamp_format
    expected = (
        f"format {fmt!r} (ingest.timestamp_format)"
        if fmt
        else "ISO 8601 or "
        + ("day-first" if params.dayfirst else "month-first")
        + " dates (set ingest.timestamp_format or ingest.dayfirst)"
    )
    hint_thousands = (
        " (looks like a thousands separator: set ingest.csv.thousands)"
        if params.csv.thousands is None
        else ""
    )
    amount_hint = (
        f"CASE WHEN regexp_matches({_text(amt)}, '^\\s*-?\\d{{1,3}}([,. ]\\d{{3}})+([.,]\\d+)?\\s*$') "
        f"THEN {lit(hint_thousands)} ELSE '' END"
    )
    return f"""CASE __reason
        WHEN '{Reason.MISSING_CUSTOMER_ID}' THEN {lit(f"column '{cust}' is empty")}
        WHEN '{Reason.FORMULA_CUSTOMER_ID}' THEN {lit(f"column '{cust}' value ")} || {_shown(cust)}
            || ' starts with = + - or @ and would run as a spreadsheet formula'
        WHEN '{Reason.MISSING_TIMESTAMP}' THEN {lit(f"column '{ts}' is empty")}
        WHEN '{Reason.UNPARSEABLE_TIMESTAMP}' THEN {lit(f"column '{ts}' value ")} || {_shown(ts)}
            || {lit(" is not a timestamp in " + expected)}
        WHEN '{Reason.FUTURE_TIMESTAMP}' THEN {lit(f"column '{ts}' value ")} || {_shown(ts)}
            || {lit(" is after ingest.reject_after " + reject_after.isoformat(sep=" ", timespec="seconds"))}
        WHEN '{Reason.MISSING_AMOUNT}' THEN {lit(f"column '{amt}' is empty")}
        WHEN '{Reason.NON_NUMERIC_AMOUNT}' THEN {lit(f"column '{amt}' value ")} || {_shown(amt)}
            || ' is not a number' || {amount_hint}
        WHEN '{Reason.NON_FINITE_AMOUNT}' THEN {lit(f"column '{amt}' value ")} || {_shown(amt)}
            || ' is NaN or infinite'
    END"""
