"""Test helper: small CDNOW-like exports (customer id, date, CDs, dollars) in the layouts real
exports come in, for `churn init`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def cdnow_like(customers: int = 60, seed: int = 3) -> pd.DataFrame:
    """Return transactions like CDNOW's: zero-padded text ids, dates over 18 months from
    1997-01-01 (days above 12 included), CD counts and dollar amounts with cents."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(1, customers + 1):
        first = int(rng.integers(0, 90))
        for day in sorted({first, *rng.integers(first, 545, size=int(rng.integers(1, 6)))}):
            cds = int(rng.integers(1, 6))
            rows.append((f"{i:05d}", pd.Timestamp("1997-01-01") + pd.Timedelta(days=int(day)),
                         cds, round(cds * float(rng.uniform(9, 16)), 2)))  # fmt: skip
    return pd.DataFrame(rows, columns=["customer_id", "date", "number_of_cds", "dollar_value"])


def write_whitespace(frame: pd.DataFrame, path: Path, header: bool = True) -> Path:
    """Write CDNOW's own layout: a header (or none, as in the original), then space-aligned
    columns, CRLF line ends."""
    lines = [" customer_id  date number_of_cds  dollar_value"] if header else []
    for row in frame.itertuples(index=False):
        lines.append(
            f" {row.customer_id} {row.date:%Y%m%d} {row.number_of_cds:2d} {row.dollar_value:7.2f}"
        )
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode())
    return path


def write_semicolon_dayfirst(frame: pd.DataFrame, path: Path) -> Path:
    """Write a German-style export: semicolons, decimal commas, dd/mm/yyyy, odd header names."""
    out = pd.DataFrame({
        "Kunden-Nr": frame["customer_id"],
        "Datum": frame["date"].dt.strftime("%d/%m/%Y"),
        "Menge": frame["number_of_cds"],
        "Betrag": frame["dollar_value"].map(lambda v: f"{v:.2f}".replace(".", ",")),
    })  # fmt: skip
    out.to_csv(path, sep=";", index=False)
    return path


def write_iso_offset(frame: pd.DataFrame, path: Path) -> Path:
    """Write ISO 8601 timestamps with a UTC offset, an order id and gzip compression."""
    out = pd.DataFrame({
        "order_ref": [f"o{i:06d}" for i in range(len(frame))],
        "client": frame["customer_id"],
        "created_at": (frame["date"] + pd.Timedelta(hours=10)).dt.strftime("%Y-%m-%dT%H:%M:%S+02:00"),
        "total": frame["dollar_value"].map(lambda v: f"{v:.2f}"),
    })  # fmt: skip
    out.to_csv(path, index=False, compression="gzip" if path.suffix == ".gz" else None)
    return path


def write_parquet(frame: pd.DataFrame, path: Path) -> Path:
    """Write typed Parquet: text ids, a timestamp column, integer units and float revenue."""
    frame.rename(columns={"date": "ordered_at", "number_of_cds": "units",
                          "dollar_value": "revenue"}).to_parquet(path, index=False)  # fmt: skip
    return path
