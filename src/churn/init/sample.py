"""Reading what `churn init` inspects: the head of a CSV or Parquet export (encoding detected),
the whole timestamp column when the head cannot settle day-first, and a dry read of the first
rows through the real ingest reader."""

from __future__ import annotations

import codecs
import gzip
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from churn import columns as C
from churn.config import is_sql_url
from churn.errors import ChurnError
from churn.files import open_parquet_file
from churn.ingest.sources import detect_format, ident, list_files, open_source
from churn.init.detect import Table, read_table

SAMPLE_BYTES = 4 << 20  # the head read to detect the dialect and the columns
SAMPLE_ROWS = 50_000
OTHER_FORMATS = (".xlsx", ".xls", ".xlsm", ".ods", ".json", ".jsonl", ".xml", ".zip")


@dataclass(frozen=True)
class Sample:
    """The inspected head of a source, and what its bytes say about the file."""

    source: str  # as given
    fmt: str  # csv or parquet
    files: tuple[Path, ...]
    table: Table
    encoding: str  # utf-8 for Parquet


def resolve_source(source: str, option: str = "--source") -> tuple[str, list[Path]]:
    """Return (format, data files) of a file or folder source; SQL URLs are out of scope."""
    if is_sql_url(source):
        raise ChurnError(
            f"{option} {source}: SQL sources are not inspected by `churn init`; set "
            "ingest.source, ingest.sql and ingest.columns by hand (README: Using your own data)"
        )
    if not Path(source).exists():
        raise ChurnError(f"{option} {source}: not found; give the path of a CSV or Parquet export")
    path = Path(source)
    if path.is_file() and path.name.lower().endswith(OTHER_FORMATS):
        raise ChurnError(
            f"{option} {source}: ingest reads CSV/TSV (optionally .gz) and Parquet; save the "
            "export as CSV (UTF-8) or Parquet and point --source at that"
        )
    if path.is_file():
        name = path.name.lower()
        fmt = "parquet" if name.endswith((".parquet", ".pq", ".parq")) else "csv"
        if fmt == "csv" and _looks_like_parquet(path):
            fmt = "parquet"
        return fmt, [path]
    fmt = detect_format(source, "auto")
    return fmt, list_files(source, fmt, option)


def _looks_like_parquet(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(4) == b"PAR1"


def detect_encoding(head: bytes, complete: bool) -> str:
    """Return the encoding of a file's first bytes: a BOM, else UTF-8 if it decodes, else
    cp1252 when it uses that code page's extra characters, else latin-1."""
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        decoder.decode(head, final=complete)
    except UnicodeDecodeError:
        return "cp1252" if any(0x80 <= b <= 0x9F for b in head) else "latin-1"
    return "utf-8"


def _read_head(path: Path, limit: int) -> tuple[bytes, bool]:
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as handle:
            head = handle.read(limit + 1)
    except (OSError, EOFError) as error:
        raise ChurnError(f"{path}: cannot be read ({error}); export it again") from None
    return head[:limit], len(head) <= limit


def read_sample(
    source: str,
    encoding: str | None = None,
    delimiter: str | None = None,
    option: str = "--source",
) -> Sample:
    """Return the head of a source (the first file of a folder) split into header and rows."""
    fmt, files = resolve_source(source, option)
    first = files[0]
    if fmt == "parquet":
        return Sample(source, fmt, tuple(files), _parquet_table(first), "utf-8")
    head, complete = _read_head(first, SAMPLE_BYTES)
    encoding = encoding or detect_encoding(head, complete)
    try:
        text = head.decode(encoding, errors="strict" if complete else "ignore")
    except (UnicodeDecodeError, LookupError) as error:
        raise ChurnError(
            f"{first}: cannot be decoded as {encoding} ({error}); pass --encoding"
        ) from None
    if not complete:
        text = text[: text.rfind("\n") + 1]  # drop the cut last line
    lines = text.splitlines(keepends=True)
    text = "".join(lines[: SAMPLE_ROWS + 1]).lstrip("\ufeff")
    table = read_table(text, str(first), delimiter)
    if len(files) > 1:
        _check_same_header(files[1:], table, encoding)
    return Sample(source, fmt, tuple(files), table, encoding)


def _check_same_header(files: list[Path], table: Table, encoding: str) -> None:
    for path in files:
        head, _ = _read_head(path, 64 << 10)
        line = head.decode(encoding, errors="ignore").lstrip("\ufeff").splitlines()[:2]
        other = read_table("".join(f"{x}\n" for x in line), str(path), table.delimiter).header
        if other != table.header:
            raise ChurnError(
                f"{path}: its header {list(other)} differs from {table.label}'s "
                f"{list(table.header)}; a folder source needs one layout: re-export or move it"
            )


def _parquet_table(path: Path) -> Table:
    import pyarrow as pa

    try:
        parquet = open_parquet_file(path)
        batch = next(parquet.iter_batches(batch_size=SAMPLE_ROWS), None)
    except (OSError, pa.ArrowException) as error:
        raise ChurnError(
            f"{path}: not a readable Parquet file ({error}); export it again"
        ) from None
    if batch is None:
        raise ChurnError(f"{path}: no rows; export it again")
    types = []
    for field in batch.schema:
        kind = field.type
        if pa.types.is_timestamp(kind) and kind.tz is not None:
            types.append("timestamp with zone")
        elif pa.types.is_timestamp(kind) or pa.types.is_date(kind):
            types.append("timestamp")
        elif pa.types.is_integer(kind):
            types.append("int")
        elif pa.types.is_floating(kind) or pa.types.is_decimal(kind):
            types.append("double")
        elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
            types.append("string")
        else:
            types.append(str(kind))
    columns = [batch.column(i).to_pylist() for i in range(batch.num_columns)]
    rows = tuple(
        tuple("" if v is None else str(v) for v in row) for row in zip(*columns, strict=True)
    )
    return Table(str(path), tuple(batch.schema.names), rows, None, tuple(types))


def day_month_maxima(ingest, engine, column: str) -> tuple[int, int]:  # noqa: ANN001
    """Return the largest first and second fields of d/m or m/d dates over the whole column,
    read through the ingest reader (the head of a time-sorted file may hold only days <= 12)."""
    from churn.engine import open_duckdb

    fmt = ingest.format if ingest.format != "auto" else detect_format(ingest.source, "auto")
    with tempfile.TemporaryDirectory(prefix="churn-init-") as work:
        con = open_duckdb(engine, work)
        try:
            raw = open_source(con, ingest.source, fmt, ingest.csv, [column], Path(work))
            text = f"trim(CAST({ident(column)} AS VARCHAR))"
            pattern = r"'^(\d{1,2})[/.\-](\d{1,2})[/.\-]'"
            first, second = con.execute(
                f"SELECT max(try_cast(regexp_extract({text}, {pattern}, 1) AS INTEGER)), "
                f"max(try_cast(regexp_extract({text}, {pattern}, 2) AS INTEGER)) "
                f"FROM {raw.relation}"
            ).fetchone()
        finally:
            con.close()
    return int(first or 0), int(second or 0)


def preview_ingest(ingest, engine, rows: int) -> dict:  # noqa: ANN001 - churn.config sections
    """Return what ingest makes of the first `rows` rows of the source: rows read, clean,
    quarantined by reason, the first detail of each reason, and the dates they span."""
    from churn.engine import open_duckdb
    from churn.ingest.clean import clean_transactions
    from churn.ingest.stage import local_reject_after

    fmt = ingest.format if ingest.format != "auto" else detect_format(ingest.source, "auto")
    files = list_files(ingest.source, fmt)
    with tempfile.TemporaryDirectory(prefix="churn-init-") as work:
        name = files[0].name.removesuffix(".gz").removesuffix(".GZ")
        head = Path(work) / ("head.parquet" if fmt == "parquet" else f"head_{name}")
        lines = rows + int(fmt == "csv" and ingest.csv.header)  # the header line too
        _write_head(files[0], fmt, lines, head, ingest.csv.encoding)
        params = ingest.model_copy(update={"source": str(head), "format": fmt})
        con = open_duckdb(engine, work)
        try:
            raw = open_source(con, str(head), fmt, params.csv, [], Path(work), label=str(files[0]))
            table = clean_transactions(
                con, raw, params, local_reject_after(params, datetime.now(UTC))
            )
            ts = ident(C.TIMESTAMP)
            (clean, first, last) = con.execute(
                f"SELECT count(*), CAST(min({ts}) AS VARCHAR), CAST(max({ts}) AS VARCHAR) "
                f"FROM ({table.clean_sql})"
            ).fetchone()
            details = dict(
                con.execute(
                    f"SELECT {C.REASON}, first({C.DETAIL} ORDER BY {C.SOURCE_ROW}) FROM "
                    f"({table.quarantine_sql}) GROUP BY {C.REASON}"
                ).fetchall()
            )
        finally:
            con.close()
    return {
        "file": str(files[0]),
        "rows_read": table.rows_read,
        "rows_clean": int(clean),
        "quarantined": table.quarantined,
        "quarantined_by_reason": table.quarantined_by_reason,
        "duplicates_removed": table.duplicates_removed,
        "first_detail": details,
        "timestamp_min": first,
        "timestamp_max": last,
    }


def _write_head(path: Path, fmt: str, rows: int, target: Path, encoding: str) -> None:
    """Copy the first `rows` lines (Parquet: rows) of a file (same encoding, not compressed)."""
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        batches = open_parquet_file(path).iter_batches(batch_size=rows)
        pq.write_table(pa.Table.from_batches([next(batches)]), target)
        return
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with (
        opener(path, "rt", encoding=encoding, newline="") as src,
        open(target, "w", encoding=encoding, newline="") as dst,
    ):
        for i, line in enumerate(src):
            if i >= rows:
                break
            dst.write(line)
