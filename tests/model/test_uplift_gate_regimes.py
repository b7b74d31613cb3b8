"""The uplift gate on simulated campaigns with a known answer: it switches only when it should.

A few seeds per regime here, with the params' defaults (the gate's one-sided level
uplift.false_switch_rate = 0.004); the full 4 regimes x 20 seeds is benchmarks/uplift_gate.py
(benchmarks/results/uplift_gate.md). The bound's calibration is checked on a small simulated
null: held-out campaigns where a contact does nothing, redrawn many times.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churn.columns import (
    CAMPAIGN_ID,
    CHURN_PROBABILITY,
    CONTROL_SHARE,
    CUSTOMER_ID,
    EXPECTED_VALUE,
    RETAINED,
    TREATED,
    UPLIFT,
)
from churn.config import UpliftParams
from churn.uplift.gate import (
    NOT_ENOUGH,
    RETENTION_CONTROL,
    RETENTION_TREATED,
    USE_RISK_VALUE,
    USE_UPLIFT,
    judge_policies,
)
from churn.uplift.simulate import gate_trial

PARAMS = UpliftParams()
CONTACT_COST = 5.0
SEEDS = (0, 1)


@pytest.mark.parametrize("regime", ["no_effect", "proportional_to_risk"])
def test_gate_keeps_risk_value_when_uplift_has_nothing_to_add(regime):
    for seed in SEEDS:
        trial = gate_trial(regime, seed, PARAMS, CONTACT_COST)
        assert trial["policy"] == USE_RISK_VALUE, trial
        # either the bound is not above 0 or the gain does not replicate in every campaign
        assert "not above 0" in trial["reason"], trial
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


POOL = np.array([f"c{i:05d}" for i in range(1500)])


def _null_campaigns(rng: np.random.Generator) -> pd.DataFrame:
    """Three held-out campaigns of 1,000 customers drawn from a pool of 1,500 (customers repeat
    across campaigns, as in real lists), control share 0.1 — 300 control customers in all, the
    gate's minimum (uplift.min_control_rows) — log-normal values, scores that say nothing, noisy
    outcome models, and a contact that changes nothing: the true difference is 0."""
    size = 1000
    holdout = pd.DataFrame(
        {
            CUSTOMER_ID: np.concatenate(
                [POOL[rng.choice(len(POOL), size, replace=False)] for _ in range(3)]
            ),
            CAMPAIGN_ID: np.repeat(["list-0", "list-1", "list-2"], size),
            CONTROL_SHARE: 0.1,
            EXPECTED_VALUE: np.exp(4.2 + 0.45 * rng.normal(size=3 * size)),
            UPLIFT: rng.normal(0.02, 0.05, 3 * size),
            CHURN_PROBABILITY: rng.uniform(0.1, 0.9, 3 * size),
        }
    )
    keep = 1.0 - holdout[CHURN_PROBABILITY].to_numpy()
    model = np.clip(keep + rng.normal(scale=0.1, size=len(keep)), 0.01, 0.99)
    return holdout.assign(
        **{
            TREATED: (rng.random(len(keep)) >= 0.1).astype("int8"),
            RETAINED: (rng.random(len(keep)) < keep).astype("int8"),
            RETENTION_CONTROL: model,
            RETENTION_TREATED: model,
        }
    )


def test_bound_is_not_anticonservative_when_a_contact_does_nothing():
    """300 simulated nulls at the default level (uplift.false_switch_rate 0.004): a calibrated
    one-sided bound is above 0 in about 0.4% of them (the gate's false-switch rate per decision,
    about 1 of 300), and the mirror bound is below 0 about as often. Each tail is allowed 3 and
    6 of 300 (room for the draw and for the bootstrap-t's excess in the tails with only 300
    control rows: 3 above and 4 below with this seed); the previous level (2.5%: about 7.5 of 300
    above) or a standard error 15% too small fails them."""
    params = UpliftParams()
    rng = np.random.default_rng(20261128)
    estimates, errors, above, below = [], [], 0, 0
    draws = 300
    for _ in range(draws):
        comparison, _ = judge_policies(_null_campaigns(rng), params, 5.0)
        difference = comparison["difference"]
        estimates.append(difference["estimate"])
        errors.append(difference["standard_error"])
        above += difference["ci_low"] > 0
        below += difference["ci_high"] < 0
    assert above <= 3, (above, below)
    assert below <= 6, (above, below)
    # the standard error behind the bound is not too small for the estimate's real spread
    assert np.mean(errors) >= 0.9 * np.std(estimates), (np.mean(errors), np.std(estimates))
