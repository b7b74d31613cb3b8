"""Reasons: tree SHAP grouped into families, in plain words with the customer's own values."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from churn.config import ActionsParams, ReasonsParams
from churn.model import Calibrator, ChurnModel, FeatureSpec
from churn.score.phrasing import build_references
from churn.score.reasons import (
    AVERAGE_RISK,
    NO_DRIVER,
    PathAttribution,
    choose_method,
    compute_contributions,
    explain_contributions,
    explain_customers,
    explain_reasons,
    family_of,
    reference_contributions,
    relative_contributions,
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


def test_correlated_features_of_one_family_give_one_reason_against_a_reference():
    # recency and gap both push risk up: one recency reason, not two; each text compares the
    # customer with their own past
    text, family = _explain([0.8, 0.5, 0.6, 0.0, 0.0, 0.0, 0.0, 0.0], _customer())
    assert text.split(" | ") == [
        "no purchase for 45 days; usually buys every 21 days",
        "spent 40.00 in the last 90 days; usually about 100.00",
    ]
    assert family == "recency"


def test_inactivity_is_one_reason_not_three():
    # 94 days without a purchase: the empty 90-day windows say the same thing as recency
    inactive = _customer(recency_days=94, purchases_90d=0, spend_90d=0.0)
    text, family = _explain([0.3, 0.1, 0.5, 0.0, 0.0, 0.0, 0.4, 0.0], inactive)
    assert text == "no purchase for 94 days; usually buys every 21 days"
    assert family == "recency"  # 0.3 + 0.1 + 0.5 + 0.4 (spend and purchase windows merged)


def test_inactive_customer_with_recency_lowering_risk_gets_no_recency_reason():
    # the empty windows raise risk, recency lowers it more: together they lower it, no reason
    inactive = _customer(recency_days=94, purchases_90d=0, spend_90d=0.0)
    text, family = _explain([-0.9, 0.0, 0.5, 0.0, 0.0, 0.0, 0.3, 0.0], inactive)
    assert (text, family) == (AVERAGE_RISK, None)  # and nothing else lifts the risk


def test_a_non_event_is_not_given_as_a_reason():
    features = ["refunds", "recency_days", "gap_mean_days"]
    frame = pd.DataFrame({"refunds": [0], "recency_days": [40], "gap_mean_days": [10.0]})
    texts, families = explain_contributions(
        np.array([[0.4, 0.1, 0.0]]), features, frame, ReasonsParams()
    )
    assert texts == ["no purchase for 40 days; usually buys every 10 days"]
    assert families == ["recency"]  # the action follows the first reason shown


def test_only_risk_raising_families_are_reported_strongest_first_and_fewer_than_top_k():
    text, family = _explain([-0.9, 0.0, 0.0, 0.0, 0.0, 0.0, 0.1, 0.0], _customer())
    assert text == "1 purchase in the last 90 days; usually about 10"
    assert family == "frequency"
    text, family = _explain([-0.9, 0.0, -0.1, 0.0, 0.0, 0.0, 0.0, 0.0], _customer())
    assert (text, family) == (AVERAGE_RISK, None)


def test_a_family_is_reported_by_its_net_contribution():
    # recency (+0.5) and gap (-0.6) net to a negative recency family: not a reason
    text, _ = _explain([0.5, -0.6, 0.2, 0.0, 0.0, 0.0, 0.0, 0.0], _customer())
    assert text == "spent 40.00 in the last 90 days; usually about 100.00"


def test_the_stated_feature_raises_risk_itself_not_only_its_family():
    # the NPS family raises risk through the days since the answer, but the answer itself (10)
    # lowers it: "gave an NPS of 10" would read as a reason to stay, so no NPS reason at all
    features = ["nps_latest", "nps_days_since", "recency_days", "gap_mean_days"]
    frame = pd.DataFrame(
        {
            "nps_latest": [10.0],
            "nps_days_since": [400],
            "recency_days": [40],
            "gap_mean_days": [10.0],
        }
    )
    texts, families = explain_contributions(
        np.array([[-0.2, 0.6, 0.3, 0.0]]), features, frame, ReasonsParams()
    )
    assert texts == ["no purchase for 40 days; usually buys every 10 days"]
    assert families == ["recency"]


def test_a_fact_that_is_better_than_its_reference_is_not_a_reason():
    # spend in the last 90 days is above the customer's usual: "spend up" is no reason
    up = _customer(spend_90d=300.0)
    text, _ = _explain([0.0, 0.0, 0.6, 0.0, 0.0, 0.0, 0.0, 0.0], up)
    assert text == NO_DRIVER
    # bought 10 days ago, usually every 21: recency is no reason to tell, even when it adds risk
    recent = _customer(recency_days=10)
    text, family = _explain([0.6, 0.0, 0.0, 0.0, 0.0, 0.0, 0.2, 0.0], recent)
    assert (text, family) == ("1 purchase in the last 90 days; usually about 10", "frequency")


def _population() -> pd.DataFrame:
    # customers like them: tenure between 365 and 730 days (one band); plus others
    return pd.DataFrame(
        {
            "recency_days": [10, 20, 30, 500, 600],
            "gap_mean_days": [20.0, 25.0, 30.0, 5.0, 5.0],
            "purchases_90d": [6, 7, 8, 0, 0],
            "spend_90d": [300.0, 350.0, 400.0, 0.0, 0.0],
            "aov": [50.0, 45.0, 40.0, 10.0, 10.0],
            "tenure_days": [400, 500, 600, 1000, 1000],
            "nps_latest": [8.0, 9.0, np.nan, 1.0, 1.0],
            "region": pd.array(["west", "east", "east", "west", "west"], dtype="string"),
        }
    )


def _explain_against_peers(features, values, contributions, **params):
    customer = pd.DataFrame({k: [v] for k, v in values.items()})
    references = build_references(_population(), [90, 365, 730], [0.2, 0.3, 0.3, 0.9, 0.9])
    texts, families = explain_contributions(
        np.array([contributions]), features, customer, ReasonsParams(**params), references
    )
    return texts[0], families[0]


def test_reasons_compare_with_customers_like_them_when_the_own_rhythm_is_not_worse():
    features = ["recency_days", "purchases_90d", "nps_latest"]
    values = {
        "recency_days": 45,
        "gap_mean_days": 60.0,  # not overdue on their own rhythm
        "purchases_90d": 3,
        "tenure_days": 450,  # too short a history for a usual 90-day rate
        "nps_latest": 5.0,
    }
    text, family = _explain_against_peers(features, values, [0.5, 0.4, 0.3])
    assert text.split(" | ") == [
        "no purchase for 45 days; customers like them last bought 20 days ago",
        "3 purchases in the last 90 days; customers like them made 7",
        "gave an NPS of 5; customers like them gave 8.5",
    ]
    assert family == "recency"


def test_plain_attributes_appear_only_when_they_raise_risk_materially():
    features = ["aov", "region", "recency_days"]
    values = {"aov": 20.0, "region": "west", "tenure_days": 500, "recency_days": 5}
    small = [0.05, 0.05, 0.0]
    assert _explain_against_peers(features, values, small) == (NO_DRIVER, None)
    material = [0.3, 0.2, 0.0]
    text, family = _explain_against_peers(features, values, material)
    assert text.split(" | ") == [
        "average order of 20.00; customers like them 45.00",
        "in region west: average risk there 67%, 52% overall",
    ]
    assert family == "spend"
    text, _ = _explain_against_peers(
        features, values, [0.06, 0.05, 0.0], descriptive_min_contribution=0.0
    )
    assert text.startswith("average order of 20.00")


def test_top_k_limits_the_number_of_reasons():
    text, _ = _explain([0.8, 0.0, 0.6, 0.0, 0.0, 0.0, 0.4, 0.0], _customer(), top_k=1)
    assert text == "no purchase for 45 days; usually buys every 21 days"


def test_unknown_feature_is_compared_with_customers_like_them():
    features = ["loyalty_points", "recency_days"]
    population = pd.DataFrame(
        {
            "loyalty_points": [100, 300, 500],
            "tenure_days": [400, 400, 400],
            "recency_days": [1, 2, 3],
        }
    )
    references = build_references(population, [90, 365, 730])
    customer = pd.DataFrame({"loyalty_points": [120], "tenure_days": [400], "recency_days": [2]})
    texts, families = explain_contributions(
        np.array([[0.7, 0.0]]), features, customer, ReasonsParams(), references
    )
    assert (texts[0], families[0]) == ("loyalty points: 120; customers like them 300", "loyalty")


def test_templates_use_the_customers_own_values():
    text, _ = _explain([0.0, 0.0, 0.5, 0.0, 0.0, 0.0, 0.0, 0.0], _customer(spend_90d=0.0))
    assert text == "no spend in the last 90 days; usually about 104.00"
    text, _ = _explain([0.5, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], _customer(gap_mean_days=np.nan))
    assert text == NO_DRIVER  # no usual gap, and the customer is their own only peer


def test_nps_reason_reads_the_answer_whichever_nps_feature_drives_it():
    features = ["nps_class", "nps_latest", "nps_trend", "refund_share", "zero_amount_count"]
    population = pd.DataFrame(
        {
            "nps_latest": [3.0, 8.0, 9.0],
            "nps_trend": [-4.0, 0.0, 0.0],
            "refund_share": [0.25, 0.0, 0.0],
            "zero_amount_count": [2, 0, 0],
        }
    )
    frame = population.head(1).assign(nps_class=pd.array(["detractor"], dtype="string"))
    references = build_references(population, [90, 365, 730])
    texts, families = explain_contributions(
        np.array([[0.5, 0.1, 0.2, 0.0, 0.3]]), features, frame, ReasonsParams(), references
    )
    assert texts[0] == (
        "gave an NPS of 3; customers like them gave 8 | "
        "2 zero-amount transactions; customers like them 0"
    )
    assert families[0] == "nps"
    texts, _ = explain_contributions(
        np.array([[-0.1, -0.1, 0.5, 0.0, 0.0]]), features, frame, ReasonsParams(), references
    )
    assert texts[0] == "NPS down 4 points from their answer before (7 to 3)"
    texts, _ = explain_contributions(
        np.array([[0.0, 0.0, 0.0, 0.3, 0.1]]), features, frame, ReasonsParams(), references
    )
    assert texts[0] == "25% of spending refunded; customers like them 0%"


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
        [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.3, 0.2], _customer(), families=families
    )
    assert family == "engagement"
    assert text == "1 purchase in the last 90 days; usually about 10"  # strongest member first


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


def test_path_contributions_in_batches_equal_one_pass_over_every_row(model):
    snapshot = make_snapshot(450, seed=14)
    whole = PathAttribution(model.booster, model.spec.names).contributions(
        model.spec.to_matrix(snapshot)
    )
    batched = compute_contributions(model, snapshot, "path", batch_rows=100)  # 5 batches
    assert batched.shape == whole.shape
    np.testing.assert_array_equal(batched, whole)  # bit for bit: each row depends on itself only


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
    value = np.array([10.0, 10.0, 10.0, 900.0, 900.0, 900.0, 10.0, 900.0])
    actions = suggest_actions(families, value, high_value_threshold=500.0, params=params)
    assert actions == [
        "win-back offer",
        "service call",
        "general retention offer",
        "general retention offer",  # no reason shown: the default, however valuable
        "loyalty invitation",  # valuable, still buying but less
        "service call",  # an unhappy valuable customer needs the call first
        "personal recommendation",
        "win-back offer",  # a lapsed valuable customer is won back, not invited
    ]


def test_the_time_of_year_is_never_a_customers_reason():
    # the season columns shift every customer's score alike; even when they push hardest, the
    # reason is the customer's own behaviour
    features = ["season_sin", "season_cos", "recency_days"]
    frame = pd.DataFrame(
        {"season_sin": [0.5], "season_cos": [-0.8], "recency_days": [40], "gap_mean_days": [9.0]}
    )
    contributions = np.array([[0.9, 0.7, 0.1]])
    texts, families = explain_contributions(contributions, features, frame, ReasonsParams())
    assert texts == ["no purchase for 40 days; usually buys every 9 days"]
    assert families == ["recency"]
    assert contributions[0, 0] == 0.9  # the caller's array is not changed


def test_peer_tenure_bands_must_ascend():
    with pytest.raises(ValueError, match="strictly ascending"):
        ReasonsParams(peer_tenure_bands_days=[365, 90])


# --------------------------------------------------------------------------- the reference
@pytest.mark.parametrize("method", ["treeshap", "path"])
def test_scored_reference_recentres_contributions_on_the_average_scored_customer(model, method):
    population = make_snapshot(400, seed=21)
    rows = population.iloc[:60]
    params = ReasonsParams(method=method)
    relative = relative_contributions(model, rows, params, population)
    raw = model.booster.predict(model.spec.to_matrix(rows), raw_score=True)
    mean = model.booster.predict(model.spec.to_matrix(population), raw_score=True).mean()
    # still locally exact: a customer's contributions add up to their log-odds minus the mean
    np.testing.assert_allclose(relative.sum(axis=1), raw - mean, atol=1e-9)
    # and each feature's is its raw contribution minus that feature's mean over the population
    raw_contributions = compute_contributions(model, population, method)
    np.testing.assert_allclose(
        relative, raw_contributions[:60] - raw_contributions.mean(axis=0), atol=1e-12
    )
    training = params.model_copy(update={"contribution_reference": "training"})
    np.testing.assert_allclose(
        relative_contributions(model, rows, training, population), raw_contributions[:60]
    )


def test_reference_sample_is_bounded_and_does_not_depend_on_row_order(model):
    population = make_snapshot(400, seed=22)
    params = ReasonsParams(reference_rows=100)
    reference = reference_contributions(model, population, params, "treeshap")
    shuffled = population.sample(frac=1.0, random_state=3)
    np.testing.assert_allclose(
        reference_contributions(model, shuffled, params, "treeshap"), reference, atol=1e-12
    )
    # a sample, not the whole population, and not simply its first rows
    whole = compute_contributions(model, population).mean(axis=0)
    first = compute_contributions(model, population.iloc[:100]).mean(axis=0)
    assert not np.allclose(reference, whole) and not np.allclose(reference, first)
    with pytest.raises(ValueError, match="customer_id"):
        reference_contributions(model, population.drop(columns="customer_id"), params, "treeshap")


def _aged_base_model() -> ChurnModel:
    # trained on a young base: recency spread over 0-400 days, risk rising with it
    rng = np.random.default_rng(5)
    recency = rng.integers(0, 400, 3000)
    purchases = rng.integers(1, 11, 3000)
    logit = (recency - 150) / 40 - (purchases - 5) * 0.3
    train = pd.DataFrame(
        {
            "recency_days": recency,
            "purchases": purchases,
            "churned": rng.random(3000) < 1 / (1 + np.exp(-logit)),
        }
    )
    spec = FeatureSpec.infer(train, ["recency_days", "purchases"])
    booster = lgb.train(
        {
            "objective": "binary",
            "num_leaves": 7,
            "learning_rate": 0.1,
            "min_data_in_leaf": 20,
            "verbose": -1,
            "seed": 0,
            "num_threads": 1,
            "deterministic": True,
        },
        lgb.Dataset(spec.to_matrix(train), train["churned"]),
        num_boost_round=40,
    )
    return ChurnModel(booster, Calibrator("identity"), spec, {"model_version": "t"})


def test_a_customer_riskier_than_those_scored_with_them_gets_a_reason_on_an_aged_base():
    # everyone scored bought recently compared with the training rows; the customer at 150 days
    # is below the training average (raw TreeSHAP: nothing raises the risk) but well above the
    # customers scored with them
    model = _aged_base_model()
    population = pd.DataFrame(
        {
            "customer_id": pd.array([f"c{i}" for i in range(61)], dtype="string"),
            "recency_days": [150] + [20, 30, 40] * 20,
            "purchases": [5] * 61,
        }
    )
    params = ReasonsParams(method="treeshap")
    references = build_references(population, params.peer_tenure_bands_days)
    rows = population.iloc[:1]
    training = params.model_copy(update={"contribution_reference": "training"})
    raw = relative_contributions(model, rows, training, population)
    assert raw[0, 0] <= 0
    texts, families = explain_customers(model, rows, training, references, population)
    assert texts == [AVERAGE_RISK] and families == [None]

    relative = relative_contributions(model, rows, params, population)
    assert relative[0, 0] > 0
    texts, families = explain_customers(model, rows, params, references, population)
    assert texts == ["no purchase for 150 days; customers like them last bought 30 days ago"]
    assert families == ["recency"]


def test_a_single_feature_that_adds_risk_is_the_reason_when_no_family_gives_one():
    # recency adds risk, the customer's slow rhythm lowers it more: no family adds risk as a
    # whole, yet the silence past their own rhythm is what raises this customer's risk
    features = ["recency_days", "gap_mean_days", "purchases_90d", "tenure_days"]
    frame = pd.DataFrame(
        {
            "recency_days": [141],
            "gap_mean_days": [100.0],
            "purchase_days": [4],
            "purchases_90d": [0],
            "tenure_days": [440],
        }
    )
    contributions = np.array([[0.07, -0.2, 0.1, 0.05]])
    reasons = explain_reasons(contributions, features, frame, ReasonsParams())
    # the empty 90-day window restates recency: never shown alone; tenure is below the
    # plain-attribute threshold
    assert [(r.text, r.family, r.feature, r.basis) for r in reasons[0]] == [
        (
            "no purchase for 141 days; usually buys every 100 days",
            "recency",
            "recency_days",
            "feature",
        )
    ]
    assert reasons[0][0].contribution == pytest.approx(0.07)
    texts, families = explain_contributions(contributions, features, frame, ReasonsParams())
    assert families == ["recency"]
    # a feature that adds risk but reads better than its reference is still no reason
    contributions = np.array([[-0.5, -0.2, 0.1, 0.05]])
    texts, families = explain_contributions(contributions, features, frame, ReasonsParams())
    assert (texts, families) == ([AVERAGE_RISK], [None])


def test_a_new_customer_is_compared_with_everyone_when_customers_like_them_are_no_worse():
    # a one-purchase customer of 23 days is like the other new customers, but the model's risk
    # is above the average scored customer's: the reason says against whom
    features = ["purchases_90d", "purchases_180d", "recency_days"]
    frame = pd.DataFrame(
        {
            "purchases_90d": [1, 1, 1, 3, 4],
            "purchases_180d": [1, 1, 2, 5, 6],
            "recency_days": [23, 20, 10, 15, 12],
            "tenure_days": [23, 40, 60, 500, 600],
        }
    )
    contributions = np.zeros((5, 3))
    contributions[0] = [0.0, 0.4, -0.3]
    params = ReasonsParams()
    reasons = explain_reasons(contributions, features, frame, params)
    assert [(r.template, r.text, r.basis) for r in reasons[0]] == [
        (
            "purchases_window_vs_everyone",
            "1 purchase in the last 180 days; customers overall made 2",
            "feature",
        )
    ]
    assert reasons[1:] == [[], [], [], []]  # nothing adds risk for the others
