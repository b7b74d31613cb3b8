"""The score stage learns from campaigns: measured save rates per tier replace the assumed one,
and the uplift policy replaces risk x value when the uplift gate switched."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from churn.config import ScoreParams
from churn.score import score_customers, summarise_scores
from churn.score.targeting import UpliftTargeting, choose_save_rates, pool_tier_effect

AS_OF = dt.date(2025, 6, 30)


def _params(**changes) -> ScoreParams:
    return ScoreParams().model_copy(update=changes)


def _snapshot(ids, spend) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": pd.array(ids, dtype="string"),
            "cutoff": [AS_OF] * len(ids),
            "role": "score",
            "spend_total": np.asarray(spend, dtype="float64"),
            "tenure_days": 364,
        }
    )


def _slice(tier, treated, control, treated_retention, control_retention):
    return {
        "slice": "tier",
        "value": tier,
        "treated_customers": treated,
        "control_customers": control,
        "treated_retention": treated_retention,
        "control_retention": control_retention,
    }


def _ledger(*lists):
    return {"lists": list(lists), "newest_data_date": "2025-06-30"}


def _list(list_id, *slices, status="separated", campaign_known=True):
    return {
        "list_id": list_id,
        "status": status,
        "campaign_known": campaign_known,
        "slices": [{"slice": "list", "value": "all"}, *slices],
    }


LEDGER = _ledger(
    _list("l1", _slice("high", 900, 100, 0.30, 0.10), _slice("medium", 300, 100, 0.5, 0.5)),
    _list("l2", _slice("high", 400, 100, 0.40, 0.20)),
    _list("l3", _slice("low", 90, 10, 0.9, 0.5), status="collecting"),
    _list("l4", _slice("low", 90, 10, 0.9, 0.5), campaign_known=False),
)


def test_pooled_tier_effect_weighs_each_lists_own_difference_by_its_size():
    pooled = pool_tier_effect([LEDGER["lists"][0]["slices"][1], LEDGER["lists"][1]["slices"][1]])
    # weights 1000 / 1500 and 500 / 1500; both lists' differences are 0.20
    assert pooled["retention_difference"] == pytest.approx(0.20)
    churn = (2 / 3) * 0.90 + (1 / 3) * 0.80
    assert pooled["control_churn"] == pytest.approx(churn, abs=1e-6)
    assert pooled["save_rate"] == pytest.approx(0.20 / churn, abs=1e-6)

    def var(p, n):  # Agresti-Caffo: one success and one failure added
        adjusted = (p * n + 1) / (n + 2)
        return adjusted * (1 - adjusted) / (n + 2)

    variance = (2 / 3) ** 2 * (var(0.3, 900) + var(0.1, 100)) + (1 / 3) ** 2 * (
        var(0.4, 400) + var(0.2, 100)
    )
    assert pooled["ci_low"] == pytest.approx(0.20 - 1.96 * variance**0.5, abs=1e-6)
    assert pooled["status"] == "separated"


def test_a_small_tier_that_all_stayed_still_gets_an_interval_of_some_width():
    pooled = pool_tier_effect([_slice("high", 5, 2, 1.0, 0.0)])
    # 5 of 5 treated stayed, 0 of 2 control: a wide interval, cut to the possible differences
    assert pooled["ci_high"] == 1.0 and pooled["ci_low"] < 0.6


def test_measured_save_rates_replace_the_assumed_one_where_campaigns_measured_the_tier():
    rates = choose_save_rates(LEDGER, _params(save_rate=0.1))
    high, medium, low = (rates.sources[t] for t in ("high", "medium", "low"))
    assert high["source"] == "measured" and high["campaigns"] == ["l1", "l2"]
    assert rates.rates["high"] == pytest.approx(high["save_rate"])
    # medium: measured no effect, so contacting it is not expected to keep anyone
    assert medium["source"] == "measured" and rates.rates["medium"] == 0.0
    assert medium["status"] == "inconclusive"
    # low: only a list still collecting and a list no campaign used: assumed, with the reason
    assert low["source"] == "assumed" and rates.rates["low"] == 0.1
    assert "no matured campaign measured the low tier" in low["reason"]


def test_assumed_save_rate_without_a_ledger_or_when_measured_rates_are_off():
    for ledger, params, reason in (
        (None, _params(), "no campaign ledger"),
        (LEDGER, _params(measured_save_rates=False), "score.measured_save_rates is false"),
    ):
        rates = choose_save_rates(ledger, params)
        assert rates.rates == {"high": 0.1, "medium": 0.1, "low": 0.1}
        assert all(
            s["source"] == "assumed" and reason in s["reason"] for s in rates.sources.values()
        )


def test_scores_use_the_measured_rate_of_each_tier_and_report_its_source():
    snapshot = _snapshot(["a", "b"], [365.0, 365.0])
    params = _params(gross_margin=1.0, contact_cost=1.0, value_cap_quantile=None)
    rates = choose_save_rates(LEDGER, params)
    scores = score_customers(
        snapshot, np.array([0.6, 0.3]), params, model_version="1", save_rates=rates
    )
    by_id = scores.set_index("customer_id")
    assert by_id.loc["a", "expected_net_benefit"] == pytest.approx(
        0.6 * rates.rates["high"] * 365 - 1
    )
    assert by_id.loc["b", "expected_net_benefit"] == pytest.approx(-1.0)  # medium: rate 0
    assert bool(by_id.loc["a", "at_risk"]) and not bool(by_id.loc["b", "at_risk"])
    targeting = summarise_scores(scores, 0)["targeting"]
    assert targeting["save_rate_sources"]["high"]["source"] == "measured"
    assert targeting["policy"] == "risk_x_value"


def _uplift(ids, uplift, covered, exploration_share=0.0):
    table = pd.DataFrame(
        {
            "customer_id": pd.array(ids, dtype="string"),
            "uplift": np.asarray(uplift, dtype="float64"),
            "covered": np.asarray(covered, dtype=bool),
        }
    )
    return UpliftTargeting(table, exploration_share, 0, "the interval is above 0")


def test_uplift_policy_contacts_by_incremental_profit_and_never_a_customer_pushed_away():
    ids = ["a", "b", "c", "d", "e", "f"]
    snapshot = _snapshot([*ids, "g"], [365.0] * 7)  # g: not in the uplift table
    params = _params(gross_margin=1.0, contact_cost=10.0, value_cap_quantile=None)
    # a: best; b: pushed away (negative uplift) though very risky; c: profit below the cost;
    # d: outside past lists' population; e: suppressed; f: positive
    targeting = _uplift(ids, [0.2, -0.3, 0.01, 0.5, 0.4, 0.1], [1, 1, 1, 0, 1, 1])
    scores = score_customers(
        snapshot,
        np.array([0.3, 0.99, 0.5, 0.5, 0.5, 0.4, 0.9]),
        params,
        model_version="1",
        suppressed_ids=["e"],
        uplift=targeting,
    )
    flagged = scores.loc[scores["at_risk"], "customer_id"].tolist()
    assert flagged == ["a", "f"]  # in priority order: expected incremental profit
    by_id = scores.set_index("customer_id")
    assert by_id.loc["a", "expected_net_benefit"] == pytest.approx(0.2 * 365 - 10)
    assert by_id.loc["b", "uplift"] == pytest.approx(-0.3)
    assert np.isnan(by_id.loc["g", "uplift"]) and by_id.loc["g", "expected_net_benefit"] == -10.0
    targeting_report = summarise_scores(scores, 1)["targeting"]
    assert targeting_report["policy"] == "uplift" and targeting_report["explored"] == 0


def test_uplift_policy_respects_capacity_and_explores_only_outside_the_covered_population():
    ids = [f"c{i:02d}" for i in range(40)]
    snapshot = _snapshot(ids, [365.0] * 40)
    params = _params(gross_margin=1.0, contact_cost=1.0, value_cap_quantile=None)
    params = params.model_copy(
        update={"target": params.target.model_copy(update={"max_customers": 10})}
    )
    covered = [i < 30 for i in range(40)]
    targeting = _uplift(ids, np.linspace(0.3, 0.01, 40), covered, exploration_share=0.2)
    scores = score_customers(
        snapshot,
        np.full(40, 0.5),
        params,
        model_version="1",
        suppressed_ids=["c35"],
        uplift=targeting,
    )
    flagged = set(scores.loc[scores["at_risk"], "customer_id"])
    assert {f"c{i:02d}" for i in range(10)} <= flagged  # the ten best covered customers
    explored = flagged - {f"c{i:02d}" for i in range(10)}
    assert len(explored) == 2 and all(int(c[1:]) >= 30 for c in explored)
    assert "c35" not in flagged
    assert summarise_scores(scores, 1)["targeting"]["explored"] == 2
