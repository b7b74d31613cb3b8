"""The feature SQL on Spark: the DuckDB query transpiled by sqlglot, run on Spark tables."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

from churn.config import ChurnParams, FeaturesParams
from churn.cutoffs import SCORE, Cutoff, TrainingPlan, assign_customer_roles, plan_training
from churn.definition import resolve_as_of
from churn.errors import ChurnError
from churn.features.bgnbd import add_bgnbd_features
from churn.features.build import (
    DUPLICATE_CUSTOMERS_SQL,
    Snapshots,
    check_contract,
    check_unique_customers,
    normalize_snapshot,
    uncovered_features,
)
from churn.features.sql import day_number, snapshot_sql, spark_sql
from churn.logs import get_logger

log = get_logger("features")

# contract type (churn.features.build.CONTRACT) -> the Spark types that hold it
SPARK_TYPES = {
    "string": {"string"},
    "date32": {"date"},
    "float64": {"double", "float"},
    "int": {"tinyint", "smallint", "int", "bigint"},
}

SourceLike = Path | Any  # a clean Parquet table written by ingest, or a Spark DataFrame


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
    frame = to_pandas(snapshot_frame(spark, cutoffs, churn, params, labelled))
    if params.bgnbd:  # fitted per cutoff on the collected rows, by the DuckDB path's own code
        frame = add_bgnbd_features(frame, churn.horizon_days)
    return normalize_snapshot(frame, params, labelled=labelled)


def date_range(spark: Any) -> tuple[date, date, int]:
    """Return the first and last transaction date and the row count (one Spark job)."""
    first, last, rows = spark.sql(
        "SELECT MIN(date), MAX(date), COUNT(*) FROM transactions"
    ).collect()[0]
    if rows == 0 or first is None:
        raise ChurnError("transactions: no rows; the features stage needs clean transactions")
    return first, last, rows


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
    open_inputs(spark, transactions, customers, nps)
    first_date, last_date, rows = date_range(spark)
    as_of = resolve_as_of(churn, first_date, last_date)
    log.info(
        "transactions: %d rows from %s to %s; as_of %s (Spark)", rows, first_date, last_date, as_of
    )
    cutoffs: list[Cutoff] = []
    plan: TrainingPlan | None = None
    train = normalize_snapshot(pd.DataFrame(), params, labelled=True)
    if with_train:
        plan = plan_training(first_date, as_of, churn, params)
        cutoffs = plan.cutoffs
        train = compute_snapshots(spark, cutoffs, churn, params, labelled=True)
        train = assign_customer_roles(train, plan)
        log.info("training snapshots: %d rows over %d cutoffs (Spark)", len(train), len(cutoffs))
    score = compute_snapshots(spark, [Cutoff(as_of, SCORE, None)], churn, params, labelled=False)
    log.info("as-of snapshot %s: %d eligible customers (Spark)", as_of, len(score))
    dropped = uncovered_features(params, plan) if plan else ()
    if dropped:
        train = train.drop(columns=list(dropped))
        score = score.drop(columns=list(dropped))
    return Snapshots(train, score, cutoffs, as_of, first_date, plan, dropped)
