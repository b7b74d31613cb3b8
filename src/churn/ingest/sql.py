"""SQL sources: URLs with credentials from the environment, read-only queries, hashed snapshots."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from churn.config import is_secret_query_key
from churn.errors import ChurnError
from churn.files import atomic_path, sha256_file

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
SNAPSHOT_BATCH_ROWS = 100_000
# page checksums let ingest tell a snapshot damaged on disk from a good one
SNAPSHOT_WRITE = {"compression": "zstd", "write_page_checksum": True}


@dataclass(frozen=True)
class Snapshot:
    """A SQL result saved as Parquet: where, how many rows, and the file's sha256."""

    path: str
    rows: int
    sha256: str


def mask_url(source) -> str:
    """Return the URL (text or SQLAlchemy URL) with its password and every secret query value
    (password=, sslpassword=, token=, api_key=, ...) replaced by ***, safe for logs and reports."""
    if isinstance(source, str) and source.startswith("env:"):
        return source  # the variable's name, never its value
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(source)
    except ArgumentError:
        text = re.sub(r"//([^:/@]*):[^@]*@", r"//\1:***@", str(source))
        return _mask_query_text(text)
    return _mask_query_text(url.render_as_string(hide_password=True))


def _mask_query_text(text: str) -> str:
    """Mask the values of secret keys in a URL's query string (text)."""

    def hide(match: re.Match) -> str:
        key = match.group(2)
        return match.group(1) + key + ("=***" if is_secret_query_key(key) else match.group(3))

    return re.sub(r"([?&;])([^=&;#]+)(=[^&;#]*)", hide, text)


def resolve_sql_url(source: str, password_env: str, environ: Mapping[str, str]):
    """Return a SQLAlchemy URL: `env:VAR` reads the whole URL from VAR; the password from password_env."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    shown = mask_url(source)
    if source.startswith("env:"):
        var = source[4:]
        if not environ.get(var):
            raise ChurnError(
                f"ingest.source = {source}: environment variable {var} is not set; export it "
                "with the database URL (user:password@host/db) before running"
            )
        text = environ[var]
    else:
        text = source
    try:
        url = make_url(text)
    except ArgumentError:
        raise ChurnError(
            f"ingest.source {shown}: not a valid SQLAlchemy URL; write it like "
            "postgresql+psycopg://user@host:5432/db"
        ) from None
    if url.password is None and environ.get(password_env):
        url = url.set(password=environ[password_env])
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")  # the driver that is installed
    return url


def parse_table_name(name: str) -> tuple[str | None, str]:
    """Split '[schema.]table' and check both parts are plain identifiers; ChurnError otherwise."""
    parts = name.split(".")
    if len(parts) > 2 or not all(IDENTIFIER.fullmatch(p) for p in parts):
        raise ChurnError(
            f"sql.table = {name!r}: not a plain [schema.]table name (letters, digits, _); "
            "for anything else write a query"
        )
    return (parts[0], parts[1]) if len(parts) == 2 else (None, parts[0])


def check_query(query: str) -> str:
    """Return the query without a trailing ';' if it is one SELECT (or WITH); ChurnError otherwise."""
    text = query.strip().rstrip(";").strip()
    without_strings = re.sub(r"'(?:[^']|'')*'", "''", text)
    if ";" in without_strings:
        raise ChurnError("sql.query holds more than one statement; write a single SELECT")
    if not re.match(r"(?is)^\s*(select|with)\b", text):
        raise ChurnError("sql.query must be a SELECT (or WITH ... SELECT); it is run read-only")
    return text


@contextlib.contextmanager
def _read_only_connection(url, shown: str) -> Iterator:  # noqa: ANN001
    """Yield a read-only connection (rolled back, never committed); a refusal by the database or
    a URL SQLAlchemy cannot use is a ChurnError naming the masked source and what to check."""
    import sqlalchemy as sa
    from sqlalchemy.exc import SQLAlchemyError

    engine = None
    try:
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        with engine.connect() as conn:
            yield _read_only(conn)
            conn.rollback()
    except ChurnError:
        raise
    except (SQLAlchemyError, sa.exc.ArgumentError) as error:
        message = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        raise ChurnError(
            f"{shown}: the database refused the read: {message}; check ingest.source, "
            "ingest.sql and that the database is reachable"
        ) from None
    finally:
        if engine is not None:
            engine.dispose()


def _reflect_table(conn, table: str, columns: list[str], shown: str):  # noqa: ANN001, ANN202
    """Return the SQLAlchemy Table `table` reflected on `conn`; ChurnError naming the table or
    the first of `columns` it lacks (with the columns it has) and the params key to fix."""
    import sqlalchemy as sa
    from sqlalchemy.exc import NoSuchTableError

    schema, name = parse_table_name(table)
    try:
        reflected = sa.Table(name, sa.MetaData(), schema=schema, autoload_with=conn)
    except NoSuchTableError:
        raise ChurnError(f"{shown}: table {table!r} not found; fix ingest.sql.table") from None
    missing = [c for c in columns if c not in reflected.c]
    if missing:
        raise ChurnError(
            f"{shown}: table {table!r} has no column {missing[0]!r}; it has "
            f"{', '.join(repr(c.name) for c in reflected.c)}; fix the column mapping"
        )
    return reflected


def copy_sql_source(
    url,
    table: str | None,
    query: str | None,
    query_params: Mapping[str, object],
    columns: list[str],
    path: str | Path,
    shown: str,
) -> Snapshot:
    """Run a read-only SELECT and write its rows, sorted, to Parquet; return rows and sha256."""
    import sqlalchemy as sa

    path = Path(path)
    with _read_only_connection(url, shown) as conn:
        if table is not None:
            reflected = _reflect_table(conn, table, columns, shown)
            picked = [reflected.c[c] for c in columns]
            statement = sa.select(*picked).order_by(*picked)
        else:
            text = check_query(query or "")
            bound = dict(query_params)
            width = _count_columns(conn, text, bound)
            order = ", ".join(str(i + 1) for i in range(width))
            statement = sa.text(f"SELECT * FROM ({text}) AS churn_q ORDER BY {order}").bindparams(
                **bound
            )
        result = conn.execution_options(stream_results=True, yield_per=SNAPSHOT_BATCH_ROWS)
        result = result.execute(statement)
        rows = _write_batches(result, path)
    return Snapshot(str(path), rows, sha256_file(path))


def _count_columns(conn, text: str, bound: dict[str, object]) -> int:
    """Return how many columns the query yields (asks the database for zero rows)."""
    import sqlalchemy as sa

    probe = sa.text(f"SELECT * FROM ({text}) AS churn_q WHERE 1 = 0").bindparams(**bound)
    return len(conn.execute(probe).keys())


def _read_only(conn):
    """Make the connection refuse writes where the database supports it."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        conn.exec_driver_sql("SET TRANSACTION READ ONLY")
    elif dialect == "sqlite":
        conn.exec_driver_sql("PRAGMA query_only = ON")
    elif dialect in ("mysql", "mariadb"):
        conn.exec_driver_sql("SET SESSION TRANSACTION READ ONLY")
    return conn  # elsewhere the transaction is rolled back, never committed


def _write_batches(result, path: Path) -> int:
    """Stream result rows into a Parquet file; return the row count."""
    names = list(result.keys())
    writer = None
    schema = None
    rows = 0
    with atomic_path(path) as tmp:
        for batch in result.partitions():
            columns = list(zip(*batch, strict=True)) if batch else [[] for _ in names]
            arrays = [_column_array(values) for values in columns]
            table = pa.Table.from_arrays(arrays, names=names)
            if writer is None:
                schema = pa.schema(
                    [
                        f.with_type(pa.string()) if pa.types.is_null(f.type) else f
                        for f in table.schema
                    ]
                )
                writer = pq.ParquetWriter(tmp, schema, **SNAPSHOT_WRITE)
            writer.write_table(table.cast(schema))
            rows += table.num_rows
        if writer is None:
            schema = pa.schema([pa.field(n, pa.string()) for n in names])
            writer = pq.ParquetWriter(tmp, schema, **SNAPSHOT_WRITE)
        writer.close()
    return rows


def _column_array(values) -> pa.Array:
    """Return an Arrow array for one column of a batch; decimals become float64.

    Arrow infers a decimal's precision from the values in each batch, so batches would disagree;
    amounts end up as float64 anyway.
    """
    array = pa.array(list(values))
    return array.cast(pa.float64()) if pa.types.is_decimal(array.type) else array


@dataclass(frozen=True)
class SourceStats:
    """What a cheap probe of a SQL source sees: its row count and newest timestamp (as text)."""

    rows: int
    newest: str | None


def read_source_stats(
    url,
    table: str | None,
    query: str | None,
    query_params: Mapping[str, object],
    timestamp_column: str | None,
    shown: str,
) -> SourceStats:
    """Return count(*) and max(timestamp_column) of a table or query, read-only (one aggregate
    query, no rows copied): new rows change the count or the newest timestamp."""
    import sqlalchemy as sa

    with _read_only_connection(url, shown) as conn:
        if table is not None:
            wanted = [timestamp_column] if timestamp_column is not None else []
            reflected = _reflect_table(conn, table, wanted, shown)
            newest = [sa.func.max(reflected.c[timestamp_column])] if timestamp_column else []
            statement = sa.select(sa.func.count(), *newest).select_from(reflected)
        else:
            text = check_query(query or "")
            newest_sql = ""
            if timestamp_column is not None:
                quoted = conn.dialect.identifier_preparer.quote(timestamp_column)
                newest_sql = f", max(churn_q.{quoted})"
            statement = sa.text(f"SELECT count(*){newest_sql} FROM ({text}) AS churn_q").bindparams(
                **dict(query_params)
            )
        row = conn.execute(statement).one()
    newest_value = row[1] if len(row) > 1 else None
    return SourceStats(int(row[0]), None if newest_value is None else _as_text(newest_value))


def _as_text(value: object) -> str:
    """Return a database value as stable text (ISO 8601 for dates and times)."""
    isoformat = getattr(value, "isoformat", None)
    return isoformat() if callable(isoformat) else str(value)
