"""Evaluation metrics match hand-computed values on tiny examples and never depend on row order."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from churn.config import EvaluateParams
from churn.evaluate import segment_metrics, tenure_band
from churn.metrics import (
    ECE_BINS,
    _tie_groups,
    bootstrap_differences,
    captured_in_top,
    expected_calibration_error,
    fraction_label,
    lift_and_recall,
    pr_auc,
    precision_recall,
    roc_auc,
    score_metrics,
    weighted_auc_ap,
)


def test_ece_weights_each_bins_gap_by_its_share_of_rows():
    # bins of width 0.5: [0.1, 0.2] observed 1/2 vs mean 0.15; [0.8, 0.9] observed 1/2 vs 0.85
    labels = np.array([0, 1, 1, 0])
    proba = np.array([0.1, 0.2, 0.8, 0.9])
    assert expected_calibration_error(labels, proba, bins=2) == pytest.approx(
        0.5 * abs(0.5 - 0.15) + 0.5 * abs(0.5 - 0.85)
    )


def test_ece_puts_probability_one_in_the_top_bin_and_is_zero_when_perfect():
    labels = np.array([1, 1, 0, 0])
    assert expected_calibration_error(labels, np.array([1.0, 1.0, 0.0, 0.0]), bins=10) == 0.0
    # one constant for every stage: ten bins unless a test asks for others
    proba = np.array([0.05, 0.15, 0.95, 0.99])
    assert ECE_BINS == 10
    assert expected_calibration_error(labels, proba) == expected_calibration_error(
        labels, proba, bins=10
    )


def test_lift_and_recall_in_top_fraction_by_hand():
    labels = np.array([1, 1, 0, 1, 0, 0, 0, 0, 0, 0])
    score = np.arange(10, 0, -1, dtype=float)  # already sorted, no ties
    lift, recall = lift_and_recall(labels, score, 0.2)  # top 2 rows: both churners
    assert lift == pytest.approx((2 / 2) / 0.3)
    assert recall == pytest.approx(2 / 3)
    lift, recall = lift_and_recall(labels, score, 0.4)  # top 4: 3 churners
    assert lift == pytest.approx((3 / 4) / 0.3)
    assert recall == pytest.approx(1.0)


def test_ties_at_the_list_boundary_count_at_their_average_rate():
    labels = np.array([1, 0, 1, 0])
    score = np.array([5.0, 1.0, 1.0, 1.0])  # top 2 = the 5 plus one of three tied rows (1/3 churn)
    assert captured_in_top(labels, score, 0.5) == pytest.approx(1 + 1 / 3)


def test_metrics_do_not_depend_on_row_order():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 500)
    score = np.round(rng.random(500), 1)  # many ties
    order = rng.permutation(500)
    first = score_metrics(labels, score, True)
    second = score_metrics(labels[order], score[order], True)
    assert first == pytest.approx(second)


def test_scores_that_are_not_probabilities_get_no_log_loss():
    out = score_metrics(np.array([0, 1, 1]), np.array([3.0, 10.0, 7.0]), False)
    assert "log_loss" not in out and "ece" not in out
    assert out["roc_auc"] == 1.0


def test_fraction_labels():
    assert fraction_label(0.05) == "top5"
    assert fraction_label(0.2) == "top20"
    assert fraction_label(0.125) == "top12.5"


def test_weighted_auc_and_ap_equal_scikit_learn_with_repeated_rows():
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 2, 300).astype(float)
    score = np.round(rng.random(300) + labels * 0.3, 2)
    weights = rng.integers(0, 4, 300).astype(float)
    groups, count = _tie_groups(score)
    auc, ap = weighted_auc_ap(groups, count, labels, weights)
    repeat = np.repeat(np.arange(300), weights.astype(int))
    assert auc == pytest.approx(roc_auc_score(labels[repeat], score[repeat]))
    assert ap == pytest.approx(average_precision_score(labels[repeat], score[repeat]))


def test_bootstrap_interval_brackets_the_difference_and_is_reproducible():
    rng = np.random.default_rng(8)
    labels = rng.integers(0, 2, 400)
    good = labels + rng.normal(0, 0.7, 400)
    weak = labels + rng.normal(0, 1.5, 400)
    customers = np.array([f"{i:05d}" for i in range(400)])
    first = bootstrap_differences(labels, good, {"weak": weak}, customers, 100, seed=1)
    second = bootstrap_differences(labels, good, {"weak": weak}, customers, 100, seed=1)
    assert first == second
    row = first["weak"]
    assert row["roc_auc_diff_lo"] < row["roc_auc_diff"] < row["roc_auc_diff_hi"]
    assert row["roc_auc_diff_lo"] > 0


def test_tenure_bands_are_labelled_by_their_edges():
    bands = tenure_band(
        pd.Series([0, 89, 90, 364, 365, 800, None], dtype="float64"), (90, 365, 730)
    )
    assert bands.tolist() == [
        "under_90d",
        "under_90d",
        "90-365d",
        "90-365d",
        "365-730d",
        "730d_or_more",
        "unknown",
    ]


def test_segments_too_small_get_counts_but_no_metrics():
    rows = pd.DataFrame(
        {
            "tenure_days": [10.0] * 60 + [400.0] * 5,
            "channel": pd.array(["web"] * 30 + ["app"] * 35, dtype="string"),
            "churned": np.tile([0, 1], 33)[:65].astype("int8"),
        }
    )
    proba = np.linspace(0.1, 0.9, 65)
    out = segment_metrics(rows, proba, EvaluateParams(min_segment_rows=50))
    assert "roc_auc" in out["tenure"]["under_90d"]
    assert out["tenure"]["365-730d"] == {"rows": 5.0, "base_churn_rate": pytest.approx(0.4)}
    assert set(out["channel"]) == {"web", "app"}


def test_bgnbd_no_purchase_baseline_is_the_closed_form_on_the_test_histories():
    from churn.bgnbd import fit_bgnbd, probability_no_purchase, summarize_histories
    from churn.evaluate.baselines import score_baselines

    rng = np.random.default_rng(8)
    n = 400
    tenure = rng.integers(30, 400, n)
    purchase_days = 1 + rng.poisson(tenure / 60)
    recency = np.where(purchase_days > 1, rng.integers(0, 30, n), tenure)
    rows = pd.DataFrame(
        {
            "customer_id": pd.array([f"{i:04d}" for i in range(n)], dtype="string"),
            "churned": (rng.random(n) < 0.5).astype("int8"),
            "recency_days": recency,
            "tenure_days": tenure,
            "purchases": purchase_days,
            "purchase_days": purchase_days,
            "spend_total": purchase_days * 20.0,
        }
    )
    scores, fitted = score_baselines(rows, rows, horizon_days=90)
    by_name = {score.name: score for score in scores}
    x, t_x, T = summarize_histories(rows)
    assert fitted == fit_bgnbd(x, t_x, T)
    expected = probability_no_purchase(fitted, 90 / 7, x, t_x, T)
    np.testing.assert_allclose(by_name["bgnbd_no_purchase"].score, expected)
    assert by_name["bgnbd_no_purchase"].is_probability


def test_roc_and_pr_auc_are_scikit_learns_as_plain_floats():
    labels = np.array([0, 0, 1, 1, 0, 1])
    score = np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.8])
    assert roc_auc(labels, score) == float(roc_auc_score(labels, score))
    assert roc_auc(labels, score) == pytest.approx(8 / 9)  # 8 of 9 pairs ordered right
    assert pr_auc(labels, score) == float(average_precision_score(labels, score))
    assert type(roc_auc(labels, score)) is float and type(pr_auc(labels, score)) is float


def test_precision_and_recall_of_a_list_are_the_backtests_ratios():
    churned = np.array([1, 0, 1, 1, 0], dtype="int8")
    flagged = np.array([True, True, False, True, False])
    precision, recall = precision_recall(churned, flagged)
    # 2 of the 3 flagged churned; 2 of the 3 churners were flagged
    assert precision == 2 / 3 and recall == 2 / 3
    # a numpy float as the backtest always rounded it (round() of a numpy float rounds in numpy)
    assert isinstance(precision, np.floating)
    assert precision_recall(churned, np.zeros(5, dtype=bool)) == (None, 0.0)
    assert precision_recall(np.zeros(5, dtype="int8"), flagged) == (0.0, None)
