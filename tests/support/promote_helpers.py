"""Tiny seeded snapshots and LightGBM model folders for the promote, drift and retrain tests."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

from churn.config import ChurnParams
from churn.definition import describe_definition
from churn.model import Calibrator, ChurnModel, FeatureSpec

# label windows (90 days) of different roles do not overlap, as the features stage guarantees
CUTOFFS = {
    date(2023, 5, 1): "fit",
    date(2023, 6, 1): "fit",
    date(2023, 9, 1): "calibration",
    date(2023, 12, 1): "test",
}


def make_snapshots(seed: int = 0, customers: int = 600, test_churn: bool = True) -> pd.DataFrame:
    """Return train.parquet-like rows: churn rises with recency and is higher for 'store'."""
    rng = np.random.default_rng(seed)
    frames = []
    for cutoff, role in CUTOFFS.items():
        recency = rng.exponential(45, customers)
        channel = rng.choice(["web", "app", "store"], customers)
        logit = -2.0 + recency / 30 + np.where(channel == "store", 1.2, 0.0)
        churned = (rng.random(customers) < 1 / (1 + np.exp(-logit))).astype("int8")
        if role == "test" and not test_churn:
            churned[:] = 0
        frames.append(
            pd.DataFrame(
                {
                    "customer_id": pd.array([f"{i:05d}" for i in range(customers)], dtype="string"),
                    "cutoff": cutoff,
                    "role": role,
                    "churned": churned,
                    "recency_days": recency.round(),
                    "tenure_days": rng.uniform(30, 900, customers).round(),
                    "channel": pd.array(channel, dtype="string"),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


KEYS = ("customer_id", "cutoff", "role", "churned")


def train_model(snapshots: pd.DataFrame, features: list[str], seed: int = 1, rounds: int = 30):
    """Return a ChurnModel fitted on the fit rows (identity calibration), recording the churn
    definition of its snapshots as `churn train` does (every feature column, used or not)."""
    fit = snapshots[snapshots["role"] == "fit"]
    spec = FeatureSpec.infer(fit, features)
    booster = lgb.train(
        {
            "objective": "binary",
            "verbose": -1,
            "seed": seed,
            "num_threads": 1,
            "deterministic": True,
            "min_data_in_leaf": 20,
            "num_leaves": 7,
            "learning_rate": 0.1,
        },
        lgb.Dataset(spec.to_matrix(fit), fit["churned"].to_numpy()),
        num_boost_round=rounds,
    )
    columns = [name for name in snapshots.columns if name not in KEYS]
    definition = describe_definition(ChurnParams(), columns)
    metadata = {"trained_on": features, "definition": definition}
    return ChurnModel(booster, Calibrator("identity"), spec, metadata)


def save_challenger(model: ChurnModel, folder: Path, version: str | None = None) -> Path:
    """Write a challenger folder as `churn train` would (optionally with its registry version)."""
    metadata = dict(model.metadata)
    if version is not None:
        metadata["model_version"] = version
    ChurnModel(model.booster, model.calibrator, model.spec, metadata).save(folder)
    return folder
