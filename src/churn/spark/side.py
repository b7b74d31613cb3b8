"""The side tables' row rules on Spark (customers, NPS answers) for typed sources: each row's
quarantine reason, the customers' dedupe and counters, as Spark SQL.

The SQL is churn.ingest.side's, written once in DuckDB's dialect and transpiled by sqlglot. The
clean rows and the quarantined rows as read are written as part files; the DuckDB ingest streams
the clean ones into its outputs and words the quarantined ones' details with its own SQL.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from churn import columns as C
from churn.errors import ChurnError
from churn.ingest import side
from churn.ingest.clean import CleanedTable, nullable
from churn.ingest.sources import RawTable, ident
from churn.spark.clean import (
    SPARK_TO_DUCKDB,
    _duckdb_type,
    release,
    to_spark_sql,
    with_positions,
)

CLEAN_TYPES = {
    "customers": (
        (C.CUSTOMER_ID, "VARCHAR"),
        (C.SIGNUP_DATE, "DATE"),
        (C.CHANNEL, "VARCHAR"),
        (C.REGION, "VARCHAR"),
    ),
    "nps": ((C.CUSTOMER_ID, "VARCHAR"), (C.ANSWERED_AT, "DATE"), (C.NPS_SCORE, "INTEGER")),
}


@dataclass(frozen=True)
class SparkSide:
    """One side table cleaned on Spark: the source, the CleanedTable whose SQL reads the part
    files Spark wrote, and the clean rows as a Spark DataFrame (the customers' category check
    counts on it); release() once the last Spark action on them has run."""

    raw: RawTable  # the source: label, column types, files (no DuckDB relation)
    cleaned: CleanedTable
    clean_rows: Any  # DataFrame of the clean rows (unsorted)
    cached: tuple = ()
    views: tuple[str, ...] = ()

    def release(self, spark: Any) -> None:
        """Unpersist the cached frames and drop the temporary views."""
        release(spark, self.cached, self.views)


def source_types(frame: Any) -> dict[str, str]:
    """Return column -> DuckDB type name of a Spark DataFrame's columns (positions left out)."""
    return {
        name: SPARK_TO_DUCKDB.get(kind, kind.upper())
        for name, kind in frame.dtypes
        if not name.startswith("__")
    }


def text_dates(name: str, spec, frame: Any) -> str | None:
    """Return the side table's date column when the source holds it as text (the Spark row
    rules take typed dates: such a table goes through the DuckDB ingest), else None."""
    column = spec.columns.signup_date if name == "customers" else spec.columns.answered_at
    types = dict(frame.dtypes)
    return column if column and types.get(column) == "string" else None


@dataclass(frozen=True)
class SideRulesSql:
    """One side table's row rules as SQL in DuckDB's dialect (to_spark_sql transpiles each), on
    the views named by side_rules_sql's arguments."""

    rules: side.SideRules
    typed: str  # every source row typed, with its reason; on the raw view
    repeats: str | None  # customers: the valid rows repeating an earlier id; on the typed view
    repeats_count: str | None  # customers: (repeats, conflicting repeats, an example id)
    clean: str  # the clean rows, sorted
    clean_unordered: str  # the clean rows, unsorted
    counted: str  # (clean rows, distinct customers)
    rejected: str  # the quarantined rows as read: __file, __row, __reason, source columns


def side_rules_sql(
    name: str,  # customers / nps
    spec,  # churn.config.CustomersSource / NpsSource
    spark_types: dict[str, str],  # column -> Spark type (DataFrame.dtypes), positions left out
    raw: RawTable,
    zone: str,
    reject_after: datetime,
    min_date: date,
    views: tuple[str, str, str],  # the raw, typed and repeats views
) -> SideRulesSql:
    """Return one side table's row rules' SQL for a typed source with the columns
    `spark_types`: pure, so the transpiled text is pinned by a golden file; ChurnError when a
    mapped column is missing or has a type the rules cannot read."""
    types = {name_: SPARK_TO_DUCKDB.get(kind, kind.upper()) for name_, kind in spark_types.items()}
    opened = RawTable(raw.label, "", types, 0, None, raw.files, raw.fmt, dict(raw.skipped))
    if name == "customers":
        src = side.customers_columns(opened, spec)
    else:
        src = side.nps_columns(opened, spec)
    for column in src.values():  # refuse what the shared expressions cannot type, with the fix
        _duckdb_type(column, spark_types[column], raw.label)
    if name == "customers":
        rules = side.customers_rules(src, types, spec, zone, raw.label, min_date)
    else:
        rules = side.nps_rules(src, types, spec, zone, raw.label, reject_after, min_date)
    raw_view, typed_view, repeats_view = views
    repeats = repeats_count = None
    if name == "customers":
        repeats = side.customers_repeats_sql(typed_view)
        repeats_count = side.customers_repeats_count_sql(repeats_view)
        clean_sql = side.customers_clean_sql(typed_view, repeats_view)
        unordered = side.customers_clean_sql(typed_view, repeats_view, ordered=False)
    else:
        clean_sql = side.nps_clean_sql(typed_view)
        unordered = side.nps_clean_sql(typed_view, ordered=False)
    sources = ", ".join(ident(c) for c in rules.source_columns)
    return SideRulesSql(
        rules=rules,
        typed=rules.typed(raw_view),
        repeats=repeats,
        repeats_count=repeats_count,
        clean=clean_sql,
        clean_unordered=unordered,
        counted=(
            f"SELECT count(*), count(DISTINCT {ident(C.CUSTOMER_ID)}) FROM ({unordered}) AS c"
        ),
        rejected=(
            f"SELECT __file, __row, __reason, {sources} FROM {typed_view} "
            "WHERE __reason IS NOT NULL ORDER BY __file, __row"
        ),
    )


def clean_side(
    spark: Any,
    name: str,  # customers / nps
    spec,  # churn.config.CustomersSource / NpsSource
    frame: Any,
    raw: RawTable,
    file_names: dict[str, str],
    zone: str,
    reject_after: datetime,
    min_date: date,
    work_dir: Path,
) -> SparkSide:
    """Clean one typed side table on Spark by churn.ingest.side's rules; write the clean rows
    (sorted) and the quarantined ones (with their source columns) as part files under
    `work_dir`; return the CleanedTable whose SQL reads them. Rows read = clean + quarantined +
    repeats removed."""
    from churn.spark.ingest import _parts_relation, _write_parts

    types = source_types(frame)
    suffix = uuid.uuid4().hex[:12]  # views of their own: the session may be the caller's
    raw_view, typed_view = f"churn_{name}_raw_{suffix}", f"churn_{name}_typed_{suffix}"
    repeats_view = f"churn_{name}_repeats_{suffix}"
    views = (raw_view, typed_view, repeats_view)
    spark_types = {c: kind for c, kind in frame.dtypes if not c.startswith("__")}
    queries = side_rules_sql(name, spec, spark_types, raw, zone, reject_after, min_date, views)
    rules = queries.rules
    with_positions(frame, file_names).createOrReplaceTempView(raw_view)
    typed = spark.sql(to_spark_sql(queries.typed)).cache()
    typed.createOrReplaceTempView(typed_view)
    try:
        counts = spark.sql(
            f"SELECT __reason, COUNT(*) FROM {typed_view} GROUP BY __reason"
        ).collect()
        rows_read = sum(int(row[1]) for row in counts)
        if rows_read == 0:
            raise ChurnError(
                f"{raw.label}: no data rows; export it again: an empty input would silently "
                "drop every customer"
            )
        reasons = {str(row[0]): int(row[1]) for row in counts if row[0] is not None}
        duplicates, stats = 0, {}
        if name == "customers":
            repeats = spark.sql(to_spark_sql(queries.repeats))
            repeats.createOrReplaceTempView(repeats_view)
            duplicates, conflicting, example = spark.sql(
                to_spark_sql(queries.repeats_count)
            ).collect()[0]
            stats = side.customers_stats(raw.label, rules.customer_column, conflicting, example)
        rows_clean, customers = spark.sql(to_spark_sql(queries.counted)).collect()[0]
        clean_parts = _write_parts(
            spark.sql(to_spark_sql(queries.clean)), work_dir / f"spark_{name}"
        )
        rejected = spark.sql(to_spark_sql(queries.rejected))
        rejected_parts = _write_parts(rejected, work_dir / f"spark_{name}_quarantine")
    except BaseException:
        release(spark, (typed,), views)
        raise
    names = ["__file", "__row", "__reason", *rules.source_columns]
    clean_names = [n for n, _ in CLEAN_TYPES[name]]
    read_clean = ", ".join(
        f"{nullable(f'CAST({ident(n)} AS {t})')} AS {ident(n)}" for n, t in CLEAN_TYPES[name]
    )
    cleaned = CleanedTable(
        name=name,
        clean_sql=f"SELECT {read_clean} FROM {_parts_relation(clean_parts, clean_names)}",
        quarantine_sql=rules.quarantine(f"{_parts_relation(rejected_parts, names)} AS q"),
        rows_read=rows_read,
        quarantined_by_reason=dict(sorted(reasons.items())),
        duplicates_removed=int(duplicates),
        stats={"rows_clean": int(rows_clean), "customers": int(customers), **stats},
    )
    cleaned.assert_rows_conserved()
    # the clean rows unsorted, for the customers' category check (counted on Spark)
    clean_rows = spark.sql(to_spark_sql(queries.clean_unordered))
    opened = RawTable(raw.label, "", types, rows_read, None, raw.files, raw.fmt, dict(raw.skipped))
    return SparkSide(opened, cleaned, clean_rows, (typed,), views)
