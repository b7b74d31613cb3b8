"""Where the data checks' aggregate SQL runs: the Aggregates interface and its DuckDB side.

The checks are split in two. Their aggregate step (churn.ingest.integrity.measure_integrity)
asks for counts, quantiles and newest dates in SQL written once in DuckDB's dialect; an
Aggregates object runs that SQL on one engine (DuckDB here, on the written files; Spark in
churn.spark.aggregates, on the cleaned frames, the SQL transpiled by sqlglot). Their decision step
turns the numbers into results in Python, the same code whichever engine counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import duckdb


class Aggregates(Protocol):
    """Runs aggregate SQL in DuckDB's dialect on one engine; relations are named in that SQL."""

    def rows(self, sql: str) -> list[tuple]:
        """Return the query's rows (small results only: counts, quantiles, levels)."""
        ...

    def types(self, relation: str) -> dict[str, str]:
        """Return column -> DuckDB type name (VARCHAR, TIMESTAMP, ...) of `relation`."""
        ...


@dataclass(frozen=True)
class DuckDBAggregates:
    """The aggregate step on a DuckDB connection (relations: tables, views, read_parquet(...))."""

    con: duckdb.DuckDBPyConnection

    def rows(self, sql: str) -> list[tuple]:
        """Return the query's rows."""
        return self.con.execute(sql).fetchall()

    def types(self, relation: str) -> dict[str, str]:
        """Return column -> DuckDB type name of `relation`."""
        described = self.con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()
        return {row[0]: row[1] for row in described}
