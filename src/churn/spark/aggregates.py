"""The data checks' aggregate step on Spark: their SQL (DuckDB's dialect, transpiled by sqlglot)
run on the cleaned frames, so only counts, quantiles and category levels reach the driver."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from churn.ingest import integrity
from churn.spark.clean import SPARK_TO_DUCKDB, SparkCleaned, to_spark_sql


@dataclass(frozen=True)
class SparkAggregates:
    """churn.ingest.aggregates.Aggregates on a Spark session (relations: temporary views)."""

    spark: Any

    def rows(self, sql: str) -> list[tuple]:
        """Return the query's rows, the SQL transpiled from DuckDB's dialect."""
        return [tuple(row) for row in self.spark.sql(to_spark_sql(sql)).collect()]

    def types(self, relation: str) -> dict[str, str]:
        """Return column -> DuckDB type name of the view `relation`."""
        return {
            name: SPARK_TO_DUCKDB.get(kind, kind.upper())
            for name, kind in self.spark.table(relation).dtypes
        }


def measure_on_spark(
    spark: Any, cleaned: SparkCleaned, params, checked: list[str]
) -> integrity.IntegrityMeasures:
    """Return the integrity checks' numbers for the transactions Spark cleaned (params:
    ingest.integrity; checked: the clean columns whose NULLs and categories are checked),
    counted by Spark on the clean and quarantined frames."""
    suffix = uuid.uuid4().hex[:12]  # views of their own: the session may be the caller's
    clean, dated = f"churn_checks_clean_{suffix}", f"churn_checks_quarantined_{suffix}"
    cleaned.clean_rows.createOrReplaceTempView(clean)
    cleaned.quarantine_dates.createOrReplaceTempView(dated)
    try:
        return integrity.measure_integrity(SparkAggregates(spark), clean, params, checked, dated)
    finally:
        spark.catalog.dropTempView(clean)
        spark.catalog.dropTempView(dated)
