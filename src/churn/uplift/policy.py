"""Whom to contact, and with which action, by expected incremental profit (the uplift policy).

Expected incremental profit = uplift x expected_value - contact cost. A customer whose estimated
uplift is negative (a contact pushes them away) is never contacted, whatever their value. The
learner only saw customers past lists flagged, so the policy chooses within that population; an
exploration share contacts customers outside it at random, so later campaigns can learn there.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from churn.columns import (
    CONTACT,
    COVERED,
    CUSTOMER_ID,
    EXPECTED_INCREMENTAL_PROFIT,
    EXPECTED_VALUE,
    EXPLORE,
    UPLIFT,
)
from churn.errors import ChurnError


def expected_incremental_profit(
    uplift: np.ndarray, value: np.ndarray, contact_cost: float
) -> np.ndarray:
    """Return uplift x value - contact cost for each customer."""
    return np.asarray(uplift, dtype="float64") * np.asarray(value, dtype="float64") - contact_cost


def contact_eligible(covered: np.ndarray, uplift: np.ndarray, profit: np.ndarray) -> np.ndarray:
    """Return who the policy may contact: covered customers with positive uplift and positive
    expected incremental profit (a customer a contact pushes away never is)."""
    return (
        np.asarray(covered, dtype=bool)
        & (np.asarray(uplift, dtype="float64") > 0)
        & (np.asarray(profit, dtype="float64") > 0)
    )


def exploration_draws(outside: int, contacts: int, exploration_share: float) -> int:
    """Return how many customers outside the covered population exploration contacts."""
    return min(outside, int(round(exploration_share * contacts)))


def exploration_positions(outside: int, draws: int, seed: int) -> np.ndarray:
    """Return the positions, among the customers outside the covered population sorted by id,
    that exploration contacts (seeded: they depend on the seed and the population only)."""
    return np.random.default_rng(seed).choice(outside, size=draws, replace=False)


def _top(
    score: np.ndarray, eligible: np.ndarray, size: int, customer_ids: np.ndarray
) -> np.ndarray:
    """Return a mask of the `size` eligible customers with the highest score (ties: customer id)."""
    order = np.lexsort((customer_ids, -score))
    order = order[eligible[order]][:size]
    mask = np.zeros(len(score), dtype=bool)
    mask[order] = True
    return mask


def uplift_list(
    uplift: np.ndarray,
    value: np.ndarray,
    contact_cost: float,
    size: int,
    customer_ids: np.ndarray,
) -> np.ndarray:
    """Return the uplift policy's list at a given size: the `size` customers with the highest
    expected incremental profit among those with positive estimated uplift (fewer when fewer have)."""
    profit = expected_incremental_profit(uplift, value, contact_cost)
    return _top(profit, np.asarray(uplift) > 0, size, np.asarray(customer_ids).astype(str))


def risk_value_list(
    churn_probability: np.ndarray, value: np.ndarray, size: int, customer_ids: np.ndarray
) -> np.ndarray:
    """Return the risk x value policy's list at a given size: the highest value at risk first."""
    score = np.asarray(churn_probability, dtype="float64") * np.asarray(value, dtype="float64")
    eligible = np.ones(len(score), dtype=bool)
    return _top(score, eligible, size, np.asarray(customer_ids).astype(str))


def choose_contacts(
    candidates: pd.DataFrame,
    uplift: np.ndarray,
    contact_cost: float,
    max_contacts: int | None,
    exploration_share: float,
    seed: int,
) -> pd.DataFrame:
    """Return the candidates with uplift, expected incremental profit, contact and explore columns.

    Contacted: covered customers with positive uplift and positive expected incremental profit,
    best first, at most `max_contacts` (None: no cap). Then round(exploration_share x contacts)
    customers outside the covered population are drawn at random (seeded) and contacted too.
    """
    for column in (CUSTOMER_ID, EXPECTED_VALUE, COVERED):
        if column not in candidates.columns:
            raise ChurnError(
                f"uplift candidates: column '{column}' missing; candidates need customer_id, "
                "expected_value, covered (in the population past lists flagged) and the features"
            )
    chosen = candidates.copy()
    chosen[UPLIFT] = np.asarray(uplift, dtype="float64")
    chosen[EXPECTED_INCREMENTAL_PROFIT] = expected_incremental_profit(
        chosen[UPLIFT].to_numpy(), chosen[EXPECTED_VALUE].to_numpy(), contact_cost
    )
    covered = chosen[COVERED].astype(bool).to_numpy()
    eligible = contact_eligible(
        covered, chosen[UPLIFT].to_numpy(), chosen[EXPECTED_INCREMENTAL_PROFIT].to_numpy()
    )
    size = int(eligible.sum()) if max_contacts is None else min(max_contacts, int(eligible.sum()))
    contact = _top(
        chosen[EXPECTED_INCREMENTAL_PROFIT].to_numpy(),
        eligible,
        size,
        chosen[CUSTOMER_ID].astype(str).to_numpy(),
    )
    explore = np.zeros(len(chosen), dtype=bool)
    outside = np.flatnonzero(~covered)
    draws = exploration_draws(len(outside), int(contact.sum()), exploration_share)
    if draws:
        # sorted ids first, so the draw depends on the seed and the population, not the row order
        outside = outside[np.argsort(chosen[CUSTOMER_ID].astype(str).to_numpy()[outside])]
        explore[outside[exploration_positions(len(outside), draws, seed)]] = True
    chosen[CONTACT] = contact | explore
    chosen[EXPLORE] = explore
    return chosen


def choose_actions(
    uplift_by_action: Mapping[str, np.ndarray],
    value: np.ndarray,
    contact_cost: float,
    suggested_action: np.ndarray,
    random_actions: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Return (action, uplift of that action) per customer.

    With random_actions (publish assigned actions at random, so each action's effect is measured
    by its own random arm): the action with the highest expected incremental profit. Otherwise the
    action per reason, as the score stage suggests it, and the uplift of contacting at all (the
    only effect the campaigns measured without bias).
    """
    actions = sorted(uplift_by_action)
    if not actions:
        raise ChurnError("uplift actions: no action has a fitted uplift model")
    if not random_actions:
        if "any" not in uplift_by_action:
            raise ChurnError("uplift actions: without random_actions, pass the 'any' contact model")
        return np.asarray(suggested_action, dtype=object), np.asarray(uplift_by_action["any"])
    named = [action for action in actions if action != "any"]
    if not named:
        raise ChurnError(
            "uplift actions: random_actions is on but the campaigns hold no assigned action "
            "(column 'action'); turn uplift.random_actions off or record the assigned actions"
        )
    stacked = np.vstack([np.asarray(uplift_by_action[action]) for action in named])
    profit = stacked * np.asarray(value, dtype="float64") - contact_cost
    best = np.argmax(profit, axis=0)
    chosen_uplift = stacked[best, np.arange(stacked.shape[1])]
    return np.asarray(named, dtype=object)[best], chosen_uplift
