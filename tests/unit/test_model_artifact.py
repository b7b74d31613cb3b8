"""The model folder round-trips: same predictions after save/load, corruption is detected."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from churn.errors import ChurnError
from churn.model import Calibrator, ChurnModel, FeatureSpec


@pytest.fixture
def tiny_model():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "recency_days": rng.integers(0, 300, 400).astype(float),
            "channel": pd.array(rng.choice(["web", "app", "store"], 400), dtype="string"),
        }
    )
    target = (frame["recency_days"] + rng.normal(0, 40, 400) > 150).astype(int)
    spec = FeatureSpec.infer(frame, ["recency_days", "channel"])
    data = lgb.Dataset(spec.to_matrix(frame), target, free_raw_data=False)
    booster = lgb.train(
        {"objective": "binary", "verbose": -1, "seed": 1, "num_threads": 1, "min_data_in_leaf": 5},
        data,
        num_boost_round=20,
    )
    calibrator = Calibrator("isotonic", (0.0, 0.5, 1.0), (0.05, 0.4, 0.9))
    return ChurnModel(booster, calibrator, spec, {"model_version": "3"}), frame


def test_saved_model_predicts_the_same_after_loading(tmp_path, tiny_model):
    model, frame = tiny_model
    model.save(tmp_path)
    loaded = ChurnModel.load(tmp_path)
    np.testing.assert_array_equal(model.predict_proba(frame), loaded.predict_proba(frame))
    assert loaded.version == "3"


def test_unseen_category_and_column_order_do_not_break_scoring(tiny_model):
    model, frame = tiny_model
    shuffled = frame[["channel", "recency_days"]].copy()
    shuffled.loc[0, "channel"] = "telephone"
    proba = model.predict_proba(shuffled)
    assert np.isfinite(proba).all()
    np.testing.assert_array_equal(proba[1:], model.predict_proba(frame)[1:])


def test_missing_feature_column_is_a_clear_error(tiny_model):
    model, frame = tiny_model
    with pytest.raises(ChurnError, match="missing feature column"):
        model.predict_proba(frame.drop(columns=["channel"]))


def test_tampered_model_file_is_detected(tmp_path, tiny_model):
    model, _ = tiny_model
    model.save(tmp_path)
    path = tmp_path / "model.txt"
    path.write_text(path.read_text().replace("Tree=0", "Tree=0 "))
    with pytest.raises(ChurnError, match="sha256"):
        ChurnModel.load(tmp_path)


def test_missing_model_folder_names_the_fix(tmp_path):
    with pytest.raises(ChurnError, match="missing"):
        ChurnModel.load(tmp_path / "nothing")


def test_platt_and_isotonic_calibrators_are_monotone():
    raw = np.linspace(0, 1, 101)
    for calibrator in (
        Calibrator("platt", a=1.3, b=-0.2),
        Calibrator("isotonic", (0.1, 0.9), (0.2, 0.8)),
    ):
        out = calibrator.apply(raw)
        assert (np.diff(out) >= 0).all()
        assert Calibrator.from_dict(calibrator.to_dict()) == calibrator
