"""On generated data with a known answer, the ledger's interval covers each campaign's true effect."""

from __future__ import annotations

import numpy as np
import pandas as pd

from churn.config import GenerateParams
from churn.generate import RAW_AMOUNT, RAW_CUSTOMER, RAW_TIMESTAMP, simulate
from churn.ledger import PublishedList, build_ledger

SEEDS = range(6)


def _generated(seed: int):
    params = GenerateParams(customers=2500, chunk_customers=2500, seed=seed, with_nps=False)
    chunk = next(iter(simulate(params)))
    raw = chunk.transactions
    amount = pd.to_numeric(raw[RAW_AMOUNT], errors="coerce")
    when = pd.to_datetime(raw[RAW_TIMESTAMP], errors="coerce", format="%Y-%m-%d %H:%M:%S")
    ok = np.isfinite(amount) & when.notna() & (raw[RAW_CUSTOMER] != "")
    transactions = pd.DataFrame(
        {
            "customer_id": pd.array(raw.loc[ok, RAW_CUSTOMER], dtype="string"),
            "date": when[ok].dt.date,
            "amount": amount[ok],
        }
    )
    lists = []
    for list_id, rows in chunk.campaign_lists.groupby("list_id"):
        scored = pd.DataFrame(
            {
                "customer_id": pd.array(rows["customer_id"], dtype="string"),
                "at_risk": True,
                "group": rows["group"].to_numpy(),
                "suggested_action": rows["suggested_action"].to_numpy(),
                "risk_tier": rows["risk_tier"].to_numpy(),
            }
        )
        manifest = {"as_of": rows["list_date"].iloc[0], "list_id": list_id, "origin": "imported"}
        lists.append(PublishedList(manifest, 90, scored))
    return transactions, lists, chunk.campaign_truth


def test_the_interval_of_each_matured_campaign_covers_its_true_effect_for_most_seeds():
    covered, measured, estimates, truths = 0, 0, [], []
    for seed in SEEDS:
        transactions, lists, truth = _generated(seed)
        ledger = build_ledger(lists, transactions, 0.95)
        true_effect = truth.groupby("list_id")["true_itt_effect"].mean()
        for entry in ledger["lists"]:
            if entry["status"] == "collecting":
                continue
            overall = entry["slices"][0]
            measured += 1
            effect = true_effect[entry["list_id"]]
            covered += overall["ci_low"] <= effect <= overall["ci_high"]
            assert overall["treated_customers"] + overall["control_customers"] == len(
                truth[truth["list_id"] == entry["list_id"]]
            )
            estimates.append(overall["retention_difference"])
            truths.append(effect)
    assert measured >= 3 * len(SEEDS)  # every list matured by the last day is measured
    assert covered / measured >= 0.85, f"{covered} of {measured} intervals cover the true effect"
    # and the estimates are centred on the truth (no bias from the rule, the types or the log)
    assert abs(np.mean(estimates) - np.mean(truths)) < 0.03
