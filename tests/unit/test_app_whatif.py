"""The what-if before a download: size or budget -> contacts, churners, saves, cost, net benefit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churn.app import whatif
from churn.app.selection import Filters, group_query, select
from churn.app.service import build_view, parse_whatif, plan_for
from churn.app.store import NO_SUPPRESSION
from churn.config import ScoreParams
from churn.errors import ChurnError
from churn.publish.record import select_lists
from churn.score.targeting import save_rates_by_tier
from support.app_data import example_loaded
from support.score_data import make_scores

# three customers in priority order: p x 0.1 x value - 5 = 3, 7, -3
P = np.array([0.8, 0.6, 0.4])
VALUE = np.array([100.0, 200.0, 50.0])
RATE = np.full(3, 0.1)
PRIORITY = np.array([1, 3, 4])
CONTROL = np.array([2, 5, 9])


def _plan(**options):
    return whatif.plan_campaign(P, VALUE, RATE, PRIORITY, CONTROL, contact_cost=5.0, **options)


def test_a_list_size_gives_churners_saves_cost_and_net_benefit():
    plan = _plan(size=2)
    assert (plan.selected, plan.contacts, plan.limited_by) == (3, 2, "size")
    assert plan.churners_reached == pytest.approx(1.4)
    assert plan.expected_saves == pytest.approx(0.14)
    assert plan.cost == 10.0
    assert plan.value_kept == pytest.approx(20.0)
    assert plan.net_benefit == pytest.approx(10.0)
    # the third contact costs more than it brings: two is the best size
    assert (plan.best_contacts, plan.best_net_benefit) == (2, pytest.approx(10.0))


def test_a_budget_pays_for_whole_contacts_only():
    assert _plan(budget=12.0).contacts == 2
    assert _plan(budget=15.0).contacts == 3  # exactly three contacts, despite float division
    assert _plan(budget=0.15 * 100).contacts == 3
    assert _plan(budget=4.99).contacts == 0
    assert _plan(budget=1000.0).limited_by == "selection"


def test_no_size_or_budget_contacts_the_whole_selection():
    plan = _plan()
    assert (plan.contacts, plan.limited_by, plan.net_benefit) == (3, "selection", pytest.approx(7))
    assert _plan(size=50).contacts == 3


def test_control_customers_ranked_within_the_contacted_range_are_held_back():
    assert _plan(size=0).control_held_back == 0
    assert _plan(size=1).control_held_back == 0  # control priority 2 is after the first contact
    assert _plan(size=2).control_held_back == 1  # contacts reach priority 3: control 2 is in
    assert _plan(size=3).control_held_back == 3  # the whole selection: its whole control group


def test_a_free_contact_means_a_budget_reaches_everyone():
    plan = whatif.plan_campaign(P, VALUE, RATE, PRIORITY, CONTROL, contact_cost=0.0, budget=1.0)
    assert plan.contacts == 3 and plan.cost == 0.0


@pytest.mark.parametrize("cost", [-1.0, float("nan"), float("inf")])
def test_an_impossible_contact_cost_is_refused(cost):
    with pytest.raises(ChurnError, match="Cost per contact"):
        whatif.plan_campaign(P, VALUE, RATE, PRIORITY, CONTROL, contact_cost=cost)


def test_the_what_if_reproduces_the_published_net_benefit_at_the_params_contact_cost():
    """One formula: at the params' cost the plan sums the list's own expected_net_benefit."""
    params = ScoreParams()
    treatment, _ = select_lists(make_scores(500, seed=3))
    rates = save_rates_by_tier(params)
    tier_rate = treatment["risk_tier"].map(rates).to_numpy(dtype="float64")
    plan = whatif.plan_campaign(
        treatment["churn_probability"].to_numpy(),
        treatment["expected_value"].to_numpy(),
        tier_rate,
        treatment["priority"].to_numpy(),
        np.array([], dtype="int64"),
        contact_cost=params.contact_cost,
    )
    # published values are rounded (probability 4 and value 2 decimals, net 2): allow for that
    assert plan.net_benefit == pytest.approx(treatment["expected_net_benefit"].sum(), rel=1e-3)


def test_the_page_what_if_uses_the_selection_and_the_edited_cost():
    loaded = example_loaded()
    errors: list[str] = []
    chosen = parse_whatif(
        group_query([("how", "size"), ("size", "2"), ("cost", "10")]), 5.0, errors
    )
    assert errors == [] and (chosen.how, chosen.size, chosen.contact_cost) == ("size", 2, 10.0)
    selection = select(loaded.treatment, loaded.control, Filters(tiers=("high",)))
    plan = plan_for(loaded, selection, chosen, {"high": 0.1, "medium": 0.1, "low": 0.1})
    # 0.91 x 0.1 x 300 - 10 + 0.8 x 0.1 x 250 - 10 = 27.3 + 20 - 20
    assert plan.net_benefit == pytest.approx(27.3)
    assert plan.control_held_back == 0  # control 0003 (priority 3) is after priority 2


def test_unusable_what_if_values_fall_back_with_a_message():
    errors: list[str] = []
    chosen = parse_whatif(
        group_query([("how", "size"), ("size", "2.5"), ("cost", "-3"), ("budget", "-1")]),
        5.0,
        errors,
    )
    assert (chosen.how, chosen.size, chosen.budget, chosen.contact_cost) == ("all", None, None, 5.0)
    assert errors == [
        "Cost per contact: give an amount of zero or more",
        "Number of customers: give a whole number of zero or more",
        "Budget: give an amount of zero or more",
    ]


def test_the_view_counts_what_the_download_would_hold():
    loaded = example_loaded()
    view = build_view(
        loaded,
        group_query([("tier", "high"), ("how", "budget"), ("budget", "15"), ("cost", "5")]),
        NO_SUPPRESSION,
        (np.zeros(6, dtype=bool), np.zeros(2, dtype=bool)),
        5.0,
        {"high": 0.1, "medium": 0.1},
    )
    assert view.errors == []
    # 15 pays for 3 contacts: the whole selection, so its control customer 0003 is held back
    assert (view.selection.count, view.plan.contacts, view.plan.control_held_back) == (3, 3, 1)
    assert view.query == [
        ("tier", "high"),
        ("how", "budget"),
        ("budget", "15"),
        ("cost", "5"),
    ]


def test_the_page_ranks_contacts_without_gaps_and_places_control_among_them():
    # published priorities: contacts 1, 2, 4, 5, 7, 8; control 3 and 6 (the list's gaps)
    loaded = example_loaded()
    rates = save_rates_by_tier(ScoreParams())
    view = build_view(loaded, {}, NO_SUPPRESSION, (None, None), 5.0, rates)
    assert view.control_ranks.tolist() == [3, 5]  # after contacts ranked 1-2 and 1-4
    ranks = view.control_ranks
    for size in range(view.selection.count):  # contacting the first N holds back ranks <= N
        sized = build_view(
            loaded,
            group_query([("how", "size"), ("size", str(size))]),
            NO_SUPPRESSION,
            (None, None),
            5.0,
            rates,
        )
        assert sized.plan.control_held_back == int((ranks <= size).sum()), size
    web = build_view(
        loaded, group_query([("seg_channel", "web")]), NO_SUPPRESSION, (None, None), 5.0, rates
    )
    # web: contacts 0001, 0004, 0107 (priorities 1, 4, 7); control 0003 (priority 3) comes 2nd
    assert web.control_ranks.tolist() == [2]


def test_an_uplift_list_counts_estimated_uplift_times_value_less_the_cost():
    # uplift 0.2, 0.05, missing (an explored customer: no estimate keeps no one)
    plan = _plan(uplift=np.array([0.2, 0.05, np.nan]))
    assert plan.expected_saves == pytest.approx(0.25)
    assert plan.churners_reached == pytest.approx(1.8)  # still the chance of leaving
    # 0.2 x 100 - 5 + 0.05 x 200 - 5 + 0 - 5
    assert plan.net_benefit == pytest.approx(15.0 + 5.0 - 5.0)
    assert plan.value_kept == pytest.approx(30.0) and plan.best_contacts == 2


def test_the_what_if_reproduces_an_uplift_lists_published_net_benefit():
    """One formula under the uplift policy too: uplift x value - cost, as the score stage flags."""
    from churn.score import score_customers
    from churn.score.targeting import UpliftTargeting
    from support.score_data import make_snapshot

    snapshot = make_snapshot(300, seed=4)
    rng = np.random.default_rng(4)
    ids = snapshot["customer_id"].astype("string")
    table = pd.DataFrame(
        {
            "customer_id": ids,
            "uplift": rng.normal(0.05, 0.08, len(ids)),
            "covered": rng.random(len(ids)) < 0.8,
        }
    )
    params = ScoreParams()
    scores = score_customers(
        snapshot,
        rng.beta(2, 4, len(ids)),
        params,
        model_version="1",
        uplift=UpliftTargeting(table, 0.0, 0, "the gate switched (test)"),
    )
    flagged = scores["at_risk"].to_numpy(dtype=bool)
    scores["reasons"] = pd.Series(pd.NA, index=scores.index, dtype="string")
    scores.loc[flagged, "reasons"] = "no purchase for 90 days"
    scores["suggested_action"] = pd.Series(pd.NA, index=scores.index, dtype="string")
    scores.loc[flagged, "suggested_action"] = "win-back offer"
    treatment, _ = select_lists(scores)
    assert len(treatment) > 10 and "uplift" not in treatment.columns  # not a segment
    uplift = treatment["customer_id"].map(scores.set_index("customer_id")["uplift"])

    def plan_with(estimates):
        return whatif.plan_campaign(
            treatment["churn_probability"].to_numpy(),
            treatment["expected_value"].to_numpy(),
            np.full(len(treatment), params.save_rate),
            treatment["priority"].to_numpy(),
            np.array([], dtype="int64"),
            contact_cost=params.contact_cost,
            uplift=estimates,
        )

    plan = plan_with(uplift.to_numpy(dtype="float64"))
    assert plan.net_benefit == pytest.approx(treatment["expected_net_benefit"].sum(), rel=1e-3)
    # risk x save rate x value would have counted other money
    riskwise = plan_with(None)
    assert riskwise.net_benefit != pytest.approx(plan.net_benefit, rel=1e-2)


def test_the_store_reads_the_uplift_estimates_only_for_a_list_the_uplift_policy_chose(tmp_path):
    from churn.app.store import load_published
    from churn.publish import record
    from support.app_data import example_scores

    scores = example_scores(200, seed=5)
    scores["uplift"] = np.linspace(-0.1, 0.3, len(scores))
    by_id = scores.set_index("customer_id")["uplift"]
    for policy, root in (("uplift", tmp_path / "u"), ("risk_x_value", tmp_path / "r")):
        about = {"targeting": {"policy": policy, "reason": "test"}}
        manifest = record.publish_lists(scores, root, about=about).manifest
        loaded = load_published(root, manifest, [])
        if policy == "risk_x_value":
            assert loaded.treatment.uplift is None and loaded.control.uplift is None
            continue
        ids = loaded.treatment.frame["customer_id"].astype("string")
        assert loaded.treatment.uplift == pytest.approx(by_id.loc[ids].to_numpy())
        assert loaded.control.uplift is not None
        # the download holds the published columns only
        assert "uplift" not in loaded.columns
