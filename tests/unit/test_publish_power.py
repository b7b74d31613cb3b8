"""The power check at publish: the minimum detectable effect by hand and by simulation."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from churn.backtest import newcombe_interval
from churn.publish.power import check_power, control_share_needed, minimum_detectable_effect


def test_minimum_detectable_effect_matches_the_hand_computed_value():
    # (1.959964 + 0.841621) * sqrt(0.4 * 0.6 * (1/900 + 1/100)) = 2.801585 * 0.0516398 = 0.144673
    assert minimum_detectable_effect(900, 100, 0.4) == pytest.approx(0.144673, abs=1e-6)
    # a stricter test and more power need a larger effect
    assert minimum_detectable_effect(900, 100, 0.4, alpha=0.01, power=0.9) == pytest.approx(
        (2.575829 + 1.281552) * math.sqrt(0.24 * (1 / 900 + 1 / 100)), abs=1e-6
    )


def test_an_empty_group_has_no_detectable_effect():
    assert minimum_detectable_effect(900, 0, 0.4) is None
    assert minimum_detectable_effect(0, 100, 0.4) is None


@pytest.mark.parametrize(
    "treated, control, base", [(900, 100, 0.4), (2000, 2000, 0.3), (5000, 500, 0.6)]
)
def test_the_ledger_separates_an_effect_of_the_mde_in_about_80_percent_of_simulated_campaigns(
    treated, control, base
):
    effect = minimum_detectable_effect(treated, control, base)
    rng = np.random.default_rng(11)
    runs = 2000
    churned_treated = rng.binomial(treated, base - effect, runs)
    churned_control = rng.binomial(control, base, runs)

    def separated(a: int, b: int) -> bool:
        low, _ = newcombe_interval(treated - a, treated, control - b, control)
        return low > 0

    share = np.mean(
        [separated(a, b) for a, b in zip(churned_treated, churned_control, strict=True)]
    )
    assert 0.75 <= share <= 0.87
    # half the MDE is detected far less often: the formula is not merely loose
    churned_treated = rng.binomial(treated, base - effect / 2, runs)
    share = np.mean(
        [separated(a, b) for a, b in zip(churned_treated, churned_control, strict=True)]
    )
    assert share < 0.45


def test_control_share_needed_is_the_mde_formula_solved_for_the_split():
    share = control_share_needed(1000, 0.4, 0.12)
    control = math.ceil(1000 * share)
    assert minimum_detectable_effect(1000 - control, control, 0.4) <= 0.12
    assert minimum_detectable_effect(1000 - control + 2, control - 2, 0.4) > 0.12
    # half and half is the best split; an effect below its MDE needs more customers
    best = minimum_detectable_effect(500, 500, 0.4)
    assert control_share_needed(1000, 0.4, best * 1.001) == pytest.approx(0.5, abs=0.03)
    assert control_share_needed(1000, 0.4, best * 0.99) is None


def _scores(treated: int, control: int, probability: float = 0.4) -> pd.DataFrame:
    flagged = treated + control
    return pd.DataFrame(
        {
            "customer_id": pd.array([f"c{i}" for i in range(flagged + 5)], dtype="string"),
            "churn_probability": [probability] * flagged + [0.01] * 5,
            "at_risk": [True] * flagged + [False] * 5,  # unflagged customers do not count
            "group": ["treatment"] * treated + ["control"] * control + ["treatment"] * 5,
        }
    )


def test_a_large_control_group_can_measure_the_assumed_effect():
    check = check_power(_scores(5000, 5000), save_rates=0.3, control_share=0.5)
    assert check["treated"] == 5000 and check["control"] == 5000
    assert check["base_churn"] == 0.4 and check["expected_effect"] == pytest.approx(0.12)
    assert check["minimum_detectable_effect"] == pytest.approx(
        minimum_detectable_effect(5000, 5000, 0.4), abs=1e-6
    )
    assert check["measurable"] is True and check["warning"] is None


def test_a_small_control_group_warns_with_the_control_share_needed():
    check = check_power(_scores(900, 100), save_rates=0.3, control_share=0.1)
    assert check["measurable"] is False
    assert check["minimum_detectable_effect"] == pytest.approx(0.144673, abs=1e-6)
    assert check["expected_effect"] == pytest.approx(0.12)
    assert check["control_share_needed"] == pytest.approx(
        control_share_needed(1000, 0.4, 0.12), abs=1e-6
    )
    assert 0.1 < check["control_share_needed"] < 0.5
    assert "cannot be measured" in check["warning"] and "14.5 percentage points" in check["warning"]
    assert "score.control_share" in check["warning"]


def test_an_effect_too_small_for_any_split_says_so():
    # 0.1 x 40% = 4 points: 1,000 customers cannot show it, however they are split
    check = check_power(_scores(900, 100), save_rates=0.1, control_share=0.1)
    assert check["control_share_needed"] is None
    assert "no control share can at this list size" in check["warning"]


def test_no_control_group_warns_that_nothing_can_be_measured():
    check = check_power(_scores(300, 0), save_rates=0.1, control_share=0.0)
    assert check["minimum_detectable_effect"] is None and check["measurable"] is False
    assert "no control group" in check["warning"]


def _tiered(tiers: list[str], probability: float = 0.5, control_every: int = 2) -> pd.DataFrame:
    n = len(tiers)
    return pd.DataFrame(
        {
            "customer_id": pd.array([f"c{i}" for i in range(n)], dtype="string"),
            "churn_probability": [probability] * n,
            "at_risk": [True] * n,
            "group": ["control" if i % control_every == 0 else "treatment" for i in range(n)],
            "risk_tier": pd.array(tiers, dtype="string"),
        }
    )


def _measured(difference: float, low: float, high: float, rate: float) -> dict:
    return {
        "source": "measured",
        "campaigns": ["a", "b"],
        "retention_difference": difference,
        "ci_low": low,
        "ci_high": high,
        "save_rate": rate,
        "save_rate_ci": [rate - 0.05, rate + 0.05],
    }


def test_measured_save_rates_per_tier_set_the_expected_effect_by_the_lists_tier_mix():
    scores = _tiered(["high"] * 300 + ["medium"] * 100)
    rates = {"high": 0.4, "medium": 0.1, "low": 0.2}
    sources = {
        "high": _measured(0.2, 0.15, 0.25, 0.4),
        "medium": _measured(0.05, -0.01, 0.11, 0.1),
        "low": {"source": "assumed", "reason": "no campaign"},
    }
    check = check_power(scores, rates, 0.5, sources=sources)
    # 3/4 x 0.4 x 0.5 + 1/4 x 0.1 x 0.5
    assert check["expected_effect"] == pytest.approx(0.75 * 0.2 + 0.25 * 0.05)
    assert check["effect_source"] == "measured"
    assert (
        "high 75%: save rate 0.400 [0.35, 0.45] measured on 2 campaign(s)"
        in (check["effect_detail"])
    )
    so_far = check["measured_effect"]
    assert so_far["retention_difference"] == pytest.approx(0.75 * 0.2 + 0.25 * 0.05)
    half = ((0.75 * 0.05) ** 2 + (0.25 * 0.06) ** 2) ** 0.5
    assert so_far["ci_low"] == pytest.approx(0.1625 - half, abs=1e-6)
    assert so_far["ci_high"] == pytest.approx(0.1625 + half, abs=1e-6)
    mde = minimum_detectable_effect(200, 200, 0.5)
    assert check["detects_measured_effect"] is (mde <= 0.1625)


def test_a_list_too_small_for_the_measured_effect_says_so():
    scores = _tiered(["high"] * 60)
    sources = {"high": _measured(0.05, 0.01, 0.09, 0.1)}
    check = check_power(scores, {"high": 0.1}, 0.5, sources=sources)
    assert check["detects_measured_effect"] is False and check["measurable"] is False
    assert "measured on 2 campaign(s)" in check["warning"]


def test_tiers_partly_measured_are_named_as_such_and_give_no_measured_effect():
    scores = _tiered(["high"] * 100 + ["low"] * 100)
    sources = {"high": _measured(0.2, 0.1, 0.3, 0.4), "low": {"source": "assumed"}}
    check = check_power(scores, {"high": 0.4, "low": 0.2}, 0.5, sources=sources)
    assert check["effect_source"] == "measured and assumed"
    assert "low 50%: save rate 0.200 assumed (score.save_rate)" in check["effect_detail"]
    assert "measured_effect" not in check and "detects_measured_effect" not in check
    assert check["expected_effect"] == pytest.approx(0.5 * 0.2 + 0.5 * 0.1)


def test_a_list_chosen_by_uplift_expects_its_mean_estimated_uplift():
    scores = _tiered(["high"] * 100).assign(uplift=[0.02] * 50 + [0.06] * 50)
    check = check_power(scores, {"high": 0.9}, 0.5, sources={"high": {"source": "assumed"}})
    assert check["effect_source"] == "uplift"
    assert check["expected_effect"] == pytest.approx(0.04)
