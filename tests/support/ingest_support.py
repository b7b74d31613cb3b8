"""Helpers for the ingest tests: write small sources into tmp_path and run the stage on them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from churn.config import EngineParams, parse_params
from churn.ingest import IngestOutputs, run_ingest

HEADER = "customer,order_id,ordered_at,amount\n"
# A fixed "now" so future-date rules do not depend on when the tests run.
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
BASE = {
    "columns": {
        "customer_id": "customer",
        "timestamp": "ordered_at",
        "amount": "amount",
        "transaction_id": "order_id",
    },
    "timezone": "Europe/Berlin",
    "csv": {"delimiter": ","},
    "max_quarantine_share": 1.0,
}


@dataclass
class Ingested:
    """What one ingest run produced."""

    report: dict[str, Any]
    history: dict[str, Any]
    transactions: pd.DataFrame
    quarantine: pd.DataFrame
    customers: pd.DataFrame
    nps: pd.DataFrame


ENGINE = EngineParams(threads=1, memory_limit="500MB")


def ingest_params(source: Path | str, **overrides: Any):
    """Return validated IngestParams for `source`, BASE settings and overrides (deep-merged)."""
    settings = _merge(BASE, {"source": str(source), **overrides})
    return parse_params({"ingest": settings}).ingest


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def run(
    tmp_path: Path,
    source: Path | str,
    history: dict[str, Any] | None = None,
    environ: dict[str, str] | None = None,
    **overrides: Any,
) -> Ingested:
    """Run the ingest stage on `source` into tmp_path/out and read every output back."""
    params = ingest_params(source, **overrides)
    out = tmp_path / "out"
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    outputs = IngestOutputs.in_folder(out)
    report, new_history = run_ingest(
        params, ENGINE, outputs, tmp_path / "sql_copies", history or {}, NOW, environ or {}, work
    )
    return Ingested(
        report,
        new_history,
        pd.read_parquet(outputs.transactions),
        pd.read_parquet(outputs.quarantine),
        pd.read_parquet(outputs.customers),
        pd.read_parquet(outputs.nps),
    )


def write_csv(tmp_path: Path, body: str, name: str = "tx.csv", header: str = HEADER) -> Path:
    """Write header + body as a UTF-8 CSV file and return its path."""
    path = tmp_path / name
    path.write_text(header + body, encoding="utf-8", newline="")
    return path


def reasons(result: Ingested) -> dict[str, int]:
    """Return the report's quarantine counts by reason."""
    return result.report["quarantined_by_reason"]
