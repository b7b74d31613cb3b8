"""Synthetic snapshot frames of the features contract and small real LightGBM models, for tests."""

from __future__ import annotations

import datetime as dt

import lightgbm as lgb
import numpy as np
import pandas as pd

from churn.model import Calibrator, ChurnModel, FeatureSpec

AS_OF = dt.date(2025, 6, 30)
CHANNELS = ("app", "store", "web")
REGIONS = ("east", "north", "south", "west")


def make_snapshot(
    customers: int, seed: int = 0, as_of: dt.date = AS_OF, labelled: bool = False
) -> pd.DataFrame:
    """Return a snapshot frame with the core features, NPS and refunds; `churned` when labelled."""
    rng = np.random.default_rng(seed)
    tenure = rng.integers(30, 1000, customers).astype("int64")
    gap = rng.gamma(2.0, 15.0, customers) + 3
    purchases = np.maximum(1, (tenure / gap).astype("int64"))
    recency = np.minimum(tenure, rng.exponential(gap * 1.5)).astype("int64")
    aov = rng.gamma(3.0, 15.0, customers)
    spend_total = purchases * aov
    purchases_90d = rng.poisson(np.where(recency < 90, 90 / gap, 0.0))
    spend_90d = purchases_90d * aov * rng.uniform(0.3, 1.2, customers)
    nps = np.where(rng.random(customers) < 0.4, rng.integers(0, 11, customers), np.nan)
    refunds = rng.poisson(0.3, customers).astype("int64")
    channel = rng.choice(CHANNELS, customers)
    snapshot = pd.DataFrame(
        {
            "customer_id": pd.array([f"{i:07d}" for i in range(customers)], dtype="string"),
            "cutoff": [as_of] * customers,
            "role": pd.array(["score"] * customers, dtype="string"),
            "recency_days": recency,
            "tenure_days": tenure,
            "purchases": purchases,
            "purchase_days": purchases,
            "spend_total": spend_total,
            "aov": aov,
            "spend_max": aov * 1.8,
            "spend_90d": spend_90d,
            "purchases_90d": purchases_90d,
            "gap_mean_days": gap,
            "nps_last": nps,
            "refunds": refunds,
            "channel": pd.array(channel, dtype="string"),
            "region": pd.array(rng.choice(REGIONS, customers), dtype="string"),
        }
    )
    if labelled:
        logit = (
            1.6 * (recency / gap - 1.5)
            - 0.8 * (spend_90d > 0)
            + 0.25 * np.nan_to_num(6 - nps, nan=0.0)
            + 0.5 * refunds
            + 0.4 * (channel == "web")
            - 1.0
        )
        churned = rng.random(customers) < 1 / (1 + np.exp(-logit))
        snapshot.insert(3, "churned", churned.astype("int8"))
    return snapshot


FEATURES = [
    "recency_days",
    "tenure_days",
    "purchases",
    "purchase_days",
    "spend_total",
    "aov",
    "spend_max",
    "spend_90d",
    "purchases_90d",
    "gap_mean_days",
    "nps_last",
    "refunds",
    "channel",
    "region",
]


def train_model(
    customers: int = 2000,
    trees: int = 30,
    leaves: int = 15,
    seed: int = 0,
    version: str = "7",
) -> ChurnModel:
    """Return a real LightGBM churn model trained on a labelled synthetic snapshot."""
    train = make_snapshot(customers, seed=seed + 1000, labelled=True)
    spec = FeatureSpec.infer(train, FEATURES)
    data = lgb.Dataset(spec.to_matrix(train), train["churned"], free_raw_data=False)
    booster = lgb.train(
        {
            "objective": "binary",
            "num_leaves": leaves,
            "learning_rate": 0.05,
            "min_data_in_leaf": 20,
            "verbose": -1,
            "seed": seed,
            "num_threads": 1,
            "deterministic": True,
        },
        data,
        num_boost_round=trees,
    )
    return ChurnModel(booster, Calibrator("identity"), spec, {"model_version": version})


def make_scores(
    customers: int = 300,
    seed: int = 0,
    as_of: dt.date = AS_OF,
    model_version: str = "7",
    suppressed: tuple[str, ...] = (),
) -> pd.DataFrame:
    """Return a scores table like `churn score` writes, without a model (random probabilities)."""
    from churn.config import ScoreParams
    from churn.score import score_customers

    snapshot = make_snapshot(customers, seed=seed, as_of=as_of)
    probability = np.random.default_rng(seed).beta(2, 4, customers)
    scores = score_customers(
        snapshot,
        probability,
        ScoreParams(),
        model_version=model_version,
        suppressed_ids=suppressed,
    )
    flagged = scores["at_risk"].to_numpy()
    reasons = pd.Series(pd.NA, index=scores.index, dtype="string")
    reasons[flagged] = [f"no purchase for {d} days" for d in range(int(flagged.sum()))]
    actions = pd.Series(pd.NA, index=scores.index, dtype="string")
    actions[flagged] = "win-back offer"
    family = pd.Series(pd.NA, index=scores.index, dtype="string")
    family[flagged] = "recency"
    return scores.assign(reasons=reasons, reason_family=family, suggested_action=actions)


def rank_priority(ids: pd.Series, net: np.ndarray) -> np.ndarray:
    """Return 1-based ranks from the score stage's priority order (what `priority` holds)."""
    from churn.score.targeting import priority_order

    order = priority_order(ids.to_numpy(dtype=object), net)
    ranks = np.empty(len(order), dtype="int64")
    ranks[order] = np.arange(1, len(order) + 1, dtype="int64")
    return ranks
