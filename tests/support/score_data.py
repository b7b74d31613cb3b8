"""Synthetic snapshot frames of the features contract and small real LightGBM models, for tests."""

from __future__ import annotations

import datetime as dt

import lightgbm as lgb
import numpy as np
import pandas as pd

from churn.generate import SNAPSHOT_AS_OF, SNAPSHOT_FEATURES, synthetic_snapshot
from churn.model import Calibrator, ChurnModel, FeatureSpec

AS_OF = SNAPSHOT_AS_OF
FEATURES = SNAPSHOT_FEATURES
make_snapshot = synthetic_snapshot


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
