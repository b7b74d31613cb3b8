"""The uplift gate on simulated campaigns with a known answer: it switches only when it should.

A few seeds per regime here; the full 4 regimes x 20 seeds is benchmarks/uplift_gate.py
(benchmarks/results/uplift_gate.md).
"""

from __future__ import annotations

import pytest

from churn.config import UpliftParams
from churn.uplift.gate import NOT_ENOUGH, USE_RISK_VALUE, USE_UPLIFT
from churn.uplift.simulate import gate_trial

PARAMS = UpliftParams(bootstrap=200)
CONTACT_COST = 5.0
SEEDS = (0, 1)


@pytest.mark.parametrize("regime", ["no_effect", "proportional_to_risk"])
def test_gate_keeps_risk_value_when_uplift_has_nothing_to_add(regime):
    for seed in SEEDS:
        trial = gate_trial(regime, seed, PARAMS, CONTACT_COST)
        assert trial["policy"] == USE_RISK_VALUE, trial
        assert "not above 0" in trial["reason"]
        # the estimate is honest: the interval of the difference holds the true difference
        true_difference = trial["true_uplift"] - trial["true_risk_x_value"]
        assert trial["difference_ci_low"] <= true_difference <= trial["difference_ci_high"], trial


def test_gate_switches_when_contacts_push_some_customers_away():
    for seed in SEEDS:
        trial = gate_trial("heterogeneous", seed, PARAMS, CONTACT_COST)
        assert trial["policy"] == USE_UPLIFT, trial
        assert trial["true_uplift"] > trial["true_risk_x_value"], trial
        assert trial["qini_uplift"] > trial["qini_risk_x_value"], trial


def test_gate_waits_for_enough_campaigns():
    for seed in SEEDS:
        trial = gate_trial("too_few_campaigns", seed, PARAMS, CONTACT_COST)
        assert trial["policy"] == USE_RISK_VALUE
        assert trial["reason"].startswith(NOT_ENOUGH)
