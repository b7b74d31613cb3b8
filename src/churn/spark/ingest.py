"""The ingest stage on Spark: typed sources (Parquet files or folders, Delta tables, tables in
the Spark catalog) read by Spark, the row rules run as Spark SQL (transactions:
churn.spark.clean; the customers and NPS side tables, when their source is a Parquet file or
folder or a Delta table: churn.spark.side), clean and quarantined rows written by Spark as part
files, and the data checks' numbers counted as Spark SQL on the clean and quarantined frames
(churn.spark.aggregates: newest dates, each period's counts, amount quantiles, NULLs, hours,
categories, quarantine reasons by date, the customers' categories by signup period), so no row
comes to the driver for a check.

The DuckDB ingest then does the rest with its own code: it streams the part files into the clean
tables in order, words each quarantined row's detail, cleans the side tables Spark left (text
exports, SQL sources, text date columns), and decides every check (quarantine share, freshness,
volume, integrity of the newest period against the trailing ones) from Spark's numbers with the
same Python as when DuckDB counted. So both engines write the same four tables and report. Text
exports (CSV) and SQL sources of the transactions keep going through the DuckDB ingest alone.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from churn import columns as C
from churn.config import is_sql_url
from churn.errors import ChurnError
from churn.ingest import integrity
from churn.ingest.clean import CleanedTable, _transaction_detail, nullable, transaction_columns
from churn.ingest.side import mapped_columns
from churn.ingest.sources import (
    RawTable,
    check_columns_in_every_file,
    detect_format,
    ident,
    list_source,
    lit,
)
from churn.ingest.stage import customer_categories, integrity_source
from churn.ingest.table_formats import table_format
from churn.logs import get_logger
from churn.spark.aggregates import SparkAggregates, measure_on_spark
from churn.spark.clean import SPARK_TO_DUCKDB, clean_transactions
from churn.spark.side import SparkSide, clean_side, text_dates

log = get_logger("ingest")

# Spark writes TIMESTAMP columns as Parquet INT96 by default, which DuckDB reads as naive time;
# as TIMESTAMP_MICROS (an instant) DuckDB reads them as the source's own type
PART_CONF = {"spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS"}


def typed_source(params) -> str | None:  # params: churn.config.IngestParams
    """Return how Spark reads the transactions source: 'parquet' (a file or folder), 'delta'
    (a Delta table folder) or 'table' (a table in the Spark catalog, ingest.format: table);
    None for text exports and SQL sources, which go through the DuckDB ingest first."""
    if params.format == "table":
        return "table"
    if params.format in ("csv", "sql") or (params.format == "auto" and is_sql_url(params.source)):
        return None
    path = Path(params.source)
    if path.is_dir() and table_format(path) is not None:
        return "delta"  # other table formats are refused by churn.spark.sources.read_source
    return "parquet" if detect_format(params.source, params.format) == "parquet" else None


def spark_cleaner(params, engine, work_dir: Path, spark: Any = None):  # noqa: ANN001, ANN201
    """Return the ingest stage's transactions cleaner on Spark (run_ingest's `cleaner`): on
    `spark` when given (the caller's session, left open), else on a session of `engine` opened
    and stopped by the cleaner."""

    def clean(reject_after: datetime) -> tuple[RawTable, CleanedTable]:
        return clean_on_spark(params, engine, reject_after, work_dir, spark)

    return clean


def _open(
    spark: Any,
    source: str,
    kind: str,
    zone: str,
    required: list[str],
    key: str = "ingest.source",
) -> tuple[Any, RawTable, dict[str, str]]:
    """Return (DataFrame, the source as RawTable without a relation, Spark URI -> file name)
    of a typed source (`kind`: typed_source's; zone: ingest.timezone; required: the mapped
    source columns, which every Parquet file must hold; key: its params key)."""
    from churn.spark.sources import read_source

    if kind == "table":
        frame = read_source(spark, source)
        raw = RawTable(source, "", {}, 0, None, (), "table")
        return frame, raw, {}
    if kind == "delta":  # read_source refuses Iceberg and Hudi folders with the fix
        frame = read_source(spark, Path(source))
        files = tuple(sorted({str(f) for f in frame.inputFiles()}))
        return frame, RawTable(source, "", {}, 0, None, files, "delta"), {}
    # the files the DuckDB ingest reads (hidden and other files skipped), named as it names them
    listing = list_source(source, "parquet", key)
    # a file lacking a mapped column that the others hold is refused from the footers, before
    # a row is read, as the DuckDB ingest refuses it (Spark's union by name would fill NULLs)
    schemas = parquet_schemas(listing.files)
    columns = {name: set(schema.names) for name, schema in schemas.items()}
    check_columns_in_every_file(columns, required, source)
    # Spark names a file by a URI (file:/a/b, file:///a/b, percent-encoded or not)
    file_names = {}
    for path in listing.files:
        full = str(path.absolute())
        for uri in (f"file:{full}", f"file://{full}", path.absolute().as_uri()):
            file_names[uri] = str(path)
            file_names[unquote(uri)] = str(path)
    frame = _read_parquet(spark, listing.files, zone, file_names, schemas)
    raw = RawTable(
        source,
        "",
        {},
        0,
        None,
        tuple(str(p) for p in listing.files),
        "parquet",
        listing.skipped(),
    )
    return frame, raw, file_names


def parquet_schemas(files: list[Path]) -> dict[str, Any]:
    """Return file name -> its Arrow schema, read from the Parquet footer only (no rows)."""
    import pyarrow.parquet as pq

    return {str(path): pq.read_schema(path) for path in files}


def timestamp_kinds(
    files: list[Path], schemas: dict[str, Any] | None = None
) -> dict[str, dict[str, list[str]]]:
    """Return column -> 'naive'/'zoned' -> the files where that timestamp column has that kind
    (from the Parquet footers only; `schemas`: parquet_schemas' of the files, when read)."""
    import pyarrow as pa

    schemas = schemas if schemas is not None else parquet_schemas(files)
    kinds: dict[str, dict[str, list[str]]] = {}
    for path in files:
        for field in schemas[str(path)]:
            if pa.types.is_timestamp(field.type):
                kind = "zoned" if field.type.tz is not None else "naive"
                kinds.setdefault(field.name, {}).setdefault(kind, []).append(str(path))
    return kinds


def _read_parquet(
    spark: Any,
    files: list[Path],
    zone: str,
    file_names: dict[str, str],
    schemas: dict[str, Any] | None = None,
) -> Any:
    """Return the Parquet files as one DataFrame (columns united by name). A timestamp column
    that is naive in some files and zoned in others is read as the DuckDB ingest reads it: the
    zoned values become wall-clock time in `zone` (ingest.timezone), the naive ones are already
    that, so neither kind shifts (Spark alone would refuse to merge the two types, or shift one)."""
    from pyspark.sql import functions as F

    from churn.spark.clean import with_positions

    absolute = [str(p.absolute()) for p in files]
    kinds = timestamp_kinds(files, schemas)
    mixed = sorted(column for column, kind in kinds.items() if len(kind) > 1)
    if not mixed:
        return spark.read.option("mergeSchema", "true").parquet(*absolute)
    # files grouped by which of the mixed columns they hold zoned; each group read on its own,
    # positioned by file and row (as the one-read path is), converted, then united by name
    groups: dict[tuple[str, ...], list[str]] = {}
    for path, full in zip(files, absolute, strict=True):
        zoned = tuple(c for c in mixed if str(path) in kinds[c].get("zoned", []))
        groups.setdefault(zoned, []).append(full)
    log.info(
        "transactions: column(s) %s naive in some files and zoned in others; zoned values read "
        "as wall-clock time in %s, as on DuckDB",
        ", ".join(mixed),
        zone,
    )
    frame = None
    for zoned, group in sorted(groups.items()):
        part = with_positions(spark.read.option("mergeSchema", "true").parquet(*group), file_names)
        for column in zoned:
            wall_clock = F.from_utc_timestamp(F.col(column), F.lit(zone)).cast("timestamp_ntz")
            part = part.withColumn(column, wall_clock)
        frame = part if frame is None else frame.unionByName(part, allowMissingColumns=True)
    return frame


def _write_parts(frame: Any, folder: Path) -> list[str]:
    """Write a DataFrame as Parquet part files (a sorted frame: one range per task, in order);
    return them in order."""
    frame.write.mode("overwrite").parquet(str(folder.absolute()))
    return [str(p) for p in sorted(folder.glob("part-*.parquet"))]


def _parts_relation(parts: list[str], columns: list[str]) -> str:
    """Return DuckDB SQL reading the part files in order (no rows: the columns, as text)."""
    if parts:
        return f"read_parquet([{', '.join(lit(p) for p in parts)}])"
    empty = ", ".join(f"CAST(NULL AS VARCHAR) AS {ident(c)}" for c in columns)
    return f"(SELECT {empty} WHERE false)"


def clean_on_spark(  # noqa: ANN201
    params,  # noqa: ANN001
    engine,  # noqa: ANN001
    reject_after: datetime,
    work_dir: Path,
    spark: Any = None,
):
    """Run the transactions' row rules on Spark and write the clean and quarantined rows as part
    files under `work_dir`; return (RawTable, CleanedTable) for run_ingest, the CleanedTable's
    SQL reading those part files (DuckDB streams them into the stage's outputs). Without
    `spark`, a session of `engine` is opened and stopped here."""
    from churn.spark.session import open_spark, spark_resource_errors

    kind = typed_source(params)
    if kind is None:
        raise ChurnError(f"{params.source}: not a typed table; the DuckDB ingest reads it")
    owned = spark is None
    if owned:
        spark = open_spark(engine)
    # a caller's session gets its own settings back afterwards
    previous = {key: spark.conf.get(key, None) for key in PART_CONF}
    try:
        with spark_resource_errors(spark, engine, "ingest"):
            for key, value in PART_CONF.items():
                spark.conf.set(key, value)
            cleaned, side = None, {}
            try:
                with _failures(params.source, "ingest.columns"):
                    required = list(transaction_columns(params).values())
                    frame, raw, file_names = _open(
                        spark, params.source, kind, params.timezone, required
                    )
                    log.info("transactions: reading %s (%s) on Spark", params.source, kind)
                    cleaned = clean_transactions(
                        spark, frame, params, reject_after, params.source, file_names
                    )
                    if cleaned.rows_read == 0:
                        raise ChurnError(
                            f"{params.source}: no data rows; export it again: an empty input would "
                            "silently drop every customer"
                        )
                    clean_parts = _write_parts(cleaned.clean, work_dir / "spark_clean")
                    rejected_parts = _write_parts(cleaned.rejected, work_dir / "spark_quarantine")
                    # the data checks' numbers, counted by Spark on its (cached) frames
                    checked = list(integrity_source(params, params.source, ()).checked)
                    measures = measure_on_spark(spark, cleaned, params.integrity, checked)
                side = clean_side_tables(spark, params, reject_after, work_dir, measures)
            finally:  # after the last action on them
                if cleaned is not None:
                    cleaned.release(spark)
                for table in side.values():
                    table.release(spark)
            types = {
                name: SPARK_TO_DUCKDB.get(kind_, kind_.upper())
                for name, kind_ in frame.dtypes
                if not name.startswith("__")
            }
    finally:
        if owned:
            spark.stop()
        else:
            for key, value in previous.items():
                if value is None:
                    spark.conf.unset(key)
                else:
                    spark.conf.set(key, value)
    log.info(
        "transactions: %d rows read from %s on Spark; %d quarantined, %d duplicates removed",
        cleaned.rows_read,
        params.source,
        sum(cleaned.quarantined_by_reason.values()),
        cleaned.duplicates_removed,
    )
    raw = RawTable(
        raw.label, "", types, cleaned.rows_read, None, raw.files, raw.fmt, dict(raw.skipped)
    )
    side_tables = {name: (table.raw, table.cleaned) for name, table in side.items()}
    return (
        raw,
        CleanedTable(
            name="transactions",
            clean_sql=_clean_sql(params, clean_parts),
            quarantine_sql=_quarantine_sql(params, reject_after, rejected_parts),
            rows_read=cleaned.rows_read,
            quarantined_by_reason=cleaned.quarantined_by_reason,
            duplicates_removed=cleaned.duplicates_removed,
            stats=cleaned.stats,
            measures=measures,
        ),
        side_tables,
    )


@contextmanager
def _failures(source: str, columns_key: str) -> Iterator[None]:
    """Turn what Spark raises while reading or cleaning `source` into a ChurnError naming it
    (columns_key: the params key of its columns)."""
    try:
        yield
    except ChurnError:
        raise
    except Exception as error:  # pyspark raises many types (Py4J, analysis, Connect)
        text = str(error).strip()
        first = text.splitlines()[0] if text else type(error).__name__
        hint = ""
        if "NANOS" in text:
            hint = (
                "; the file holds nanosecond timestamps, which Spark does not read: write "
                "them as microseconds (pyarrow: coerce_timestamps='us') or use "
                "engine.kind: duckdb"
            )
        raise ChurnError(
            f"ingest of {source} failed on Spark: {first}{hint}; check the source "
            f"and {columns_key} (run with -v for details)"
        ) from error


def clean_side_tables(
    spark: Any, params, reject_after: datetime, work_dir: Path, measures
) -> dict[str, SparkSide]:
    """Clean the side tables whose source is a typed table on Spark (churn.spark.side); count
    the customers' category check on Spark (measures: the transactions', for the periods).
    Text exports, SQL sources and text date columns are left to the DuckDB ingest."""
    done: dict[str, SparkSide] = {}
    try:
        for name in ("customers", "nps"):
            spec = getattr(params, name)
            kind = None if spec is None else typed_source(spec)
            if kind is None:
                continue
            with _failures(spec.source, f"ingest.{name}.columns"):
                key = f"ingest.{name}.source"
                required = mapped_columns(name, spec)
                frame, raw, file_names = _open(
                    spark, spec.source, kind, params.timezone, required, key
                )
                column = text_dates(name, spec, frame)
                if column is not None:
                    log.info(
                        "%s: column %r of %s holds text dates: the DuckDB ingest cleans it",
                        name,
                        column,
                        spec.source,
                    )
                    continue
                table = clean_side(
                    spark,
                    name,
                    spec,
                    frame,
                    raw,
                    file_names,
                    params.timezone,
                    reject_after,
                    params.limits.min_date,
                    work_dir,
                )
                done[name] = table
                log.info(
                    "%s: %d rows read from %s on Spark; %d quarantined",
                    name,
                    table.cleaned.rows_read,
                    spec.source,
                    table.cleaned.quarantined,
                )
        if "customers" in done:
            with _failures(params.customers.source, "ingest.customers.columns"):
                levels = _customer_levels(spark, params, done["customers"], measures)
            if levels is not None:
                table = done["customers"]
                done["customers"] = replace(table, cleaned=replace(table.cleaned, measures=levels))
    except BaseException:
        for table in done.values():
            table.release(spark)
        raise
    return done


def _customer_levels(spark: Any, params, customers: SparkSide, measures) -> dict | None:
    """Return the customers' category check's numbers counted on Spark (the values of channel
    and region by signup period), or None when the check does not run."""
    if measures is None or measures.periods is None or not params.integrity.enabled:
        return None
    view = f"churn_checks_customers_{uuid.uuid4().hex[:12]}"
    categories = customer_categories(params, {"customers": customers.cleaned}, view)
    if categories is None:
        return None
    customers.clean_rows.createOrReplaceTempView(view)
    try:
        return integrity.measure_customer_levels(
            SparkAggregates(spark), view, measures.periods, params.integrity, categories[2]
        )
    finally:
        spark.catalog.dropTempView(view)


def _clean_sql(params, parts: list[str]) -> str:
    """DuckDB SQL of the clean rows Spark wrote, in their order, with the DuckDB ingest's types."""
    typed = [
        (C.CUSTOMER_ID, "VARCHAR"),
        (C.TIMESTAMP, "TIMESTAMP"),  # an instant in Spark's UTC session: its UTC wall time
        (C.DATE, "DATE"),
        (C.AMOUNT, "DOUBLE"),
        (C.TRANSACTION_ID, "VARCHAR"),
    ]
    columns = [f"{nullable(f'CAST({ident(n)} AS {t})')} AS {ident(n)}" for n, t in typed]
    columns += [f"{nullable(ident(p))} AS {ident(p)}" for p in params.passthrough]
    names = [n for n, _ in typed] + list(params.passthrough)
    return f"SELECT {', '.join(columns)} FROM {_parts_relation(parts, names)}"


def _quarantine_sql(params, reject_after: datetime, parts: list[str]) -> str:
    """DuckDB SQL of the quarantined rows Spark wrote, in the quarantine schema, each with the
    DuckDB ingest's detail and source values as text (its own SQL, on the typed values)."""
    mapping = {
        C.CUSTOMER_ID: params.columns.customer_id,
        C.TIMESTAMP: params.columns.timestamp,
        C.AMOUNT: params.columns.amount,
        C.TRANSACTION_ID: params.columns.transaction_id,
        **{p: p for p in params.passthrough},
    }
    cust, ts, amt = (mapping[k] for k in (C.CUSTOMER_ID, C.TIMESTAMP, C.AMOUNT))
    tx = params.columns.transaction_id
    sources = list(dict.fromkeys(s for s in mapping.values() if s))
    detail = _transaction_detail(cust, ts, amt, tx, params, reject_after)
    originals = ", ".join(
        f"{f'CAST({ident(source)} AS VARCHAR)' if source else 'CAST(NULL AS VARCHAR)'} "
        f"AS {ident(out)}"
        for out, source in mapping.items()
    )
    return (
        f"SELECT 'transactions' AS {ident(C.QUARANTINE_TABLE)}, q.__file AS {C.SOURCE_FILE}, "
        f"CAST(q.__row AS BIGINT) AS {C.SOURCE_ROW}, q.__reason AS {C.REASON}, "
        f"{detail} AS {C.DETAIL}, {originals} "
        f"FROM {_parts_relation(parts, ['__file', '__row', '__reason', *sources])} q"
    )
