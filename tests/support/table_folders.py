"""Hand-built table-format folders (a Delta Lake table with a deleted customer, Iceberg, Hudi)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


def _part(path: Path, customers: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(
        pa.table(
            {
                "customer": customers,
                "order_id": [f"o{i}" for i in range(len(customers))],
                "ordered_at": ["2024-01-01 10:00:00"] * len(customers),
                "amount": [10.0] * len(customers),
            }
        ),
        path,
    )


def write_delta_table(folder: Path, partitioned: bool = False) -> Path:
    """Write a two-version Delta table whose version 1 deleted customer 'erased' (the old Parquet
    file, still holding the customer, stays in the folder as a Delta table keeps it until VACUUM).
    Return the table folder."""
    sub = "day=2024-01-01/" if partitioned else ""
    _part(folder / f"{sub}part-00000-v0.snappy.parquet", ["kept", "erased"])
    _part(folder / f"{sub}part-00000-v1.snappy.parquet", ["kept"])
    log = folder / "_delta_log"
    log.mkdir()
    version0 = [
        {"protocol": {"minReaderVersion": 1, "minWriterVersion": 2}},
        {"add": {"path": f"{sub}part-00000-v0.snappy.parquet", "dataChange": True}},
    ]
    version1 = [
        {"remove": {"path": f"{sub}part-00000-v0.snappy.parquet", "dataChange": True}},
        {"add": {"path": f"{sub}part-00000-v1.snappy.parquet", "dataChange": True}},
    ]
    for number, actions in enumerate([version0, version1]):
        text = "\n".join(json.dumps(action) for action in actions) + "\n"
        (log / f"{number:020d}.json").write_text(text, encoding="utf-8")
    return folder


def write_iceberg_table(folder: Path) -> Path:
    """Write an Iceberg-shaped folder: data/*.parquet and metadata/v1.metadata.json."""
    _part(folder / "data" / "00000-0-data.parquet", ["kept", "erased"])
    (folder / "metadata").mkdir()
    (folder / "metadata" / "v1.metadata.json").write_text('{"format-version": 2}')
    return folder


def write_hudi_table(folder: Path) -> Path:
    """Write a Hudi-shaped folder: a .hoodie log folder next to the Parquet files."""
    _part(folder / "part-0.parquet", ["kept", "erased"])
    (folder / ".hoodie").mkdir()
    (folder / ".hoodie" / "hoodie.properties").write_text("hoodie.table.name=orders\n")
    return folder


def write_plain_parquet(folder: Path) -> Path:
    """Write a plain Parquet folder (with an unrelated `metadata` folder): not a table format."""
    _part(folder / "part-0.parquet", ["kept"])
    (folder / "metadata").mkdir()
    (folder / "metadata" / "notes.json").write_text("{}")
    return folder
