"""The transaction row rules on Spark, for typed sources (Parquet, Delta, catalog tables): each
row's quarantine reason, reused transaction ids and re-sent duplicates, as Spark SQL.

The reason of a row is churn.ingest.clean's CASE, written once in DuckDB's dialect and
transpiled by sqlglot; the typed columns use the same expressions as the DuckDB ingest. Text
exports (text timestamps to parse) keep going through the DuckDB ingest first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from churn import columns as C
from churn.errors import ChurnError
from churn.ingest.clean import (
    amount_expr,
    id_expr,
    nullable,
    timestamp_expr,
    transaction_columns,
    transaction_reason_sql,
)
from churn.ingest.rejects import Reason
from churn.ingest.sources import ident, lit

# Spark type (simpleString) -> the DuckDB type name the shared expressions expect. A Spark
# TIMESTAMP is an instant (Parquet isAdjustedToUTC), DuckDB's TIMESTAMPTZ; TIMESTAMP_NTZ is naive.
SPARK_TO_DUCKDB = {
    "string": "VARCHAR",
    "timestamp": "TIMESTAMPTZ",
    "timestamp_ntz": "TIMESTAMP",
    "date": "DATE",
    "double": "DOUBLE",
    "float": "FLOAT",
    "tinyint": "TINYINT",
    "smallint": "SMALLINT",
    "int": "INTEGER",
    "bigint": "BIGINT",
}


@dataclass(frozen=True)
class SparkCleaned:
    """Clean rows and quarantined rows as Spark DataFrames, and the counts that must add up."""

    clean: Any  # DataFrame in the clean contract's columns, sorted
    quarantine: Any  # DataFrame: source_row, reason, and the source values as text
    rows_read: int
    rows_clean: int
    quarantined_by_reason: dict[str, int]
    duplicates_removed: int
    # the quarantined rows as read: __file, __row, __reason and the mapped source columns with
    # their own types (the ingest stage words their details with the DuckDB ingest's SQL)
    rejected: Any = None
    # the DuckDB ingest's counters (churn.ingest.clean.clean_transactions' stats)
    stats: dict[str, Any] = field(default_factory=dict)
    # what the data checks aggregate (churn.spark.aggregates): the clean rows unsorted, and the
    # quarantined ones as (reason, date), date NULL without a usable timestamp
    clean_rows: Any = None
    quarantine_dates: Any = None
    # what release() frees once the last action on the frames above has run
    cached: tuple = ()
    views: tuple[str, ...] = ()

    def release(self, spark: Any) -> None:
        """Unpersist the cached frames and drop the temporary views behind the frames above."""
        release(spark, self.cached, self.views)

    def assert_rows_conserved(self) -> None:
        """Raise AssertionError unless rows in = rows out + rows quarantined + duplicates."""
        total = self.rows_clean + sum(self.quarantined_by_reason.values()) + self.duplicates_removed
        assert self.rows_read == total, (
            f"transactions: rows not conserved on Spark: read {self.rows_read} != clean "
            f"{self.rows_clean} + quarantined {self.quarantined_by_reason} + duplicates "
            f"{self.duplicates_removed}"
        )


def release(spark: Any, cached: tuple, views: tuple[str, ...]) -> None:
    """Unpersist `cached` frames and drop the temporary `views`; call it after the last action
    on the frames that read them (on Spark Connect a view is resolved at each action)."""
    for frame in cached:
        frame.unpersist()
    for view in views:
        spark.catalog.dropTempView(view)


def _duckdb_type(column: str, spark_type: str, label: str) -> str:
    if spark_type.startswith("decimal"):
        return "DECIMAL"
    if spark_type not in SPARK_TO_DUCKDB:
        raise ChurnError(
            f"{label}: column {column!r} has Spark type {spark_type}; the Spark ingest reads "
            "text, numbers, dates and timestamps: cast it in the table or map another column"
        )
    return SPARK_TO_DUCKDB[spark_type]


# The text DuckDB's try_cast(x AS DOUBLE) reads as a number (around optional whitespace): digits
# with '_' between them, a point, an exponent; and inf/infinity/nan in any case, signed. Spark's
# cast (Java's parseDouble) reads other text too ('7d', '1f', '0x1p3', '5' + a control
# character) and not '1_000' or '-nan': on Spark the text is matched first (Java regex).
_DIGITS = r"\d+(_\d+)*"
DUCKDB_DOUBLE_TEXT = rf"^\s*[+-]?({_DIGITS}(\.({_DIGITS})?)?|\.{_DIGITS})([eE][+-]?{_DIGITS})?\s*$"
_SPECIAL_DOUBLES = (
    (r"^\s*[+-]?(?i:nan)\s*$", "NaN"),
    (r"^\s*[+]?(?i:inf|infinity)\s*$", "Infinity"),
    (r"^\s*-(?i:inf|infinity)\s*$", "-Infinity"),
)


def _spark_literal(text: str) -> str:
    """Return text as a Spark SQL string literal (backslashes escaped)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _try_double_sql(value: str) -> str:
    """Return Spark SQL reading text as DuckDB's try_cast(value AS DOUBLE) does (NULL if not)."""
    cases = [
        f"WHEN {value} RLIKE {_spark_literal(DUCKDB_DOUBLE_TEXT)} "
        f"THEN TRY_CAST(REPLACE({value}, '_', '') AS DOUBLE)"
    ]
    cases += [
        f"WHEN {value} RLIKE {_spark_literal(pattern)} THEN CAST('{number}' AS DOUBLE)"
        for pattern, number in _SPECIAL_DOUBLES
    ]
    return f"(CASE {' '.join(cases)} END)"


def to_spark_sql(duckdb_sql: str) -> str:
    """Return DuckDB SQL transpiled to Spark SQL, with the functions Spark lacks rewritten:
    isfinite(x), timezone(zone, ts) (an instant as wall-clock time in zone),
    quantile_cont(x, q) (exact linear interpolation: Spark's percentile(x, q)) and
    try_cast(text AS DOUBLE) (the text DuckDB reads as a number, no other). Pinned by golden
    files (tests/support/spark_golden.py)."""
    import sqlglot
    from sqlglot import exp

    tree = sqlglot.parse_one(duckdb_sql, read="duckdb")

    def rewrite(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.TryCast) and node.to.this == exp.DataType.Type.DOUBLE:
            # only text reaches try_cast in the shared SQL (numbers are CAST)
            return sqlglot.parse_one(_try_double_sql(node.this.sql("spark")), read="spark")
        name = node.name.upper() if isinstance(node, exp.Anonymous) else None
        if name == "ISFINITE":
            value = node.expressions[0].sql("spark")
            return sqlglot.parse_one(
                f"(NOT ISNAN({value}) AND ABS({value}) <> CAST('Infinity' AS DOUBLE))",
                read="spark",
            )
        if isinstance(node, exp.PercentileCont) and node.expression is not None:
            # sqlglot writes PERCENTILE_CONT(x, q), which Spark only knows as WITHIN GROUP
            value, fractions = node.this.sql("spark"), node.expression.sql("spark")
            return sqlglot.parse_one(f"PERCENTILE({value}, {fractions})", read="spark")
        if isinstance(node, exp.AtTimeZone) or name == "TIMEZONE":
            if isinstance(node, exp.AtTimeZone):
                zone, value = node.args["zone"].sql("spark"), node.this.sql("spark")
            else:
                zone, value = (e.sql("spark") for e in node.expressions)
            return sqlglot.parse_one(
                f"CAST(FROM_UTC_TIMESTAMP({value}, {zone}) AS TIMESTAMP_NTZ)", read="spark"
            )
        return node

    # pretty: one clause a line, so the golden files' diffs show what changed
    return tree.transform(rewrite).sql("spark", pretty=True)


@dataclass(frozen=True)
class TransactionRulesSql:
    """The transactions' row rules as SQL in DuckDB's dialect (to_spark_sql transpiles each),
    on the views __raw (the source with __file and __row), typed and marked."""

    typed: str  # every source row typed, with its first reason (__reason0); on __raw
    marked: str  # typed rows with their final reason and copy number (__copy); on typed
    clean: str  # the clean rows in the clean contract's columns, unsorted; on marked
    clean_sorted: str  # the same, in the clean table's order
    quarantine_dates: str  # (reason, date) of the quarantined rows
    quarantine: str  # the quarantined rows in the quarantine schema, source values as text
    rejected: str  # the quarantined rows as read (__file, __row, __reason, source columns)
    drop: bool  # whether re-sent copies are dropped (an id mapped or drop_exact_duplicates)


def transaction_rules_sql(
    params: Any, spark_types: Mapping[str, str], reject_after: datetime, label: str
) -> TransactionRulesSql:
    """Return the row rules' SQL (DuckDB's dialect) for a typed source with the columns
    `spark_types` (column -> Spark type, DataFrame.dtypes): pure, so the transpiled text is
    pinned by a golden file; ChurnError when a mapped column is missing or untyped."""
    mapping = transaction_columns(params)
    types = dict(spark_types)
    missing = [(key, column) for key, column in mapping.items() if column not in types]
    if missing:
        key, column = missing[0]
        raise ChurnError(
            f"{label}: column {column!r} (ingest.columns.{key}) is missing; the table has "
            f"{', '.join(c for c in types if not c.startswith('__'))}; map the right column in "
            "params.yaml"
        )
    t = {column: _duckdb_type(column, types[column], label) for column in mapping.values()}
    cust, ts, amt = mapping[C.CUSTOMER_ID], mapping[C.TIMESTAMP], mapping[C.AMOUNT]
    tx = mapping.get(C.TRANSACTION_ID)
    if t[ts] == "VARCHAR":
        raise ChurnError(
            f"{label}: column {ts!r} holds text; the Spark engine reads typed tables, so text "
            "timestamps go through the DuckDB ingest first (engine.kind: duckdb for ingest, or "
            "store the column as a timestamp)"
        )
    passthrough = list(params.passthrough)
    reject = lit(reject_after.strftime("%Y-%m-%d %H:%M:%S.%f"))
    ts_sql = timestamp_expr(ts, t[ts], None, params.dayfirst, params.timezone, label)
    typed = f"""
        SELECT __file, __row, __cid, __ts, __amt, __tx, {transaction_reason_sql(ts, amt, params, reject)}
               AS __reason0, CAST({ident(cust)} AS VARCHAR) <> __cid AS __trimmed,
               {", ".join(ident(c) for c in sorted(set(mapping.values())))}
        FROM (
            SELECT *, {id_expr(cust, t[cust])} AS __cid, {ts_sql} AS __ts,
                   {amount_expr(amt, t[amt], params.csv.decimal, params.csv.thousands, label)} AS __amt,
                   {id_expr(tx, t[tx]) if tx else "CAST(NULL AS VARCHAR)"} AS __tx
            FROM __raw
        ) AS source"""
    # an id is reused when its valid rows name more than one (customer, local date)
    reused = """
        SELECT __tx FROM typed WHERE __reason0 IS NULL AND __tx IS NOT NULL GROUP BY __tx
        HAVING COUNT(DISTINCT __cid) > 1 OR COUNT(DISTINCT CAST(__ts AS DATE)) > 1"""
    out_cols = ["__cid", "__ts", "__amt", "__tx", *(ident(p) for p in passthrough)]
    # a row identical to an earlier one is a re-sent copy: with a transaction id always dropped,
    # without one only when ingest.drop_exact_duplicates is true (else counted and kept)
    # (rows without an id are never merged when ids are mapped, as on DuckDB)
    # (copies are numbered even when kept: the report counts them, as on DuckDB)
    copies = "__tx IS NOT NULL" if tx else "true"
    drop = bool(tx) or params.drop_exact_duplicates
    marked = f"""
        SELECT *, CASE WHEN __reason IS NULL AND {copies} THEN ROW_NUMBER() OVER (
                   PARTITION BY __reason IS NULL, {", ".join(out_cols)} ORDER BY __file, __row) END
               AS __copy
        FROM (
            SELECT t.*, CASE WHEN t.__reason0 IS NULL AND r.__tx IS NOT NULL
                        THEN '{Reason.REUSED_TRANSACTION_ID}' ELSE t.__reason0 END AS __reason
            FROM typed t LEFT JOIN ({reused}) r ON t.__tx = r.__tx
        ) AS flagged"""
    outputs = [
        ("__cid", C.CUSTOMER_ID),
        ("__ts", C.TIMESTAMP),
        ("CAST(__ts AS DATE)", C.DATE),
        ("__amt", C.AMOUNT),
        ("__tx", C.TRANSACTION_ID),
        *((ident(p), p) for p in passthrough),
    ]
    select_cols = ", ".join(f"{nullable(sql)} AS {ident(name)}" for sql, name in outputs)
    originals = [(C.CUSTOMER_ID, cust), (C.TIMESTAMP, ts), (C.AMOUNT, amt), (C.TRANSACTION_ID, tx)]
    originals += [(p, p) for p in passthrough]
    quarantine_cols = ", ".join(
        f"{f'CAST({ident(source)} AS VARCHAR)' if source else 'CAST(NULL AS VARCHAR)'} AS {ident(out)}"
        for out, source in originals
    )
    clean_sql = (
        f"SELECT {select_cols} FROM marked WHERE __reason IS NULL "
        f"{'AND coalesce(__copy, 1) = 1 ' if drop else ''}"
    )
    source_cols = ", ".join(ident(c) for c in dict.fromkeys(mapping.values()))
    return TransactionRulesSql(
        typed=typed,
        marked=marked,
        clean=clean_sql,
        clean_sorted=clean_sql + "ORDER BY __cid, __ts, __file, __row",
        # a quarantined row's date: its timestamp as read (wall-clock time in ingest.timezone),
        # as the DuckDB ingest dates the quarantined rows it wrote
        quarantine_dates=(
            f"SELECT __reason AS reason, CAST(__ts AS DATE) AS {ident(C.DATE)} FROM marked "
            "WHERE __reason IS NOT NULL"
        ),
        quarantine=(
            f"SELECT 'transactions' AS {ident(C.QUARANTINE_TABLE)}, __file AS {C.SOURCE_FILE}, "
            f"CAST(__row AS BIGINT) AS "
            f"{C.SOURCE_ROW}, __reason AS {C.REASON}, {quarantine_cols} FROM marked "
            "WHERE __reason IS NOT NULL ORDER BY __file, __row"
        ),
        rejected=(
            f"SELECT __file, __row, __reason, {source_cols} FROM marked "
            "WHERE __reason IS NOT NULL ORDER BY __file, __row"
        ),
        drop=drop,
    )


def clean_transactions(
    spark: Any,
    raw: Any,
    params: Any,
    reject_after: datetime,
    label: str = "transactions",
    file_names: Mapping[str, str] | None = None,
) -> SparkCleaned:
    """Return the clean and quarantined rows of a typed transactions table (a Spark DataFrame),
    by the DuckDB ingest's rules; rows read = clean + quarantined + duplicates removed.
    `file_names`: Spark's file URI -> the name the DuckDB ingest gives the file (source_file,
    and the order of equal rows from several files)."""
    rules = transaction_rules_sql(params, dict(raw.dtypes), reject_after, label)
    mapping = transaction_columns(params)
    types = dict(raw.dtypes)
    cust, tx = mapping[C.CUSTOMER_ID], mapping.get(C.TRANSACTION_ID)
    cust_type = _duckdb_type(cust, types[cust], label)
    drop = rules.drop
    with_positions(raw, file_names).createOrReplaceTempView("__raw")
    spark.sql(to_spark_sql(rules.typed)).createOrReplaceTempView("typed")
    marked_rows = spark.sql(to_spark_sql(rules.marked)).cache()  # unpersisted by release()
    marked_rows.createOrReplaceTempView("marked")
    try:
        clean = spark.sql(to_spark_sql(rules.clean_sorted))
        quarantine_dates = spark.sql(to_spark_sql(rules.quarantine_dates))
        quarantine = spark.sql(to_spark_sql(rules.quarantine))
        rejected = spark.sql(to_spark_sql(rules.rejected))
        counts = spark.sql(
            "SELECT __reason, COUNT(*) AS n, COUNT_IF(__copy > 1) AS copies, "
            "COUNT_IF(__trimmed) AS trimmed FROM marked GROUP BY __reason"
        ).collect()
        reasons = {row[0]: int(row[1]) for row in counts if row[0] is not None}
        copied = sum(int(row[2]) for row in counts if row[0] is None)
        duplicates = copied if drop else 0
        valid = sum(int(row[1]) for row in counts if row[0] is None)
        stats: dict[str, Any] = {
            "timestamps_with_offset": 0,  # typed timestamps only (text goes through DuckDB)
            "customer_ids_trimmed": sum(int(row[3]) for row in counts if row[0] is None),
        }
        if tx is None:
            stats["exact_duplicates"] = copied
            stats["exact_duplicates_kept"] = 0 if params.drop_exact_duplicates else copied
        else:
            reused_ids, line_items = spark.sql(
                f"""SELECT
                    (SELECT COUNT(DISTINCT __tx) FROM marked
                     WHERE __reason = '{Reason.REUSED_TRANSACTION_ID}'),
                    (SELECT COALESCE(SUM(n), 0) FROM (
                        SELECT COUNT(*) AS n FROM marked
                        WHERE __reason IS NULL AND __tx IS NOT NULL AND coalesce(__copy, 1) = 1
                        GROUP BY __tx HAVING COUNT(*) > 1) AS lines)"""
            ).collect()[0]
            stats["reused_transaction_ids"] = int(reused_ids)
            stats["line_item_rows"] = int(line_items)
        warnings = []
        if cust_type != "VARCHAR":
            warnings.append(
                f"column {cust!r} is {cust_type}, not text: leading zeros in customer ids "
                "cannot be recovered; export ids as text"
            )
        if stats.get("reused_transaction_ids"):
            warnings.append(
                f"{label}: {stats['reused_transaction_ids']} transaction ids in column {tx!r} are "
                "used by more than one order (another customer or date); their rows are quarantined "
                f"as {Reason.REUSED_TRANSACTION_ID}. If the ids restart per store or per year, map "
                "ingest.columns.transaction_id to a line or unique id, or set it to null"
            )
        if warnings:
            stats["warnings"] = warnings
        result = SparkCleaned(
            clean=clean,
            quarantine=quarantine,
            rows_read=sum(int(row[1]) for row in counts),
            rows_clean=valid - duplicates,
            quarantined_by_reason=dict(sorted(reasons.items())),
            duplicates_removed=duplicates,
            rejected=rejected,
            stats=stats,
            clean_rows=spark.sql(to_spark_sql(rules.clean)),
            quarantine_dates=quarantine_dates,
            cached=(marked_rows,),
            views=("__raw", "typed", "marked"),
        )
        result.assert_rows_conserved()
    except BaseException:  # nothing else will free them
        marked_rows.unpersist()
        raise
    return result


def with_positions(raw: Any, file_names: Mapping[str, str] | None = None) -> Any:
    """Return the source with __file and __row (1-based row in its file, as the DuckDB ingest
    numbers them): from Spark's file metadata for file and Delta sources (the file's URI, or
    its name in `file_names`); for other tables (no files) an increasing id in partition order,
    and no file."""
    from pyspark.sql import functions as F

    if "__file" in raw.columns and "__row" in raw.columns:
        return raw  # positioned already (churn.spark.ingest reads mixed folders file group-wise)
    try:
        path = F.col("_metadata.file_path")
        if file_names:
            names = F.create_map(*(F.lit(v) for pair in file_names.items() for v in pair))
            path = F.coalesce(names[path], path)
        positioned = raw.select(
            "*", path.alias("__file"), (F.col("_metadata.row_index") + 1).alias("__row")
        )
        positioned.schema  # noqa: B018 - analysed now (Spark Connect analyses lazily)
        return positioned
    except Exception:  # no _metadata column: an in-memory or non-file table
        return raw.select(
            "*",
            F.lit(None).cast("string").alias("__file"),
            (F.monotonically_increasing_id() + 1).alias("__row"),
        )
