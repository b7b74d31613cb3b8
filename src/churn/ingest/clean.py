"""Typing raw transactions in DuckDB SQL: reasons for bad rows, duplicates, clean sorted output."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

import duckdb

from churn import columns as C
from churn.errors import ChurnError
from churn.ingest.rejects import Reason
from churn.ingest.sources import RawTable, fresh_name, ident, lit, resolve_columns

WHITESPACE = " \t\r\n"
FORMULA_PREFIXES = ("=", "+", "-", "@")  # OWASP CSV-injection characters
DAYFIRST_FORMATS = ("%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%d/%m/%Y", "%d.%m.%Y %H:%M:%S",
                    "%d.%m.%Y %H:%M", "%d.%m.%Y", "%d-%m-%Y %H:%M:%S", "%d-%m-%Y %H:%M",
                    "%d-%m-%Y")  # fmt: skip
MONTHFIRST_FORMATS = ("%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M", "%m/%d/%Y", "%m/%d/%Y %I:%M:%S %p",
                      "%m/%d/%Y %I:%M %p", "%m-%d-%Y %H:%M:%S", "%m-%d-%Y")  # fmt: skip
ISO_SLASH_FORMATS = ("%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y/%m/%d")
# A time followed by a UTC offset ("...10:00:00+02:00", "...10:00-0500", "...Z") or by a zone
# name of 3+ characters ("...10:00:00 UTC", "...10:00 Europe/Paris"; so "10:00 PM" stays local).
# One regex: cheaper in DuckDB than several string tests guarding it.
OFFSET_PATTERN = (
    r"(?:[zZ]|\d:\d\d(?::\d\d(?:\.\d+)?)?\s*"
    r"(?:[+-]\d\d(?::?\d\d)?|[A-Za-z][A-Za-z0-9_/+-]{2,}))$"
)
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
    # the integrity checks' numbers (churn.ingest.integrity.IntegrityMeasures) when the engine
    # that cleaned measured them (Spark, on its frames); None: measured on the written file
    measures: object | None = None

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


def strip_expr(text_sql: str) -> str:
    """Return SQL trimming whitespace from text; the cheap test skips trim() on clean values."""
    return (
        f"(CASE WHEN ascii({text_sql}) <= 32 OR ascii(right({text_sql}, 1)) <= 32 "
        f"THEN trim({text_sql}, {lit(WHITESPACE)}) ELSE {text_sql} END)"
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
    text = strip_expr(col)
    return text_timestamp_expr(text, offset_expr(text), fmt, dayfirst, zone)


def text_timestamp_expr(text: str, offset: str, fmt: str | None, dayfirst: bool, zone: str) -> str:
    """Return SQL parsing stripped text (and its offset flag) into a naive local TIMESTAMP."""
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
        WHEN {offset} THEN timezone({lit(zone)}, try_cast({text} AS TIMESTAMPTZ))
        ELSE coalesce(try_cast({text} AS TIMESTAMP), try_strptime({text}, {fallback_list}))
    END)"""


def offset_expr(text: str) -> str:
    """SQL: does the text end in Z, a +hh:mm offset or a zone name?"""
    return f"regexp_matches({text}, {lit(OFFSET_PATTERN)})"


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
    text = strip_expr(col)
    if thousands is not None:
        text = f"replace({text}, {lit(thousands)}, '')"
    if decimal == ",":
        # a '.' left over is ambiguous (1.234 = 1234 or 1.234?): it makes the value non-numeric
        text = f"(CASE WHEN contains({text}, '.') THEN NULL ELSE replace({text}, ',', '.') END)"
    return f"try_cast({text} AS DOUBLE)"


def id_expr(column: str, dtype: str) -> str:
    """Return SQL for an id as trimmed text; empty becomes NULL."""
    return f"nullif({strip_expr(f'CAST({ident(column)} AS VARCHAR)')}, '')"


def nullable(sql: str) -> str:
    """Return SQL with the same value that DuckDB cannot prove non-null.

    DuckDB marks a Parquet column `required` when its statistics show no nulls, so the schema
    would change with the data; this keeps every output column optional, run after run.
    """
    return f"(CASE WHEN {sql} IS NULL THEN NULL ELSE {sql} END)"


def blank_expr(column: str) -> str:
    """Return SQL true when the source value is missing or only whitespace."""
    return f"(nullif(trim(CAST({ident(column)} AS VARCHAR), {lit(WHITESPACE)}), '') IS NULL)"


def formula_expr(id_sql: str) -> str:
    """Return SQL true when an id would run as a spreadsheet formula (= + - @)."""
    codes = ", ".join(str(ord(p)) for p in FORMULA_PREFIXES)
    return f"ascii({id_sql}) IN ({codes})"


# Control characters (C0, DEL, C1): an id holding one is quarantined, never cleaned, so an id
# is never altered; surrounding spaces, tabs and line ends are trimmed before this test.
CONTROL_PATTERN = r"[\x00-\x1f\x7f-\x9f]"


def control_expr(text_sql: str) -> str:
    """Return SQL true when text holds a control character."""
    return f"regexp_matches({text_sql}, {lit(CONTROL_PATTERN)})"


def control_detail(column: str, text_sql: str) -> str:
    """Return SQL saying which control character a value holds, for the quarantine detail."""
    return (
        f"{lit(f'column {column!r} value ')} || {_shown_sql(text_sql)} || ' holds the control "
        f"character U+' || printf('%04X', unicode(regexp_extract({text_sql}, "
        f"{lit(CONTROL_PATTERN)}))) || ' (a broken export or an injection attempt); ids are "
        "never altered: fix the export'"
    )


def _shown_sql(text_sql: str) -> str:
    quote = lit("'")
    return f"coalesce({quote} || left({text_sql}, 80) || {quote}, 'empty')"


def _text(column: str) -> str:
    return f"CAST({ident(column)} AS VARCHAR)"


def _shown(column: str) -> str:
    """SQL for a quoted, shortened original value for details."""
    return f"coalesce('''' || left({_text(column)}, 80) || '''', 'empty')"


def transaction_reason_sql(ts: str, amt: str, params, reject: str) -> str:
    """Return the SQL CASE giving a typed transaction row its quarantine reason (NULL = valid):
    the row rules, written once for DuckDB and transpiled for Spark (churn.spark.clean).

    Reads __cid, __ts and __amt (the typed id, timestamp and amount) and the source columns `ts`
    and `amt` (to tell a missing value from a malformed one); `reject` is the SQL literal of the
    newest accepted timestamp.
    """
    min_date = lit(params.limits.min_date.isoformat())
    max_amount = repr(float(params.limits.max_abs_amount))
    return f"""CASE
        WHEN __cid IS NULL THEN '{Reason.MISSING_CUSTOMER_ID}'
        WHEN {formula_expr("__cid")} THEN '{Reason.FORMULA_CUSTOMER_ID}'
        WHEN {control_expr("__cid")} THEN '{Reason.CONTROL_CHARACTER_CUSTOMER_ID}'
        WHEN __ts IS NULL AND {blank_expr(ts)} THEN '{Reason.MISSING_TIMESTAMP}'
        WHEN __ts IS NULL THEN '{Reason.UNPARSEABLE_TIMESTAMP}'
        WHEN __ts > CAST({reject} AS TIMESTAMP) THEN '{Reason.FUTURE_TIMESTAMP}'
        WHEN __ts < CAST({min_date} AS TIMESTAMP) THEN '{Reason.TIMESTAMP_OUT_OF_RANGE}'
        WHEN __amt IS NULL AND {blank_expr(amt)} THEN '{Reason.MISSING_AMOUNT}'
        WHEN __amt IS NULL THEN '{Reason.NON_NUMERIC_AMOUNT}'
        WHEN NOT isfinite(__amt) THEN '{Reason.NON_FINITE_AMOUNT}'
        WHEN abs(__amt) > {max_amount} THEN '{Reason.AMOUNT_OUT_OF_RANGE}'
    END"""


def transaction_columns(params) -> dict[str, str]:
    """Return canonical name -> source column for a transactions export (ingest.columns plus
    the passthrough columns, kept under their own names); both engines' ingest read this."""
    mapping = {
        C.CUSTOMER_ID: params.columns.customer_id,
        C.TIMESTAMP: params.columns.timestamp,
        C.AMOUNT: params.columns.amount,
    }
    if params.columns.transaction_id:
        mapping[C.TRANSACTION_ID] = params.columns.transaction_id
    for name in params.passthrough:
        mapping[name] = name
    return mapping


def clean_transactions(
    con: duckdb.DuckDBPyConnection,
    raw: RawTable,
    params,  # churn.config.IngestParams
    reject_after: datetime,
) -> CleanedTable:
    """Type transactions, give each bad row a reason, handle duplicates; counts are computed."""
    src = resolve_columns(raw, transaction_columns(params), "ingest.columns")
    t = raw.types
    cust, ts, amt = src[C.CUSTOMER_ID], src[C.TIMESTAMP], src[C.AMOUNT]
    tx = src.get(C.TRANSACTION_ID)
    where = raw.label
    text_ts = t[ts].upper() == "VARCHAR"
    # Text timestamps: strip once, test the offset once, then parse, each in its own subquery
    # layer (DuckDB does not share common subexpressions).
    if text_ts:
        ts_text_sql = strip_expr(ident(ts))
        ts_sql = text_timestamp_expr(
            "__ts_text", "__offset", params.timestamp_format, params.dayfirst, params.timezone
        )
    else:
        ts_text_sql = "CAST(NULL AS VARCHAR)"
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
    reason_sql = transaction_reason_sql(ts, amt, params, reject)
    originals: list[tuple[str, str | None]] = [(C.CUSTOMER_ID, cust), (C.TIMESTAMP, ts)]
    originals += [(C.AMOUNT, amt), (C.TRANSACTION_ID, tx)]
    originals += [(p, p) for p in passthrough]
    # One source file: its name is a constant, kept out of the big table, joins and sort keys.
    many = len(raw.files) > 1
    keys = "__file, __row" if many else "__row"
    same_row = "t.__row = d.__row" + (" AND t.__file = d.__file" if many else "")
    source_cols = sorted({cust, ts, amt, *passthrough, *([tx] if tx else [])})
    detail_sql = _transaction_detail(cust, ts, amt, tx, params, reject_after)
    # A quarantined row's file and source values as text (what the quarantine shows), kept in
    # the typed table so that the quarantine is written without reading the source again; NULL
    # on valid rows, where it costs a few bytes.
    kept = ["__file", *source_cols]
    con.execute(
        f"""CREATE TEMP TABLE {typed} AS
        SELECT {keys}, __cid, __ts, __amt, __tx {pass_cols}, __reason, __offset, __trimmed,
               CASE WHEN __reason IS NOT NULL THEN {_original_sql(kept)} END AS __original
        FROM (
            SELECT *, {reason_sql} AS __reason,
                   CAST({ident(cust)} AS VARCHAR) <> __cid AS __trimmed FROM (
                SELECT *, {ts_sql} AS __ts FROM (
                    SELECT *, {offset_expr("__ts_text") if text_ts else "false"} AS __offset FROM (
                        SELECT __file, __row, {cid_sql} AS __cid, {ts_text_sql} AS __ts_text,
                               {amount_sql} AS __amt, {tx_sql} AS __tx,
                               {", ".join(ident(c) for c in source_cols)}
                        FROM {raw.relation}
                    )
                )
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

    # A repeated id is one order's lines (same customer, same date) or an id reused by another
    # order (ids that restart per store or per year): those rows are quarantined, never dropped.
    # The valid rows whose id occurs more than once, found once and shared by both id rules;
    # None when every id is unique (the usual export): then neither rule has anything to do.
    repeated = _repeated_rows(con, typed) if tx else None
    reused_ids = 0
    if repeated:
        matched = f"{typed}.__row = s.__row" + (f" AND {typed}.__file = s.__file" if many else "")
        refill = (raw.relation, kept, matched)
        reused_ids = _quarantine_reused_ids(con, typed, repeated, refill)
    counts = con.execute(
        f"SELECT __reason, count(*), count(*) FILTER (__offset), count(*) FILTER (__trimmed) "
        f"FROM {typed} GROUP BY ALL"
    ).fetchall()
    reasons = {reason: n for reason, n, _, _ in counts if reason is not None}
    valid = [(n_offset, n_trimmed) for reason, _, n_offset, n_trimmed in counts if reason is None]
    n_offset, n_trimmed = valid[0] if valid else (0, 0)
    malformed_sql = None
    if raw.malformed is not None:
        (n_bad,) = con.execute(f"SELECT count(*) FROM {raw.malformed}").fetchone()
        reasons[str(Reason.MALFORMED_LINE)] = int(n_bad)
        malformed_sql = (
            f"SELECT 'transactions' AS {ident(C.QUARANTINE_TABLE)}, __file AS {C.SOURCE_FILE}, CAST(__row AS BIGINT) AS "
            f"{C.SOURCE_ROW}, '{Reason.MALFORMED_LINE}' AS {C.REASON}, "
            f"'line ' || (__row + 1) || ': ' || error || ': ' || left(raw_line, 200) AS {C.DETAIL}, "
            + ", ".join(f"CAST(NULL AS VARCHAR) AS {ident(out)}" for out, _ in originals)
            + f" FROM {raw.malformed}"
        )

    # Duplicates among valid rows only, so a bad first copy never hides a good second one.
    # Grouping 64-bit hashes finds the few candidate ids cheaply; the windows then compare the
    # ids themselves, so a hash collision can never remove a row.
    dups = fresh_name("txn_dups")
    out_cols = ["__cid", "__ts", "__amt", "__tx", *passthrough]
    exact_duplicates = 0
    line_items = 0
    if tx and repeated is None:
        con.execute(
            f"CREATE TEMP TABLE {dups} AS SELECT {keys}, false AS conflicting FROM {typed} WHERE false"
        )
    elif tx:
        _, line_items = _drop_repeated_rows(con, repeated, keys, same_row, out_cols, dups)
    else:
        group = ", ".join(ident(c) for c in out_cols)
        (exact_duplicates,) = con.execute(
            f"SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM {typed} "
            f"WHERE __reason IS NULL GROUP BY {group})"
        ).fetchone()
        keep = "false" if params.drop_exact_duplicates else "true"
        con.execute(
            f"""CREATE TEMP TABLE {dups} AS
            SELECT {keys}, false AS conflicting FROM (
                SELECT {keys}, row_number() OVER (PARTITION BY {group}
                    ORDER BY {keys}) AS rn
                FROM {typed} WHERE __reason IS NULL AND NOT {keep}
            ) WHERE rn > 1"""
        )
    (duplicates,) = con.execute(f"SELECT count(*) FROM {dups}").fetchone()

    clean_from = f"{typed} t"
    if duplicates:
        clean_from += f" ANTI JOIN {dups} d ON {same_row}"
    outputs = [
        ("t.__cid", C.CUSTOMER_ID),
        ("t.__ts", C.TIMESTAMP),
        ("CAST(t.__ts AS DATE)", C.DATE),
        ("t.__amt", C.AMOUNT),
        ("t.__tx", C.TRANSACTION_ID),
        *((f"t.{ident(p)}", p) for p in passthrough),
    ]
    select_cols = ", ".join(f"{nullable(sql)} AS {ident(name)}" for sql, name in outputs)
    clean_sql = (
        f"SELECT {select_cols} FROM {clean_from} WHERE t.__reason IS NULL "
        f"ORDER BY t.__cid, t.__ts, {'t.__file, ' if many else ''}t.__row"
    )
    # The quarantined rows' original values: kept beside their reasons in the typed table.
    unpacked = ", ".join(f"__original[{i + 1}] AS {ident(c)}" for i, c in enumerate(kept))
    quarantine_sql = (
        f"SELECT 'transactions' AS {ident(C.QUARANTINE_TABLE)}, q.__file AS {C.SOURCE_FILE}, "
        f"CAST(q.__row AS BIGINT) AS {C.SOURCE_ROW}, q.__reason AS {C.REASON}, {detail_sql} AS {C.DETAIL}, "
        + ", ".join(
            f"{_text(source) if source else 'CAST(NULL AS VARCHAR)'} AS {ident(out)}"
            for out, source in originals
        )
        + f" FROM (SELECT __row, __reason, {unpacked} FROM {typed} WHERE __reason IS NOT NULL) q"
    )
    if malformed_sql:
        quarantine_sql = f"{quarantine_sql} UNION ALL {malformed_sql}"

    stats: dict[str, object] = {
        "timestamps_with_offset": int(n_offset),
        "customer_ids_trimmed": int(n_trimmed),
    }
    if tx is None:
        stats["exact_duplicates"] = int(exact_duplicates)
        stats["exact_duplicates_kept"] = (
            0 if params.drop_exact_duplicates else int(exact_duplicates)
        )
    else:
        stats["reused_transaction_ids"] = int(reused_ids)
        stats["line_item_rows"] = int(line_items)
    if stats_warning:
        stats["warnings"] = [stats_warning]
    if reused_ids:
        stats.setdefault("warnings", []).append(
            f"{where}: {reused_ids} transaction ids in column {tx!r} are used by more than one "
            "order (another customer or date); their rows are quarantined as "
            f"{Reason.REUSED_TRANSACTION_ID}. If the ids restart per store or per year, map "
            "ingest.columns.transaction_id to a line or unique id, or set it to null"
        )
    result = CleanedTable(
        name="transactions",
        clean_sql=clean_sql,
        quarantine_sql=quarantine_sql,
        rows_read=raw.rows_read,
        quarantined_by_reason={str(k): int(v) for k, v in sorted(reasons.items())},
        duplicates_removed=int(duplicates),
        stats=stats,
    )
    return result  # rows_clean is counted in the written file: see summarize_transactions


def _repeated_rows(con: duckdb.DuckDBPyConnection, typed: str) -> str | None:
    """Create and return a temp table of the valid rows whose transaction id may occur more than
    once (their id's 64-bit hash does), or return None when no hash repeats: then every valid id
    is unique, which one aggregate proves without touching the rows again.

    A hash collision only adds rows whose id is in fact unique; both id rules group by the id
    itself, so such rows change nothing."""
    hashes = fresh_name("txn_repeated_hashes")
    con.execute(
        f"""CREATE TEMP TABLE {hashes} AS SELECT hash(__tx) AS h FROM {typed}
        WHERE __reason IS NULL AND __tx IS NOT NULL GROUP BY ALL HAVING count(*) > 1"""
    )
    (n,) = con.execute(f"SELECT count(*) FROM {hashes}").fetchone()
    if not n:
        return None
    repeated = fresh_name("txn_repeated")
    con.execute(
        f"""CREATE TEMP TABLE {repeated} AS SELECT * FROM {typed}
        WHERE __reason IS NULL AND __tx IS NOT NULL AND hash(__tx) IN (SELECT h FROM {hashes})"""
    )
    return repeated


def _original_sql(columns: list[str], alias: str = "") -> str:
    """Return SQL of a row's `columns` (of the source, `alias`.column when given) as a list of
    text: the quarantine's original values."""
    prefix = f"{alias}." if alias else ""
    return "[" + ", ".join(f"CAST({prefix}{ident(c)} AS VARCHAR)" for c in columns) + "]"


def _quarantine_reused_ids(
    con: duckdb.DuckDBPyConnection,
    typed: str,
    repeated: str,
    refill: tuple[str, list[str], str],
) -> int:
    """Mark the rows of ids used by more than one order (another customer or local date) as
    reused_transaction_id, in `typed`, with their original values read back from the source
    (`refill`: the source relation, the columns kept, the condition matching a typed row with
    its source row `s`), and drop them from `repeated` (which then holds valid rows only again);
    return how many ids were reused."""
    reused = fresh_name("txn_reused")
    con.execute(
        f"""CREATE TEMP TABLE {reused} AS
        SELECT __tx FROM {repeated}
        GROUP BY __tx HAVING count(DISTINCT (__cid, CAST(__ts AS DATE))) > 1"""
    )
    (n,) = con.execute(f"SELECT count(*) FROM {reused}").fetchone()
    if n:
        con.execute(
            f"""UPDATE {typed} SET __reason = '{Reason.REUSED_TRANSACTION_ID}'
            WHERE __reason IS NULL AND __tx IN (SELECT __tx FROM {reused})"""
        )
        source, kept, same_row = refill
        con.execute(
            f"""UPDATE {typed} SET __original = {_original_sql(kept, "s")} FROM {source} s
            WHERE {same_row} AND {typed}.__reason = '{Reason.REUSED_TRANSACTION_ID}'"""
        )
        con.execute(f"DELETE FROM {repeated} WHERE __tx IN (SELECT __tx FROM {reused})")
    return int(n)


def _drop_repeated_rows(
    con: duckdb.DuckDBPyConnection,
    repeated: str,
    keys: str,
    same_row: str,
    out_cols: list[str],
    dups: str,
) -> tuple[int, int]:
    """Create `dups`: every valid row identical to an earlier one with the same transaction id
    (a re-sent row), from `repeated` (the valid rows whose id may repeat: _repeated_rows). Lines
    of one order that differ in any value are kept. Return (rows removed, rows kept that share
    their id with another kept row: an order's lines)."""
    group = ", ".join(ident(c) for c in out_cols)
    con.execute(
        f"""CREATE TEMP TABLE {dups} AS
        SELECT {keys}, false AS conflicting FROM (
            SELECT {keys}, row_number() OVER (PARTITION BY {group} ORDER BY {keys}) AS rn
            FROM {repeated}
        ) WHERE rn > 1"""
    )
    (removed,) = con.execute(f"SELECT count(*) FROM {dups}").fetchone()
    (lines,) = con.execute(
        f"""SELECT coalesce(sum(n), 0) FROM (
            SELECT count(*) AS n FROM {repeated} t ANTI JOIN {dups} d ON {same_row}
            GROUP BY t.__tx HAVING count(*) > 1)"""
    ).fetchone()
    return int(removed), int(lines)


def summarize_transactions(
    con: duckdb.DuckDBPyConnection, table: CleanedTable, written: str
) -> CleanedTable:
    """Return `table` with counts read back from the written Parquet file; assert conservation."""
    missing_ids = parquet_null_count(con, written, C.TRANSACTION_ID)
    missing_sql = (
        f"count(*) FILTER ({ident(C.TRANSACTION_ID)} IS NULL)"
        if missing_ids is None
        else str(missing_ids)
    )
    row = con.execute(
        f"""SELECT count(*), count(DISTINCT {ident(C.CUSTOMER_ID)}),
               count(*) FILTER ({ident(C.AMOUNT)} < 0), count(*) FILTER ({ident(C.AMOUNT)} = 0),
               count(*) FILTER ({ident(C.AMOUNT)} > 0),
               CAST(min({ident(C.TIMESTAMP)}) AS VARCHAR),
               CAST(max({ident(C.TIMESTAMP)}) AS VARCHAR),
               CAST(min({ident(C.DATE)}) AS VARCHAR), CAST(max({ident(C.DATE)}) AS VARCHAR),
               {missing_sql}
        FROM read_parquet({lit(written)})"""
    ).fetchone()
    keys = ("rows_clean", "customers", "refunds_kept", "zero_amounts_kept", "purchases",
            "timestamp_min", "timestamp_max", "date_min", "date_max",
            "missing_transaction_ids")  # fmt: skip
    stats = {**dict(zip(keys, row, strict=True)), **table.stats}
    result = replace(table, stats=stats)
    result.assert_rows_conserved()
    return result


def parquet_null_count(con: duckdb.DuckDBPyConnection, path: str, column: str) -> int | None:
    """Return the nulls of a top-level column of a Parquet file from its row groups' statistics
    (no data read), or None when a row group has no null count (then count the values)."""
    groups, counted, nulls = con.execute(
        "SELECT count(*), count(stats_null_count), sum(stats_null_count) "
        "FROM parquet_metadata(?) WHERE path_in_schema = ?",
        [path, column],
    ).fetchone()
    if not groups or counted < groups:
        return None
    return int(nulls)


def _reject_after_words(params, reject_after: datetime) -> str:
    """Say which limit a future timestamp broke, without the wall clock when it is the run time
    (the quarantine is a DVC output: it must not change from one run to the next)."""
    if params.reject_after is None:
        return "the time ingest ran (ingest.reject_after: null)"
    return "ingest.reject_after " + reject_after.isoformat(sep=" ", timespec="seconds")


def _transaction_detail(
    cust: str, ts: str, amt: str, tx: str | None, params, reject_after: datetime
) -> str:
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
    limits = params.limits
    too_early = (
        f" is before ingest.limits.min_date {limits.min_date}: not a real transaction date; "
        "fix the export (or lower the limit)"
    )
    too_large = (
        f" is beyond ingest.limits.max_abs_amount = {limits.max_abs_amount:g}: not a real "
        "amount (an id or a unit error?); fix the export or raise the limit"
    )
    amount_hint = (
        f"CASE WHEN regexp_matches({_text(amt)}, '^\\s*-?\\d{{1,3}}([,. ]\\d{{3}})+([.,]\\d+)?\\s*$') "
        f"THEN {lit(hint_thousands)} ELSE '' END"
    )
    return f"""CASE q.__reason
        WHEN '{Reason.MISSING_CUSTOMER_ID}' THEN {lit(f"column '{cust}' is empty")}
        WHEN '{Reason.FORMULA_CUSTOMER_ID}' THEN {lit(f"column '{cust}' value ")} || {_shown(cust)}
            || ' starts with = + - or @ and would run as a spreadsheet formula'
        WHEN '{Reason.CONTROL_CHARACTER_CUSTOMER_ID}' THEN {control_detail(cust, _text(cust))}
        WHEN '{Reason.MISSING_TIMESTAMP}' THEN {lit(f"column '{ts}' is empty")}
        WHEN '{Reason.UNPARSEABLE_TIMESTAMP}' THEN {lit(f"column '{ts}' value ")} || {_shown(ts)}
            || {lit(" is not a timestamp in " + expected)}
        WHEN '{Reason.FUTURE_TIMESTAMP}' THEN {lit(f"column '{ts}' value ")} || {_shown(ts)}
            || {lit(" is after " + _reject_after_words(params, reject_after))}
        WHEN '{Reason.TIMESTAMP_OUT_OF_RANGE}' THEN {lit(f"column '{ts}' value ")} || {_shown(ts)}
            || {lit(too_early)}
        WHEN '{Reason.MISSING_AMOUNT}' THEN {lit(f"column '{amt}' is empty")}
        WHEN '{Reason.NON_NUMERIC_AMOUNT}' THEN {lit(f"column '{amt}' value ")} || {_shown(amt)}
            || ' is not a number' || {amount_hint}
        WHEN '{Reason.NON_FINITE_AMOUNT}' THEN {lit(f"column '{amt}' value ")} || {_shown(amt)}
            || ' is NaN or infinite'
        WHEN '{Reason.AMOUNT_OUT_OF_RANGE}' THEN {lit(f"column '{amt}' value ")} || {_shown(amt)}
            || {lit(too_large)}
        WHEN '{Reason.REUSED_TRANSACTION_ID}' THEN {lit(f"column '{tx}' value ")} || {_shown(tx or cust)}
            || ' names orders of more than one customer or date (ids restart per store or year?); '
            || 'map ingest.columns.transaction_id to a line or unique id, or set it to null'
    END"""
