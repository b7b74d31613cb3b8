"""Opening CSV and Parquet sources in DuckDB as text-faithful raw tables with row numbers."""

from __future__ import annotations

import codecs
import difflib
import gzip
import itertools
import re
from dataclasses import dataclass
from pathlib import Path

import duckdb

from churn.config import WHITESPACE_DELIMITER
from churn.errors import ChurnError

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


def detect_format(source: str, fmt: str) -> str:
    """Return csv, parquet or sql for a source and the format param (auto looks at suffixes)."""
    from churn.config import is_sql_url

    if fmt != "auto":
        return fmt
    if is_sql_url(source):
        return "sql"
    path = Path(source)
    if path.is_dir():
        names = [p.name.lower() for p in path.rglob("*") if p.is_file()]
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


def list_files(source: str, fmt: str, key: str = "ingest.source") -> list[Path]:
    """Return the data files of a file or folder source, sorted; ChurnError when there are none."""
    path = Path(source)
    if not path.exists():
        raise ChurnError(f"{source}: not found; fix {key} in params.yaml")
    if path.is_file():
        return [path]
    suffixes = CSV_SUFFIXES if fmt == "csv" else PARQUET_SUFFIXES
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.name.lower().endswith(suffixes))
    if not files:
        raise ChurnError(f"{source}: folder has no {fmt} files; check {key}")
    return files


def _first_line(message: str) -> str:
    return message.strip().splitlines()[0] if message.strip() else message


def _explain_read_error(label: str, error: Exception, fmt: str) -> ChurnError:
    """Turn a DuckDB read error into a ChurnError naming the file and a likely fix."""
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
    ]
    if csv.delimiter is not None:
        options.append(f"delim = {lit(chr(9) if whitespace else csv.delimiter)}")
    file_list = "[" + ", ".join(lit(str(p)) for p in read_files) + "]"
    try:
        con.execute(
            f"CREATE TEMP TABLE {name} AS SELECT * FROM read_csv({file_list}, {', '.join(options)})"
        )
    except duckdb.Error as error:
        raise _explain_read_error(label, error, "csv") from None
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


def open_parquet(
    con: duckdb.DuckDBPyConnection, files: list[Path], label: str, required: list[str]
) -> RawTable:
    """Open Parquet files (columns united by name); every file must hold the required columns."""
    file_list = "[" + ", ".join(lit(str(p)) for p in files) + "]"
    try:
        schema = con.execute(
            f"SELECT file_name, name FROM parquet_schema({file_list}) WHERE num_children IS NULL "
            "OR num_children = 0"
        ).fetchall()
    except duckdb.Error as error:
        raise _explain_read_error(label, error, "parquet") from None
    by_file: dict[str, set[str]] = {str(p): set() for p in files}
    for file_name, column in schema:
        by_file.setdefault(file_name, set()).add(column)
    for file_name, columns in by_file.items():
        missing = [c for c in required if c not in columns]
        if missing and len(files) > 1 and any(missing[0] in cols for cols in by_file.values()):
            raise ChurnError(
                f"{file_name}: column {missing[0]!r} is missing in this file but present in "
                f"others of {label}; the folder mixes schemas; re-export this file or remove it"
            )
    name = fresh_name("raw_parquet")
    try:
        con.execute(
            f"""CREATE TEMP VIEW {name} AS
            SELECT * EXCLUDE (filename, file_row_number), filename AS __file,
                   file_row_number + 1 AS __row
            FROM read_parquet({file_list}, union_by_name = true, filename = true,
                              file_row_number = true)"""
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
) -> RawTable:
    """Open a file or folder source (fmt csv or parquet) and fail clearly on an empty one."""
    files = list_files(source, fmt, key)
    label = label or source
    raw = (
        open_csv(con, files, csv, label, work_dir)
        if fmt == "csv"
        else open_parquet(con, files, label, required)
    )
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
