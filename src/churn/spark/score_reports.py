"""The score stage's reports on Spark: reports/score.json's metrics, the profit curve and the
suppression list's match counts as aggregates of the scored Spark DataFrame, by the pandas
engine's own functions run per partition; only totals, the curve's points and the ids a
suppressed id can match come to the driver."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from functools import reduce
from typing import Any

import numpy as np
import pandas as pd

from churn import columns as C
from churn.config import ScoreParams
from churn.score.suppression import check_suppression
from churn.score.targeting import (
    add_score_totals,
    profit_curve_even_sizes,
    profit_curve_frame,
    profit_curve_sizes,
    report_score_totals,
    targeting_candidates,
    total_scores,
)
from churn.spark.ids import ids_matching

_TOTALS = "__totals"
_PART = "__part"
_KIND = "__kind"
_BEST = "best"
_SIZE = "size"
_REPORTED = (
    C.CHURN_PROBABILITY, C.RISK_TIER, C.VALUE_AT_RISK, C.EXPECTED_NET_BENEFIT, C.AT_RISK,
    C.SUPPRESSED, C.GROUP,
)  # fmt: skip


def summarise_on_spark(result: Any, suppression_size: int) -> dict[str, object]:
    """Return churn.score.summarise_scores of the scores of `result` (churn.spark.score
    .SparkScores): total_scores of each partition on the executors, added up on the driver."""

    def totals(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        found = None
        for rows in batches:
            part = total_scores(rows)
            found = part if found is None else add_score_totals(found, part)
        if found is not None:  # floats as their shortest repr: json gives them back exactly
            yield pd.DataFrame({_TOTALS: [json.dumps(found)]})

    parts = [
        json.loads(row[0])
        for row in result.ranked.select(*_REPORTED)
        .mapInPandas(totals, f"{_TOTALS} STRING")
        .collect()
    ]
    if not parts:  # score_on_spark refuses a snapshot without customers
        parts = [total_scores(pd.DataFrame({name: [] for name in _REPORTED}))]
    return report_score_totals(reduce(add_score_totals, parts), suppression_size, result.targeting)


def profit_curve_on_spark(result: Any, params: ScoreParams) -> pd.DataFrame:
    """Return churn.score.build_profit_curve of the scores of `result` (SparkScores): the
    targeting candidates' running net benefit in priority order, walked per sorted partition
    from the net benefit of the partitions before; only the curve's points come to the driver.
    The floor is the one the targeting rule used (the population's mean risk by Spark)."""
    from pyspark.sql import functions as F

    target, floor = params.target, result.floor

    def candidates(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for rows in batches:
            chosen = targeting_candidates(
                rows[C.CHURN_PROBABILITY].to_numpy(dtype="float64"),
                rows[C.SUPPRESSED].to_numpy(dtype=bool),
                target,
                floor,
            )
            yield pd.DataFrame(
                {
                    C.PRIORITY: rows[C.PRIORITY].to_numpy(dtype="int64")[chosen],
                    C.EXPECTED_NET_BENEFIT: rows[C.EXPECTED_NET_BENEFIT].to_numpy(dtype="float64")[
                        chosen
                    ],
                }
            )

    eligible = (
        result.ranked.select(C.PRIORITY, C.CHURN_PROBABILITY, C.SUPPRESSED, C.EXPECTED_NET_BENEFIT)
        .mapInPandas(candidates, f"{C.PRIORITY} BIGINT, {C.EXPECTED_NET_BENEFIT} DOUBLE")
        .repartitionByRange(C.PRIORITY)
        .sortWithinPartitions(C.PRIORITY)
        .withColumn(_PART, F.spark_partition_id())
        .persist()
    )
    try:
        parts = eligible.groupBy(_PART).agg(
            F.min(C.PRIORITY), F.count(F.lit(1)), F.sum(C.EXPECTED_NET_BENEFIT)
        )
        offsets, position, total = {}, 0, 0.0
        # partitions in priority order (a range partitioning: each holds one priority range)
        for part, _, rows, net in sorted(parts.collect(), key=lambda row: row[1]):
            offsets[int(part)] = (position, total)
            position, total = position + int(rows), total + float(net)
        count = position
        wanted = np.array(
            sorted({int(size) for size in profit_curve_even_sizes(count, params)} | {count}),
            dtype="int64",
        )
        points = eligible.mapInPandas(
            _walk(offsets, wanted),
            f"{_KIND} STRING, list_size BIGINT, {C.EXPECTED_NET_BENEFIT} DOUBLE",
        ).collect()
    finally:
        eligible.unpersist()
    values = {0: 0.0}  # the empty list
    best, top = 0, 0.0
    for kind, size, net in points:
        if kind == _SIZE:
            values[int(size)] = float(net)
        elif net > top or (net == top and size < best):  # np.argmax: the first largest
            best, top = int(size), float(net)
    values[best] = top
    sizes = profit_curve_sizes(count, best, params)
    return profit_curve_frame(sizes, np.array([values[int(size)] for size in sizes]))


def _walk(offsets: dict[int, tuple[int, float]], wanted: np.ndarray) -> Any:
    """Per sorted partition of the candidates: the running net benefit (started from the
    partitions before) at the wanted list sizes, and where it is largest in each batch."""

    def walk(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        before: tuple[int, float] | None = None
        for rows in batches:
            if rows.empty:
                continue
            if before is None:
                before = offsets[int(rows[_PART].iloc[0])]
            position, total = before
            net = rows[C.EXPECTED_NET_BENEFIT].to_numpy(dtype="float64")
            # one running sum from the offset, as np.cumsum runs over the whole list
            cumulative = np.cumsum(np.concatenate([[total], net]))[1:]
            sizes = position + np.arange(1, len(rows) + 1, dtype="int64")
            hit = np.isin(sizes, wanted)
            top = int(np.argmax(cumulative))
            yield pd.DataFrame(
                {
                    _KIND: [_BEST, *([_SIZE] * int(hit.sum()))],
                    "list_size": np.concatenate([[sizes[top]], sizes[hit]]),
                    C.EXPECTED_NET_BENEFIT: np.concatenate([[cumulative[top]], cumulative[hit]]),
                }
            )
            before = (position + len(rows), float(cumulative[-1]))

    return walk


def check_suppression_on_spark(
    suppressed_ids: Iterable[str], result: Any, source: str = "suppression list"
) -> tuple[dict[str, Any], str | None]:
    """Return churn.score.suppression.check_suppression of the suppression list against the
    customers of `result` (SparkScores): only the customer ids equal to a suppressed id once
    both lose their leading zeros come to the driver (churn.spark.ids.ids_matching)."""
    suppressed = list(suppressed_ids)
    known = ids_matching(result.ranked.select(C.CUSTOMER_ID), suppressed)
    return check_suppression(suppressed, known, source)
