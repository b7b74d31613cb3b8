"""BG/NBD features on Spark: each cutoff's fit on small (x, t_x, T) summaries brought to the
driver, the expectations computed on the executors by the DuckDB path's own functions.

The features of a row depend only on its cutoff and three core features (purchase_days,
tenure_days, recency_days), so the driver receives, per cutoff, the distinct summaries of the
customers the fit uses (all of them, or churn.features.bgnbd_columns' hash sample when a cutoff has more
than MAX_FIT_CUSTOMERS) with their counts; the fitted parameters travel back inside the function
that mapInPandas runs over the distinct summaries of every row, and the result is joined back.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from churn import columns as c
from churn.bgnbd import BGNBDParams, summarize_histories
from churn.errors import ChurnError
from churn.features import bgnbd_columns
from churn.features.sql import SUMMARY_EXPRESSIONS
from churn.logs import get_logger

log = get_logger("features")

# the core features summarize_histories reads: a row's BG/NBD features depend on these only
SUMMARY = tuple(SUMMARY_EXPRESSIONS)
OUTPUTS = (bgnbd_columns.EXPECTED, bgnbd_columns.P_ALIVE, bgnbd_columns.P_NO_PURCHASE)
_KEYS = (c.CUTOFF, *SUMMARY)
_BAD = "__bgnbd_not_finite"
_HASH = "__fit_hash"
_COUNT = "__customers"


def add_bgnbd_columns(frame: Any, horizon_days: int) -> Any:
    """Return the snapshot (a Spark DataFrame, one row per customer and cutoff) with the BG/NBD
    expected purchases in the horizon, P(alive) and P(no purchase in the horizon) appended, as
    churn.features.bgnbd_columns.add_bgnbd_features gives them; only per-cutoff summaries of the fitted
    customers come to the driver."""
    from pyspark.sql import functions as F

    fits = fit_cutoffs(frame)
    # doubles: exact for day counts, and pandas gets no integer column with nulls to convert
    summaries = frame.select(
        c.CUTOFF, *(F.col(name).cast("double").alias(name) for name in SUMMARY)
    ).distinct()
    schema = ", ".join(
        [f"{name} {kind}" for name, kind in summaries.dtypes]
        + [f"{name} DOUBLE" for name in OUTPUTS]
        + [f"{_BAD} BOOLEAN"]
    )
    applied = summaries.mapInPandas(_apply(fits, horizon_days), schema).persist()
    bad = sorted(row[0] for row in applied.where(F.col(_BAD)).select(c.CUTOFF).distinct().collect())
    for cutoff in bad:
        log.warning(
            "BG/NBD features null at one cutoff: %s: expected purchases are not finite for some "
            "customers; the fit is degenerate",
            cutoff,
        )
    renamed = applied.select(
        *(F.col(key).alias(f"__b_{key}") for key in _KEYS),
        *(
            # NaN marks a cutoff without a fit: SQL NULL, as DuckDB's path writes it
            F.when(F.isnan(F.col(name)) | F.col(c.CUTOFF).isin(bad), F.lit(None))
            .otherwise(F.col(name))
            .cast("double")
            .alias(name)
            for name in OUTPUTS
        ),
    )
    condition = [F.col(key).eqNullSafe(F.col(f"__b_{key}")) for key in _KEYS]
    joined = frame.join(renamed, on=condition, how="left")
    return joined.select(*frame.columns, *OUTPUTS).orderBy(c.CUTOFF, c.CUSTOMER_ID)


def fit_cutoffs(frame: Any) -> dict[date, BGNBDParams | None]:
    """Return each cutoff's BG/NBD parameters (None: features null there), fitted on the driver
    from the distinct (purchase_days, tenure_days, recency_days) of the fit's customers."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from churn.spark.features import to_pandas

    limit = bgnbd_columns.MAX_FIT_CUSTOMERS
    sizes = {row[0]: int(row[1]) for row in frame.groupBy(c.CUTOFF).count().collect()}
    small = [cutoff for cutoff, n in sizes.items() if n <= limit]
    large = [cutoff for cutoff, n in sizes.items() if n > limit]
    parts = []
    if small:
        parts.append(frame.where(F.col(c.CUTOFF).isin(small)).select(*_KEYS))
    if large:  # the same hash sample as fit_sample: the `limit` smallest hashes of each cutoff
        rows = frame.where(F.col(c.CUTOFF).isin(large)).select(c.CUSTOMER_ID, *_KEYS)
        hashes = rows.select(c.CUSTOMER_ID).distinct()
        hashes = hashes.mapInPandas(_hash_ids, f"{c.CUSTOMER_ID} STRING, {_HASH} BIGINT")
        hashed = rows.join(hashes, on=c.CUSTOMER_ID)
        rank = F.row_number().over(Window.partitionBy(c.CUTOFF).orderBy(_HASH))
        ranked = hashed.withColumn("__rank", rank)
        threshold = ranked.where(F.col("__rank") <= limit).groupBy(c.CUTOFF)
        threshold = threshold.agg(F.max(_HASH).alias("__threshold"))
        chosen = ranked.join(threshold, on=c.CUTOFF).where(F.col(_HASH) <= F.col("__threshold"))
        parts.append(chosen.select(*_KEYS))
    if not parts:
        return {}
    union = parts[0] if len(parts) == 1 else parts[0].unionByName(parts[1])
    summaries = to_pandas(union.groupBy(*_KEYS).agg(F.count(F.lit(1)).alias(_COUNT)))
    fits: dict[date, BGNBDParams | None] = {}
    for cutoff, rows in summaries.groupby(c.CUTOFF, sort=True):
        customers = rows.loc[rows.index.repeat(rows[_COUNT].astype("int64"))]
        x, t_x, T = summarize_histories(customers)
        fits[cutoff] = bgnbd_columns.fit_cutoff(x, t_x, T, np.ones(len(x), dtype=bool))
    return fits


def _hash_ids(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    for rows in batches:
        # unsigned 64-bit hash -> signed with the same order (flip the top bit)
        signed = (bgnbd_columns.fit_hash(rows[c.CUSTOMER_ID]) ^ np.uint64(1 << 63)).view(np.int64)
        yield pd.DataFrame({c.CUSTOMER_ID: rows[c.CUSTOMER_ID], _HASH: signed})


def _apply(fits: dict[date, BGNBDParams | None], horizon_days: int) -> Any:
    """Return the mapInPandas function giving the three features of (cutoff, summary) rows."""

    def apply(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for rows in batches:
            values = {name: np.full(len(rows), np.nan) for name in OUTPUTS}
            bad = np.zeros(len(rows), dtype=bool)
            for cutoff, positions in rows.groupby(c.CUTOFF, sort=False).indices.items():
                params = fits.get(cutoff)
                if params is None:
                    continue
                x, t_x, T = summarize_histories(rows.iloc[positions])
                try:
                    computed = bgnbd_columns.cutoff_features(params, horizon_days, x, t_x, T)
                except ChurnError:  # the driver nulls this cutoff everywhere and says so
                    bad[positions] = True
                    continue
                for name, column in zip(OUTPUTS, computed, strict=True):
                    values[name][positions] = column
            yield rows.assign(**values, **{_BAD: bad})

    return apply
