"""The uplift gate's rule: it switches only when the gain's one-sided lower bound at the configured
level (uplift.false_switch_rate) is above 0 AND the gain is positive in every held-out campaign;
the bound resamples customers, not rows (the interval's calibration under no effect:
tests/model/test_uplift_gate_regimes.py)."""

from __future__ import annotations

from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

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
from churn.uplift.gate import USE_RISK_VALUE, USE_UPLIFT, decide, judge_policies


def _comparison(ci_low: float, per_campaign: list[float], alpha: float = 0.004) -> dict:
    return {
        "difference": {"estimate": sum(per_campaign), "ci_low": ci_low, "ci_high": ci_low + 10},
        "by_campaign": [
            {"campaign": f"list-{number}", "list_size": 100, "difference": value}
            for number, value in enumerate(per_campaign)
        ],
        "false_switch_rate": alpha,
    }


def test_gate_switches_only_when_the_bound_is_above_zero_and_every_campaign_gains():
    policy, reason = decide(_comparison(5.0, [10.0, 20.0, 30.0]), 3)
    assert policy == USE_UPLIFT and "gains in every held-out campaign" in reason
    policy, reason = decide(_comparison(-5.0, [10.0, 20.0, 30.0]), 3)
    assert policy == USE_RISK_VALUE and "is not above 0" in reason


def test_gate_keeps_risk_value_when_the_gain_does_not_replicate_and_names_the_campaign():
    policy, reason = decide(_comparison(5.0, [40.0, -3.0, 30.0]), 3)
    assert policy == USE_RISK_VALUE
    assert "does not replicate" in reason and "list-1" in reason and "list-0" not in reason


def test_gate_reason_names_the_level_and_why():
    _, reason = decide(_comparison(-5.0, [10.0, 20.0, 30.0]), 3)
    assert "one-sided 99.6% lower bound" in reason
    assert "uplift.false_switch_rate 0.004" in reason and "at most 5% of the time" in reason
    _, reason = decide(_comparison(-5.0, [10.0], alpha=0.025), 1)
    assert "one-sided 97.5% lower bound" in reason


def _holdout(customers: int, campaigns: int, shared_ids: bool, seed: int = 7) -> pd.DataFrame:
    """`campaigns` held-out campaigns holding the same `customers` with the same assignment,
    outcome and scores in each (the strongest possible dependence between a customer's rows);
    shared_ids False gives every row its own customer id."""
    rng = np.random.default_rng(seed)
    one = pd.DataFrame(
        {
            CONTROL_SHARE: 0.1,
            EXPECTED_VALUE: np.exp(4.2 + 0.4 * rng.normal(size=customers)),
            UPLIFT: rng.normal(0.02, 0.05, customers),
            CHURN_PROBABILITY: rng.uniform(0.1, 0.9, customers),
            TREATED: (rng.random(customers) >= 0.1).astype("int8"),
            RETAINED: (rng.random(customers) < 0.6).astype("int8"),
        }
    )
    frames = []
    for number in range(campaigns):
        ids = [f"c{i:05d}" if shared_ids else f"c{number}-{i:05d}" for i in range(customers)]
        frames.append(one.assign(**{CUSTOMER_ID: ids, CAMPAIGN_ID: f"list-{number}"}))
    return pd.concat(frames, ignore_index=True)


def test_bound_resamples_customers_not_rows():
    """A customer on three held-out lists counts once in the bootstrap, with all three rows: when
    the rows are identical the standard error is sqrt(3) times what three independent customers
    would give. Resampling rows would give the same error both ways."""
    params = UpliftParams(bootstrap=1250)
    shared, _ = judge_policies(_holdout(2000, 3, shared_ids=True), params, 5.0)
    separate, _ = judge_policies(_holdout(2000, 3, shared_ids=False), params, 5.0)
    assert shared["difference"]["estimate"] == pytest.approx(separate["difference"]["estimate"])
    ratio = shared["difference"]["standard_error"] / separate["difference"]["standard_error"]
    assert ratio == pytest.approx(np.sqrt(3), rel=0.01)
    width = {
        name: c["difference"]["ci_high"] - c["difference"]["ci_low"]
        for name, c in (("shared", shared), ("separate", separate))
    }
    assert width["shared"] / width["separate"] == pytest.approx(np.sqrt(3), rel=0.15)


@pytest.mark.parametrize("alpha", [0.004, 0.025])
def test_bound_is_one_sided_at_the_configured_level(alpha):
    """On a large sum the studentized bound sits about z(1 - alpha) standard errors below the
    estimate: 2.65 at the default 0.004, 1.96 at 0.025."""
    params = UpliftParams(false_switch_rate=alpha, bootstrap=4000)
    comparison, _ = judge_policies(_holdout(6000, 1, shared_ids=True), params, 5.0)
    difference = comparison["difference"]
    z = (difference["estimate"] - difference["ci_low"]) / difference["standard_error"]
    assert z == pytest.approx(NormalDist().inv_cdf(1 - alpha), abs=0.2)
    assert comparison["false_switch_rate"] == alpha
    assert comparison["confidence"] == pytest.approx(1 - 2 * alpha)


def test_params_refuse_too_few_resamples_beyond_the_bound():
    with pytest.raises(ValidationError, match="raise bootstrap to 1250 or more"):
        UpliftParams(bootstrap=500)
    assert UpliftParams(false_switch_rate=0.025, bootstrap=200).bootstrap == 200
    assert UpliftParams().false_switch_rate == pytest.approx(0.004)
    with pytest.raises(ValidationError):
        UpliftParams(false_switch_rate=0.1)
