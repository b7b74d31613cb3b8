"""Typed Parquet transactions for the Spark ingest tests: generated rows plus every row rule's
edge case, split over two files of one export (zoned or naive timestamps), and side tables."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

NOW = datetime(2025, 7, 1, 12, 0, tzinfo=UTC)
T0 = datetime(2025, 3, 29, 22, 30, tzinfo=UTC)  # the night Berlin moves to summer time

EDGE_ROWS = [  # customer, ordered_at (UTC instant), amount, order_id, store
    (None, T0, 5.0, "e1", "s1"),
    ("   ", T0, 5.0, "e2", "s1"),  # blank id: missing
    ("=HYPERLINK(1)", T0, 5.0, "e3", "s1"),
    ("ab\x01c", T0, 5.0, "e4", "s1"),
    ("  padded ", T0, 5.0, "e5", "s2"),  # trimmed, valid
    ("c_ts_null", None, 5.0, "e6", "s1"),
    ("c_future", datetime(2025, 7, 2, tzinfo=UTC), 5.0, "e7", "s1"),
    ("c_old", datetime(1850, 1, 1, tzinfo=UTC), 5.0, "e8", "s1"),
    ("c_amount_null", T0, None, "e9", "s1"),
    ("c_nan", T0, math.nan, "e10", "s1"),
    ("c_inf", T0, math.inf, "e11", "s1"),
    ("c_ninf", T0, -math.inf, "e12", "s1"),
    ("c_huge", T0, 5e12, "e13", "s1"),
    ("c_zero", T0, 0.0, "e14", None),  # a missing passthrough value is kept
    ("c_refund", T0 + timedelta(hours=1), -3.5, "e15", "s2"),
    ("c_dup", T0, 7.0, "d1", "s1"),  # sent twice: one copy removed
    ("c_dup", T0, 7.0, "d1", "s1"),
    ("c_lines", T0, 1.0, "l1", "s1"),  # one order's two lines: both kept
    ("c_lines", T0, 2.0, "l1", "s1"),
    ("c_reuse_a", T0, 1.0, "r1", "s1"),  # an id used by two customers: both quarantined
    ("c_reuse_b", T0, 1.0, "r1", "s1"),
    ("c_reuse_day", T0, 1.0, "r2", "s1"),  # ...or on two local dates
    ("c_reuse_day", T0 + timedelta(days=2), 1.0, "r2", "s1"),
    ("c_no_id", T0, 4.0, None, "s3"),  # identical rows without an id
    ("c_no_id", T0, 4.0, None, "s3"),
    ("c_dst", datetime(2025, 3, 30, 1, 30, tzinfo=UTC), 2.0, "e16", "s3"),  # 03:30 in Berlin
]


def generated_rows(seed: int, count: int) -> list[tuple]:
    """Return `count` seeded orders (customer, UTC instant, amount, order id, store)."""
    rng = np.random.default_rng(seed)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    minutes = (NOW - timedelta(days=2) - start).total_seconds() // 60
    return [
        (
            f"{rng.integers(1, 150):05d}",
            start + timedelta(minutes=int(rng.integers(0, minutes))),
            round(float(rng.gamma(2.0, 20.0)), 2),
            f"o{seed}-{i}",
            f"s{rng.integers(1, 4)}",
        )
        for i in range(count)
    ]


def write_orders(path: Path, rows: list[tuple], zoned: bool) -> None:
    """Write orders as Parquet: zoned timestamps (UTC instants) or naive wall-clock times."""
    customer, ordered_at, amount, order_id, store = (list(c) for c in zip(*rows, strict=True))
    if not zoned:  # naive wall-clock times
        ordered_at = [None if t is None else t.replace(tzinfo=None) for t in ordered_at]
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(
        pa.table(
            {
                "customer": pa.array(customer, pa.string()),
                "ordered_at": pa.array(ordered_at, pa.timestamp("us", tz="UTC" if zoned else None)),
                "amount": pa.array(amount, pa.float64()),
                "order_id": pa.array(order_id, pa.string()),
                "store": pa.array(store, pa.string()),
            }
        ),
        path,
    )


def typed_folder(folder: Path, zoned: bool | str) -> Path:
    """Two Parquet files of one export: generated rows, the edge cases split over both files,
    a row of the first file re-sent in the second; a hidden file that must not be read.
    zoned="mixed": the first file naive (wall-clock times), the second zoned."""
    first = generated_rows(1, 900) + EDGE_ROWS[:13]
    second = generated_rows(2, 900) + EDGE_ROWS[13:] + [first[5]]
    write_orders(folder / "part-a.parquet", first, zoned is True)
    write_orders(folder / "part-b.parquet", second, bool(zoned))
    write_orders(folder / ".hidden" / "old.parquet", generated_rows(3, 5), bool(zoned))
    return folder


def side_tables(folder: Path) -> dict:
    """A customers and an NPS CSV (side tables: cleaned by the shared DuckDB code on both)."""
    ids = [f"{i:05d}" for i in range(1, 150)]
    pd.DataFrame(
        {
            "customer_id": ids + ["bad"],
            "signup_date": ["2023-06-01"] * len(ids) + ["not a date"],
            "channel": ["web", "store"] * (len(ids) // 2) + ["web", "web"],
            "region": ["north"] * (len(ids) + 1),
        }
    ).to_csv(folder / "customers.csv", index=False)
    pd.DataFrame(
        {"customer_id": ids[:40], "answered_at": ["2025-02-01"] * 40, "score": list(range(40))}
    ).assign(score=lambda f: f["score"] % 11).to_csv(folder / "nps.csv", index=False)
    return {
        "customers": {"source": str(folder / "customers.csv")},
        "nps": {"source": str(folder / "nps.csv")},
    }
