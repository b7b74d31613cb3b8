"""Every file the project writes goes through here: written to a temporary name beside the
target, flushed to disk (fsync), renamed into place and the folder entry flushed, so a crash or
`kill -9` leaves either the old file or the new one, never a partial one."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
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

from churn.errors import ChurnError


def read_json(path: str | Path, fix: str) -> dict[str, Any] | None:
    """Return a JSON object file's content, None when the file is absent; unreadable or corrupt
    is an error naming the file and `fix`."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ChurnError(f"{path}: unreadable ({error}); {fix}") from None
    return data if isinstance(data, dict) else None


def sha256_bytes(data: bytes) -> str:
    """Return the hex sha256 of `data`."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    """Return the hex sha256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fsync_file(path: str | Path) -> None:
    """Flush a written file's bytes to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: str | Path) -> None:
    """Flush a folder's entries (renames into it) to disk."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; if the block succeeds, fsync it, rename it into
    place and fsync the folder; otherwise remove it and leave `path` as it was."""
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
        if tmp_path.is_file():
            fsync_file(tmp_path)
        os.replace(tmp_path, path)
        fsync_dir(path.parent)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_bytes(path: str | Path, data: bytes) -> None:
    """Write bytes to `path` atomically and durably."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | Path, text: str) -> None:
    """Write UTF-8 text to `path` atomically and durably."""
    write_bytes(path, text.encode("utf-8"))


def json_text(data: Any) -> str:
    """Return `data` as stable, indented JSON (sorted keys) ending in a newline."""
    return json.dumps(data, indent=2, sort_keys=True, default=str) + "\n"


def write_json(data: Any, path: str | Path) -> None:
    """Write `data` as stable, indented JSON (sorted keys), atomically."""
    write_text(path, json_text(data))


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    """Return a frame as Parquet bytes (zstd, no index): identical frames give identical bytes."""
    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), sink, compression="zstd")
    return sink.getvalue().to_pybytes()


def write_parquet(frame: pd.DataFrame, path: str | Path) -> None:
    """Write a frame to Parquet atomically, without the pandas index, deterministically."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")


def write_csv(frame: pd.DataFrame, path: str | Path) -> None:
    """Write a frame as UTF-8 CSV (no index, '\\n' line ends) atomically."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, lineterminator="\n")


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
                # mtime=0 and no file name in the header keep gzip output byte-identical across
                # runs (the temporary name is random)
                self._raw = (
                    gzip.GzipFile(
                        filename="",
                        mode="wb",
                        compresslevel=5,
                        mtime=0,
                        fileobj=open(self._tmp, "wb"),  # noqa: SIM115 - closed in close()
                    )
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
            inner = getattr(self._raw, "fileobj", None)
            self._raw.close()
            if inner is not None:
                inner.close()
        if ok:
            self._ctx.__exit__(None, None, None)
        else:
            self._ctx.__exit__(RuntimeError, RuntimeError("aborted"), None)

    def __enter__(self) -> TableStream:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.close(ok=exc_type is None)
