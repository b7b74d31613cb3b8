"""Test/bench helper: the generator's raw export -> the clean-transactions contract (not a stage).

The real pipeline gets clean tables from `churn ingest`; this helper only parses `ordered_at`,
drops the malformed rows the generator injects and dedupes `order_id`, so the features stage can be
developed and benchmarked before ingest lands.

    python benchmarks/clean_raw.py RAW_DIR OUT_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

import duckdb
import pandas as pd

CLEAN_SQL = """
SELECT customer, order_id, ts AS "timestamp", CAST(ts AS DATE) AS "date", amt AS amount,
       order_id AS transaction_id
FROM (
  SELECT customer, order_id,
         TRY_STRPTIME(ordered_at, '%Y-%m-%d %H:%M:%S') AS ts,
         TRY_CAST(amount AS DOUBLE) AS amt
  FROM raw
)
WHERE customer <> '' AND ts IS NOT NULL AND year(ts) < 2090 AND isfinite(amt)
QUALIFY ROW_NUMBER() OVER (PARTITION BY order_id ORDER BY ts) = 1
"""


def clean_transactions_sql(source: str) -> str:
    """Return SQL turning the raw relation `source` into clean rows, sorted as the contract says."""
    inner = CLEAN_SQL.replace("FROM raw", f"FROM {source}")
    return (
        'SELECT customer AS customer_id, "timestamp", "date", amount, transaction_id '
        f'FROM ({inner}) ORDER BY customer_id, "timestamp", transaction_id'
    )


def clean_raw_frames(
    transactions: pd.DataFrame, customers: pd.DataFrame, nps: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Return clean (transactions, customers, nps) frames from simulate() chunks' raw frames."""
    con = duckdb.connect()
    con.register("raw_txn", transactions)
    clean = con.sql(clean_transactions_sql("raw_txn")).to_arrow_table().to_pandas()
    side_customers = pd.DataFrame(
        {
            "customer_id": customers["customer"].astype("string"),
            "signup_date": pd.to_datetime(customers["signup_date"]).dt.date,
            "channel": customers["channel"].astype("string"),
            "region": customers["region"].astype("string"),
        }
    )
    side_nps = pd.DataFrame(
        {
            "customer_id": nps["customer"].astype("string"),
            "answered_at": pd.to_datetime(nps["answered_at"]).dt.date,
            "nps_score": nps["score"].astype("int64"),
        }
    )
    return clean.astype({"customer_id": "string"}), side_customers, side_nps


def convert_raw_dir(raw: Path, out: Path) -> None:
    """Write out/{transactions,customers,nps}.parquet from a `churn generate` folder."""
    out.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(config={"memory_limit": "4GB"})
    con.execute("SET preserve_insertion_order = false")
    txn = raw / "transactions.parquet"
    con.execute(f"CREATE VIEW raw_txn AS SELECT * FROM read_parquet('{txn}')")
    con.execute(
        f"COPY ({clean_transactions_sql('raw_txn')}) TO '{out / 'transactions.parquet'}' "
        "(FORMAT parquet, COMPRESSION zstd)"
    )
    con.execute(
        f"COPY (SELECT CAST(customer AS VARCHAR) AS customer_id, CAST(signup_date AS DATE) AS signup_date, "
        f"channel, region FROM read_csv('{raw / 'customers.csv'}', all_varchar=true) "
        f"ORDER BY customer_id) TO '{out / 'customers.parquet'}' (FORMAT parquet)"
    )
    con.execute(
        f"COPY (SELECT CAST(customer AS VARCHAR) AS customer_id, CAST(answered_at AS DATE) AS answered_at, "
        f"CAST(score AS INTEGER) AS nps_score FROM read_csv('{raw / 'nps.csv'}', all_varchar=true) "
        f"ORDER BY customer_id, answered_at) TO '{out / 'nps.parquet'}' (FORMAT parquet)"
    )


if __name__ == "__main__":
    convert_raw_dir(Path(sys.argv[1]), Path(sys.argv[2]))
