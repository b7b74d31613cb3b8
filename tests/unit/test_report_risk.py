"""At-risk section: value at risk by tier and segment, and the model-quality line, by hand."""

from __future__ import annotations

import pandas as pd
import pytest

from churn.errors import ChurnError
from churn.report.risk import (
    attach_segments,
    check_scores,
    describe_model_quality,
    summarize_risk_by_segment,
    summarize_risk_by_tier,
    summarize_scoring,
)


@pytest.fixture
def scores():
    return pd.DataFrame(
        {
            "customer_id": ["01", "02", "03", "04", "05"],
            "as_of": pd.to_datetime(["2025-06-30"] * 5).date,
            "churn_probability": [0.8, 0.6, 0.4, 0.1, 0.2],
            "risk_tier": ["high", "high", "medium", "low", "low"],
            "expected_value": [100.0, 50.0, 200.0, 300.0, 10.0],
            "value_at_risk": [80.0, 30.0, 80.0, 30.0, 2.0],
            "at_risk": [True, True, True, False, False],
            "group": ["treatment", "control", "treatment", "treatment", "control"],
            "model_version": ["4"] * 5,
        }
    )


@pytest.fixture
def customers():
    return pd.DataFrame(
        {
            "customer_id": ["01", "02", "03", "04"],  # 05 has no customers row
            "channel": ["web", "app", "web", "store"],
            "region": ["north", "north", "south", "south"],
        }
    )


def test_value_at_risk_by_tier_matches_hand_sums_in_high_medium_low_order(scores):
    tiers = summarize_risk_by_tier(scores).set_index("risk_tier")
    assert list(tiers.index) == ["high", "medium", "low"]
    assert tiers["customers"].to_dict() == {"high": 2, "medium": 1, "low": 2}
    assert tiers["at_risk_customers"].to_dict() == {"high": 2, "medium": 1, "low": 0}
    assert tiers["value_at_risk"].to_dict() == {"high": 110.0, "medium": 80.0, "low": 32.0}
    assert tiers["mean_churn_probability_pct"].to_dict() == {
        "high": 70.0,
        "medium": 40.0,
        "low": 15.0,
    }
    # 110 / 222, 80 / 222, 32 / 222
    assert tiers["share_of_value_at_risk_pct"].to_dict() == {
        "high": 49.5,
        "medium": 36.0,
        "low": 14.4,
    }


def test_segments_come_from_the_customers_table_and_unknown_fills_the_gaps(scores, customers):
    segments = summarize_risk_by_segment(attach_segments(scores, customers))
    channel = segments[segments["segment_type"] == "channel"].set_index("segment")
    assert channel["customers"].to_dict() == {"web": 2, "store": 1, "app": 1, "unknown": 1}
    assert channel["at_risk_customers"].to_dict() == {"web": 2, "store": 0, "app": 1, "unknown": 0}
    assert channel["value_at_risk"].to_dict() == {
        "web": 160.0,
        "store": 30.0,
        "app": 30.0,
        "unknown": 2.0,
    }
    assert channel["at_risk_share_pct"].to_dict() == {
        "web": 100.0,
        "store": 0.0,
        "app": 100.0,
        "unknown": 0.0,
    }
    region = segments[segments["segment_type"] == "region"].set_index("segment")
    assert region["value_at_risk"].to_dict() == {"south": 110.0, "north": 110.0, "unknown": 2.0}


def test_segments_already_in_the_scores_are_kept(scores, customers):
    with_channel = scores.assign(channel="partner")
    segmented = attach_segments(with_channel, customers)
    assert set(segmented["channel"]) == {"partner"}
    assert segmented["region"].tolist() == ["north", "north", "south", "south", "unknown"]


def test_without_a_customers_table_every_segment_is_unknown(scores):
    segments = summarize_risk_by_segment(attach_segments(scores, None))
    assert segments["segment"].unique().tolist() == ["unknown"]
    assert segments["customers"].tolist() == [5, 5]


def test_scoring_summary_counts_at_risk_control_and_value(scores):
    assert summarize_scoring(scores) == {
        "scored_customers": 5,
        "at_risk_customers": 3,
        "value_at_risk": 222.0,
        "value_at_risk_of_at_risk": 190.0,
        "control_customers": 2,
        "at_risk_control_customers": 1,
        "scored_as_of": "2025-06-30",
        "model_version": "4",
    }


def test_scores_without_value_at_risk_are_an_error_naming_the_column(scores):
    with pytest.raises(ChurnError, match="scores.parquet: column 'value_at_risk' is missing"):
        check_scores(scores.drop(columns="value_at_risk"), "scores.parquet")


def test_probabilities_outside_zero_to_one_are_an_error(scores):
    with pytest.raises(ChurnError, match="churn_probability' has values outside 0-1"):
        check_scores(scores.assign(churn_probability=[0.1, 1.2, 0.3, 0.4, 0.5]))


def test_model_quality_line_reads_lift_recall_auc_and_base_rate():
    line = describe_model_quality(
        {
            "model": {"roc_auc": 0.781, "pr_auc": 0.6, "lift_top10": 2.93, "recall_top10": 0.29},
            "base_churn_rate": 0.31,
        }
    )
    assert line == (
        "Model quality, checked on the most recent period it was not trained on: the 10% of "
        "customers it rates riskiest hold 29% of those who really stopped buying, 2.9× what a "
        "random 10% would; ROC AUC 0.78 (0.5 = guessing, 1 = perfect). In that period 31% of "
        "customers stopped buying."
    )


def test_model_quality_line_says_when_it_was_measured_on_an_in_time_holdout():
    line = describe_model_quality(
        {"evaluation": "in_time_holdout", "model": {"roc_auc": 0.7}, "base_churn_rate": 0.4}
    )
    assert line.startswith("Model quality, checked on an in-time holdout (customers it was never")
    assert "most recent period" not in line and line.endswith(
        "Among them 40% of customers stopped buying."
    )


@pytest.mark.parametrize(
    "metrics",
    [None, {}, {"model": {}}, {"model": {"roc_auc": "high"}}, {"model": {"lift_top10": None}}],
)
def test_model_quality_line_says_not_available_when_figures_are_missing(metrics):
    assert describe_model_quality(metrics).startswith("Model quality: not available")


def test_model_quality_line_uses_what_is_there():
    line = describe_model_quality({"model": {"roc_auc": 0.7, "lift_top10": float("nan")}})
    assert "ROC AUC 0.70" in line
    assert "×" not in line  # NaN lift is skipped, not printed
