"""Development data for the report tests: the generator's raw export turned into the clean schema.

Stands in for `churn ingest` (built in parallel) in tests only: parses ordered_at, drops the
malformed rows, keeps the first row of each order_id, and writes the ingest contract's columns.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pyarrow as pa

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
from churn.config import GenerateParams
from churn.generate import RAW_AMOUNT, RAW_CUSTOMER, RAW_ORDER_ID, RAW_TIMESTAMP, simulate

TRANSACTIONS_SCHEMA = pa.schema(
    [
        (CUSTOMER_ID, pa.string()),
        (TIMESTAMP, pa.timestamp("us")),
        (DATE, pa.date32()),
        (AMOUNT, pa.float64()),
        (TRANSACTION_ID, pa.string()),
    ]
)


def clean_generated(params: GenerateParams) -> tuple[pa.Table, pd.DataFrame, pd.DataFrame]:
    """Return (transactions as an Arrow table, customers, nps) in the clean ingest schema."""
    chunks = list(simulate(params))
    raw = pd.concat([chunk.transactions for chunk in chunks], ignore_index=True)
    when = pd.to_datetime(raw[RAW_TIMESTAMP], errors="coerce", format="%Y-%m-%d %H:%M:%S")
    amount = pd.to_numeric(raw[RAW_AMOUNT], errors="coerce")
    ok = (
        when.notna()
        & (when < pd.Timestamp(params.start) + pd.Timedelta(days=params.days + 1))
        & amount.notna()
        & np.isfinite(amount)
        & (raw[RAW_CUSTOMER] != "")
    )
    clean = pd.DataFrame(
        {
            CUSTOMER_ID: raw[RAW_CUSTOMER].astype("string"),
            TIMESTAMP: when.astype("datetime64[us]"),
            AMOUNT: amount.astype("float64"),
            TRANSACTION_ID: raw[RAW_ORDER_ID].astype("string"),
        }
    )[ok]
    clean = clean.drop_duplicates(TRANSACTION_ID).sort_values(
        [CUSTOMER_ID, TIMESTAMP], kind="stable", ignore_index=True
    )
    clean.insert(2, DATE, clean[TIMESTAMP].dt.date)
    transactions = pa.Table.from_pandas(clean, schema=TRANSACTIONS_SCHEMA, preserve_index=False)

    raw_customers = pd.concat([chunk.customers for chunk in chunks], ignore_index=True)
    customers = pd.DataFrame(
        {
            CUSTOMER_ID: raw_customers[RAW_CUSTOMER].astype("string"),
            SIGNUP_DATE: pd.to_datetime(raw_customers["signup_date"]).dt.date,
            CHANNEL: raw_customers["channel"].astype("string"),
            REGION: raw_customers["region"].astype("string"),
        }
    )
    raw_nps = pd.concat([chunk.nps for chunk in chunks], ignore_index=True)
    nps = pd.DataFrame(
        {
            CUSTOMER_ID: raw_nps[RAW_CUSTOMER].astype("string"),
            ANSWERED_AT: pd.to_datetime(raw_nps["answered_at"]).dt.date,
            NPS_SCORE: raw_nps["score"].astype("int64"),
        }
    )
    return transactions, customers, nps


def fake_scores(customers: pd.DataFrame, as_of: str, seed: int = 0) -> pd.DataFrame:
    """Return a scores table in the score stage's contract, with seeded random probabilities."""
    rng = np.random.default_rng(seed)
    n = len(customers)
    probability = rng.beta(2, 5, n)
    expected = np.round(rng.gamma(2.0, 60.0, n), 2)
    tier = np.select([probability >= 0.5, probability >= 0.25], ["high", "medium"], "low")
    value_at_risk = np.round(probability * expected, 2)
    return pd.DataFrame(
        {
            CUSTOMER_ID: customers[CUSTOMER_ID].astype("string"),
            "as_of": pd.Timestamp(as_of).date(),
            "churn_probability": probability,
            "risk_tier": tier,
            "expected_value": expected,
            "value_at_risk": value_at_risk,
            "expected_net_benefit": value_at_risk * 0.2 - 1.0,
            "priority": pd.Series(-value_at_risk).rank(method="first").astype("int64"),
            "at_risk": probability >= 0.25,
            "reasons": "no purchase for a while",
            "suggested_action": "send a personal offer",
            "group": np.where(rng.random(n) < 0.1, "control", "treatment"),
            "model_version": "3",
        }
    )


@functools.cache
def dev_data(customers: int = 1500, seed: int = 7) -> tuple[pa.Table, pd.DataFrame, pd.DataFrame]:
    """Return the cleaned generator output for a small seeded population (built once per run)."""
    return clean_generated(GenerateParams(customers=customers, chunk_customers=1000, seed=seed))
