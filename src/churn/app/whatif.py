"""The what-if before a download: contact the first N of a selection (or as many as a budget pays
for) and see churners reached, expected saves, cost, expected net benefit and the control held back.

Money comes from the pipeline's own formula (`churn.score.targeting.expected_net_benefit`) and
save rates from its seam (`choose_save_rates`: measured per tier, else assumed), so the page and
the list can never disagree on what a contact is worth; only the contact cost can be edited on the
page.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from churn.errors import ChurnError
from churn.score.targeting import expected_net_benefit, uplift_net_benefit
from churn.uplift.policy import expected_incremental_profit

MAX_CONTACT_COST = 1e9


@dataclass(frozen=True)
class CampaignPlan:
    """What contacting the first `contacts` customers of a selection is expected to bring."""

    selected: int  # customers in the selection (treatment, after suppression)
    contacts: int  # the first `contacts` of them, in priority order
    limited_by: str  # "size", "budget" or "selection" (everyone selected)
    control_held_back: int  # control customers of the selection within the contacted range
    churners_reached: float  # sum of churn probabilities of the contacted
    expected_saves: float  # churners the action keeps: probability x save rate
    value_kept: float  # expected saves x their value
    cost: float
    net_benefit: float  # value kept - cost (the pipeline's expected net benefit, summed)
    best_contacts: int  # the size with the most expected net benefit in this selection
    best_net_benefit: float


def contacts_for(
    selected: int, size: int | None, budget: float | None, contact_cost: float
) -> tuple[int, str]:
    """Return how many to contact (and what limited it) for a list size or a budget."""
    if size is not None:
        if size < 0:
            raise ChurnError("List size: give zero or more customers")
        return (size, "size") if size < selected else (selected, "selection")
    if budget is not None:
        if budget < 0:
            raise ChurnError("Budget: give zero or more")
        if contact_cost <= 0:
            return selected, "selection"
        # a budget that pays for exactly N contacts must give N despite float rounding
        affordable = math.floor(budget / contact_cost + 1e-9)
        return (affordable, "budget") if affordable < selected else (selected, "selection")
    return selected, "selection"


def plan_campaign(
    probability: np.ndarray,
    expected_value: np.ndarray,
    save_rate: np.ndarray,
    priority: np.ndarray,
    control_priority: np.ndarray,
    *,
    contact_cost: float,
    size: int | None = None,
    budget: float | None = None,
    uplift: np.ndarray | None = None,
) -> CampaignPlan:
    """Return the plan for a selection given in priority order (one value per selected customer).

    `save_rate` is each customer's (by tier). `uplift`, when the uplift policy chose the list,
    is each customer's estimated incremental retention from a contact: it replaces probability
    x save rate as the customers a contact keeps, so the money is uplift x value - cost, what
    that policy ranked by (a missing estimate keeps no one). `control_priority` holds the priorities of the
    control customers matching the same filter, ascending (the control list's order): those
    ranked within the contacted range are held back (not contacted, to measure the campaign) —
    the first `control_held_back` of them — and all of them when the whole selection is used.
    """
    if not (math.isfinite(contact_cost) and 0 <= contact_cost <= MAX_CONTACT_COST):
        raise ChurnError("Cost per contact: give an amount of zero or more")
    selected = len(probability)
    contacts, limited_by = contacts_for(selected, size, budget, contact_cost)
    if uplift is not None:
        # the score stage's own money under that policy (no estimate: no one kept, minus the cost)
        effect = np.asarray(uplift, dtype="float64")
        net = uplift_net_benefit(
            expected_incremental_profit(effect, expected_value, contact_cost), contact_cost
        )
        saves = np.nan_to_num(effect, nan=0.0)
    else:
        net = expected_net_benefit(probability, save_rate, expected_value, contact_cost)
        saves = np.asarray(probability, dtype="float64") * np.asarray(save_rate, dtype="float64")
    cumulative = np.concatenate([[0.0], np.cumsum(net)])
    best = int(np.argmax(cumulative))
    if contacts == selected:
        held_back = len(control_priority)
    elif contacts == 0:
        held_back = 0
    else:
        last = priority[contacts - 1]
        held_back = int(np.searchsorted(control_priority, last, side="right"))
    cost = contacts * float(contact_cost)
    return CampaignPlan(
        selected=selected,
        contacts=contacts,
        limited_by=limited_by,
        control_held_back=held_back,
        churners_reached=float(np.sum(probability[:contacts])),
        expected_saves=float(np.sum(saves[:contacts])),
        value_kept=float(cumulative[contacts] + cost),
        cost=cost,
        net_benefit=float(cumulative[contacts]),
        best_contacts=best,
        best_net_benefit=float(cumulative[best]),
    )
