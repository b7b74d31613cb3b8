"""`churn uplift` without the files: run the gate, and when it passes, choose today's contacts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from churn.columns import (
    ASSIGNED_ACTION,
    CONTACT,
    COVERED,
    CUSTOMER_ID,
    EXPECTED_VALUE,
    EXPLORE,
    SUGGESTED_ACTION,
    TREATED,
)
from churn.config import UpliftParams
from churn.errors import ChurnError
from churn.uplift.data import campaign_feature_columns, check_campaign_rows
from churn.uplift.gate import USE_UPLIFT, run_uplift_gate
from churn.uplift.learner import LearnerSettings, fit_uplift
from churn.uplift.policy import choose_actions, choose_contacts

ANY_ACTION = "any"


def _action_learners(
    rows: pd.DataFrame, features: list[str], settings: LearnerSettings, random_actions: bool
) -> dict[str, Any]:
    """Return the contact model ('any') and, with random_actions, one model per assigned action
    (its treated customers against the whole control group)."""
    learners = {ANY_ACTION: fit_uplift(rows, features, settings)}
    if not random_actions:
        return learners
    if ASSIGNED_ACTION not in rows.columns:
        raise ChurnError(
            "uplift.random_actions is true but the campaign rows have no 'action' column; "
            "record the action assigned to each treated customer or set random_actions: false"
        )
    control = rows[rows[TREATED] == 0]
    treated = rows[rows[TREATED] == 1]
    for action in sorted(treated[ASSIGNED_ACTION].dropna().astype(str).unique()):
        arm = treated[treated[ASSIGNED_ACTION].astype(str) == action]
        learners[action] = fit_uplift(
            pd.concat([control, arm], ignore_index=True), features, settings
        )
    return learners


def plan_uplift(
    campaign_rows: pd.DataFrame,
    params: UpliftParams,
    contact_cost: float,
    candidates: pd.DataFrame | Callable[[], pd.DataFrame] | None = None,
    max_contacts: int | None = None,
    source: str = "campaign rows",
) -> tuple[dict[str, Any], pd.DataFrame | None]:
    """Return the gate's report and, when the uplift policy is in use and candidates are given,
    the candidates with uplift, expected incremental profit, action, contact and explore columns.
    `candidates` may be a function returning them, called only when the gate switched (today's
    customers are the population: not read for a gate that keeps risk x value).

    Once the gate passes, the learner used for today's contacts is refitted on every matured
    campaign (held-out ones included): the gate judged the method, the newest data sharpens it.
    """
    rows = check_campaign_rows(campaign_rows, source)
    if params.random_actions and ASSIGNED_ACTION not in rows.columns:
        raise ChurnError(
            f"{source}: uplift.random_actions is true but the campaign rows have no 'action' "
            "column; record the action assigned to each treated customer or set "
            "random_actions: false"
        )
    outcome = run_uplift_gate(rows, params, contact_cost)
    report = dict(outcome.report)
    if report["policy_in_use"] != USE_UPLIFT or candidates is None:
        return report, None
    if callable(candidates):
        candidates = candidates()
    settings = LearnerSettings(seed=params.seed)
    learners = _action_learners(
        rows, campaign_feature_columns(rows), settings, params.random_actions
    )
    uplift_by_action = {name: model.predict(candidates) for name, model in learners.items()}
    suggested = (
        candidates[SUGGESTED_ACTION].to_numpy()
        if SUGGESTED_ACTION in candidates.columns
        else np.full(len(candidates), None, dtype=object)
    )
    for column in (CUSTOMER_ID, EXPECTED_VALUE, COVERED):
        if column not in candidates.columns:
            raise ChurnError(
                f"uplift candidates: column '{column}' missing; candidates need customer_id, "
                "expected_value, covered (in the population past lists flagged) and the features"
            )
    actions, uplift = choose_actions(
        uplift_by_action,
        candidates[EXPECTED_VALUE].to_numpy(),
        contact_cost,
        suggested,
        params.random_actions,
    )
    chosen = choose_contacts(
        candidates, uplift, contact_cost, max_contacts, params.exploration_share, params.seed
    )
    chosen[SUGGESTED_ACTION] = actions
    report["contacts"] = {
        "candidates": len(chosen),
        "contacted": int(chosen[CONTACT].sum()),
        "explored": int(chosen[EXPLORE].sum()),
        "actions": "best expected incremental profit per customer (random_actions)"
        if params.random_actions
        else "one action per reason (score stage)",
    }
    return report, chosen
