"""Training's memory path gives exactly the model and rows of the plain pandas path."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd

from churn.model import FeatureSpec
from churn.train import _canonical, _select_canonical, lightgbm_dataset


def _rows(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    amount = rng.gamma(2.0, 30.0, n)
    amount[rng.random(n) < 0.1] = np.nan
    region = rng.choice(["north", "south", "east", None], n).astype(object)
    return pd.DataFrame(
        {
            "customer_id": [f"{i:05d}" for i in rng.permutation(n)],
            "cutoff": pd.to_datetime("2024-01-01")
            + pd.to_timedelta(rng.integers(0, 3, n) * 30, unit="D"),
            "recency_days": rng.integers(0, 400, n),
            "spend": amount,
            "region": pd.array(region, dtype="string"),
            "churned": (rng.random(n) < 0.3).astype("int8"),
        }
    )


def test_lightgbm_dataset_trains_the_same_booster_as_the_model_matrix_frame():
    rows = _rows(3000, 1)
    spec = FeatureSpec.infer(rows, ["recency_days", "spend", "region"])
    settings = {"objective": "binary", "verbose": -1, "seed": 3, "num_threads": 1,
                "deterministic": True, "force_row_wise": True, "feature_pre_filter": False,
                "min_data_in_leaf": 20, "max_cat_to_onehot": 1}  # fmt: skip
    labels = rows["churned"].to_numpy("int64")
    weights = np.where(labels == 1, 2.0, 1.0)
    # the stopping rows hold a level the fit rows never saw (missing for the model)
    stopping = _rows(800, 2)
    stopping.loc[stopping.index[:50], "region"] = "west"
    y_stop = stopping["churned"].to_numpy("int64")

    def train(fit_set, stop_set):
        return lgb.train(settings, fit_set, 40, valid_sets=[stop_set]).model_to_string()

    frame_set = lgb.Dataset(spec.to_matrix(rows), labels, weight=weights, free_raw_data=False)
    frame_stop = lgb.Dataset(spec.to_matrix(stopping), y_stop, reference=frame_set)
    expected = train(frame_set, frame_stop)
    fit_set = lightgbm_dataset(spec, rows, labels, weights, settings, "rows")
    stop_set = lightgbm_dataset(spec, stopping, y_stop, None, settings, "rows", fit_set)
    assert fit_set.data is None  # the matrix was freed once binned
    assert train(fit_set, stop_set) == expected
    assert "pandas_categorical:[[" in expected


def test_select_canonical_takes_the_same_rows_in_the_same_order():
    rows = _rows(500, 4)
    mask = np.random.default_rng(5).random(len(rows)) < 0.4
    expected = _canonical(rows[mask])
    chosen = _select_canonical(rows, mask)
    pd.testing.assert_frame_equal(chosen, expected)
    assert list(chosen.index) == list(range(mask.sum()))


def test_predictions_in_batches_equal_one_call_on_every_row(monkeypatch):
    from churn import model as model_module
    from churn.model import Calibrator, ChurnModel

    rows = _rows(2000, 6)
    spec = FeatureSpec.infer(rows, ["recency_days", "spend", "region"])
    labels = rows["churned"].to_numpy("int64")
    booster = lgb.train(
        {"objective": "binary", "verbose": -1, "num_threads": 1, "min_data_in_leaf": 20},
        lgb.Dataset(spec.to_matrix(rows), labels),
        30,
    )
    model = ChurnModel(booster, Calibrator("platt", a=1.1, b=-0.2), spec)
    expected = model.calibrator.apply(booster.predict(spec.to_matrix(rows)))
    monkeypatch.setattr(model_module, "PREDICT_ROWS", 333)  # 7 batches, the last one short
    batched = model.predict_proba(rows)
    assert np.array_equal(batched, expected)
    assert len(np.unique(batched)) > 100
