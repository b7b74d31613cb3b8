"""Hand-built clean tables for the features tests (the clean-transactions contract, tiny)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import duckdb
import pandas as pd
import pyarrow as pa

from churn.config import ChurnParams, EngineParams, FeaturesParams
from churn.cutoffs import Cutoff
from churn.engine import open_duckdb
from churn.features.build import compute_snapshots, open_inputs

CUTOFF = date(2024, 6, 30)


def day(offset: int) -> date:
    """Return the date `offset` days after the test cutoff (negative = before)."""
    return CUTOFF + timedelta(days=offset)


def transactions_frame(rows: list[tuple[str, date, float]]) -> pa.Table:
    """Return a clean transactions table from (customer_id, date, amount) rows."""
    return pa.table(
        {
            "customer_id": pa.array([r[0] for r in rows], pa.string()),
            "timestamp": pa.array(
                [datetime.combine(r[1], time(12)) for r in rows], pa.timestamp("us")
            ),
            "date": pa.array([r[1] for r in rows], pa.date32()),
            "amount": pa.array([float(r[2]) for r in rows], pa.float64()),
            "transaction_id": pa.array([None] * len(rows), pa.string()),
        }
    )


def customers_frame(rows: list[tuple[str, date | None, str, str]] = ()) -> pa.Table:
    """Return a clean customers table (possibly empty, same schema)."""
    return pa.table(
        {
            "customer_id": pa.array([r[0] for r in rows], pa.string()),
            "signup_date": pa.array([r[1] for r in rows], pa.date32()),
            "channel": pa.array([r[2] for r in rows], pa.string()),
            "region": pa.array([r[3] for r in rows], pa.string()),
        }
    )


def nps_frame(rows: list[tuple[str, date, int]] = ()) -> pa.Table:
    """Return a clean NPS table (possibly empty, same schema)."""
    return pa.table(
        {
            "customer_id": pa.array([r[0] for r in rows], pa.string()),
            "answered_at": pa.array([r[1] for r in rows], pa.date32()),
            "nps_score": pa.array([r[2] for r in rows], pa.int64()),
        }
    )


ENGINE = EngineParams(threads=1, memory_limit="500MB")
_CONNECTION: list[duckdb.DuckDBPyConnection] = []


def _connection() -> duckdb.DuckDBPyConnection:
    """Reuse one connection (inputs are re-registered on every call): fast tests."""
    if not _CONNECTION:
        _CONNECTION.append(open_duckdb(ENGINE, ordered=False))
    return _CONNECTION[0]


def snapshot_at(
    transactions: pa.Table | pd.DataFrame,
    cutoffs: list[date] | date = CUTOFF,
    customers: pa.Table | None = None,
    nps: pa.Table | None = None,
    params: FeaturesParams | None = None,
    labelled: bool = False,
    churn: ChurnParams | None = None,
) -> pd.DataFrame:
    """Return snapshots at the given cutoff(s), one query, indexed by (customer_id, cutoff)."""
    params = params or FeaturesParams()
    churn = churn or ChurnParams()
    cutoff_list = [cutoffs] if isinstance(cutoffs, date) else list(cutoffs)
    role = "test" if labelled else "score"
    plan = [Cutoff(cutoff, role, None) for cutoff in cutoff_list]
    con = open_inputs(
        transactions,
        customers if customers is not None else customers_frame(),
        nps if nps is not None else nps_frame(),
        con=_connection(),
    )
    frame = compute_snapshots(con, plan, churn, params, labelled=labelled)
    return frame.set_index(["customer_id", "cutoff"])
