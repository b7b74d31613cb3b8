"""The report's transaction aggregates on Spark: churn.report.activity's SQL (DuckDB's dialect,
transpiled by sqlglot) run on Spark temporary views, so only the aggregated frames reach the driver."""

from __future__ import annotations

import contextlib
import itertools
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pyarrow as pa

from churn.spark.clean import SPARK_TO_DUCKDB, to_spark_sql


@dataclass(frozen=True)
class SparkReportAggregates:
    """churn.report.activity.Aggregates on a Spark session (tables: Spark DataFrames, or small
    pandas frames sent to Spark through Arrow); views get names of their own, since the session
    may be the caller's."""

    spark: Any
    _numbers: Iterator[int] = field(default_factory=itertools.count, compare=False)
    _suffix: str = field(default_factory=lambda: uuid.uuid4().hex[:12], compare=False)

    def types(self, table: Any) -> dict[str, str]:
        """Return column -> DuckDB type name of a Spark DataFrame (decimals: DECIMAL(p,s))."""
        return {name: SPARK_TO_DUCKDB.get(kind, kind.upper()) for name, kind in table.dtypes}

    def _frame(self, table: Any) -> Any:
        if isinstance(table, pd.DataFrame):
            # through Arrow: naive timestamps are not shifted by this process's time zone
            return self.spark.createDataFrame(pa.Table.from_pandas(table, preserve_index=False))
        return table

    @contextlib.contextmanager
    def registered(self, **tables: Any) -> Iterator[dict[str, str]]:
        """Register the tables as temporary views for one block; drop them afterwards."""
        names = {key: f"_report_{key}_{self._suffix}_{next(self._numbers)}" for key in tables}
        try:
            for key, table in tables.items():
                self._frame(table).createOrReplaceTempView(names[key])
            yield names
        finally:
            for name in names.values():
                self.spark.catalog.dropTempView(name)

    def frame(self, sql: str) -> pd.DataFrame:
        """Return the query's (small) result as pandas through Arrow."""
        return self.spark.sql(to_spark_sql(sql)).toArrow().to_pandas()

    def rows(self, sql: str) -> list[tuple]:
        """Return the query's (few) rows."""
        return [tuple(row) for row in self.spark.sql(to_spark_sql(sql)).collect()]

    @contextlib.contextmanager
    def materialized(self, sql: str) -> Iterator[Any]:
        """Yield the query's result as a cached DataFrame (DuckDB: a temporary table), computed
        once for the queries that read it; unpersisted afterwards."""
        table = self.spark.sql(to_spark_sql(sql)).cache()
        try:
            yield table
        finally:
            table.unpersist()
