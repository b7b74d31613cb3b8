"""Simulated randomized campaigns with a known effect per customer, to test the uplift gate.

Four regimes, each a stream of monthly campaigns over a pool of customers whose features persist
from one list to the next:

- ``no_effect``: a contact changes nothing.
- ``proportional_to_risk``: a contact keeps a fixed share of those who would leave, so the effect
  is proportional to risk and risk x value already orders customers by incremental profit.
- ``heterogeneous``: the effect depends on a trait unrelated to risk: a contact keeps some, does
  nothing for most, and pushes others away (their retention falls when contacted).
- ``too_few_campaigns``: the heterogeneous effects, but only a few small campaigns so far.

Each row follows churn.uplift.data; the true effect of each row is returned beside them.

The pipeline never imports this module: the tests (tests/support/uplift_ledger.py, the gate's
regime tests) and the uplift gate benchmarks share it, and since tests and benchmarks may not
import each other, its one copy lives here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd

from churn.columns import (
    CAMPAIGN_DATE,
    CAMPAIGN_ID,
    CHURN_PROBABILITY,
    CONTROL_SHARE,
    CUSTOMER_ID,
    EXPECTED_VALUE,
    LABEL_END,
    RETAINED,
    TREATED,
)
from churn.config import UpliftParams
from churn.uplift.data import check_campaign_rows
from churn.uplift.gate import (
    IN_RISK_VALUE_LIST,
    IN_UPLIFT_LIST,
    USE_RISK_VALUE,
    USE_UPLIFT,
    run_uplift_gate,
)

REGIMES = ("no_effect", "proportional_to_risk", "heterogeneous", "too_few_campaigns")
FEATURES = ("x1", "x2", "x3", "x4", "x5")


@dataclass(frozen=True)
class SimulatedUpliftCampaigns:
    """Campaign rows (churn.uplift.data) and each row's true incremental retention (what a
    contact changes in that row's retention probability, after clipping to [0, 1])."""

    rows: pd.DataFrame
    true_uplift: np.ndarray


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def churn_without_contact(features: pd.DataFrame) -> np.ndarray:
    """Return each customer's true probability of leaving in the horizon if not contacted."""
    return _sigmoid(-0.4 + 1.2 * features["x1"].to_numpy() + 0.6 * features["x2"].to_numpy())


def true_effect(regime: str, base_churn: np.ndarray, features: pd.DataFrame) -> np.ndarray:
    """Return each customer's true incremental retention from a contact under `regime`."""
    if regime == "no_effect":
        return np.zeros(len(features))
    if regime == "proportional_to_risk":
        return 0.3 * base_churn  # a contact keeps 30% of those who would leave
    if regime in ("heterogeneous", "too_few_campaigns"):
        trait = features["x4"].to_numpy()
        # persuadable (about a third), unmoved, and pushed away (about a quarter)
        return np.where(trait > 0.4, 0.25, np.where(trait < -0.6, -0.2, 0.0))
    raise ValueError(f"unknown regime {regime!r}; choose one of {REGIMES}")


def simulate_uplift_campaigns(
    regime: str,
    seed: int,
    campaigns: int | None = None,
    customers_per_campaign: int | None = None,
    control_share: float = 0.1,
    horizon_days: int = 90,
    step_days: int = 30,
    start: date = date(2024, 1, 1),
) -> SimulatedUpliftCampaigns:
    """Return `campaigns` monthly randomized campaigns under `regime` (defaults: 12 campaigns of
    4,000 customers; 3 campaigns of 1,000 for too_few_campaigns)."""
    if regime not in REGIMES:
        raise ValueError(f"unknown regime {regime!r}; choose one of {REGIMES}")
    few = regime == "too_few_campaigns"
    campaigns = campaigns if campaigns is not None else (3 if few else 12)
    size = customers_per_campaign if customers_per_campaign is not None else (1000 if few else 4000)
    rng = np.random.default_rng(seed)
    pool = int(size * 2.5)
    base = pd.DataFrame(rng.normal(size=(pool, len(FEATURES))), columns=list(FEATURES))
    base_ids = np.array([f"c{i:06d}" for i in range(pool)])
    frames, effects = [], []
    for number in range(campaigns):
        members = np.sort(rng.choice(pool, size=size, replace=False))
        # features drift a little between lists; the trait that sets the effect does too
        features = base.iloc[members].reset_index(drop=True)
        features = features + rng.normal(scale=0.1, size=features.shape)
        base_churn = churn_without_contact(features)
        # the risk model the list was ranked by: right on average, noisy per customer
        score = _sigmoid(np.log(base_churn / (1 - base_churn)) + rng.normal(scale=0.3, size=size))
        value = np.exp(4.2 + 0.4 * features["x3"].to_numpy() + rng.normal(scale=0.2, size=size))
        effect = true_effect(regime, base_churn, features)
        treated = (rng.random(size) >= control_share).astype("int8")
        keep = np.clip(1.0 - base_churn + treated * effect, 0.0, 1.0)
        retained = (rng.random(size) < keep).astype("int8")
        when = start + timedelta(days=step_days * number)
        frame = pd.DataFrame(
            {
                CUSTOMER_ID: base_ids[members],
                CAMPAIGN_ID: f"list-{when.isoformat()}",
                CAMPAIGN_DATE: pd.Timestamp(when),
                LABEL_END: pd.Timestamp(when + timedelta(days=horizon_days)),
                TREATED: treated,
                CONTROL_SHARE: control_share,
                RETAINED: retained,
                EXPECTED_VALUE: value,
                CHURN_PROBABILITY: score,
            }
        )
        frames.append(pd.concat([frame, features], axis=1))
        # the effect a contact really has: retention is a probability, so where 1 - churn + effect
        # leaves [0, 1] it is clipped, and the true gain is the clipped difference (a customer
        # already sure to stay cannot be kept more)
        effects.append(np.clip(1.0 - base_churn + effect, 0.0, 1.0) - (1.0 - base_churn))
    return SimulatedUpliftCampaigns(pd.concat(frames, ignore_index=True), np.concatenate(effects))


def true_incremental_profit(
    true_uplift: np.ndarray, value: np.ndarray, contacted: np.ndarray, contact_cost: float
) -> float:
    """Return the true margin kept minus contact cost of contacting the `contacted` customers."""
    contacted = np.asarray(contacted, dtype=bool)
    return float(np.sum(true_uplift[contacted] * value[contacted] - contact_cost))


def gate_trial(
    regime: str,
    seed: int,
    params: UpliftParams,
    contact_cost: float,
    campaigns: int | None = None,
    customers_per_campaign: int | None = None,
) -> dict[str, object]:
    """Run the gate on one simulated stream of campaigns; return its decision with the true and
    estimated incremental profit of both policies on the held-out campaigns (None when the gate
    stopped for lack of data)."""
    simulated = simulate_uplift_campaigns(regime, seed, campaigns, customers_per_campaign)
    rows = check_campaign_rows(simulated.rows, f"simulated {regime} campaigns")
    outcome = run_uplift_gate(rows, params, contact_cost)
    trial: dict[str, object] = {
        "regime": regime,
        "seed": seed,
        "policy": outcome.report["policy_in_use"],
        "reason": outcome.report["reason"],
    }
    if outcome.holdout is None:
        return trial
    truth = rows[[CAMPAIGN_ID, CUSTOMER_ID]].assign(true_uplift=simulated.true_uplift)
    holdout = outcome.holdout.merge(truth, on=[CAMPAIGN_ID, CUSTOMER_ID], how="left")
    value = holdout[EXPECTED_VALUE].to_numpy()
    effect = holdout["true_uplift"].to_numpy()
    comparison = outcome.report["comparison"]
    for name, flag in ((USE_UPLIFT, IN_UPLIFT_LIST), (USE_RISK_VALUE, IN_RISK_VALUE_LIST)):
        policy = comparison["policies"][name]
        trial[f"true_{name}"] = true_incremental_profit(
            effect, value, holdout[flag].to_numpy(), contact_cost
        )
        trial[f"estimated_{name}"] = policy["incremental_profit"]["estimate"]
        trial[f"qini_{name}"] = policy["qini"]
    difference = comparison["difference"]
    trial.update(
        {
            "true_difference": trial["true_uplift"] - trial["true_risk_x_value"],
            "estimated_difference": difference["estimate"],
            "standard_error": difference["standard_error"],
            "difference_ci_low": difference["ci_low"],
            "difference_ci_high": difference["ci_high"],
            "percentile_ci_low": difference["percentile_ci_low"],
            "percentile_ci_high": difference["percentile_ci_high"],
            "by_campaign": [part["difference"] for part in comparison["by_campaign"]],
            "replicated": comparison["replicated"],
            "list_size": comparison["list_size"],
        }
    )
    return trial
