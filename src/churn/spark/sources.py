"""Typed tables as Spark sources: Parquet files or folders, Delta tables (current version only),
and tables in the Spark catalog by name. Text exports go through the DuckDB ingest first."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from churn.errors import ChurnError
from churn.ingest.table_formats import table_format

CATALOG_NAME = re.compile(r"[A-Za-z_][\w]*(\.[A-Za-z_][\w]*){0,2}")
# Delta reader features the file-list path cannot honour: deleted rows kept in deletion vectors,
# physical column names that differ from the schema's
UNSUPPORTED_DELTA_FEATURES = {"deletionVectors", "columnMapping"}


def read_source(spark: Any, source: str | Path) -> Any:
    """Return a Spark DataFrame of a typed source: a Parquet file or folder, a Delta table folder
    (only the rows of its current version), or a catalog table such as db.transactions."""
    path = Path(source)
    if isinstance(source, str) and not path.exists() and CATALOG_NAME.fullmatch(source):
        if not spark.catalog.tableExists(source):
            raise ChurnError(
                f"{source}: neither a file nor a table in the Spark catalog; give a Parquet file "
                "or folder, a Delta table folder, or an existing table name (db.table)"
            )
        return spark.table(source)
    if not path.exists():
        raise ChurnError(f"{source}: not found; run `churn ingest` first (dvc repro ingest)")
    kind = table_format(path) if path.is_dir() else None
    if kind == "Delta Lake":
        return read_delta(spark, path)
    if kind is not None:
        raise ChurnError(
            f"{source}: a {kind} table folder; the Spark engine reads Parquet, Delta and catalog "
            f"tables: register the table in the Spark catalog and give its name, or export its "
            "current version to Parquet"
        )
    return spark.read.parquet(str(path.absolute()))


def read_delta(spark: Any, folder: Path) -> Any:
    """Return the current version of a Delta table: through Spark's Delta reader when the session
    has it (Databricks, delta-spark on the classpath), else the files the Delta log lists as
    live now, read from the deltalake (delta-rs) package: never every Parquet file in the folder."""
    try:
        frame = spark.read.format("delta").load(str(folder.absolute()))
        frame.schema  # noqa: B018 - resolves the data source now, not at the first action
        return frame
    except Exception as error:  # no Delta data source in this session
        if "delta" not in str(error).lower() and "DATA_SOURCE_NOT_FOUND" not in str(error):
            raise
    table = _current_table(folder)
    files, schema = delta_files(folder, table), delta_schema(folder, table)
    # the table's schema, from its log: a column added after the older files were written is
    # NULL in their rows (Delta's own reading), never dropped because Spark happened to take
    # the schema from an older file's footer
    reader = spark.read.schema(schema).option("basePath", str(folder.absolute()))
    return reader.parquet(*files)


def delta_schema(folder: Path, table: Any = None) -> Any:
    """Return the Spark schema (StructType) of a Delta table's current version, from its
    transaction log (Delta writes its schema in Spark's own JSON form); `table`: the folder's
    DeltaTable, when opened already."""
    import json

    from pyspark.sql.types import StructType

    table = table if table is not None else _current_table(folder)
    return StructType.fromJson(json.loads(table.schema().to_json()))


def _current_table(folder: Path) -> Any:
    """Return the deltalake DeltaTable of `folder` (ChurnError without the package)."""
    try:
        from deltalake import DeltaTable
    except ImportError:
        raise ChurnError(
            f"{folder}: a Delta table, and this Spark session has no Delta reader; install the "
            "`spark` extra (it brings the deltalake package) or add delta-spark to the cluster"
        ) from None
    table = DeltaTable(str(folder.absolute()))
    protocol = table.protocol()
    features = set(protocol.reader_features or [])
    blocked = sorted(features & UNSUPPORTED_DELTA_FEATURES)
    if blocked:
        raise ChurnError(
            f"{folder}: the Delta table uses {', '.join(blocked)}, which only a Delta reader in "
            "Spark can apply (deleted rows would come back otherwise); add delta-spark to the "
            "cluster, or run OPTIMIZE/REORG ... APPLY (PURGE) and disable the feature"
        )
    return table


def delta_files(folder: Path, table: Any = None) -> list[str]:
    """Return the Parquet files of a Delta table's current version (from its transaction log;
    `table`: the folder's DeltaTable, when opened already)."""
    files = (table if table is not None else _current_table(folder)).file_uris()
    if not files:
        raise ChurnError(f"{folder}: the Delta table's current version has no data files")
    return files
