"""Test helper: labelled snapshots built by the real features code from generated clean tables.

The tables come from the `generated_tables` fixture (conftest): the real `churn generate` + `ingest`.
"""

from __future__ import annotations

import pandas as pd

from churn.config import (
    ChurnParams,
    CutoffsParams,
    EngineParams,
    FeaturesParams,
    LightGBMParams,
    TrainParams,
)
from churn.features import build_snapshots as build_feature_snapshots
from support.generated import Tables

# fit / calibration / test need: test, 2 gaps, calibration, 2 gaps, then the fit cutoffs
_CUTOFFS_BEFORE_FIT = 6

# small, quick LightGBM settings for the training tests (the real defaults are in params.yaml)
QUICK_LIGHTGBM = {
    "learning_rate": 0.1,
    "num_leaves": 15,
    "min_data_in_leaf": 50,
    "max_rounds": 200,
    "early_stopping_rounds": 20,
}
FAST = TrainParams(lightgbm=LightGBMParams(**QUICK_LIGHTGBM))


def build_snapshots(tables: Tables, horizon: int = 90, fit_cutoffs: int = 4) -> pd.DataFrame:
    """Return the features stage's labelled snapshots with `fit_cutoffs` fit cutoffs."""
    params = FeaturesParams(cutoffs=CutoffsParams(count=_CUTOFFS_BEFORE_FIT + fit_cutoffs))
    return build_feature_snapshots(
        *tables, ChurnParams(horizon_days=horizon), params, EngineParams(threads=1)
    ).train
