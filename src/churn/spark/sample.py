"""The training sample drawn on Spark: only the rows the readers of train.parquet read are written.

Train, evaluate and promote read the training snapshots through churn.training_rows.read_snapshots (the
samples of churn.training_rows.choose_snapshot_samples), the uplift stage through
churn.uplift.from_ledger.read_labelled_snapshots (uplift.sample_customers among the customers
with a row on or before a date the ledger gives), and drift the newest cutoff of
drift.reference_role (churn.drift.reference_cutoff) plus every numeric feature's range. Each
sample is the N smallest (stable id hash, id) among its candidates, so reading it again from a
table that holds the chosen customers' rows plus any other rows of the whole table chooses the
same customers, as long as the candidates there still outnumber N: the N + 1 smallest
candidates of each sample are written whole. The hash is churn.cutoffs.customer_share itself,
run inside mapInPandas over the distinct ids; only the N + 1 smallest ids of each sample, the
distinct (cutoff, role) pairs and counts come to the driver.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from churn import columns as c
from churn.config import FeaturesParams
from churn.cutoffs import (
    BY_CUTOFF,
    CALIBRATION,
    FIT,
    GAP,
    TEST,
    TRAINING_SAMPLE_KEY,
    UPLIFT_CAP,
    TrainingPlan,
    assign_customer_roles,
    customer_share,
    labelled_where,
)
from churn.drift import RANGES_KEY, reference_cutoff
from churn.features.build import PARTIAL_COLUMNS, _SnapshotStats, normalize_snapshot
from churn.logs import get_logger
from churn.training_rows import (
    HELD_OUT_HASH,
    HELD_OUT_WHERE,
    TRAIN_CAPS,
    TRAIN_HASH,
    choose_snapshot_samples,
    sampled_ids,
)

log = get_logger("features")

SPARK_NOTE = " (Spark)"  # as churn.spark.features.SPARK_NOTE
SHARE_COLUMNS = {purpose: f"_share_{purpose}" for purpose in (TRAIN_HASH, HELD_OUT_HASH)}
KEYS_VIEW = "churn_training_keys"
NUMERIC_TYPES = ("tinyint", "smallint", "int", "bigint", "float", "double")


@dataclass(frozen=True)
class SampleParams:
    """The readers' params the training sample is drawn for (declared by the features stage)."""

    sample_customers: int | None  # train.sample_customers
    sample_held_out_customers: int | None  # train.sample_held_out_customers
    uplift_sample_customers: int | None  # uplift.sample_customers
    reference_role: str  # drift.reference_role

    def caps(self) -> dict[str, int | None]:
        """Return the caps by params key (what train.parquet's metadata records)."""
        values = (self.sample_customers, self.sample_held_out_customers)
        return {
            **dict(zip(TRAIN_CAPS, values, strict=True)),
            UPLIFT_CAP: self.uplift_sample_customers,
        }


def with_final_roles(keys: Any, plan: TrainingPlan) -> Any:
    """Return the (customer_id, cutoff, role) frame with the plan's per-customer roles, as the
    driver applies them when it writes the file (assign_customer_roles, on the executors)."""
    if plan.calibration == BY_CUTOFF:
        return keys

    def roles(batches: Any) -> Any:
        for batch in batches:
            yield assign_customer_roles(batch, plan)

    return keys.mapInPandas(roles, keys.schema)


def with_shares(ids: Any) -> Any:
    """Return the distinct ids with each sample's stable hash (customer_share, in pandas on the
    executors: the very function the pandas readers use)."""

    def shares(batches: Any) -> Any:
        for batch in batches:
            yield batch.assign(
                **{
                    name: customer_share(batch[c.CUSTOMER_ID], p)
                    for p, name in SHARE_COLUMNS.items()
                }
            )

    schema = f"{c.CUSTOMER_ID} string, " + ", ".join(f"{n} double" for n in SHARE_COLUMNS.values())
    return ids.mapInPandas(shares, schema)


@dataclass
class SparkSnapshotIds:
    """churn.training_rows.SnapshotIds of the keys on Spark; remembers every sample's N + 1 smallest
    candidates (written whole, so a reader of the file finds the sample binding as here)."""

    spark: Any
    keys: Any  # customer_id, cutoff, role (final) joined with the shares
    written: set[str] = field(default_factory=set)
    _pairs: pd.DataFrame | None = None

    def pairs(self) -> pd.DataFrame:
        if self._pairs is None:
            found = self.spark.sql(f"SELECT DISTINCT {c.CUTOFF}, {c.ROLE} FROM {KEYS_VIEW}")
            self._pairs = found.toPandas()
        return self._pairs

    def count(self, where: str) -> int:
        query = f"SELECT COUNT(DISTINCT {c.CUSTOMER_ID}) FROM {KEYS_VIEW} WHERE {where}"
        return int(self.spark.sql(query).collect()[0][0])

    def sample(
        self, where: str, max_customers: int, purpose: str, held: pd.Series | None = None
    ) -> pd.Series | None:
        from pyspark.sql import functions as F

        share = SHARE_COLUMNS[purpose]
        rows = self.spark.sql(f"SELECT * FROM {KEYS_VIEW} WHERE {where}")
        if held is not None:
            # a calibration row's customer is a candidate of the held-out sample, so "in held"
            # is "(share, id) at most the held sample's largest"
            bound = _largest(held, HELD_OUT_HASH)
            held_share = F.col(SHARE_COLUMNS[HELD_OUT_HASH])
            within = (held_share < F.lit(bound[0])) | (
                (held_share == F.lit(bound[0])) & (F.col(c.CUSTOMER_ID) <= F.lit(bound[1]))
            )
            rows = rows.where((F.col(c.ROLE) != F.lit(CALIBRATION)) | within)
        smallest = (
            rows.select(c.CUSTOMER_ID, share)
            .distinct()
            .orderBy(share, c.CUSTOMER_ID)
            .limit(max_customers + 1)
            .toPandas()
        )
        ids = smallest[c.CUSTOMER_ID].astype("string")
        self.written.update(ids.tolist())
        # the pandas rule on the N + 1 smallest: the same choice as on every candidate
        return sampled_ids(ids, max_customers, purpose)


def snapshot_ids(spark: Any, keys: Any) -> SparkSnapshotIds:
    """Return the SparkSnapshotIds of the (customer_id, cutoff, role) frame `keys` (final
    roles): the keys joined with each sample's hash, persisted and registered as KEYS_VIEW."""
    keys = keys.join(with_shares(keys.select(c.CUSTOMER_ID).distinct()), c.CUSTOMER_ID).persist()
    keys.createOrReplaceTempView(KEYS_VIEW)
    return SparkSnapshotIds(spark, keys)


def _largest(chosen: pd.Series, purpose: str) -> tuple[float, str]:
    """Return the largest (share, id) of a chosen sample: its members are the candidates at or
    below it."""
    order = pd.DataFrame({"share": customer_share(chosen, purpose), "id": chosen.astype(str)})
    last = order.sort_values(["share", "id"]).iloc[-1]
    return float(last["share"]), str(last["id"])


@dataclass(frozen=True)
class TrainingSample:
    """What the Spark features stage writes to train.parquet and records about the whole table."""

    rows: Any  # the Spark DataFrame of the rows to write, sorted like the whole table
    sampled: bool  # False: every row (a cap is None, or no sample binds)
    metadata: dict[bytes, bytes]  # the Parquet key-value metadata recorded in train.parquet
    full: _SnapshotStats  # the whole table's report counts


def draw_training_sample(
    spark: Any,
    frame: Any,
    plan: TrainingPlan,
    params: FeaturesParams,
    dropped: tuple[str, ...],
    stats: _SnapshotStats,
    sample: SampleParams,
    horizon_days: int,
) -> TrainingSample:
    """Return the rows of the labelled snapshot `frame` (raw roles, as the feature SQL gives
    them) that train, evaluate, promote, uplift and drift read, with the whole table's report
    counts (`stats`, filled from per-task partial counts) and, when rows are left out, the
    metadata those readers need of the whole table (counts, feature ranges, the caps)."""
    _count_whole_table(frame, plan, params, dropped, stats)
    caps = sample.caps()
    opted_out = [UPLIFT_CAP] if sample.uplift_sample_customers is None else []
    if sample.sample_customers is None and sample.sample_held_out_customers is None:
        opted_out += list(TRAIN_CAPS)
    if opted_out:
        log.info(
            "training snapshots: writing all %d rows to the driver (%s null: every customer's "
            "rows are read)%s",
            stats.rows,
            " and ".join(opted_out),
            SPARK_NOTE,
        )
        return TrainingSample(frame, False, {}, stats)
    ids = snapshot_ids(spark, with_final_roles(frame.select(c.CUSTOMER_ID, c.CUTOFF, c.ROLE), plan))
    keys = ids.keys
    fit_rows = f"{c.ROLE} IN ('{FIT}', '{GAP}')"  # read_snapshots reads all of them
    rows_where: list[str] = []
    samples = choose_snapshot_samples(
        ids, sample.sample_customers, horizon_days, sample.sample_held_out_customers
    )
    if samples.fit is None:
        rows_where.append(fit_rows)
    if samples.held is None:
        rows_where.append(HELD_OUT_WHERE)
    else:  # the test cutoff stays in the file (the production refit's rows are found by it)
        ids.sample(f"{c.ROLE} = '{TEST}'", 1, HELD_OUT_HASH)
    pairs = ids.pairs()
    rows_where += _uplift_rows(ids, pairs, sample.uplift_sample_customers)
    newest, of_role = reference_cutoff(
        pd.to_datetime(pairs[c.CUTOFF]), pairs[c.ROLE], sample.reference_role
    )
    reference = f"{c.CUTOFF} = DATE '{newest.date()}'"
    rows_where.append(
        f"({reference} AND {c.ROLE} = '{sample.reference_role}')" if of_role else reference
    )
    wanted = _wanted_keys(spark, keys, ids.written, rows_where)
    written = int(wanted.count())
    if written == stats.rows:
        keys.unpersist()
        log.info(
            "training snapshots: every customer's rows are read: writing all %d%s",
            written,
            SPARK_NOTE,
        )
        return TrainingSample(frame, False, {}, stats)
    rows = frame.join(wanted, [c.CUSTOMER_ID, c.CUTOFF], "left_semi").orderBy(
        c.CUTOFF, c.CUSTOMER_ID
    )
    record = {
        "caps": caps,
        "drift.reference_role": sample.reference_role,
        "customers_fit": samples.customers_fit,
        "rows": stats.rows,
        "rows_written": written,
    }
    metadata = {
        TRAINING_SAMPLE_KEY: json.dumps(record, sort_keys=True).encode(),
        RANGES_KEY: json.dumps(_feature_ranges(frame, dropped), sort_keys=True).encode(),
    }
    log.info(
        "training snapshots: writing the %d of %d rows the training sample reads (%s; the "
        "customers' hash samples drawn on Spark)%s",
        written,
        stats.rows,
        ", ".join(f"{key} {value}" for key, value in caps.items()),
        SPARK_NOTE,
    )
    return TrainingSample(rows, True, metadata, stats)


def _uplift_rows(ids: SparkSnapshotIds, pairs: pd.DataFrame, cap: int) -> list[str]:
    """Sample uplift.sample_customers among the customers with a row on or before each cutoff
    (the uplift stage's reader picks one such date from the ledger); return the conditions of
    the rows read whole (every row on or before a cutoff whose candidates are no more than the
    cap). Newest first: once a cutoff's candidates fit, every older cutoff's do too."""
    for cutoff in sorted(pd.to_datetime(pairs[c.CUTOFF]).dt.date.unique(), reverse=True):
        where = labelled_where(cutoff)
        if ids.sample(where, cap, TRAIN_HASH) is None:
            return [where]
    return []


def _wanted_keys(spark: Any, keys: Any, customers: set[str], rows_where: list[str]) -> Any:
    """Return the (customer_id, cutoff) of the rows to write: every row of `customers`, and the
    rows matching any of `rows_where` (over the final roles)."""
    from pyspark.sql import functions as F

    chosen = spark.createDataFrame(
        pd.DataFrame({c.CUSTOMER_ID: sorted(customers)}, dtype=object),
        schema=f"{c.CUSTOMER_ID} string",
    ).withColumn("_chosen", F.lit(True))
    condition = " OR ".join(["_chosen"] + [f"({where})" for where in rows_where])
    marked = keys.join(F.broadcast(chosen), c.CUSTOMER_ID, "left").fillna(False, ["_chosen"])
    return marked.where(condition).select(c.CUSTOMER_ID, c.CUTOFF)


def _count_whole_table(
    frame: Any, plan: TrainingPlan, params: FeaturesParams, dropped: tuple[str, ...], stats: Any
) -> None:
    """Fill `stats` (the features report's counts) with the whole table's counts: each task
    counts its rows with the writer's own code (_SnapshotStats.add on the normalised rows with
    the plan's roles) and only the summed partial counts come to the driver."""
    from pyspark.sql import functions as F

    names, cutoffs = stats.names, stats.cutoffs

    def count(batches: Any) -> Any:
        for batch in batches:
            rows = assign_customer_roles(normalize_snapshot(batch, params, True), plan)
            part = _SnapshotStats(names, cutoffs)
            part.add(rows.drop(columns=list(dropped)))
            yield part.partial_counts()

    schema = "kind string, cutoff date, role string, name string, n bigint"
    keys = list(PARTIAL_COLUMNS[:4])
    summed = frame.mapInPandas(count, schema).groupBy(*keys).agg(F.sum("n").alias("n"))
    partials = summed.toPandas()
    partials[c.CUTOFF] = [
        None if pd.isna(d) else pd.Timestamp(d).date() for d in partials[c.CUTOFF]
    ]
    stats.merge_counts(partials)


def _feature_ranges(frame: Any, dropped: tuple[str, ...]) -> dict[str, list[float]]:
    """Return [min, max] of every numeric feature over the whole table (NaN and NULL left out,
    as churn.drift.training_ranges leaves them out), as one Spark aggregate."""
    from pyspark.sql import functions as F

    keys = {c.CUSTOMER_ID, c.CUTOFF, c.ROLE, c.CHURNED, *dropped}
    names = [name for name, kind in frame.dtypes if name not in keys and kind in NUMERIC_TYPES]
    if not names:
        return {}
    aggregates = []
    for name in names:
        value = F.col(name).cast("double")
        finite = F.when(F.isnan(value), F.lit(None)).otherwise(value)
        aggregates += [F.min(finite).alias(f"min_{name}"), F.max(finite).alias(f"max_{name}")]
    found = frame.agg(*aggregates).collect()[0]
    return {
        name: [float(found[f"min_{name}"]), float(found[f"max_{name}"])]
        for name in names
        if found[f"min_{name}"] is not None
    }
