"""The feature SQL on Spark: the DuckDB query transpiled by sqlglot, run on Spark tables."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from churn.config import ChurnParams, FeaturesParams
from churn.cutoffs import SCORE, Cutoff, assign_customer_roles, plan_training
from churn.definition import resolve_as_of
from churn.errors import ChurnError
from churn.features.build import (
    DUPLICATE_CUSTOMERS_SQL,
    STREAM_ROWS,
    Snapshots,
    _flush,
    _integer_columns_with_nulls,
    _SnapshotStats,
    assemble_snapshots,
    check_contract,
    check_unique_customers,
    features_report,
    log_training_snapshots,
    normalize_snapshot,
    uncovered_features,
)
from churn.features.definitions import feature_list
from churn.features.sql import day_number, snapshot_sql, spark_sql
from churn.files import atomic_path, open_parquet_file
from churn.logs import get_logger
from churn.spark.bgnbd import add_bgnbd_columns
from churn.spark.sample import SampleParams, draw_training_sample

log = get_logger("features")

# contract type (churn.features.build.CONTRACT) -> the Spark types that hold it
SPARK_TYPES = {
    "string": {"string"},
    "date32": {"date"},
    "float64": {"double", "float"},
    "int": {"tinyint", "smallint", "int", "bigint"},
}

SourceLike = Path | Any  # a clean Parquet table written by ingest, or a Spark DataFrame
SPARK_NOTE = " (Spark)"  # ends the features log lines written on Spark


def register_source(spark: Any, name: str, source: SourceLike) -> tuple[Any, str]:
    """Return (DataFrame, label) of a clean input table registered as temp view `name`."""
    if hasattr(source, "createOrReplaceTempView"):
        frame, label = source, f"{name} table"
    else:
        path = Path(source)
        if not path.exists():
            raise ChurnError(f"{path}: not found; run `churn ingest` first (dvc repro ingest)")
        frame, label = spark.read.parquet(str(path.absolute())), str(path)
    frame.createOrReplaceTempView(name)
    return frame, label


def open_inputs(
    spark: Any, transactions: SourceLike, customers: SourceLike, nps: SourceLike
) -> None:
    """Register the three clean input tables as Spark temp views, with the contract checked."""
    for name, source in (("transactions", transactions), ("customers", customers), ("nps", nps)):
        frame, label = register_source(spark, name, source)
        check_contract(label, name, dict(frame.dtypes), SPARK_TYPES, "Spark")
    found = spark.sql(DUPLICATE_CUSTOMERS_SQL).collect()
    check_unique_customers(tuple(found[0]) if found else None)


def snapshot_frame(
    spark: Any,
    cutoffs: list[Cutoff],
    churn: ChurnParams,
    params: FeaturesParams,
    labelled: bool,
) -> Any:
    """Return the Spark DataFrame of one row per eligible (customer, cutoff): the DuckDB feature
    query, transpiled; same branches as churn.features.build.compute_snapshots."""
    newest = max(item.cutoff for item in cutoffs)
    if len(cutoffs) == 1 and not labelled:
        single = (cutoffs[0].cutoff, cutoffs[0].role)
        sql = snapshot_sql(churn, params, newest, with_labels=False, single_cutoff=single)
    else:
        rows = [
            (item.cutoff, day_number(item.cutoff), item.role)
            for item in sorted(cutoffs, key=lambda item: item.cutoff)
        ]
        spark.createDataFrame(
            rows, schema="cutoff DATE, cutoff_day INT, role STRING"
        ).createOrReplaceTempView("cutoffs")
        sql = snapshot_sql(churn, params, newest, with_labels=labelled)
    return spark.sql(spark_sql(sql))


def to_pandas(frame: Any) -> pd.DataFrame:
    """Return a Spark DataFrame as pandas through Arrow, with the dtypes DuckDB's path gives
    (nullable integers as float64, dates as date objects)."""
    if hasattr(frame, "toArrow"):  # Spark 4 (classic and Connect)
        table = frame.toArrow()
    else:  # Spark 3.5: its private Arrow collect, as toPandas uses
        import pyarrow as pa

        table = pa.Table.from_batches(frame._collect_as_arrow())
        if table.num_columns == 0:
            return frame.toPandas()
    return table.to_pandas(split_blocks=True, self_destruct=True)


def compute_snapshots(
    spark: Any, cutoffs: list[Cutoff], churn: ChurnParams, params: FeaturesParams, labelled: bool
) -> pd.DataFrame:
    """Return the snapshots of the given cutoffs computed on Spark, as the DuckDB path's frame."""
    frame = feature_frame(spark, cutoffs, churn, params, labelled)
    try:
        return normalize_snapshot(to_pandas(frame), params, labelled=labelled)
    finally:
        release(spark)


def feature_frame(
    spark: Any, cutoffs: list[Cutoff], churn: ChurnParams, params: FeaturesParams, labelled: bool
) -> Any:
    """Return the Spark DataFrame of the snapshots of the given cutoffs with every feature,
    BG/NBD included (fitted per cutoff on summaries, applied on the executors), sorted by
    cutoff and customer like DuckDB's; nothing but the BG/NBD fit summaries is collected."""
    frame = snapshot_frame(spark, cutoffs, churn, params, labelled)
    if params.bgnbd:
        frame = add_bgnbd_columns(frame.persist(), churn.horizon_days)
    return frame


def release(spark: Any) -> None:
    """Drop what the feature frames kept in the executors' memory (persisted intermediates)."""
    try:
        spark.catalog.clearCache()
    except Exception:  # noqa: BLE001 - a remote session may not allow it; the cache expires
        log.debug("could not clear Spark's cache")


def date_range(spark: Any) -> tuple[date, date, int]:
    """Return the first and last transaction date and the row count (one Spark job)."""
    first, last, rows = spark.sql(
        "SELECT MIN(date), MAX(date), COUNT(*) FROM transactions"
    ).collect()[0]
    if rows == 0 or first is None:
        raise ChurnError("transactions: no rows; the features stage needs clean transactions")
    return first, last, rows


def _open_span(
    spark: Any, transactions: SourceLike, customers: SourceLike, nps: SourceLike, churn: ChurnParams
) -> tuple[date, date]:
    """Register the inputs and return (first transaction date, as-of date), logged."""
    open_inputs(spark, transactions, customers, nps)
    first_date, last_date, rows = date_range(spark)
    as_of = resolve_as_of(churn, first_date, last_date)
    log.info(
        "transactions: %d rows from %s to %s; as_of %s (Spark)", rows, first_date, last_date, as_of
    )
    return first_date, as_of


def build_snapshots(
    spark: Any,
    transactions: SourceLike,
    customers: SourceLike,
    nps: SourceLike,
    churn: ChurnParams,
    params: FeaturesParams,
    with_train: bool = True,
) -> Snapshots:
    """Return labelled training snapshots at every planned cutoff and the as-of snapshot, computed
    on Spark with the same plan, roles and dropped features as the DuckDB path."""
    first_date, as_of = _open_span(spark, transactions, customers, nps, churn)
    return assemble_snapshots(
        compute_snapshots, spark, first_date, as_of, churn, params, with_train, SPARK_NOTE
    )


def write_snapshots(
    spark: Any,
    transactions: SourceLike,
    customers: SourceLike,
    nps: SourceLike,
    churn: ChurnParams,
    params: FeaturesParams,
    train_path: Path,
    score_path: Path,
    work_dir: Path,
    sample: SampleParams | None = None,
) -> dict[str, Any]:
    """Write the training and as-of snapshots computed on Spark to the Parquet files the later
    stages read and return the features report, as the DuckDB path's write_snapshots does.

    Spark writes each sorted snapshot as part files under `work_dir` (a folder the driver can
    read: local mode, or a shared/object-store path); the driver then streams them, one batch at
    a time, into the single file DVC tracks: no snapshot is collected whole to the driver. With
    `sample` (the readers' caps), train.parquet holds only the rows its readers read, drawn on
    Spark (churn.spark.sample), and the report counts the whole table (Spark aggregates) and
    says how many rows were written.
    """
    first_date, as_of = _open_span(spark, transactions, customers, nps, churn)
    plan = plan_training(first_date, as_of, churn, params)
    dropped = uncovered_features(params, plan)
    names = [f.name for f in feature_list(params) if f.name not in dropped]
    train = _SnapshotStats(names, plan.cutoffs)
    frame = feature_frame(spark, plan.cutoffs, churn, params, labelled=True)
    written, metadata = train, {}
    if sample is not None:
        chosen = draw_training_sample(
            spark, frame.persist(), plan, params, dropped, train, sample, churn.horizon_days
        )
        frame, metadata = chosen.rows, chosen.metadata
        written = _SnapshotStats(names, plan.cutoffs)
    parts = _write_parts(frame, work_dir / "train")
    release(spark)
    _merge_parts(
        parts,
        params,
        True,
        lambda f: assign_customer_roles(f, plan),
        dropped,
        train_path,
        written,
        metadata,
    )
    log_training_snapshots(train.rows, plan, SPARK_NOTE)
    score = _SnapshotStats(names, [])
    frame = feature_frame(spark, [Cutoff(as_of, SCORE, None)], churn, params, labelled=False)
    parts = _write_parts(frame, work_dir / "score")
    release(spark)
    _merge_parts(parts, params, False, lambda f: f, dropped, score_path, score)
    log.info("as-of snapshot %s: %d eligible customers%s", as_of, score.rows, SPARK_NOTE)
    report = features_report(as_of, first_date, churn, plan, dropped, train, score)
    if sample is not None:
        report["train_rows_written"] = {
            "rows": written.rows,
            "sample": metadata != {},
            "caps": sample.caps(),
            "drift.reference_role": sample.reference_role,
        }
    return report


def _write_parts(frame: Any, folder: Path) -> list[Path]:
    """Write a sorted Spark DataFrame as Parquet part files; return them in the frame's order."""
    frame.write.mode("overwrite").parquet(str(folder.absolute()))
    # a globally sorted frame is written one range per task: part-00000 holds the first rows
    return sorted(folder.glob("part-*.parquet"))


def _merge_parts(
    parts: list[Path],
    params: FeaturesParams,
    labelled: bool,
    transform: Callable[[pd.DataFrame], pd.DataFrame],
    dropped: tuple[str, ...],
    path: Path,
    stats: _SnapshotStats,
    metadata: dict[bytes, bytes] | None = None,
) -> None:
    """Stream the part files into one Parquet file with the DuckDB path's dtypes, row groups and
    per-batch roles (churn.features.build's streamed writer, reading Spark's files), with
    `metadata` added to the file's key-value metadata."""
    sources = [open_parquet_file(part) for part in parts]
    # an integer column with a null anywhere is float64 in every batch, as in the whole table
    widen = sorted({name for source in sources for name in _integer_columns_with_nulls(source)})
    pending: list[pa.Table] = []
    with atomic_path(path) as tmp:
        writer: pq.ParquetWriter | None = None
        for source in sources:
            for batch in source.iter_batches(batch_size=STREAM_ROWS):
                table = pa.Table.from_batches([batch])
                for name in widen:
                    index = table.schema.get_field_index(name)
                    table = table.set_column(index, name, table[name].cast(pa.float64()))
                frame = normalize_snapshot(
                    table.to_pandas(split_blocks=True, self_destruct=True), params, labelled
                )
                frame = transform(frame).drop(columns=list(dropped))
                stats.add(frame)
                out = _with_metadata(pa.Table.from_pandas(frame, preserve_index=False), metadata)
                writer = writer or pq.ParquetWriter(tmp, out.schema, compression="zstd")
                pending.append(out)
                pending = _flush(writer, pending, final=False)
        if writer is None:  # no rows: the empty frame of the documented columns
            empty = normalize_snapshot(pd.DataFrame(), params, labelled).drop(columns=list(dropped))
            table = _with_metadata(pa.Table.from_pandas(empty, preserve_index=False), metadata)
            pq.write_table(table, tmp, compression="zstd")
        else:
            _flush(writer, pending, final=True)
            writer.close()


def _with_metadata(table: pa.Table, metadata: dict[bytes, bytes] | None) -> pa.Table:
    """Return `table` with `metadata` added to its schema's key-value metadata."""
    if not metadata:
        return table
    return table.replace_schema_metadata({**(table.schema.metadata or {}), **metadata})
