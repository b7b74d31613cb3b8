"""Shared benchmark code: paths, generated clean data through the real CLI, CDNOW, as-of windows.

Run benchmarks from the repository root as modules (`python -m benchmarks.bench_score`,
`python -m benchmarks.experiments.asof_eval ...`), so they import this module as `benchmarks.common`.
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from churn.columns import (
    AMOUNT,
    ANSWERED_AT,
    CHANNEL,
    CUSTOMER_ID,
    DATE,
    NPS_SCORE,
    REGION,
    SIGNUP_DATE,
    TIMESTAMP,
    TRANSACTION_ID,
)

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "benchmarks" / "data"  # gitignored inputs, made once
RESULTS = ROOT / "benchmarks" / "results"  # decision records, committed
HORIZON = 90  # the as-of experiments' churn horizon (days)


# --------------------------------------------------------------------------- generated clean data
def generated_interim(
    folder: Path, customers: int, params: Path = ROOT / "params.yaml", file_format: str = "csv"
) -> Path:
    """Return folder/interim with clean tables made by `churn generate` + `churn ingest` (once).

    Uses `params` (the repository's params.yaml by default) with the ingest sources pointed at
    folder/raw; nothing else changes, so the data is what the pipeline itself would produce.
    """
    raw, interim = folder / "raw", folder / "interim"
    if (interim / "transactions.parquet").exists():
        return interim
    settings = yaml.safe_load(params.read_text(encoding="utf-8"))
    txn_name = "transactions.csv.gz" if file_format == "csv" else "transactions.parquet"
    settings["ingest"]["source"] = str(raw / txn_name)
    for side in ("customers", "nps"):
        if settings["ingest"].get(side):
            settings["ingest"][side]["source"] = str(raw / f"{side}.csv")
    folder.mkdir(parents=True, exist_ok=True)
    copy = folder / "params.yaml"
    copy.write_text(yaml.safe_dump(settings, sort_keys=False), encoding="utf-8")
    churn = [sys.executable, "-m", "churn"]
    subprocess.run(
        [*churn, "generate", "--out", str(raw), "--params", str(copy),
         "--customers", str(customers), "--format", file_format],
        check=True,
    )  # fmt: skip
    subprocess.run(
        [*churn, "ingest", "--out", str(interim), "--report", str(folder / "ingest.json"),
         "--sql-copies", str(raw), "--state", str(folder / "ingest_history.json"),
         "--params", str(copy)],
        check=True,
    )  # fmt: skip
    return interim


# --------------------------------------------------------------------------- CDNOW
def read_cdnow(path: Path) -> pd.DataFrame:
    """Return CDNOW_master.txt rows (customer id, YYYYMMDD, CDs, dollars) as clean transactions.

    `path` may be the file itself or the `lifetimes` wheel / sdist that ships it.
    """
    name = "CDNOW_master.txt"
    if path.suffix == ".whl":
        with zipfile.ZipFile(path) as archive:
            member = next(n for n in archive.namelist() if n.endswith(name))
            text = archive.read(member).decode()
    elif path.name.endswith((".tar.gz", ".tgz")):
        with tarfile.open(path) as archive:
            member = next(m for m in archive.getmembers() if m.name.endswith(name))
            text = archive.extractfile(member).read().decode()
    else:
        text = path.read_text(encoding="utf-8")
    raw = pd.read_csv(io.StringIO(text), sep=r"\s+", header=None, dtype=str)
    raw = raw[raw[0].str.isdigit()]  # the packaged file has a header line
    dates = pd.to_datetime(raw[1], format="%Y%m%d")
    return pd.DataFrame(
        {
            CUSTOMER_ID: pd.array(raw[0], dtype="string"),
            TIMESTAMP: dates.astype("datetime64[us]"),
            DATE: dates.dt.date,
            AMOUNT: raw[3].astype("float64"),
            TRANSACTION_ID: pd.array([None] * len(raw), dtype="string"),
        }
    ).sort_values([CUSTOMER_ID, TIMESTAMP], kind="stable", ignore_index=True)


def empty_side_tables() -> tuple[pa.Table, pa.Table]:
    """Return zero-row customers and NPS tables with the clean schemas (CDNOW has neither)."""
    customers = pa.table(
        {
            CUSTOMER_ID: pa.array([], pa.string()),
            SIGNUP_DATE: pa.array([], pa.date32()),
            CHANNEL: pa.array([], pa.string()),
            REGION: pa.array([], pa.string()),
        }
    )
    nps = pa.table(
        {
            CUSTOMER_ID: pa.array([], pa.string()),
            ANSWERED_AT: pa.array([], pa.date32()),
            NPS_SCORE: pa.array([], pa.int64()),
        }
    )
    return customers, nps


def outcome_after(transactions: pd.DataFrame, as_of, horizon: int) -> set[str]:  # noqa: ANN001
    """Return the ids of customers with a purchase dated in (as_of, as_of + horizon]."""
    dates = pd.to_datetime(transactions[DATE]).dt.date
    window = (dates > as_of) & (dates <= as_of + timedelta(days=horizon))
    return set(transactions.loc[window & (transactions[AMOUNT] > 0), CUSTOMER_ID])


# --------------------------------------------------------------------------- as-of experiments
def load_clean(source: Path) -> tuple[pd.DataFrame, object, object]:
    """Return clean transactions and side tables from an ingest folder or a CDNOW file."""
    empty_customers, empty_nps = empty_side_tables()
    if source.is_file():
        return read_cdnow(source), empty_customers, empty_nps
    customers = source / "customers.parquet"
    nps = source / "nps.parquet"
    return (
        pd.read_parquet(source / "transactions.parquet"),
        pq.read_table(customers) if customers.is_file() else empty_customers,
        pq.read_table(nps) if nps.is_file() else empty_nps,
    )


def truncated(specs: list[str], shifts: list[int]) -> Iterator[tuple]:
    """Yield (name, as_of, transactions known at as_of, customers, nps, all transactions).

    Each spec is NAME=PATH; as_of = last date - HORIZON - shift, and nothing after it is kept."""
    for spec in specs:
        name, path = spec.split("=", 1)
        transactions, customers, nps = load_clean(Path(path))
        last = max(transactions[DATE])
        for shift in shifts:
            as_of = last - timedelta(days=HORIZON + shift)
            known = transactions[transactions[DATE] <= as_of].reset_index(drop=True)
            yield name, as_of, known, customers, nps, transactions


def asof_arguments(description: str, shifts: list[int], out: Path) -> argparse.Namespace:
    """Return the as-of experiments' command line: --data NAME=PATH ..., --shifts, --params, --out."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--data", nargs="+", required=True, help="NAME=PATH")
    parser.add_argument("--shifts", nargs="+", type=int, default=shifts)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--out", type=Path, default=out)
    return parser.parse_args()
