"""Opening DuckDB, the embedded engine of every stage that aggregates transactions (one place)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import duckdb

from churn.config import EngineParams
from churn.errors import ChurnError


def open_duckdb(
    engine: EngineParams, spill_dir: str | Path | None = None, *, ordered: bool = True
) -> duckdb.DuckDBPyConnection:
    """Return an in-memory DuckDB connection with the engine section's threads and memory limit,
    spilling to `spill_dir` (default: a folder in the system temp dir, never the project).

    Sessions run in UTC: timestamps with offsets are converted explicitly by the code, so results
    never depend on the machine's zone. `ordered=False` lets DuckDB stream without keeping
    insertion order (for queries that order their result explicitly).
    """
    spill = (
        Path(spill_dir) if spill_dir is not None else Path(tempfile.gettempdir()) / "churn-duckdb"
    )
    config = {"memory_limit": engine.memory_limit, "temp_directory": str(spill)}
    if engine.threads is not None:
        config["threads"] = str(int(engine.threads))
    try:
        con = duckdb.connect(config=config)
    except duckdb.Error as error:
        raise ChurnError(
            f"params.yaml: engine.memory_limit = {engine.memory_limit!r} or engine.threads = "
            f"{engine.threads!r} is not accepted by DuckDB ({error}); use e.g. 2GB and a whole "
            "number of threads"
        ) from None
    con.execute("SET TimeZone = 'UTC'")
    if not ordered:
        con.execute("SET preserve_insertion_order = false")
    return con


def out_of_memory(engine: EngineParams, stage: str) -> ChurnError:
    """Return the error shown when DuckDB runs out of memory in a stage: the setting to change."""
    return ChurnError(
        f"{stage}: DuckDB ran out of memory at engine.memory_limit = {engine.memory_limit}; raise "
        "engine.memory_limit in params.yaml (it spills to disk beyond it) or lower engine.threads"
    )
