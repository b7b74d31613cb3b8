"""The stacked calibrator: the booster's score and BG/NBD's P(no purchase in H) in one logistic
regression (train.stack_bgnbd); the booster itself never reads the BG/NBD columns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churn.config import LightGBMParams, TrainParams
from churn.errors import ChurnError
from churn.model import Calibrator, ChurnModel
from churn.train import STACK_COLUMN, fit_model, fit_stack
from support.promote_helpers import make_snapshots

QUICK = LightGBMParams(
    learning_rate=0.1, num_leaves=7, min_data_in_leaf=20, max_rounds=100, early_stopping_rounds=10
)


def _with_bgnbd(snapshots: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Add BG/NBD-like columns: P(no purchase) carries signal the other features lack."""
    rng = np.random.default_rng(seed)
    hidden = snapshots["churned"].to_numpy() * 1.5 + rng.normal(0, 1, len(snapshots))
    p = 1 / (1 + np.exp(-hidden))
    p[:5] = np.nan  # a cutoff whose BG/NBD fit was degenerate leaves nulls
    return snapshots.assign(
        bgnbd_p_no_purchase=p, bgnbd_expected_purchases=1 - p, bgnbd_p_alive=1 - p / 2
    )


def test_the_stack_weighs_both_inputs_and_fills_missing_values():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 4000)
    raw = 1 / (1 + np.exp(-(labels + rng.normal(0, 1, 4000))))
    second = 1 / (1 + np.exp(-(labels + rng.normal(0, 1, 4000))))
    second[:10] = np.nan
    calibrator = fit_stack(raw, second, labels, STACK_COLUMN)
    assert calibrator.kind == "stack" and calibrator.column == STACK_COLUMN
    assert calibrator.a > 0.3 and calibrator.c > 0.3  # two independent signals: both count
    proba = calibrator.apply(raw, second)
    assert np.isfinite(proba).all() and ((proba > 0) & (proba < 1)).all()
    assert abs(proba.mean() - labels.mean()) < 0.01  # calibrated in the large
    # a missing second input counts as the fill value, not as 0 or 0.5
    filled = 1 / (1 + np.exp(-(calibrator.fill)))
    same = calibrator.apply(raw[:10], np.full(10, filled))
    assert proba[:10] == pytest.approx(same)
    with pytest.raises(ChurnError, match=STACK_COLUMN):
        calibrator.apply(raw)


def test_the_stack_survives_a_save_and_load(tmp_path):
    snapshots = _with_bgnbd(make_snapshots(seed=2, customers=800))
    model = fit_model(snapshots, TrainParams(lightgbm=QUICK), 90).production_model
    model.save(tmp_path / "m")
    loaded = ChurnModel.load(tmp_path / "m")
    assert loaded.calibrator == model.calibrator
    rows = snapshots[snapshots["role"] == "test"]
    assert loaded.predict_proba(rows) == pytest.approx(model.predict_proba(rows))
    assert Calibrator.from_dict(model.calibrator.to_dict()) == model.calibrator


def test_the_booster_leaves_bgnbd_to_the_calibrator_and_the_rows_must_carry_it():
    snapshots = _with_bgnbd(make_snapshots(seed=3, customers=800))
    result = fit_model(snapshots, TrainParams(lightgbm=QUICK), 90)
    for model in (result.model, result.production_model):
        assert model.calibrator.kind == "stack"
        assert not any(name.startswith("bgnbd_") for name in model.spec.names)
    test = snapshots[snapshots["role"] == "test"]
    with pytest.raises(ChurnError, match=STACK_COLUMN):
        result.production_model.predict_proba(test.drop(columns=[STACK_COLUMN]))


def test_without_bgnbd_columns_or_with_the_stack_off_the_calibrator_is_the_usual_one():
    plain = make_snapshots(seed=3, customers=800)
    model = fit_model(plain, TrainParams(lightgbm=QUICK), 90).model
    assert model.calibrator.kind in ("isotonic", "platt")
    off = TrainParams(lightgbm=QUICK, stack_bgnbd=False)
    model = fit_model(_with_bgnbd(plain), off, 90).model
    assert model.calibrator.kind in ("isotonic", "platt")
    assert "bgnbd_p_no_purchase" in model.spec.names  # the columns are plain features then


def test_the_stack_never_turns_a_score_upside_down():
    """On few rows two collinear scores can fit a negative weight; it is kept at 0."""
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 2, 300)
    second = 1 / (1 + np.exp(-(2 * labels + rng.normal(0, 1, 300))))
    # the booster's score: the second score plus a part that runs against the label
    raw = 1 / (1 + np.exp(-(np.log(second / (1 - second)) - 1.5 * labels)))
    calibrator = fit_stack(raw, second, labels, STACK_COLUMN)
    assert calibrator.a >= 0 and calibrator.c > 0


def test_a_useless_stack_column_gets_next_to_no_weight():
    snapshots = make_snapshots(seed=3, customers=800)
    rng = np.random.default_rng(9)
    noise = snapshots.assign(bgnbd_p_no_purchase=rng.uniform(0.05, 0.95, len(snapshots)))
    model = fit_model(noise, TrainParams(lightgbm=QUICK), 90).model
    assert model.calibrator.kind == "stack"
    assert model.calibrator.c < 0.2 * model.calibrator.a
    assert "stack" in model.metadata["calibration_cv_logloss"]
