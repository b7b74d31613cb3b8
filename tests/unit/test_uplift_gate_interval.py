"""The uplift gate's rule: it switches only when the gain is significant in the sum AND positive in
every held-out campaign (the interval's calibration: tests/model/test_uplift_gate_regimes.py)."""

from __future__ import annotations

from churn.uplift.gate import USE_RISK_VALUE, USE_UPLIFT, decide


def _comparison(ci_low: float, per_campaign: list[float]) -> dict:
    return {
        "difference": {"estimate": sum(per_campaign), "ci_low": ci_low, "ci_high": ci_low + 10},
        "by_campaign": [
            {"campaign": f"list-{number}", "list_size": 100, "difference": value}
            for number, value in enumerate(per_campaign)
        ],
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
