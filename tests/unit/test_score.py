"""The score stage: tiers, value, net benefit, priority, targeting, suppression, control group."""

from __future__ import annotations

import datetime as dt
import hashlib

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from churn.config import ScoreParams, TargetParams, TiersParams
from churn.errors import ChurnError
from churn.files import parquet_bytes
from churn.score import build_profit_curve, build_scores, score_customers, summarise_scores
from churn.score.targeting import (
    CONTROL,
    assign_groups,
    estimate_expected_value,
)
from churn.tiers import assign_tiers
from support.score_data import AS_OF, make_snapshot, rank_priority, train_model


def _params(**changes) -> ScoreParams:
    return ScoreParams().model_copy(update=changes)


def _snapshot(ids, spend, tenure, as_of=AS_OF) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": pd.array(ids, dtype="string"),
            "cutoff": [as_of] * len(ids),
            "role": "score",
            "spend_total": np.asarray(spend, dtype="float64"),
            "tenure_days": np.asarray(tenure, dtype="int64"),
        }
    )


@pytest.fixture(scope="module")
def model():
    return train_model()


def test_tiers_follow_the_params_thresholds_inclusively():
    tiers = assign_tiers(np.array([0.1, 0.2, 0.49, 0.5, 0.9]), ScoreParams().tiers)
    assert tiers.tolist() == ["low", "medium", "medium", "high", "high"]


def test_expected_value_is_daily_spend_times_period_and_margin_with_a_tenure_floor():
    snapshot = _snapshot(["a", "b", "c"], [365.0, 90.0, -50.0], [364, 10, 400])
    value = estimate_expected_value(snapshot, _params(gross_margin=0.5, expected_value_days=365))
    # a: 365 over 365 days = 1/day; b: 90 over the 90-day floor = 1/day; c: net refunds = 0
    np.testing.assert_allclose(value, [182.5, 182.5, 0.0])


def test_value_at_risk_and_net_benefit_follow_their_formulas():
    snapshot = _snapshot(["a", "b"], [365.0, 730.0], [364, 364])
    # no value cap here: with two customers the 99th percentile would cap b's value
    params = _params(gross_margin=1.0, save_rate=0.2, contact_cost=10.0, value_cap_quantile=None)
    scores = score_customers(snapshot, np.array([0.5, 0.1]), params, model_version="3")
    by_id = scores.set_index("customer_id")
    assert by_id.loc["a", "expected_value"] == pytest.approx(365.0)
    assert by_id.loc["a", "value_at_risk"] == pytest.approx(182.5)
    assert by_id.loc["a", "expected_net_benefit"] == pytest.approx(0.5 * 0.2 * 365 - 10)
    assert by_id.loc["b", "expected_net_benefit"] == pytest.approx(0.1 * 0.2 * 730 - 10)
    assert set(scores["model_version"]) == {"3"}
    assert set(scores["as_of"]) == {AS_OF}


def test_priority_ranks_by_net_benefit_and_breaks_ties_by_customer_id():
    ids = pd.Series(["c", "a", "b", "d"], dtype="string")
    ranks = rank_priority(ids, np.array([5.0, 5.0, 9.0, -1.0]))
    assert ranks.tolist() == [3, 2, 1, 4]
    ids = pd.Series(["z", "x", "y", "q", "p", "r"], dtype="string")
    ranks = rank_priority(ids, np.array([1.0, 1.0, 1.0, 2.0, 2.0, 0.0]))
    assert ranks.tolist() == [5, 3, 4, 2, 1, 6]


def test_net_benefit_rule_flags_exactly_the_customers_worth_contacting():
    snapshot = _snapshot(["a", "b", "c"], [365.0] * 3, [364] * 3)
    params = _params(gross_margin=1.0, save_rate=0.1, contact_cost=10.0)
    scores = score_customers(snapshot, np.array([0.9, 0.2, 0.25]), params, model_version="1")
    flagged = dict(zip(scores["customer_id"], scores["at_risk"], strict=True))
    # net benefit: a 22.85, b -2.7, c -0.875
    assert flagged == {"a": True, "b": False, "c": False}


def test_a_valuable_low_risk_customer_is_not_flagged_by_default():
    # "big" spends 100x the others: positive net benefit at 5% risk, but below the medium tier
    snapshot = _snapshot(["big", "risky", "calm"], [36500.0, 365.0, 365.0], [364] * 3)
    probability = np.array([0.05, 0.6, 0.1])
    params = _params(gross_margin=1.0, save_rate=0.2, contact_cost=10.0, value_cap_quantile=None)
    scores = score_customers(snapshot, probability, params, model_version="1")
    by_id = scores.set_index("customer_id")
    # net benefit: big 355, risky 33.8, calm -2.7
    assert by_id.loc["big", "expected_net_benefit"] == pytest.approx(0.05 * 0.2 * 36500 - 10)
    assert by_id.loc["big", "priority"] == 1  # still ranked by net benefit
    assert scores.loc[scores["at_risk"], "customer_id"].tolist() == ["risky"]
    # without the floor (the old rule) the valuable low-risk customer tops the list
    old = params.model_copy(
        update={"target": TargetParams(min_probability_floor=None, above_average=False)}
    )
    old_scores = score_customers(snapshot, probability, old, model_version="1")
    assert old_scores.loc[old_scores["at_risk"], "customer_id"].tolist() == ["big", "risky"]


@pytest.mark.parametrize(
    "floor, expected",
    [
        ("medium", ["d", "c"]),  # score.tiers.medium = 0.2: 0.2 counts (inclusive)
        ("high", ["d"]),  # score.tiers.high = 0.5
        (0.15, ["d", "c", "b"]),
        (0.0, ["d", "c", "b", "a"]),
        (None, ["d", "c", "b", "a"]),
    ],
)
def test_the_probability_floor_is_a_tier_name_or_a_number(floor, expected):
    snapshot = _snapshot(list("abcd"), [36500.0] * 4, [364] * 4)
    probability = np.array([0.1, 0.19, 0.2, 0.7])
    params = _params(
        target=TargetParams(min_probability_floor=floor, above_average=False),
        value_cap_quantile=None,
    )
    scores = score_customers(snapshot, probability, params, model_version="1")
    assert (scores["expected_net_benefit"] > 0).all()
    assert scores.loc[scores["at_risk"], "customer_id"].tolist() == expected
    assert scores.attrs["targeting"]["min_probability_floor"] == {
        "medium": 0.2,
        "high": 0.5,
        None: 0.0,
    }.get(floor, floor)


def test_the_floor_follows_the_tier_thresholds_in_params():
    snapshot = _snapshot(list("abc"), [36500.0] * 3, [364] * 3)
    params = _params(
        tiers=TiersParams(high=0.6, medium=0.3),
        target=TargetParams(above_average=False),
        value_cap_quantile=None,
    )
    scores = score_customers(snapshot, np.array([0.25, 0.3, 0.9]), params, model_version="1")
    assert sorted(scores.loc[scores["at_risk"], "customer_id"]) == ["b", "c"]


def test_where_most_customers_churn_only_the_above_average_risks_are_flagged():
    """CDNOW's shape: 70% churn, so the medium tier alone lets valuable below-average risks in."""
    ids = [f"{k:02d}" for k in range(10)]
    snapshot = _snapshot(ids, [36500.0] * 10, [364] * 10)
    probability = np.array([0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95])
    params = _params(value_cap_quantile=None)  # the defaults: medium tier and above average
    scores = score_customers(snapshot, probability, params, model_version="1")
    mean = probability.mean()  # 0.675
    assert scores.attrs["targeting"]["min_probability_floor"] == pytest.approx(mean)
    flagged = scores.loc[scores["at_risk"], "churn_probability"]
    assert flagged.min() >= mean and len(flagged) == 6
    tier_only = _params(target=TargetParams(above_average=False), value_cap_quantile=None)
    assert score_customers(snapshot, probability, tier_only, model_version="1")["at_risk"].all()


def test_a_model_that_gives_everyone_the_same_risk_flags_no_one(caplog):
    """With ">= the mean" a constant model would put everyone above average and value alone
    would fill the list."""
    ids = [f"{k:02d}" for k in range(8)]
    snapshot = _snapshot(ids, [36500.0] * 8, [364] * 8)
    probability = np.full(8, 0.48)
    params = _params(value_cap_quantile=None)  # the defaults: medium tier and above average
    with caplog.at_level("WARNING"):
        scores = score_customers(snapshot, probability, params, model_version="1")
    assert (scores["expected_net_benefit"] > 0).all()
    assert not scores["at_risk"].any()
    assert "same churn probability" in caplog.text
    tier_only = _params(target=TargetParams(above_average=False), value_cap_quantile=None)
    assert score_customers(snapshot, probability, tier_only, model_version="1")["at_risk"].all()


@pytest.mark.parametrize("floor", ["low", "very high", 1.5, -0.1])
def test_an_unknown_floor_is_rejected(floor):
    with pytest.raises(ValidationError, match="min_probability_floor"):
        TargetParams(min_probability_floor=floor)


def test_top_n_counts_only_customers_above_the_floor():
    snapshot = _snapshot(list("abcd"), [200000.0, 30000.0, 365.0, 300.0], [364] * 4)
    probability = np.array([0.1, 0.3, 0.6, 0.8])
    params = _params(
        target=TargetParams(rule="top_n", top_n=2, above_average=False), value_cap_quantile=None
    )
    scores = score_customers(snapshot, probability, params, model_version="1")
    # net benefit: a 595, b 265, d 2.2, c 1.57; a is below the floor, so b and d take the places
    assert scores["customer_id"].tolist() == ["a", "b", "d", "c"]
    assert scores.loc[scores["at_risk"], "customer_id"].tolist() == ["b", "d"]


def test_expected_value_is_capped_at_the_quantile_of_the_scored_customers():
    spend = [365.0 * k for k in range(1, 101)]  # values 365 .. 36,500 (gross_margin 1)
    snapshot = _snapshot([f"{k:03d}" for k in range(100)], spend, [364] * 100)
    params = _params(gross_margin=1.0, value_cap_quantile=0.9)
    scores = score_customers(snapshot, np.full(100, 0.5), params, model_version="1")
    cap = float(np.quantile(spend, 0.9))  # 365 x 90.1 = 32,886.5 (linear interpolation)
    assert cap == pytest.approx(32886.5)
    assert scores["expected_value"].max() == pytest.approx(cap)
    assert np.isclose(scores["expected_value"], cap).sum() == 10  # the top 10 capped
    assert scores["expected_value"].min() == pytest.approx(365.0)  # the rest untouched
    assert scores["value_at_risk"].max() == pytest.approx(0.5 * cap)
    summary = summarise_scores(scores, 0)
    assert summary["targeting"]["expected_value_cap"] == round(cap, 2)
    assert summary["targeting"]["value_cap_quantile"] == 0.9
    assert summary["targeting"]["expected_value_capped"] == 10
    uncapped = score_customers(
        snapshot,
        np.full(100, 0.5),
        _params(gross_margin=1.0, value_cap_quantile=None),
        model_version="1",
    )
    assert uncapped["expected_value"].max() == pytest.approx(36500.0)
    assert summarise_scores(uncapped, 0)["targeting"]["expected_value_cap"] is None


def test_the_score_summary_gives_the_tier_mix_and_lowest_probability_of_the_flagged():
    snapshot = _snapshot(list("abcd"), [36500.0] * 4, [364] * 4)
    params = _params(target=TargetParams(above_average=False), value_cap_quantile=None)
    scores = score_customers(snapshot, np.array([0.1, 0.25, 0.3, 0.7]), params, model_version="1")
    summary = summarise_scores(scores, 0)
    assert summary["flagged_by_tier"] == {"high": 1, "medium": 2, "low": 0}
    assert summary["lowest_flagged_probability"] == 0.25
    assert summary["targeting"]["save_rates"] == {"high": 0.1, "medium": 0.1, "low": 0.1}


def test_max_customers_still_caps_the_default_rule():
    snapshot = _snapshot(list("abcde"), [36500.0] * 5, [364] * 5)
    probability = np.array([0.05, 0.3, 0.4, 0.6, 0.9])
    params = _params(target=TargetParams(max_customers=2), value_cap_quantile=None)
    scores = score_customers(snapshot, probability, params, model_version="1")
    assert scores.loc[scores["at_risk"], "customer_id"].tolist() == ["e", "d"]


def test_top_n_rule_skips_suppressed_customers_and_the_cap_limits_any_rule():
    snapshot = _snapshot(list("abcde"), [100.0, 200.0, 300.0, 400.0, 500.0], [364] * 5)
    probability = np.full(5, 0.5)
    top = _params(target=TargetParams(rule="top_n", top_n=2))
    scores = score_customers(snapshot, probability, top, model_version="1", suppressed_ids=["e"])
    assert scores.loc[scores["at_risk"], "customer_id"].tolist() == ["d", "c"]
    capped = _params(target=TargetParams(rule="probability", min_probability=0.4, max_customers=3))
    scores = score_customers(snapshot, probability, capped, model_version="1")
    assert scores.loc[scores["at_risk"], "customer_id"].tolist() == ["e", "d", "c"]


def test_suppressed_customers_are_never_flagged_and_are_counted():
    snapshot = make_snapshot(500, seed=1)
    params = _params(target=TargetParams(rule="probability", min_probability=0.0))
    suppressed = ["0000003", "0000007", "not-a-customer"]
    scores = score_customers(
        snapshot, np.full(500, 0.9), params, model_version="1", suppressed_ids=suppressed
    )
    marked = scores.loc[scores["suppressed"], "customer_id"].tolist()
    assert sorted(marked) == ["0000003", "0000007"]
    assert not scores.loc[scores["suppressed"], "at_risk"].any()
    assert scores["at_risk"].sum() == 498
    summary = summarise_scores(scores, len(suppressed))
    assert summary["suppressed"] == 2 and summary["suppression_list_size"] == 3


def test_group_is_sha256_of_salt_and_customer_id_against_the_control_share():
    digest = hashlib.sha256(b"salt:0000042").digest()
    expected = CONTROL if int.from_bytes(digest[:8], "big") / 2**64 < 0.3 else "treatment"
    assert assign_groups(["0000042"], "salt:", 0.3).tolist() == [expected]


def test_control_share_is_about_ten_percent_and_stable_per_customer():
    ids = [f"{i:07d}" for i in range(20_000)]
    groups = assign_groups(ids, "churn-control-v1:", 0.1)
    share = (groups == CONTROL).mean()
    assert abs(share - 0.1) < 0.0065  # three standard errors
    subset = ids[::-7][:3000]  # another run, other customers, other order
    again = dict(zip(subset, assign_groups(subset, "churn-control-v1:", 0.1), strict=True))
    assert all(again[cid] == groups[int(cid)] for cid in subset)
    other_salt = assign_groups(ids, "another-salt:", 0.1)
    assert 0.05 < (other_salt != groups).mean() < 0.3


def test_control_group_is_independent_of_risk():
    snapshot = make_snapshot(20_000, seed=2)
    params = _params(target=TargetParams(rule="top_n", top_n=5000))
    probability = np.linspace(0.01, 0.99, 20_000)
    scores = score_customers(snapshot, probability, params, model_version="1")
    flagged = scores.loc[scores["at_risk"]]
    assert abs((flagged["group"] == CONTROL).mean() - 0.1) < 0.015


def test_snapshot_with_several_cutoffs_or_duplicates_is_refused():
    two_dates = _snapshot(["a", "b"], [1.0, 1.0], [10, 10])
    two_dates.loc[1, "cutoff"] = dt.date(2025, 1, 1)
    with pytest.raises(ChurnError, match="expected one cutoff"):
        score_customers(two_dates, np.array([0.1, 0.2]), ScoreParams(), model_version="1")
    duplicated = _snapshot(["a", "a"], [1.0, 1.0], [10, 10])
    with pytest.raises(ChurnError, match="duplicated customer_id"):
        score_customers(duplicated, np.array([0.1, 0.2]), ScoreParams(), model_version="1")
    with pytest.raises(ChurnError, match="no customers to score"):
        score_customers(duplicated.iloc[:0], np.array([]), ScoreParams(), model_version="1")


def test_missing_core_feature_for_the_value_is_a_clear_error():
    snapshot = _snapshot(["a"], [1.0], [10]).drop(columns=["spend_total"])
    with pytest.raises(ChurnError, match="'spend_total' is missing"):
        score_customers(snapshot, np.array([0.5]), ScoreParams(), model_version="1")


def test_profit_curve_starts_at_zero_and_contains_the_best_list_size():
    snapshot = make_snapshot(3000, seed=4)
    probability = np.random.default_rng(0).uniform(0, 1, 3000)
    params = ScoreParams(
        profit_curve_points=50, target=TargetParams(min_probability_floor=None, above_average=False)
    )
    scores = score_customers(snapshot, probability, params, model_version="1")
    curve = build_profit_curve(scores, params)
    assert curve.iloc[0].tolist() == [0, 0.0]
    assert curve["list_size"].iloc[-1] == 3000  # no floor: every customer is a candidate
    assert curve["list_size"].is_monotonic_increasing
    positive = int((scores["expected_net_benefit"] > 0).sum())
    best = curve.loc[curve["expected_net_benefit"].idxmax(), "list_size"]
    assert best == positive  # benefit grows while each added customer is worth the contact
    assert len(curve) <= 52


def test_profit_curve_counts_only_customers_a_list_could_hold():
    snapshot = make_snapshot(3000, seed=4)
    probability = np.random.default_rng(0).uniform(0, 1, 3000)
    params = ScoreParams(profit_curve_points=50)  # floor: medium tier, raised to the mean risk
    suppressed = snapshot["customer_id"].iloc[:40].tolist()
    scores = score_customers(
        snapshot, probability, params, model_version="1", suppressed_ids=suppressed
    )
    curve = build_profit_curve(scores, params)
    floor = max(params.tiers.medium, float(probability.mean()))
    candidates = scores[(scores["churn_probability"] >= floor) & ~scores["suppressed"]]
    assert 0 < len(candidates) < 3000 - 40  # the floor keeps out about half the customers
    assert curve["list_size"].iloc[-1] == len(candidates)
    assert summarise_scores(scores, 40)["targeting"]["candidates"] == len(candidates)
    # each size's benefit is the sum over the first k candidates in priority order
    ranked = candidates.sort_values("priority")["expected_net_benefit"].cumsum().round(2)
    for size, benefit in curve.loc[curve["list_size"] > 0].itertuples(index=False):
        assert benefit == pytest.approx(ranked.iloc[size - 1], abs=0.01)
    # the flagged list is a point of the curve: its best size
    best = curve.loc[curve["expected_net_benefit"].idxmax(), "list_size"]
    assert best == int(scores["at_risk"].sum())


def test_probability_rule_caps_the_first_candidates_in_priority_order():
    # "a" has the highest value (first in priority) but is under min_probability: it must not
    # take one of the max_customers places
    snapshot = _snapshot(list("abcd"), [9000.0, 300.0, 200.0, 100.0], [364] * 4)
    params = _params(
        target=TargetParams(rule="probability", min_probability=0.4, max_customers=2),
        value_cap_quantile=None,
    )
    probability = np.array([0.3, 0.5, 0.6, 0.7])
    scores = score_customers(snapshot, probability, params, model_version="1")
    assert scores["customer_id"].iloc[0] == "a"
    assert scores.loc[scores["at_risk"], "customer_id"].tolist() == ["b", "c"]


def test_scores_are_byte_identical_for_the_same_inputs_in_any_row_order(model):
    snapshot = make_snapshot(1500, seed=6)
    first = parquet_bytes(build_scores(snapshot, model, ScoreParams(), ["0000010"]))
    shuffled = snapshot.sample(frac=1.0, random_state=3).reset_index(drop=True)
    second = parquet_bytes(build_scores(shuffled, model, ScoreParams(), ["0000010"]))
    assert first == second


def test_reasons_and_actions_are_computed_for_flagged_customers_only(model):
    scores = build_scores(make_snapshot(1500, seed=7), model, ScoreParams())
    flagged = scores["at_risk"]
    assert 0 < flagged.sum() < len(scores)
    assert scores.loc[flagged, ["reasons", "suggested_action"]].notna().all().all()
    assert scores.loc[~flagged, ["reasons", "reason_family", "suggested_action"]].isna().all().all()
    assert scores["priority"].tolist() == list(range(1, len(scores) + 1))
    # the full table still says which value cap and floor the rule used (for reports/score.json)
    targeting = summarise_scores(scores, 0)["targeting"]
    mean = float(scores["churn_probability"].mean())
    assert targeting["min_probability_floor"] == pytest.approx(max(0.2, mean), abs=1e-6)
    assert targeting["expected_value_cap"] == pytest.approx(
        float(scores["expected_value"].max()), abs=0.01
    )
    assert scores.loc[flagged, "churn_probability"].min() >= max(0.2, mean) - 1e-6


def test_scores_carry_segment_columns_and_model_version(model):
    scores = build_scores(make_snapshot(200, seed=8), model, ScoreParams())
    assert {"channel", "region"} <= set(scores.columns)
    assert set(scores["model_version"]) == {"7"}


@pytest.mark.parametrize("control_share", [0.2, 0.0])
def test_score_totals_of_parts_add_up_to_the_summary(control_share):
    # the Spark score stage totals each partition on its own and adds the totals up
    from functools import reduce

    from churn.score.targeting import add_score_totals, report_score_totals, total_scores

    snapshot = make_snapshot(400, seed=9)
    probability = np.random.default_rng(9).beta(2, 4, 400)
    ids = snapshot["customer_id"].astype(str)
    scores = score_customers(
        snapshot,
        probability,
        _params(control_share=control_share),
        model_version="7",
        suppressed_ids=ids.iloc[::13],
    )
    whole = summarise_scores(scores, 31)
    flagged = scores.index[scores["at_risk"]]
    # parts in no particular order: one without any flagged customer, one of a single row
    parts = [
        scores.drop(flagged),
        scores.loc[flagged[:1]],
        scores.loc[flagged[1:]],
        scores.iloc[:0],
    ]
    totals = reduce(add_score_totals, [total_scores(part) for part in parts])
    got = report_score_totals(totals, 31, scores.attrs["targeting"])
    assert whole["flagged"] > 1 and whole["suppressed"] > 0
    assert total_scores(parts[0])["lowest_flagged_probability"] is None
    for key, value in whole.items():
        if key in ("tiers",):
            for tier, entry in value.items():
                assert got[key][tier]["customers"] == entry["customers"]
                assert got[key][tier]["value_at_risk"] == pytest.approx(
                    entry["value_at_risk"], rel=1e-9
                )
        elif isinstance(value, float):
            assert got[key] == pytest.approx(value, rel=1e-9), key
        else:
            assert got[key] == value, key
