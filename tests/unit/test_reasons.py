"""Reasons: tree SHAP grouped into families, in plain words with the customer's own values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churn.config import ActionsParams, ReasonsParams
from churn.score.reasons import (
    NO_DRIVER,
    PathAttribution,
    choose_method,
    compute_contributions,
    explain_contributions,
    family_of,
    suggest_actions,
)
from support.score_data import make_snapshot, train_model

FEATURES = [
    "recency_days",
    "gap_mean_days",
    "spend_90d",
    "spend_total",
    "tenure_days",
    "nps_last",
    "purchases_90d",
    "loyalty_points",
]


@pytest.fixture(scope="module")
def model():
    return train_model()


def _customer(**values) -> pd.DataFrame:
    base = {
        "recency_days": 45,
        "gap_mean_days": 21.0,
        "spend_90d": 40.0,
        "spend_total": 1040.0,
        "tenure_days": 990,
        "nps_last": 3.0,
        "purchases_90d": 1,
        "purchases": 101,
        "loyalty_points": 120,
    }
    base.update(values)
    return pd.DataFrame({k: [v] for k, v in base.items()})


def _explain(contributions: list[float], frame: pd.DataFrame, **params):
    texts, families = explain_contributions(
        np.array([contributions], dtype="float64"), FEATURES, frame, ReasonsParams(**params)
    )
    return texts[0], families[0]


def test_features_map_to_families_by_glob_then_by_name_prefix():
    families = ReasonsParams().families
    assert family_of("recency_days", families) == "recency"
    assert family_of("gap_mean_days", families) == "recency"
    assert family_of("spend_90d", families) == "spend_trend"
    assert family_of("spend_total", families) == "spend"
    assert family_of("nps_last", families) == "nps"
    assert family_of("refund_share", families) == "refunds"
    assert family_of("channel", families) == "segment"
    assert family_of("loyalty_points", families) == "loyalty"  # unknown: name prefix
    assert family_of("x", families) == "x"


def test_correlated_features_of_one_family_give_one_reason_in_plain_words():
    # recency and gap both push risk up: one recency reason, not two
    text, family = _explain([0.8, 0.5, 0.6, 0.0, 0.0, 0.4, 0.0, 0.0], _customer())
    assert text.split(" | ") == [
        "no purchase for 45 days; usually buys every 21 days",
        "spend in the last 90 days down 60%",
        "gave an NPS of 3",
    ]
    assert family == "recency"


def test_inactivity_is_one_reason_not_three():
    # 94 days without a purchase: the empty 90-day windows say the same thing as recency
    inactive = _customer(recency_days=94, purchases_90d=0, spend_90d=0.0)
    text, family = _explain([0.3, 0.1, 0.5, 0.0, 0.0, 0.35, 0.4, 0.0], inactive)
    assert text == "no purchase for 94 days; usually buys every 21 days | gave an NPS of 3"
    assert family == "recency"  # 0.3 + 0.1 + 0.5 + 0.4 (spend and purchase windows merged)


def test_a_non_event_is_not_given_as_a_reason():
    features = ["refunds", "nps_latest"]
    frame = pd.DataFrame({"refunds": [0], "nps_latest": [2.0]})
    texts, families = explain_contributions(
        np.array([[0.4, 0.1]]), features, frame, ReasonsParams()
    )
    assert texts == ["gave an NPS of 2"]
    assert families == ["nps"]  # the action follows the first reason shown


def test_only_risk_increasing_families_are_reported_strongest_first():
    text, family = _explain([-0.9, 0.0, 0.0, 0.0, 0.0, 0.3, 0.1, 0.0], _customer())
    assert text == "gave an NPS of 3 | only 1 purchase in the last 90 days (usually about 10)"
    assert family == "nps"
    text, family = _explain([-0.9, 0.0, -0.1, 0.0, 0.0, 0.0, 0.0, 0.0], _customer())
    assert (text, family) == (NO_DRIVER, None)


def test_a_family_is_reported_by_its_net_contribution():
    # spend_90d raises risk a little, spend_total lowers it more: different families, but
    # recency (+0.5) and gap (-0.6) net to a negative recency family: not a reason
    text, _ = _explain([0.5, -0.6, 0.2, 0.0, 0.0, 0.0, 0.0, 0.0], _customer())
    assert text == "spend in the last 90 days down 60%"


def test_top_k_limits_the_number_of_reasons():
    text, _ = _explain([0.8, 0.0, 0.6, 0.0, 0.0, 0.4, 0.0, 0.0], _customer(), top_k=1)
    assert text == "no purchase for 45 days; usually buys every 21 days"


def test_unknown_feature_gets_a_generic_reason_with_its_value():
    text, family = _explain([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.7], _customer())
    assert (text, family) == ("loyalty points: 120", "loyalty")


def test_templates_use_the_customers_own_values():
    no_answer = _customer(nps_last=np.nan, tenure_days=45, spend_90d=0.0)
    text, _ = _explain([0.0, 0.0, 0.0, 0.0, 0.3, 0.2, 0.0, 0.0], no_answer)
    assert text == "customer for only 45 days | has not answered the NPS survey"
    text, _ = _explain([0.0, 0.0, 0.5, 0.0, 0.0, 0.0, 0.0, 0.0], _customer(spend_90d=0.0))
    assert text == "no spend in the last 90 days (usually about 104.00)"
    text, _ = _explain([0.5, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], _customer(gap_mean_days=np.nan))
    assert text == "no purchase for 45 days"


def test_nps_reason_reads_the_answer_whichever_nps_feature_drives_it():
    features = ["nps_class", "nps_latest", "nps_trend", "refund_share", "zero_amount_count"]
    frame = pd.DataFrame(
        {
            "nps_class": pd.array(["detractor"], dtype="string"),
            "nps_latest": [3.0],
            "nps_trend": [-4.0],
            "refund_share": [0.25],
            "zero_amount_count": [2],
        }
    )
    texts, families = explain_contributions(
        np.array([[0.5, 0.1, 0.2, 0.0, 0.3]]), features, frame, ReasonsParams()
    )
    assert (
        texts[0]
        == "gave an NPS of 3 (down 4 points from the answer before) | 2 zero-amount transactions"
    )
    assert families[0] == "nps"
    texts, _ = explain_contributions(
        np.array([[0.0, 0.0, 0.0, 0.3, 0.1]]), features, frame, ReasonsParams()
    )
    assert texts[0] == "25% of spending refunded"


def test_feature_names_of_the_features_stage_land_in_the_intended_families():
    families = ReasonsParams().families
    expected = {
        "recency": [
            "recency_days",
            "gap_mean_days",
            "gap_cv",
            "overdue_ratio",
            "recency_tenure_ratio",
        ],
        "frequency": [
            "purchases",
            "purchase_days",
            "purchases_90d",
            "purchase_rate_365d",
            "weekday_count",
        ],
        "spend_trend": ["spend_90d", "spend_30d", "spend_trend", "aov_trend"],
        "spend": ["spend_total", "aov", "spend_max"],
        "refunds": ["refunds", "refund_share", "zero_amount_count"],
        "tenure": ["tenure_days", "signup_tenure_days"],
        "nps": ["nps_latest", "nps_class", "nps_trend", "nps_days_since", "nps_answers"],
        "segment": ["channel", "region"],
    }
    for family, names in expected.items():
        assert {name: family_of(name, families) for name in names} == dict.fromkeys(names, family)


def test_family_mapping_in_params_decides_the_grouping():
    families = {"engagement": ["loyalty_*", "purchases_*"]}
    text, family = _explain(
        [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.2, 0.3], _customer(), families=families
    )
    assert family == "engagement"
    assert text == "loyalty points: 120"  # the family's strongest member is shown


def test_treeshap_contributions_are_lightgbm_pred_contrib(model):
    snapshot = make_snapshot(300, seed=11)
    contributions = compute_contributions(model, snapshot, "treeshap", batch_rows=128)
    expected = model.booster.predict(model.spec.to_matrix(snapshot), pred_contrib=True)
    np.testing.assert_allclose(contributions, expected[:, :-1])


def test_path_attribution_adds_up_to_the_raw_score_like_treeshap(model):
    snapshot = make_snapshot(400, seed=12)
    matrix = model.spec.to_matrix(snapshot)
    raw = model.booster.predict(matrix, raw_score=True)
    path = PathAttribution(model.booster, model.spec.names)
    np.testing.assert_allclose(path.contributions(matrix).sum(axis=1) + path.base, raw, atol=1e-9)
    shap = model.booster.predict(matrix, pred_contrib=True)
    np.testing.assert_allclose(shap[:, -1], path.base, atol=1e-9)  # same expected value


def test_path_and_treeshap_mostly_agree_on_the_main_reason(model):
    snapshot = make_snapshot(400, seed=13)
    params = ReasonsParams()
    names = model.spec.names
    tree = explain_contributions(compute_contributions(model, snapshot), names, snapshot, params)
    path = explain_contributions(
        compute_contributions(model, snapshot, "path"), names, snapshot, params
    )
    agreement = np.mean([a == b for a, b in zip(tree[1], path[1], strict=True)])
    assert agreement > 0.7


def test_auto_method_is_exact_treeshap_up_to_a_list_size_then_path():
    params = ReasonsParams(method="auto", exact_max_rows=1000)
    assert choose_method(params, 1000) == "treeshap"
    assert choose_method(params, 1001) == "path"
    assert choose_method(ReasonsParams(method="path"), 1) == "path"


def test_actions_follow_family_then_value_with_a_generic_fallback():
    params = ActionsParams()
    families = ["recency", "nps", "loyalty", None, "spend_trend", "nps", "spend_trend", "recency"]
    value = np.array([10.0, 10.0, 10.0, 10.0, 900.0, 900.0, 10.0, 900.0])
    actions = suggest_actions(families, value, high_value_threshold=500.0, params=params)
    assert actions == [
        "win-back offer",
        "service call",
        "general retention offer",
        "general retention offer",
        "loyalty invitation",  # valuable, still buying but less
        "service call",  # an unhappy valuable customer needs the call first
        "personal recommendation",
        "win-back offer",  # a lapsed valuable customer is won back, not invited
    ]


def test_the_time_of_year_is_never_a_customers_reason():
    # the season columns shift every customer's score alike; even when they push hardest, the
    # reason is the customer's own behaviour
    features = ["season_sin", "season_cos", "nps_latest"]
    frame = pd.DataFrame({"season_sin": [0.5], "season_cos": [-0.8], "nps_latest": [2.0]})
    contributions = np.array([[0.9, 0.7, 0.1]])
    texts, families = explain_contributions(contributions, features, frame, ReasonsParams())
    assert texts == ["gave an NPS of 2"]
    assert families == ["nps"]
    assert contributions[0, 0] == 0.9  # the caller's array is not changed
