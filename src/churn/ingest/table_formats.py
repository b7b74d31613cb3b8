"""Refusing table-format folders (Delta Lake, Apache Iceberg, Apache Hudi) as plain file sources.

Such a folder holds the Parquet files of every version of the table: a delete or update writes new
files and only marks the old ones removed in the transaction log, until VACUUM deletes them. Read
file by file, deleted rows come back (erased customers included). Ingest reads plain files only,
so it refuses these folders and says how to export the table's current version.
"""

from __future__ import annotations

import os
from pathlib import Path

from churn.errors import ChurnError

# marker inside the table's root folder -> format name
_LOG_FOLDERS = {"_delta_log": "Delta Lake", ".hoodie": "Apache Hudi"}
_MARKERS = {
    "Delta Lake": "_delta_log",
    "Apache Hudi": ".hoodie",
    "Apache Iceberg": "metadata/*.metadata.json",
}

_EXPORTS = {
    "Delta Lake": (
        "with Spark: spark.read.format('delta').load(TABLE).write.parquet(OUT), or with the "
        "deltalake package (delta-rs): pyarrow.parquet.write_table("
        "deltalake.DeltaTable(TABLE).to_pyarrow_table(), OUT)"
    ),
    "Apache Iceberg": (
        "with Spark: spark.table('catalog.db.table').write.parquet(OUT), or with pyiceberg: "
        "catalog.load_table(...).scan().to_arrow()"
    ),
    "Apache Hudi": "with Spark: spark.read.format('hudi').load(TABLE).write.parquet(OUT)",
}


def table_format(folder: Path) -> str | None:
    """Return the table format whose transaction log `folder` holds (None for a plain folder)."""
    for marker, name in _LOG_FOLDERS.items():
        if (folder / marker).is_dir():
            return name
    metadata = folder / "metadata"
    try:
        if metadata.is_dir() and any(p.name.endswith(".metadata.json") for p in metadata.iterdir()):
            return "Apache Iceberg"
    except OSError:  # an unreadable folder is no table we could be misreading
        return None
    return None


def find_table_folder(source: str | Path) -> tuple[Path, str] | None:
    """Return (table root folder, format) when `source` is, lies inside, or contains a table-format
    folder; None for plain files and folders."""
    path = Path(source).absolute()
    for folder in [path, *path.parents] if path.is_dir() else list(path.parents):
        found = table_format(folder)
        if found:
            return folder, found
    if path.is_dir():
        for root, dirs, _ in os.walk(path):
            dirs.sort()
            for name in dirs:
                found = table_format(Path(root) / name)
                if found:
                    return Path(root) / name, found
    return None


def refuse_table_folders(source: str | Path, key: str = "ingest.source") -> None:
    """Raise ChurnError when a file source is (inside) a Delta, Iceberg or Hudi table folder."""
    found = find_table_folder(source)
    if found is None:
        return
    folder, name = found
    where = "" if folder == Path(source).absolute() else f" (a {name} table in {folder})"
    raise ChurnError(
        f"{source}{where}: {key} points at a {name} table (the folder holds {_MARKERS[name]}), "
        "which ingest does not read: its folder "
        "keeps the Parquet files of deleted and updated rows until VACUUM, so reading the files "
        "would bring removed rows (e.g. erased customers) back. Export the table's current "
        f"version to Parquet or CSV and point {key} at the export; "
        f"{_EXPORTS[name].replace('TABLE', repr(str(folder)))}"
    )
