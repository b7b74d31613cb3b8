"""Opening CSV and Parquet sources in DuckDB as text-faithful raw tables with row numbers."""

from __future__ import annotations

import codecs
import contextlib
import difflib
import gzip
import itertools
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import duckdb

from churn.config import WHITESPACE_DELIMITER
from churn.engine import is_resource_error
from churn.errors import ChurnError
from churn.files import open_parquet_file
from churn.ingest.table_formats import refuse_table_folders

# Encodings DuckDB's CSV reader handles itself; any other Python codec is transcoded to UTF-8 first.
DUCKDB_ENCODINGS = {"utf-8": "utf-8", "utf8": "utf-8", "latin-1": "latin-1", "latin1": "latin-1",
                    "iso-8859-1": "latin-1", "utf-16": "utf-16", "utf16": "utf-16"}  # fmt: skip
CSV_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".tsv.gz", ".txt", ".txt.gz")
PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
_counter = itertools.count()


def ident(name: str) -> str:
    """Return `name` as a quoted DuckDB identifier (any text is safe inside)."""
    return '"' + name.replace('"', '""') + '"'


def lit(value: str) -> str:
    """Return `value` as a quoted DuckDB string literal."""
    return "'" + value.replace("'", "''") + "'"


def fresh_name(prefix: str) -> str:
    """Return a new temp-table name unique within this process."""
    return f"{prefix}_{next(_counter)}"


@dataclass(frozen=True)
class RawTable:
    """A source opened in DuckDB: its columns untouched plus __file and __row (1-based)."""

    label: str  # what messages call the source: a path, or a masked URL
    relation: str  # DuckDB view or temp table
    types: dict[str, str]  # source column -> DuckDB type (all VARCHAR for CSV)
    rows_read: int  # data rows in the source, malformed lines included
    malformed: str | None  # temp table (__file, __row, raw_line, error) of rejected CSV lines
    files: tuple[str, ...]
    fmt: str  # csv or parquet
    skipped: dict[str, tuple[str, ...]] = field(default_factory=dict)  # why -> paths not read


def is_hidden(path: Path, root: Path) -> bool:
    """Return True for a path under `root` that a person would not call data: a dotfile or a
    file inside a dot folder (.ipynb_checkpoints, .git, .~lock files), or a Spark/Hadoop
    marker or temporary file starting with '_' (_SUCCESS, _temporary/)."""
    return any(part.startswith((".", "_")) for part in path.relative_to(root).parts)


@dataclass(frozen=True)
class FolderListing:
    """The files of a folder source: data files read, and the others with why they are skipped."""

    files: list[Path]
    hidden: list[Path]
    other_types: list[Path]

    def skipped(self) -> dict[str, tuple[str, ...]]:
        """Return the skipped files by reason (empty reasons left out)."""
        found = {"hidden": self.hidden, "other_types": self.other_types}
        return {why: tuple(str(p) for p in paths) for why, paths in found.items() if paths}


def scan_folder(folder: Path, suffixes: tuple[str, ...]) -> FolderListing:
    """Return the data files of `folder` (sorted), the hidden ones and those of other types."""
    files, hidden, other = [], [], []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        if is_hidden(path, folder):
            hidden.append(path)
        elif path.name.lower().endswith(suffixes):
            files.append(path)
        else:
            other.append(path)
    return FolderListing(files, hidden, other)


def _table_key(path: Path) -> str:
    """Return the name a file has without compression: a.csv and a.csv.gz hold the same table."""
    name = str(path).lower()
    return name[: -len(".gz")] if name.endswith(".gz") else name


def detect_format(source: str, fmt: str) -> str:
    """Return csv, parquet or sql for a source and the format param (auto looks at suffixes)."""
    from churn.config import is_sql_url

    if fmt != "auto":
        return fmt
    if is_sql_url(source):
        return "sql"
    path = Path(source)
    if path.is_dir():
        names = [p.name.lower() for p in scan_folder(path, ()).other_types]
        has_csv = any(n.endswith(CSV_SUFFIXES) for n in names)
        has_parquet = any(n.endswith(PARQUET_SUFFIXES) for n in names)
        if has_csv and has_parquet:
            raise ChurnError(
                f"{source}: folder holds both CSV and Parquet files; keep one kind or set "
                "ingest.format"
            )
        if has_parquet:
            return "parquet"
        if has_csv:
            return "csv"
        raise ChurnError(
            f"{source}: folder has no .csv(.gz) or .parquet files; check ingest.source"
        )
    name = path.name.lower()
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if name.endswith(CSV_SUFFIXES):
        return "csv"
    raise ChurnError(
        f"{source}: cannot tell the format from the name; set ingest.format to csv or parquet"
    )


def list_source(source: str, fmt: str, key: str = "ingest.source") -> FolderListing:
    """Return the data files of a file or folder source and the files skipped; ChurnError when
    there are none, or when one table is there twice (a.csv beside a.csv.gz)."""
    refuse_table_folders(source, key)  # Delta/Iceberg/Hudi folders: never read file by file
    path = Path(source)
    if not path.exists():
        raise ChurnError(f"{source}: not found; fix {key} in params.yaml")
    if path.is_file():
        return FolderListing([path], [], [])
    listing = scan_folder(path, CSV_SUFFIXES if fmt == "csv" else PARQUET_SUFFIXES)
    if not listing.files:
        raise ChurnError(f"{source}: folder has no {fmt} files; check {key}")
    seen: dict[str, Path] = {}
    for file in listing.files:
        twin = seen.setdefault(_table_key(file), file)
        if twin != file:
            raise ChurnError(
                f"{source}: {twin} and {file} hold the same table (one compressed, one not), so "
                f"every row would be read twice; remove one of them from the folder ({key})"
            )
    return listing


def list_files(source: str, fmt: str, key: str = "ingest.source") -> list[Path]:
    """Return the data files of a file or folder source, sorted; ChurnError when there are none."""
    return list_source(source, fmt, key).files


def _first_line(message: str) -> str:
    return message.strip().splitlines()[0] if message.strip() else message


def _explain_read_error(label: str, error: Exception, fmt: str) -> Exception:
    """Turn a DuckDB read error into a ChurnError naming the file and a likely fix."""
    if is_resource_error(error):
        return error  # out of memory or disk is no fault of the file: the stage names the setting
    text = str(error)
    low = text.lower()
    if "gzip" in low or "zlib" in low or "compressed" in low or "inflate" in low:
        fix = "the gzip file is truncated or corrupted; export it again"
    elif "invalid unicode" in low or "not utf-8" in low:
        fix = "the file is not UTF-8; set ingest.csv.encoding (e.g. latin-1 or cp1252)"
    elif "sniffing" in low:
        fix = (
            'the CSV layout could not be worked out: look for an unbalanced quote (") that '
            "swallows the rest of the file, or fix ingest.csv.delimiter/quote; then export again"
        )
    elif fmt == "parquet":
        fix = "the file is not a readable Parquet file; export it again"
    else:
        fix = "check ingest.csv (delimiter, quote, encoding) or export the file again"
    return ChurnError(f"{label}: cannot be read as {fmt}: {_first_line(text)}; {fix}")


def _transcode(
    files: list[Path], encoding: str, work_dir: Path, split_whitespace: bool = False
) -> list[Path]:
    """Copy files into UTF-8 files under work_dir: from a Python codec DuckDB lacks, and/or with
    runs of whitespace turned into tabs (column-aligned text; line for line, so row numbers hold)."""
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise ChurnError(
            f"ingest.csv.encoding = {encoding!r} is not a known encoding; use e.g. utf-8, "
            "latin-1, cp1252"
        ) from None
    out = []
    for i, path in enumerate(files):
        target = work_dir / f"transcoded_{i}.csv"
        opener = gzip.open if path.name.lower().endswith(".gz") else open
        try:
            with (
                opener(path, "rt", encoding=encoding, newline="") as src,
                open(target, "w", encoding="utf-8", newline="") as dst,
            ):
                if split_whitespace:
                    dst.writelines("\t".join(line.split()) + "\n" for line in src)
                else:
                    while chunk := src.read(1 << 20):
                        dst.write(chunk)
        except (UnicodeDecodeError, OSError, EOFError) as error:
            raise ChurnError(
                f"{path}: cannot be decoded as {encoding}: {error}; fix ingest.csv.encoding"
            ) from None
        out.append(target)
    return out


SNIFF_BYTES = 1 << 16
# What a "CSV" file often really is when an export went wrong; found by its first bytes.
BINARY_MAGIC = (
    (b"PK\x03\x04", "a zip archive (an Excel .xlsx workbook?)"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Excel .xls workbook"),
    (b"PAR1", "a Parquet file"),
    (b"SQLite format 3\x00", "a SQLite database"),
)


def _head(path: Path, size: int = SNIFF_BYTES) -> bytes:
    """Return the first bytes of a file, decompressed when it is gzip ('' when unreadable)."""
    try:
        if path.name.lower().endswith(".gz"):
            with gzip.open(path, "rb") as f:
                return f.read(size)
        with open(path, "rb") as f:
            return f.read(size)
    except (OSError, EOFError):
        return b""  # the reader itself then reports the damaged file


def check_text_encoding(path: Path, encoding: str) -> None:
    """Raise ChurnError when a CSV file is a workbook, archive or Parquet file, or, read as a
    one-byte or UTF-8 encoding, is UTF-16 or UTF-32: a byte-order mark, or NUL bytes between the
    characters (a stray NUL inside a field is left to the row checks, which quarantine it)."""
    head = _head(path)
    for magic, kind in BINARY_MAGIC:
        if head.startswith(magic):
            raise ChurnError(
                f"{path}: is {kind}, not CSV text; export the data as CSV (or point "
                "ingest.source at the right file, or set ingest.format)"
            )
    if codecs.lookup(encoding).name.startswith(("utf-16", "utf-32")):
        return
    boms = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
            (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))  # fmt: skip
    found = next(((name, "a byte-order mark") for bom, name in boms if head.startswith(bom)), None)
    if found is None and head.count(0) > len(head) // 4:
        even, odd = head[0::2].count(0), head[1::2].count(0)
        if min(even, odd) < max(even, odd) // 4:
            found = ("utf-16", "NUL bytes between the characters")
        else:
            found = ("utf-32", "NUL bytes between the characters")
    if found is not None:
        name, why = found
        raise ChurnError(
            f"{path}: looks like {name.upper()} ({why}) but is read as {encoding} "
            f"(ingest.csv.encoding); set ingest.csv.encoding: {name}"
        )


def find_long_line(path: Path, limit: int) -> tuple[int, int] | None:
    """Return (line number, bytes) of the first line longer than `limit` bytes, or None."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    number, length = 1, 0
    try:
        with opener(path, "rb") as f:
            while chunk := f.read(1 << 20):
                start = 0
                while (end := chunk.find(b"\n", start)) >= 0:
                    length += end - start
                    if length > limit:
                        return number, length
                    number, length, start = number + 1, 0, end + 1
                length += len(chunk) - start
                if length > limit:
                    return number, _line_length(f, length)
    except (OSError, EOFError):
        return None
    return None


def _line_length(f, length: int) -> int:
    """Return the full length of a long line whose first `length` bytes were read."""
    while chunk := f.read(1 << 20):
        end = chunk.find(b"\n")
        if end >= 0:
            return length + end
        length += len(chunk)
    return length


def _long_line_error(files: list[Path], read_files: list[Path], limit: int) -> ChurnError | None:
    """Return the error naming the first line beyond ingest.csv.max_line_bytes, if any."""
    for original, read in zip(files, read_files, strict=True):
        found = find_long_line(read, limit)
        if found is not None:
            line, size = found
            return ChurnError(
                f"{original}: line {line} is {size:,} bytes long, more than "
                f"ingest.csv.max_line_bytes = {limit:,} (one field of megabytes: an embedded "
                "file, or a quote that is never closed?); fix the export, or raise "
                "ingest.csv.max_line_bytes if such lines are real"
            )
    return None


def _check_unique_names(path: Path, names: list[str], where: str) -> None:
    """Raise ChurnError when two columns share a name; DuckDB does not tell 'Amount' from
    'amount' either (it renames the second to 'Amount_1'), so case is ignored."""
    spellings: dict[str, list[str]] = {}
    for name in names:
        spellings.setdefault(name.lower(), []).append(name)
    twice = [found for found in spellings.values() if len(found) > 1]
    if twice:
        shown = " and ".join(repr(n) for n in twice[0])
        raise ChurnError(
            f"{path}: the {where} names column {twice[0][0]!r} more than once ({shown}; column "
            "names are compared ignoring case), so which one holds the data is ambiguous; rename "
            "or remove the duplicate column in the export"
        )


def check_header_names(
    con: duckdb.DuckDBPyConnection, path: Path, options: list[str], shown: Path
) -> None:
    """Raise ChurnError when a CSV header names one column twice (DuckDB would rename one and
    ingest would silently read the first)."""
    header_options = [o for o in options if not o.startswith(("header", "filename", "store_rej",
                                                              "rejects_"))]  # fmt: skip
    try:
        row = con.execute(
            f"SELECT * FROM read_csv({lit(str(path))}, header = false, "
            f"{', '.join(header_options)}) LIMIT 1"
        ).fetchone()
    except duckdb.Error:
        return  # the full read reports it
    _check_unique_names(shown, [str(v).strip("\ufeff \t\r\n") for v in row or () if v], "header")


def open_csv(
    con: duckdb.DuckDBPyConnection,
    files: list[Path],
    csv,  # churn.config.CsvOptions
    label: str,
    work_dir: Path,
) -> RawTable:
    """Read CSV files with every column as text; lines the parser rejects are kept apart."""
    for path in files:
        if path.stat().st_size == 0:
            raise ChurnError(f"{path}: the file is empty; export it again with a header and rows")
        with contextlib.suppress(LookupError):  # an unknown encoding: _transcode says so
            check_text_encoding(path, csv.encoding)
    encoding = DUCKDB_ENCODINGS.get(csv.encoding.lower())
    whitespace = csv.delimiter == WHITESPACE_DELIMITER
    read_files = files
    if encoding is None or whitespace:
        read_files = _transcode(files, csv.encoding, work_dir, split_whitespace=whitespace)
        encoding = "utf-8"
    name = fresh_name("raw_csv")
    options = [
        f"header = {'true' if csv.header else 'false'}",
        "all_varchar = true",
        "filename = true",
        "store_rejects = true",
        f"rejects_table = {lit(name + '_err')}",
        f"rejects_scan = {lit(name + '_scan')}",
        f"encoding = {lit(encoding)}",
        f"quote = {lit(csv.quote)}",
        f"escape = {lit(csv.escape or csv.quote)}",
        f"max_line_size = {int(csv.max_line_bytes)}",
    ]
    if csv.delimiter is not None:
        options.append(f"delim = {lit(chr(9) if whitespace else csv.delimiter)}")
    if csv.header:
        for read, original in zip(read_files, files, strict=True):
            check_header_names(con, read, options, original)
    file_list = "[" + ", ".join(lit(str(p)) for p in read_files) + "]"
    try:
        con.execute(
            f"CREATE TEMP TABLE {name} AS SELECT * FROM read_csv({file_list}, {', '.join(options)})"
        )
    except duckdb.Error as error:
        long_line = _long_line_error(files, read_files, csv.max_line_bytes)
        raise (long_line or _explain_read_error(label, error, "csv")) from None
    errors = con.execute(
        f"SELECT e.line, e.error_type, e.csv_line, e.error_message, s.file_path "
        f"FROM {name}_err e JOIN {name}_scan s USING (scan_id, file_id) "
        f"WHERE e.error_type = 'INVALID ENCODING' LIMIT 1"
    ).fetchall()
    if errors:
        line, _, _, _, path = errors[0]
        raise ChurnError(
            f"{path}: line {line} is not valid {csv.encoding}; set ingest.csv.encoding to the "
            "file's real encoding (e.g. latin-1 or cp1252)"
        )
    original = {str(r): str(o) for r, o in zip(read_files, files, strict=True)}
    types = {
        row[0]: row[1]
        for row in con.execute(f"DESCRIBE SELECT * EXCLUDE (filename) FROM {name}").fetchall()
    }
    # Data row numbers (header not counted) of rejected lines; accepted rows fill the gaps, so
    # source_row matches the file's line number minus one whenever no record spans lines.
    con.execute(
        f"""CREATE TEMP TABLE {name}_bad AS
        SELECT s.file_path AS __file, e.line - {int(csv.header)} AS __row,
               first(e.csv_line ORDER BY e.column_idx) AS raw_line,
               string_agg(DISTINCT e.error_type || ': ' || e.error_message, '; ') AS error
        FROM {name}_err e JOIN {name}_scan s USING (scan_id, file_id)
        GROUP BY ALL"""
    )
    (bad_rows,) = con.execute(f"SELECT count(*) FROM {name}_bad").fetchone()
    (good_rows,) = con.execute(f"SELECT count(*) FROM {name}").fetchone()
    file_map = "MAP {" + ", ".join(f"{lit(r)}: {lit(o)}" for r, o in original.items()) + "}"
    if len(read_files) == 1:
        # the table holds the file's accepted rows in file order (rowid 0, 1, ...): their
        # numbers without a window sorting them
        (only,) = original.values()
        numbered = (
            f"SELECT * EXCLUDE (filename), {lit(only)} AS __file, rowid + 1 AS __i FROM {name}"
        )
    else:
        numbered = (
            f"SELECT * EXCLUDE (filename), {file_map}[filename] AS __file, "
            f"row_number() OVER (PARTITION BY filename ORDER BY rowid) AS __i FROM {name}"
        )
    if bad_rows:
        con.execute(
            f"""CREATE TEMP TABLE {name}_gaps AS
            SELECT __file, a, max(j) AS j FROM (
                SELECT {file_map}[__file] AS __file, __row - row_number() OVER w AS a,
                       row_number() OVER w AS j
                FROM {name}_bad WINDOW w AS (PARTITION BY __file ORDER BY __row))
            GROUP BY ALL"""
        )
        con.execute(f"UPDATE {name}_bad SET __file = {file_map}[__file]")
        view = (
            f"SELECT r.* EXCLUDE (__i), r.__i + coalesce(g.j, 0) AS __row FROM ({numbered}) r "
            f"ASOF LEFT JOIN {name}_gaps g ON r.__file = g.__file AND r.__i > g.a"
        )
    else:
        view = f"SELECT * EXCLUDE (__i), __i AS __row FROM ({numbered})"
    con.execute(f"CREATE TEMP VIEW {name}_v AS {view}")
    return RawTable(
        label=label,
        relation=f"{name}_v",
        types=types,
        rows_read=int(good_rows) + int(bad_rows),
        malformed=f"{name}_bad" if bad_rows else None,
        files=tuple(str(p) for p in files),
        fmt="csv",
    )


def verify_parquet(path: Path, columns: list[str]) -> None:
    """Decode the given columns of every row group, checking page CRCs where the writer stored
    them; raise ChurnError naming the file on a duplicate column name or any decode error.

    Files written without page checksums (pyarrow's default) can still hold silently changed
    values: only a decode error reveals damage there (see docs: "Damaged Parquet files")."""
    import pyarrow as pa

    try:
        parquet = open_parquet_file(path, page_checksum_verification=True)
        names = parquet.schema_arrow.names
        _check_unique_names(path, names, "schema")
        wanted = [c for c in columns if c in names]
        for group in range(parquet.metadata.num_row_groups):
            parquet.read_row_group(group, columns=wanted)
    except ChurnError:
        raise
    except Exception as error:  # pyarrow raises OSError, ArrowInvalid, ArrowException ...
        raise ChurnError(
            f"{path}: cannot be read as Parquet: {_first_line(str(error))}; the file is damaged "
            "(a page failed its checksum or did not decode) or not Parquet at all; export it "
            "again"
        ) from None
    finally:
        pa.default_memory_pool().release_unused()  # the decoded pages: DuckDB needs the memory


def check_columns_in_every_file(
    columns_by_file: Mapping[str, Collection[str]], required: Sequence[str], label: str
) -> None:
    """Raise ChurnError when one file of a several-file source lacks a required column that
    another file holds: a folder mixing schemas, whose union by name would fill that file's
    rows with NULLs. Both engines run it on the files' Parquet footers before reading a row
    (churn.spark.ingest on Spark), so they refuse the same folder with the same message."""
    for file_name, columns in columns_by_file.items():
        missing = [c for c in required if c not in columns]
        others = columns_by_file.values()
        if missing and len(columns_by_file) > 1 and any(missing[0] in cols for cols in others):
            raise ChurnError(
                f"{file_name}: column {missing[0]!r} is missing in this file but present in "
                f"others of {label}; the folder mixes schemas; re-export this file or remove it"
            )


def _is_zoned(duckdb_type: str) -> bool:
    upper = duckdb_type.upper()
    return upper.startswith("TIMESTAMPTZ") or "WITH TIME ZONE" in upper


def _is_naive(duckdb_type: str) -> bool:
    return duckdb_type.upper().startswith("TIMESTAMP") and not _is_zoned(duckdb_type)


def open_parquet(
    con: duckdb.DuckDBPyConnection,
    files: list[Path],
    label: str,
    required: list[str],
    zone: str = "UTC",
) -> RawTable:
    """Open Parquet files (columns united by name); every file must hold the required columns.

    A column that is a naive timestamp in some files and a zoned one in others is read file by
    file: zoned values become wall-clock time in `zone`, naive ones are already that, so the
    union never shifts either kind."""
    for path in files:
        verify_parquet(path, required)
    file_list = "[" + ", ".join(lit(str(p)) for p in files) + "]"
    try:
        schema = con.execute(
            f"SELECT file_name, name, duckdb_type FROM parquet_schema({file_list}) "
            "WHERE num_children IS NULL OR num_children = 0"
        ).fetchall()
    except duckdb.Error as error:
        raise _explain_read_error(label, error, "parquet") from None
    by_file: dict[str, set[str]] = {str(p): set() for p in files}
    kinds: dict[str, dict[str, set[str]]] = {}  # column -> naive/zoned -> files
    for file_name, column, duckdb_type in schema:
        by_file.setdefault(file_name, set()).add(column)
        kind = "naive" if _is_naive(duckdb_type) else "zoned" if _is_zoned(duckdb_type) else None
        if kind:
            kinds.setdefault(column, {}).setdefault(kind, set()).add(file_name)
    check_columns_in_every_file(by_file, required, label)
    mixed = sorted(c for c, k in kinds.items() if len(k) > 1)
    options = "filename = true, file_row_number = true"
    if mixed:
        parts = []
        for path in files:
            zoned = [c for c in mixed if str(path) in kinds[c].get("zoned", set())]
            replaced = "".join(f", timezone({lit(zone)}, {ident(c)}) AS {ident(c)}" for c in zoned)
            replace_clause = f" REPLACE ({replaced[2:]})" if zoned else ""
            parts.append(f"SELECT *{replace_clause} FROM read_parquet({lit(str(path))}, {options})")
        relation = "(" + " UNION ALL BY NAME ".join(parts) + ")"
    else:
        relation = f"read_parquet({file_list}, union_by_name = true, {options})"
    name = fresh_name("raw_parquet")
    try:
        con.execute(
            f"""CREATE TEMP VIEW {name} AS
            SELECT * EXCLUDE (filename, file_row_number), filename AS __file,
                   file_row_number + 1 AS __row
            FROM {relation}"""
        )
        types = {
            row[0]: row[1]
            for row in con.execute(
                f"DESCRIBE SELECT * EXCLUDE (__file, __row) FROM {name}"
            ).fetchall()
        }
        (rows,) = con.execute(f"SELECT count(*) FROM read_parquet({file_list})").fetchone()
    except duckdb.Error as error:
        raise _explain_read_error(label, error, "parquet") from None
    return RawTable(label, name, types, int(rows), None, tuple(str(p) for p in files), "parquet")


def open_source(
    con: duckdb.DuckDBPyConnection,
    source: str,
    fmt: str,
    csv,  # churn.config.CsvOptions
    required: list[str],
    work_dir: Path,
    label: str | None = None,
    key: str = "ingest.source",
    zone: str = "UTC",
) -> RawTable:
    """Open a file or folder source (fmt csv or parquet) and fail clearly on an empty one."""
    listing = list_source(source, fmt, key)
    files = listing.files
    label = label or source
    raw = (
        open_csv(con, files, csv, label, work_dir)
        if fmt == "csv"
        else open_parquet(con, files, label, required, zone)
    )
    raw = replace(raw, skipped=listing.skipped())
    if raw.rows_read == 0:
        raise ChurnError(
            f"{label}: no data rows (only a header, or a query that returned nothing); export "
            "it again or fix the query: an empty input would silently drop every customer"
        )
    return raw


def resolve_columns(raw: RawTable, wanted: dict[str, str], section: str) -> dict[str, str]:
    """Map canonical names to the raw table's real column names; ChurnError naming the fix."""
    present = list(raw.types)
    normalized = {_normalize(c): c for c in present}
    resolved = {}
    for canonical, source_name in wanted.items():
        if source_name in raw.types:
            resolved[canonical] = source_name
            continue
        match = normalized.get(_normalize(source_name))
        if match is not None and match.strip("\ufeff \t") == source_name.strip():
            resolved[canonical] = match  # a BOM or stray spaces around the header name
            continue
        shown = ", ".join(repr(c) for c in present[:12]) + (" ..." if len(present) > 12 else "")
        hint = ""
        close = difflib.get_close_matches(source_name, present, n=1, cutoff=0.6)
        if match is not None:
            hint = f" (the file has {match!r}: names are case-sensitive)"
        elif close:
            hint = f" (did you mean {close[0]!r}?)"
        elif len(present) == 1 and re.search(r"[;,\t|]", present[0]):
            hint = (
                " (the header was read as a single column: wrong delimiter? "
                f"set {section.rsplit('.', 1)[0]}.csv.delimiter)"
            )
        raise ChurnError(
            f"{raw.label}: column {source_name!r} (mapped by {section}.{canonical}) not found"
            f"{hint}; the source has columns {shown}; fix {section}.{canonical} in params.yaml"
        )
    return resolved


def _normalize(name: str) -> str:
    return name.strip("\ufeff \t\r\n").lower()
