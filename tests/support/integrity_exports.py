"""Typed Parquet exports for the ingest checks' engine parity: a closed customer base (support.
integrity_data) as a source export, with rows every engine quarantines, and the broken exports
each blocking check must stop."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from churn import columns as C
from support.integrity_data import (
    amounts_times_100,
    newest_month,
    null_jump,
    renamed_category,
    shifted_hours,
)

REJECT_AFTER = dt.datetime(2024, 1, 15, 23, 59, 59)
COLUMNS = {
    "customer_id": "customer",
    "timestamp": "ordered_at",
    "amount": "amount_eur",
    "transaction_id": "order_id",
}


def amounts_missing(transactions: pd.DataFrame, share: float = 0.3, seed: int = 13) -> pd.DataFrame:
    """Return the table with `share` of the newest month's amounts empty (quarantined rows)."""
    out = transactions.copy()
    rng = np.random.default_rng(seed)
    out[C.AMOUNT] = out[C.AMOUNT].astype("Float64")
    out.loc[newest_month(out) & (rng.random(len(out)) < share), C.AMOUNT] = pd.NA
    return out


def dropped_column(transactions: pd.DataFrame) -> pd.DataFrame:
    """Return the table whose export lost its unmapped `note` column (the schema check)."""
    return transactions.drop(columns="note")


# case -> (what breaks the export, the ingest.integrity.accept entry of the check it trips)
BROKEN = {
    "amounts_x100_in_newest_month": (amounts_times_100, "amounts"),
    "category_renamed": (renamed_category, "categories:channel"),
    "nulls_2_to_40_percent": (null_jump, "nulls:coupon"),
    "time_zone_shifted_5_hours": (shifted_hours, "timezone"),
    "column_dropped": (dropped_column, "schema"),
    "amounts_missing_in_newest_month": (amounts_missing, "nulls:amount"),
}


def with_note(transactions: pd.DataFrame) -> pd.DataFrame:
    """Return the table with an unmapped free-text column the export also carries."""
    return transactions.assign(note=pd.array(["gift"] * len(transactions), dtype="string"))


def _edge_rows(last: dt.datetime) -> pd.DataFrame:
    """Rows every engine quarantines: ids and timestamps missing (some in the newest days), a
    future timestamp and one before the representable range (neither ends a period)."""
    day = dt.timedelta(days=1)
    rows = [
        (None, last - 2 * day, 10.0),
        (None, last - 40 * day, 11.0),
        ("c_no_time", None, 12.0),
        ("c_no_time", None, 13.0),
        ("c_future", REJECT_AFTER + 20 * day, 14.0),
        ("c_ancient", dt.datetime(1850, 1, 1), 15.0),
        ("c_no_amount", last - 3 * day, None),
    ]
    return pd.DataFrame(rows, columns=["customer", "ordered_at", "amount_eur"])


def write_export(transactions: pd.DataFrame, path: Path, zone: str | None) -> Path:
    """Write the table as the source export (customer, ordered_at, amount_eur, order_id,
    channel, coupon, and note when present) plus _edge_rows: naive wall-clock times when `zone`
    is None, else instants (the wall-clock times read in `zone`)."""
    export = pd.DataFrame(
        {
            "customer": transactions[C.CUSTOMER_ID].astype(object),
            "ordered_at": pd.to_datetime(transactions[C.TIMESTAMP]),
            "amount_eur": transactions[C.AMOUNT].astype("Float64"),
            "order_id": transactions[C.TRANSACTION_ID].astype(object),
            "channel": transactions["channel"].astype(object),
            "coupon": transactions["coupon"].astype(object),
        }
    )
    if "note" in transactions:
        export["note"] = transactions["note"].astype(object)
    edges = _edge_rows(export["ordered_at"].max().to_pydatetime())
    export = pd.concat([export, edges], ignore_index=True)
    times = pd.to_datetime(export["ordered_at"], errors="coerce")
    kind = pa.timestamp("us")
    if zone is not None:
        local = times.dt.tz_localize(zone, nonexistent="shift_forward", ambiguous=False)
        times, kind = local.dt.tz_convert("UTC"), pa.timestamp("us", tz="UTC")
    fields = {
        "customer": pa.array(export["customer"].where(export["customer"].notna(), None), pa.string()),
        "ordered_at": pa.array([None if pd.isna(t) else t.to_pydatetime() for t in times], kind),
        "amount_eur": pa.array(export["amount_eur"].to_numpy(dtype="float64", na_value=np.nan),
                               pa.float64(), mask=export["amount_eur"].isna().to_numpy()),
    }  # fmt: skip
    for name in ("order_id", "channel", "coupon", "note"):
        if name in export:
            values = export[name].where(export[name].notna(), None)
            fields[name] = pa.array(values, pa.string())
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(fields), path)
    return path
