"""File helpers used only by the CLI: atomic writes, JSON reports, streamed table writers."""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it into place only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would hide published files from other users
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_json(data: Any, path: str | Path) -> None:
    """Write `data` as stable, indented JSON (sorted keys), atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(
            json.dumps(data, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8"
        )


def write_parquet(frame: pd.DataFrame, path: str | Path) -> None:
    """Write a frame to Parquet atomically, without the pandas index, deterministically."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")


class TableStream:
    """Append frames of one schema to a CSV (optionally gzip) or Parquet file; atomic on close."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._ctx = atomic_path(self.path)
        self._tmp = self._ctx.__enter__()
        self._writer: Any = None
        self._schema: pa.Schema | None = None
        self._raw: Any = None
        self.rows = 0

    def write(self, frame: pd.DataFrame) -> None:
        table = pa.Table.from_pandas(frame, preserve_index=False)
        if self._writer is None:
            self._schema = table.schema
            if self.path.suffix == ".parquet":
                self._writer = pq.ParquetWriter(self._tmp, table.schema, compression="zstd")
            else:
                # mtime=0 keeps gzip output byte-identical across runs
                self._raw = (
                    gzip.GzipFile(self._tmp, "wb", compresslevel=5, mtime=0)
                    if self.path.suffix == ".gz"
                    else open(self._tmp, "wb")  # noqa: SIM115 - closed in close()
                )
                self._writer = pacsv.CSVWriter(self._raw, table.schema)
        self._writer.write_table(table.cast(self._schema))
        self.rows += len(frame)

    def close(self, ok: bool = True) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._raw is not None:
            self._raw.close()
        if ok:
            self._ctx.__exit__(None, None, None)
        else:
            self._ctx.__exit__(RuntimeError, RuntimeError("aborted"), None)

    def __enter__(self) -> TableStream:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.close(ok=exc_type is None)
