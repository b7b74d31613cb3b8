"""Optional copy of a published list into a SQL table (rows replaced per as_of date)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd

from churn.columns import AS_OF
from churn.errors import ChurnError


def _sql_type(values: pd.Series) -> Any:
    import sqlalchemy as sa

    if pd.api.types.is_bool_dtype(values):
        return sa.Boolean()
    if pd.api.types.is_integer_dtype(values):
        return sa.BigInteger()
    if pd.api.types.is_float_dtype(values):
        return sa.Float(precision=53)
    if values.map(lambda v: isinstance(v, dt.date)).any() or values.name == AS_OF:
        return sa.Date()
    return sa.Text()


def export_to_sql(frame: pd.DataFrame, url: str, table: str, schema_name: str | None = None) -> int:
    """Replace the as_of date's rows of a SQL table with `frame` in one transaction; return rows.

    Creates the table (with an index on as_of) when missing; an existing table must already have
    every column of the list. Other dates' rows are left alone.
    """
    import sqlalchemy as sa
    from sqlalchemy.exc import SQLAlchemyError

    if frame.empty:
        raise ChurnError("SQL export: the list is empty; nothing to export")
    as_of = frame[AS_OF].iloc[0]
    as_of = as_of if isinstance(as_of, dt.date) else dt.date.fromisoformat(str(as_of))
    engine = sa.create_engine(url)
    from churn.ingest.sql import mask_url  # one masking rule: password and secret query values

    shown = mask_url(url)
    metadata = sa.MetaData(schema=schema_name)
    target = sa.Table(
        table,
        metadata,
        *(sa.Column(name, _sql_type(frame[name])) for name in frame.columns),
        sa.Index(f"ix_{table}_as_of", AS_OF),
    )
    records = frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
    try:
        with engine.begin() as connection:
            metadata.create_all(connection, checkfirst=True)
            present = {c["name"] for c in sa.inspect(connection).get_columns(table, schema_name)}
            missing = [name for name in frame.columns if name not in present]
            if missing:
                raise ChurnError(
                    f"SQL export to {shown} table {table}: the table has no column(s) {missing}; "
                    "add them or export to a new table (publish.sql.table)"
                )
            connection.execute(sa.delete(target).where(target.c[AS_OF] == as_of))
            connection.execute(sa.insert(target), records)
    except SQLAlchemyError as error:
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        raise ChurnError(
            f"SQL export to {shown} table {table} failed and was rolled back: {reason}"
        ) from None
    finally:
        engine.dispose()
    return len(records)
