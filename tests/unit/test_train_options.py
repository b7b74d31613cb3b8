"""Optional training settings measured in benchmarks/results/model_round3.md and model_round4.md
(all off by default): cutoff-age weights (train.cutoff_half_life_days), per-cutoff starting scores
(train.cutoff_offset) and extra trees (train.lightgbm.extra_trees). BG/NBD starting scores
(train.bgnbd_offset) measured worse (model_round4.md) and were removed."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from churn.config import LightGBMParams, TrainParams
from churn.model import FeatureSpec
from churn.train import (
    cutoff_offsets,
    fit_model,
    lightgbm_settings,
    row_weights,
)
from support.promote_helpers import make_snapshots

QUICK = LightGBMParams(
    learning_rate=0.1, num_leaves=7, min_data_in_leaf=20, max_rounds=60, early_stopping_rounds=10
)


def _rows() -> tuple[pd.DataFrame, np.ndarray]:
    rows = pd.DataFrame(
        {"cutoff": [date(2024, 1, 1)] * 4 + [date(2024, 7, 1)] * 2 + [date(2024, 12, 27)] * 2}
    )
    return rows, np.array([1, 1, 1, 0, 1, 0, 0, 0])


def test_all_options_are_off_by_default():
    params = TrainParams()
    rows, labels = _rows()
    assert params.cutoff_half_life_days is None and not params.cutoff_offset
    assert not params.lightgbm.extra_trees
    assert row_weights(rows, labels, params) is None
    assert cutoff_offsets(rows, labels, params) is None


def test_weights_halve_per_half_life_before_the_newest_cutoff():
    rows, labels = _rows()
    weights = row_weights(rows, labels, TrainParams(cutoff_half_life_days=180))
    ages = np.array([361] * 4 + [179] * 2 + [0] * 2)
    assert weights == pytest.approx(0.5 ** (ages / 180))
    # with balanced classes the two factors multiply (6 churners of 8: 0.5 / 0.75 and 0.5 / 0.25)
    skewed = np.array([1, 1, 1, 1, 1, 1, 0, 0])
    both = TrainParams(cutoff_half_life_days=180, balance_classes=True)
    classes = np.array([2 / 3] * 6 + [2.0] * 2)
    assert row_weights(rows, skewed, both) == pytest.approx(classes * 0.5 ** (ages / 180))


def test_offsets_are_the_log_odds_of_each_cutoffs_churn_rate_clipped():
    rows, labels = _rows()
    offsets = cutoff_offsets(rows, labels, TrainParams(cutoff_offset=True))
    logit = lambda p: np.log(p / (1 - p))  # noqa: E731
    expected = [logit(0.75)] * 4 + [logit(0.5)] * 2 + [logit(1e-3)] * 2  # 0 of 2: clipped
    assert offsets == pytest.approx(expected)


def test_extra_trees_reaches_lightgbm():
    spec = FeatureSpec(("recency_days",))
    params = TrainParams(lightgbm=LightGBMParams(extra_trees=True))
    assert lightgbm_settings(params, spec)["extra_trees"] is True


@pytest.mark.parametrize(
    "options",
    [{"cutoff_half_life_days": 60.0}, {"cutoff_offset": True}],
    ids=["cutoff_weights", "cutoff_offset"],
)
def test_each_option_changes_the_booster_and_still_gives_probabilities(options):
    snapshots = make_snapshots(seed=5, customers=800)
    plain = fit_model(snapshots, TrainParams(lightgbm=QUICK), 90)
    changed = fit_model(snapshots, TrainParams(lightgbm=QUICK, **options), 90)
    test = snapshots[snapshots["role"] == "test"]
    for result in (plain, changed):
        proba = result.production_model.predict_proba(test)
        assert np.all((proba > 0) & (proba < 1))
    before = plain.production_model.predict_raw(test)
    after = changed.production_model.predict_raw(test)
    assert not np.allclose(before, after)
    # the offsets are starting scores for fitting only: scores never read a label at scoring
    raw = changed.model.predict_raw(test.assign(churned=1 - test["churned"]))
    assert raw == pytest.approx(changed.model.predict_raw(test))
