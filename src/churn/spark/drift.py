"""The drift stage's counts on Spark: each feature's and the score's rows per reference bin and
the rows outside the training range, counted on the executors by churn.drift's own counting
functions; only those counts come to the driver, where churn.drift words the report."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from functools import reduce
from typing import Any

import pandas as pd

from churn.columns import CHURN_PROBABILITY, CUSTOMER_ID
from churn.config import DriftParams
from churn.drift import (
    add_drift_counts,
    check_drift_reference,
    count_drift,
    count_score,
    report_drift,
)
from churn.spark.batches import snapshot_dtypes

_COUNTS = "__counts"


def measure_drift_on_spark(
    reference: Mapping[str, Any],
    snapshot: Any,
    scores: Any,
    params: DriftParams,
    ranges: Mapping[str, Sequence[float]] | None = None,
) -> dict[str, Any]:
    """Return churn.drift.measure_drift's report of the scored customers' rows of `snapshot`
    (a Spark DataFrame) and the probabilities of `scores` (Spark: customer_id,
    churn_probability): count_drift and count_score per partition, added up on the driver."""
    from pyspark.sql import functions as F

    check_drift_reference(reference, snapshot.columns)
    names = list(
        dict.fromkeys(
            [*reference["features"], *(n for n in (ranges or {}) if n in snapshot.columns)]
        )
    )
    types = dict(snapshot.dtypes)
    scored = scores.select(F.col(CUSTOMER_ID).cast("string").alias(CUSTOMER_ID))
    # measure the population that was scored (the snapshot may hold customers scoring skipped)
    rows = snapshot.withColumn(CUSTOMER_ID, F.col(CUSTOMER_ID).cast("string")).join(
        scored, on=CUSTOMER_ID, how="left_semi"
    )

    def count_rows(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        found = None
        for batch in batches:
            part = count_drift(reference, snapshot_dtypes(batch, types), ranges)
            found = part if found is None else add_drift_counts(found, part)
        if found is not None:  # floats as their shortest repr: json gives them back exactly
            yield pd.DataFrame({_COUNTS: [json.dumps(found)]})

    def count_scores(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        found = None
        for batch in batches:
            part = count_score(reference, batch[CHURN_PROBABILITY].to_numpy(dtype="float64"))
            found = part if found is None else [a + b for a, b in zip(found, part, strict=True)]
        if found is not None:
            yield pd.DataFrame({_COUNTS: [json.dumps(found)]})

    parts = [
        json.loads(row[0])
        for row in rows.select(*names).mapInPandas(count_rows, f"{_COUNTS} STRING").collect()
    ]
    empty = pd.DataFrame({name: pd.Series([], dtype="float64") for name in names})
    counts = reduce(add_drift_counts, parts, count_drift(reference, empty, ranges))
    score_parts = [
        json.loads(row[0])
        for row in scores.select(CHURN_PROBABILITY)
        .mapInPandas(count_scores, f"{_COUNTS} STRING")
        .collect()
    ]
    score_counts = reduce(
        lambda a, b: [x + y for x, y in zip(a, b, strict=True)],
        score_parts,
        count_score(reference, []),
    )
    return report_drift(reference, counts, score_counts, params, ranges)
