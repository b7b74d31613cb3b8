"""Every file the project writes goes through here: written to a temporary name beside the
target, flushed to disk (fsync), renamed into place and the folder entry flushed, so a crash or
`kill -9` leaves either the old file or the new one, never a partial one. A failed write (disk
full, a folder or an unwritable path given) is a ChurnError naming the path and the fix. CSV is
written spreadsheet-safe: formula-like text neutralised, every field holding CR or LF quoted."""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import gzip
import hashlib
import io
import json
import numbers
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from churn.errors import ChurnError

if TYPE_CHECKING:  # pandas is imported where a frame is handled: the ingest stage never needs it
    import pandas as pd


def read_json(path: str | Path | None, fix: str) -> dict[str, Any] | None:
    """Return a JSON object file's content (a stage's report, a manifest, a state file), None
    without a path or when the file is absent; corrupt or unreadable is an error naming the file
    and `fix` (e.g. "rerun `churn evaluate`"). The one reader of such files in src/churn."""
    if path is None:
        return None
    path = Path(path)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ChurnError(f"{path}: not valid JSON ({error}); {fix}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ChurnError(f"{path}: unreadable ({error}); {fix}") from None
    return data if isinstance(data, dict) else None


def open_parquet_file(path: str | Path, **options: Any) -> pq.ParquetFile:
    """Return a Parquet file opened for reading in batches or row groups, with bounded memory.

    Every reader in churn opens Parquet files here. pyarrow's default `pre_buffer=True` keeps
    the ranges it read ahead alive until the batch iterator ends: streaming a file with
    `iter_batches` then holds every row group read so far. On the features stage's training
    result at 50M transactions (17.6M rows, 45 columns) that grew the stage from 0.8 to 3.2 GB
    and the kernel killed it at a 3 GB cap; with `pre_buffer=False` the same read-convert-write
    loop peaked at 1.4 GB instead of 2.8 GB and ran faster (benchmarks/results/scale_50M_session11.md).
    """
    options.setdefault("pre_buffer", False)
    return pq.ParquetFile(path, **options)


def existing_input(path: Path, what: str) -> Path:
    """Return a stage's input path; a missing file names what it is and the fix."""
    if not path.is_file():
        raise ChurnError(f"{path}: not found ({what}); run `dvc repro` first")
    return path


def read_input_parquet(
    path: Path, what: str, columns: list[str] | None = None, filters: list | None = None
) -> pd.DataFrame:
    """Read a Parquet input of a stage; a missing file names what it is and the fix."""
    import pandas as pd

    return pd.read_parquet(existing_input(path, what), columns=columns, filters=filters)


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


def rewrite_open_file(fd: int, data: bytes) -> None:
    """Replace the whole content of an open file (e.g. a held lock file) and flush it to disk."""
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)
    os.fsync(fd)


def fsync_dir(path: str | Path) -> None:
    """Flush a folder's entries (renames into it) to disk."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# what to do about a failed write, by errno
_WRITE_FIXES = {
    errno.ENOSPC: "the disk is full; free some space or write to another disk",
    errno.EDQUOT: "the disk quota is used up; free some space or write to another disk",
    errno.EFBIG: "the file is larger than this system allows; write to another disk",
    errno.EACCES: "permission denied; make the folder writable for this user or choose another path",
    errno.EPERM: "not permitted; make the folder writable for this user or choose another path",
    errno.EROFS: "the file system is read-only; choose a writable path",
    errno.EISDIR: "it is a folder; give a file name",
    errno.ENOTDIR: "a part of the path is a file, not a folder; choose another path",
    errno.ENAMETOOLONG: "the name is too long; choose a shorter path",
    errno.EIO: "the disk reported an input/output error; check the disk and write again",
}


UNCHANGED = "nothing was replaced: any previous file is unchanged"


def write_error(path: str | Path, error: OSError, note: str = UNCHANGED) -> ChurnError:
    """Return the user-facing error for a failed write of `path`: what failed, the fix and
    `note` (what is left as it was)."""
    fix = _WRITE_FIXES.get(error.errno or 0)
    if fix is None:
        detail = error.strerror or str(error) or type(error).__name__
        fix = f"{detail}; check the path and the disk"
    return ChurnError(f"{path}: cannot write it: {fix} ({note})")


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; if the block succeeds, fsync it, rename it into
    place and fsync the folder; otherwise remove it and leave `path` as it was.

    A failed write (disk full, a folder or an unwritable path given as the output) is a
    ChurnError naming `path` and the fix; the temporary file is removed either way.
    """
    path = Path(path)
    if path.is_dir():
        raise write_error(path, IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR)))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
    except FileExistsError as error:  # a file where a parent folder should be
        raise write_error(path, NotADirectoryError(errno.ENOTDIR, str(error))) from None
    except OSError as error:
        raise write_error(path, error) from None
    umask = os.umask(0)
    os.umask(umask)
    tmp_path = Path(tmp)
    replaced = False
    try:
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would hide published files from other users
        yield tmp_path
        if tmp_path.is_file():
            fsync_file(tmp_path)
        os.replace(tmp_path, path)
        replaced = True
        fsync_dir(path.parent)
    except OSError as error:
        note = "the new file is in place but may not be on disk yet" if replaced else UNCHANGED
        raise write_error(path, error, note) from None
    finally:
        with contextlib.suppress(OSError):
            tmp_path.unlink(missing_ok=True)


@contextlib.contextmanager
def explain_write_errors(path: str | Path, note: str = UNCHANGED) -> Iterator[None]:
    """Turn an OSError raised in the block into the ChurnError of `write_error` for `path`."""
    try:
        yield
    except OSError as error:
        raise write_error(path, error, note) from None


def append_line(path: str | Path, line: str) -> None:
    """Append one line of UTF-8 text to `path` and flush it to disk (an append-only log)."""
    note = "the lines written before are kept; the last line may be partial"
    with explain_write_errors(path, note), open(path, "a+b") as handle:
        # a line torn by an earlier failed append is ended first, not glued to this one
        size = handle.seek(0, os.SEEK_END)
        torn = False
        if size:
            handle.seek(size - 1)
            torn = handle.read(1) != b"\n"
        handle.write((("\n" if torn else "") + line.rstrip("\n") + "\n").encode("utf-8"))
        handle.flush()
        os.fsync(handle.fileno())


def write_stdout(data: bytes) -> None:
    """Write bytes to standard output and flush them; a full disk behind a redirect is a
    ChurnError. A reader that stopped early (`| head`) raises BrokenPipeError for the CLI."""
    try:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    except BrokenPipeError:
        raise
    except OSError as error:
        raise write_error("standard output", error, "the output is incomplete") from None


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


# --------------------------------------------------------------------------- spreadsheet-safe CSV
# A spreadsheet runs a text cell as a formula when its first visible character is one of these
# (full-width forms too); whitespace and control characters before it do not stop it, and a cell
# starting with tab or CR is treated the same way (OWASP's CSV-injection rule).
_FORMULA_LIKE = re.compile(
    r"[\t\r]"
    r"|[\s\x00-\x1f\x7f-\x9f\u180e\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff]*"
    r"[=+\-@\uff1d\uff0b\uff0d\uff20]"
)
# outside a quoted field, the only CR LF pairs in the csv module's output are record ends
_QUOTED_OR_RECORD_END = re.compile(r'("[^"]*")|\r\n')


def is_formula_like(text: str) -> bool:
    """Return True when a spreadsheet could run `text` as a formula (see _FORMULA_LIKE)."""
    return _FORMULA_LIKE.match(text) is not None


def neutralise_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """Return a copy where text cells a spreadsheet would run as formulas start with a quote (').

    A cell is neutralised when its first character other than whitespace or a control character
    is =, +, - or @, or when it starts with tab or CR. Numbers, dates and booleans stay as they
    are, so a negative amount is still a number; only text is prefixed.
    """
    import pandas as pd

    out = frame.copy()
    for column in out.columns:
        values = out[column]
        kind = values.dtype
        if _is_plain_value_dtype(kind):
            continue
        cells = values.to_numpy(dtype=object, na_value=None)
        # only a cell starting with something other than a letter or digit can be formula-like
        first = pd.Series(cells, dtype="string").str.slice(0, 1)
        maybe = (~first.str.isalnum()).fillna(False).to_numpy(dtype=bool)
        risky = np.zeros(len(cells), dtype=bool)
        risky[maybe] = [_risky_cell(cell) for cell in cells[maybe]]
        if risky.any():
            cells = cells.copy()
            cells[risky] = ["'" + str(cell) for cell in cells[risky]]
            text = pd.api.types.is_string_dtype(kind) and not isinstance(kind, pd.CategoricalDtype)
            out[column] = pd.Series(cells, index=out.index, dtype=kind if text else object)
    return out


def _risky_cell(cell: object) -> bool:
    if cell is None or isinstance(cell, numbers.Number | dt.date | np.bool_ | np.datetime64):
        return False
    return is_formula_like(str(cell))


def csv_text(frame: pd.DataFrame) -> str:
    """Return a frame as CSV text safe to open in a spreadsheet (no index, '\\n' record ends).

    Text cells are neutralised (`neutralise_formulas`), and every field holding the delimiter, a
    quote, CR or LF is quoted (RFC 4180), so a bare CR can never split a row. Deterministic.
    """
    buffer = io.StringIO()
    # with CR LF as the record end the csv module quotes every field holding CR or LF (with LF
    # alone it would leave a bare CR unquoted); the record ends are then written as LF
    safe = neutralise_formulas(frame)
    safe.to_csv(buffer, index=False, lineterminator="\r\n")
    text = buffer.getvalue()
    if not _holds_cr(safe):
        return text.replace("\r\n", "\n")  # every CR LF is a record end
    return _QUOTED_OR_RECORD_END.sub(lambda m: m.group(1) or "\n", text)


def _holds_cr(frame: pd.DataFrame) -> bool:
    """Return True when a column name or a text cell of `frame` holds a carriage return."""
    if any("\r" in str(column) for column in frame.columns):
        return True
    for column in frame.columns:
        values = frame[column]
        if not _is_plain_value_dtype(values.dtype):
            text = values.astype("string")
            if text.str.contains("\r", regex=False).fillna(False).any():
                return True
    return False


def _is_plain_value_dtype(kind: Any) -> bool:
    """Return True for dtypes whose cells are never text (numbers, booleans, datetimes)."""
    import pandas as pd

    return bool(
        pd.api.types.is_numeric_dtype(kind)
        or pd.api.types.is_bool_dtype(kind)
        or pd.api.types.is_datetime64_any_dtype(kind)
        or pd.api.types.is_timedelta64_dtype(kind)
    )


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """Return `csv_text(frame)` as UTF-8 bytes."""
    return csv_text(frame).encode("utf-8")


def write_csv(frame: pd.DataFrame, path: str | Path) -> None:
    """Write a frame as spreadsheet-safe UTF-8 CSV (`csv_text`) atomically."""
    write_bytes(path, csv_bytes(frame))


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
        with explain_write_errors(self.path):
            self._write(table)
        self.rows += len(frame)

    def _write(self, table: pa.Table) -> None:
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

    def close(self, ok: bool = True) -> None:
        try:
            with explain_write_errors(self.path):
                if self._writer is not None:
                    self._writer.close()
                if self._raw is not None:
                    inner = getattr(self._raw, "fileobj", None)
                    self._raw.close()
                    if inner is not None:
                        inner.close()
        except ChurnError as error:
            self._ctx.__exit__(ChurnError, error, None)  # removes the temporary file
            raise
        if ok:
            self._ctx.__exit__(None, None, None)
        else:
            self._ctx.__exit__(RuntimeError, RuntimeError("aborted"), None)

    def __enter__(self) -> TableStream:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.close(ok=exc_type is None)
