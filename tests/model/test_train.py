"""Training is deterministic, honest about the test cutoff, and beats recency on seeded data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from churn.errors import ChurnError
from churn.train import check_snapshots, feature_columns, fit_model
from support.snapshot_helper import FAST, build_snapshots


@pytest.fixture(scope="module")
def snapshots(generated_tables):
    tables = generated_tables(customers=2500, seed=7)
    return build_snapshots(tables, horizon=90, fit_cutoffs=3)


@pytest.fixture(scope="module")
def trained(snapshots):
    return fit_model(snapshots, FAST, horizon_days=90)


def _test_rows(snapshots):
    return snapshots[snapshots["role"] == "test"]


def test_same_data_and_params_give_an_identical_model(snapshots, trained):
    again = fit_model(snapshots, FAST, horizon_days=90)
    assert again.model.booster.model_to_string() == trained.model.booster.model_to_string()
    assert again.model.calibrator == trained.model.calibrator
    test = _test_rows(snapshots)
    np.testing.assert_array_equal(
        again.model.predict_proba(test), trained.model.predict_proba(test)
    )


def test_model_beats_recency_on_seeded_data_with_known_dropouts(snapshots, trained):
    test = _test_rows(snapshots)
    labels = test["churned"].to_numpy()
    model_auc = roc_auc_score(labels, trained.model.predict_proba(test))
    recency_auc = roc_auc_score(labels, test["recency_days"])
    assert model_auc > recency_auc + 0.01
    assert model_auc > 0.85


def test_shuffling_rows_changes_no_score(snapshots, trained):
    shuffled = snapshots.sample(frac=1.0, random_state=3).reset_index(drop=True)
    again = fit_model(shuffled, FAST, horizon_days=90)
    test = _test_rows(snapshots)
    np.testing.assert_array_equal(
        again.model.predict_proba(test), trained.model.predict_proba(test)
    )


def test_customer_ids_never_change_a_score(snapshots, trained):
    test = _test_rows(snapshots).reset_index(drop=True)
    renamed = test.assign(
        customer_id=test["customer_id"].sample(frac=1.0, random_state=1).to_numpy()
    )
    order = np.random.default_rng(2).permutation(len(test))
    np.testing.assert_array_equal(
        trained.model.predict_proba(renamed.iloc[order]), trained.model.predict_proba(test)[order]
    )
    assert "customer_id" not in trained.model.spec.names


def test_test_rows_are_never_used_for_fitting_stopping_or_calibration(snapshots, trained):
    roles = snapshots["role"]
    tampered = snapshots.copy()
    tampered.loc[roles == "test", "churned"] = 1 - tampered.loc[roles == "test", "churned"]
    tampered.loc[roles == "test", "spend_total"] = 0.0
    again = fit_model(tampered, FAST, horizon_days=90)
    assert again.model.booster.model_to_string() == trained.model.booster.model_to_string()
    assert again.model.calibrator == trained.model.calibrator


def test_more_inactivity_never_lowers_risk(snapshots, trained):
    rows = _test_rows(snapshots).head(200)
    risks = [
        trained.model.predict_proba(rows.assign(recency_days=rows["recency_days"] + step))
        for step in (0.0, 15.0, 60.0, 180.0)
    ]
    for lower, higher in zip(risks, risks[1:], strict=False):
        assert (higher >= lower - 1e-12).all()


def test_refit_and_class_balancing_still_give_calibrated_probabilities(snapshots):
    test = _test_rows(snapshots)
    for params in (
        FAST.model_copy(update={"refit": True}),
        FAST.model_copy(update={"balance_classes": True}),
    ):
        proba = fit_model(snapshots, params, horizon_days=90).model.predict_proba(test)
        # balancing without recalibration would push the mean far above the churn rate
        assert abs(proba.mean() - test["churned"].mean()) < 0.08


def test_overlapping_label_windows_are_refused(snapshots):
    with pytest.raises(ChurnError, match="overlapping 200-day label windows and share"):
        check_snapshots(snapshots, horizon_days=200)


def test_unknown_role_and_bad_labels_are_named(snapshots):
    bad_role = snapshots.assign(role=snapshots["role"].replace({"fit": "train"}))
    with pytest.raises(ChurnError, match="'train'"):
        check_snapshots(bad_role)
    bad_label = snapshots.assign(churned=snapshots["churned"].astype("float64"))
    bad_label.loc[0, "churned"] = 2.0
    with pytest.raises(ChurnError, match="churned"):
        check_snapshots(bad_label)


def test_monotone_constraint_on_a_missing_feature_is_an_error(snapshots):
    params = FAST.model_copy(update={"monotone": {"recency_dayz": 1}})
    with pytest.raises(ChurnError, match="recency_dayz"):
        fit_model(snapshots, params, horizon_days=90)


def test_date_columns_are_not_taken_as_features(snapshots):
    frame = snapshots.assign(first_purchase=pd.Timestamp("2024-01-01").date())
    with pytest.raises(ChurnError, match="first_purchase"):
        feature_columns(frame)
