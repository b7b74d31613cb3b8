"""Simulated randomized campaigns (churn.uplift.simulate) in the ledger stage's table format,
with the training snapshots, contacted table and as-of snapshot the `uplift` stage reads."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from churn.uplift.simulate import FEATURES, simulate_uplift_campaigns


@dataclass(frozen=True)
class LedgerInputs:
    table: pd.DataFrame  # data/ledger/uplift.parquet
    snapshots: pd.DataFrame  # data/features/train.parquet
    contacted: pd.DataFrame  # data/ledger/contacted.parquet
    snapshot: pd.DataFrame  # data/features/score.parquet


def ledger_inputs(regime: str, seed: int, campaigns: int | None = None) -> LedgerInputs:
    """Return the stage's inputs for one simulated stream of campaigns: each campaign is a
    matured list; every list customer is also a training snapshot row at the list date (the
    treated ones are left out through the contacted table); today's customers are the newest
    list's with features, spend and tenure."""
    rows = simulate_uplift_campaigns(regime, seed, campaigns).rows
    table = pd.DataFrame(
        {
            "list_id": rows["campaign_id"].astype("string"),
            "list_date": rows["campaign_date"].dt.date,
            "origin": "imported",
            "horizon_days": 90,
            "customer_id": rows["customer_id"].astype("string"),
            "group": np.where(rows["treated"] == 1, "treatment", "control"),
            "treated": rows["treated"].astype("int8"),
            "suggested_action": "win-back offer",
            "risk_tier": pd.array([None] * len(rows), dtype="string"),
            "churned": (1 - rows["retained"]).astype("int8"),
            "retained": rows["retained"].astype("int8"),
            "value": rows["expected_value"],
            "contacted": pd.array([None] * len(rows), dtype="boolean"),
            "has_features": True,
            **{name: rows[name] for name in FEATURES},
        }
    )
    snapshots = pd.DataFrame(
        {
            "customer_id": rows["customer_id"].astype("string"),
            "cutoff": rows["campaign_date"].dt.date,
            "role": "fit",
            "churned": (1 - rows["retained"]).astype("int8"),
            **{name: rows[name] for name in FEATURES},
        }
    )
    treated = rows[rows["treated"] == 1]
    contacted = pd.DataFrame(
        {
            "customer_id": treated["customer_id"].astype("string"),
            "list_id": treated["campaign_id"].astype("string"),
            "list_date": treated["campaign_date"].dt.date,
            "horizon_days": 90,
        }
    )
    newest = rows[rows["campaign_id"] == rows["campaign_id"].max()]
    today = newest["campaign_date"].iloc[0] + pd.Timedelta(days=90)
    snapshot = pd.DataFrame(
        {
            "customer_id": newest["customer_id"].astype("string"),
            "cutoff": today.date(),
            "role": "score",
            "spend_total": newest["expected_value"] * 2.0,
            "tenure_days": 400,
            **{name: newest[name] for name in FEATURES},
        }
    ).reset_index(drop=True)
    # customers no past list held: outside the covered population
    rng = np.random.default_rng(seed)
    outside = pd.DataFrame(
        {
            "customer_id": pd.array([f"new{i:05d}" for i in range(50)], dtype="string"),
            "cutoff": today.date(),
            "role": "score",
            "spend_total": 300.0,
            "tenure_days": 400,
            **{name: rng.normal(size=50) for name in FEATURES},
        }
    )
    snapshot = pd.concat([snapshot, outside], ignore_index=True)
    return LedgerInputs(table, snapshots.reset_index(drop=True), contacted, snapshot)
