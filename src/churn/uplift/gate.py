"""The uplift gate: the uplift policy replaces risk x value only when held-out campaigns show it
keeps more margin at the list size.

The newest campaigns (uplift.holdout_share of them) are held out; the learner is fitted only on
older campaigns whose label windows end before the first held-out campaign starts, so training and
judging are disjoint in time and in label windows. In each held-out campaign both policies pick
their list at the same size (uplift.list_share of its customers, or fewer when fewer customers
have a positive estimated uplift): risk x value by churn probability x expected value, the uplift
policy by expected incremental profit among customers with positive estimated uplift. Each list's
incremental profit is estimated by (augmented) inverse-propensity weighting of the campaign's
random split: the lists are picked from features only, never from the held-out assignment or
outcome, so the estimate is unbiased for the lists actually picked (no winner's curse).

The difference has a lower bound from a studentized bootstrap (bootstrap-t) over customers (all
of a customer's rows together, since customers recur across campaigns): each resample's
difference is divided by its own standard error and the quantiles of that ratio set the bounds,
which in theory corrects the skew of a sum dominated by a few heavily weighted control rows and
carries the noise of the standard error into the bound; on simulated nulls at the gate's sizes it
behaves like the plain percentile interval (benchmarks/results/uplift_gate_method.md). The bound
is one-sided at level uplift.false_switch_rate (default 0.004): the gate decides again each time
new campaigns mature, so each decision's chance of a false switch is kept small enough that a
year of monthly decisions switches falsely at most 5% of the time
(benchmarks/results/uplift_gate_method_session5.md). The uplift policy is used only when that
bound is above zero AND the estimated difference is above zero in every held-out campaign: the
gain must replicate across independent randomized campaigns, not rest on one campaign's luck.
Qini coefficient and uplift at k are diagnostics, never the decision.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from churn.columns import (
    CAMPAIGN_DATE,
    CAMPAIGN_ID,
    CHURN_PROBABILITY,
    CONTROL_SHARE,
    CUSTOMER_ID,
    EXPECTED_VALUE,
    LABEL_END,
    RETAINED,
    TREATED,
    UPLIFT,
)
from churn.config import UpliftParams
from churn.uplift.data import campaign_feature_columns
from churn.uplift.learner import LearnerSettings, XLearner, fit_uplift
from churn.uplift.policy import risk_value_list, uplift_list
from churn.uplift.qini import ipw_incremental_profit, qini_coefficient, uplift_at_k

USE_UPLIFT = "uplift"
USE_RISK_VALUE = "risk_x_value"
NOT_ENOUGH = "not enough campaign data yet"
IN_UPLIFT_LIST = "in_uplift_list"
IN_RISK_VALUE_LIST = "in_risk_value_list"
RETENTION_CONTROL = "retention_without_contact"  # training campaigns' outcome models, for AIPW
RETENTION_TREATED = "retention_with_contact"


@dataclass(frozen=True)
class UpliftGateOutcome:
    """The gate's report (reports/uplift.json), and what it was computed from."""

    report: dict[str, Any]
    holdout: pd.DataFrame | None  # held-out rows with uplift and both policies' lists
    learner: XLearner | None  # fitted on the training campaigns


@dataclass(frozen=True)
class CampaignSplit:
    """Training and held-out campaign ids, disjoint in time and label windows."""

    training: list[str]
    holdout: list[str]


def split_campaigns(rows: pd.DataFrame, holdout_share: float) -> CampaignSplit:
    """Return the newest campaigns as held-out, and as training the older ones whose label window
    ends before the first held-out campaign's date (a campaign overlapping it is used by neither)."""
    campaigns = (
        rows.groupby(CAMPAIGN_ID, observed=True)
        .agg(date=(CAMPAIGN_DATE, "first"), end=(LABEL_END, "first"))
        .reset_index()
        .sort_values(["date", CAMPAIGN_ID], kind="mergesort")
    )
    if campaigns.empty:
        return CampaignSplit([], [])
    count = max(1, math.ceil(holdout_share * len(campaigns)))
    holdout = campaigns.tail(count)
    first_holdout = holdout["date"].min()
    rest = campaigns.iloc[: len(campaigns) - count]
    training = rest[rest["end"] < first_holdout]
    return CampaignSplit(
        [str(x) for x in training[CAMPAIGN_ID]], [str(x) for x in holdout[CAMPAIGN_ID]]
    )


def _arm_counts(rows: pd.DataFrame) -> dict[str, int]:
    treated = int(rows[TREATED].sum())
    return {"treated": treated, "control": len(rows) - treated}


def _shortage(
    rows: pd.DataFrame, split: CampaignSplit, params: UpliftParams
) -> tuple[str | None, dict[str, Any]]:
    """Return the reason there is not enough campaign data yet (None when there is), and counts."""
    campaigns = int(rows[CAMPAIGN_ID].nunique()) if len(rows) else 0
    training = rows[rows[CAMPAIGN_ID].isin(split.training)]
    holdout = rows[rows[CAMPAIGN_ID].isin(split.holdout)]
    counts = {
        "campaigns": campaigns,
        "rows": len(rows),
        "training_campaigns": split.training,
        "holdout_campaigns": split.holdout,
        "training_rows": _arm_counts(training) if len(training) else {"treated": 0, "control": 0},
        "holdout_rows": _arm_counts(holdout) if len(holdout) else {"treated": 0, "control": 0},
    }
    if campaigns < params.min_campaigns:
        return (
            f"{NOT_ENOUGH}: {campaigns} matured randomized campaign(s); the gate needs at least "
            f"{params.min_campaigns} (uplift.min_campaigns)",
            counts,
        )
    if not split.training:
        return (
            f"{NOT_ENOUGH}: no campaign's label window ends before the newest held-out campaign "
            f"starts ({split.holdout[0]}), so nothing can be trained apart from what is judged",
            counts,
        )
    for part in ("training_rows", "holdout_rows"):
        for arm in ("control", "treated"):
            if counts[part][arm] < params.min_control_rows:
                where = part.replace("_rows", "")
                return (
                    f"{NOT_ENOUGH}: the {where} campaigns hold {counts[part][arm]} {arm} "
                    f"customers; the gate needs at least {params.min_control_rows} in each arm "
                    "(uplift.min_control_rows)",
                    counts,
                )
    return None, counts


def _choose_lists(holdout: pd.DataFrame, list_share: float, contact_cost: float) -> pd.DataFrame:
    """Return the held-out rows with both policies' lists, picked inside each campaign."""
    in_uplift = np.zeros(len(holdout), dtype=bool)
    in_risk = np.zeros(len(holdout), dtype=bool)
    positions = np.arange(len(holdout))
    for _, index in holdout.groupby(CAMPAIGN_ID, observed=True).indices.items():
        part = holdout.iloc[index]
        size = int(len(part) * list_share)
        ids = part[CUSTOMER_ID].astype(str).to_numpy()
        value = part[EXPECTED_VALUE].to_numpy()
        chosen_uplift = uplift_list(part[UPLIFT].to_numpy(), value, contact_cost, size, ids)
        in_uplift[positions[index]] = chosen_uplift
        # same number of contacts for both: when fewer customers have a positive estimated uplift
        # than the list size, contacting fewer would win on saved contact costs alone, which a
        # shorter risk x value list would save too; the gate judges whom each policy picks
        in_risk[positions[index]] = risk_value_list(
            part[CHURN_PROBABILITY].to_numpy(), value, int(chosen_uplift.sum()), ids
        )
    chosen = holdout.copy()
    chosen[IN_UPLIFT_LIST] = in_uplift
    chosen[IN_RISK_VALUE_LIST] = in_risk
    return chosen


def _bootstrap(
    customer_codes: np.ndarray, columns: np.ndarray, resamples: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return per-customer sums of `columns` (customers x k), and for `resamples` draws of
    customers with replacement the k column sums and the plug-in variances of those sums (the
    variance of a sum of independent customers: sum of squared deviations from the mean)."""
    per_customer = np.zeros((int(customer_codes.max()) + 1, columns.shape[1]))
    np.add.at(per_customer, customer_codes, columns)
    rng = np.random.default_rng(seed)
    customers = per_customer.shape[0]
    squares = per_customer**2
    sums = np.empty((resamples, columns.shape[1]))
    variances = np.empty((resamples, columns.shape[1]))
    for draw in range(resamples):
        counts = np.bincount(rng.integers(0, customers, customers), minlength=customers)
        sums[draw] = counts @ per_customer
        variances[draw] = counts @ squares - sums[draw] ** 2 / customers
    return per_customer, sums, np.maximum(variances, 0.0)


def _sum_variance(per_customer: np.ndarray) -> np.ndarray:
    """Return the plug-in variance of each column's sum over independent customers."""
    return np.maximum(
        (per_customer**2).sum(axis=0) - per_customer.sum(axis=0) ** 2 / per_customer.shape[0], 0.0
    )


def _interval(
    estimate: float, variance: float, draws: np.ndarray, draw_variances: np.ndarray, tail: float
) -> dict[str, float]:
    """Return the estimate with its studentized bootstrap (bootstrap-t) interval that leaves
    `tail` on each side (its lower end is the one-sided bound at level `tail`), its standard
    error, and the plain percentile interval at the same level (a diagnostic)."""
    error = math.sqrt(variance)
    draw_errors = np.sqrt(draw_variances)
    usable = draw_errors > 0
    if error > 0 and usable.any():
        ratios = (draws[usable] - estimate) / draw_errors[usable]
        low = estimate - float(np.quantile(ratios, 1 - tail)) * error
        high = estimate - float(np.quantile(ratios, tail)) * error
    else:  # nothing varies (e.g. both lists empty): the estimate is its own interval
        low = high = estimate
    return {
        "estimate": round(float(estimate), 2),
        "ci_low": round(low, 2),
        "ci_high": round(high, 2),
        "standard_error": round(error, 2),
        "percentile_ci_low": round(float(np.quantile(draws, tail)), 2),
        "percentile_ci_high": round(float(np.quantile(draws, 1 - tail)), 2),
    }


def _rounded(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def judge_policies(
    holdout: pd.DataFrame, params: UpliftParams, contact_cost: float
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Return the comparison of both policies on held-out rows that carry an uplift column."""
    chosen = _choose_lists(holdout, params.list_share, contact_cost)
    augmented = RETENTION_CONTROL in chosen.columns and RETENTION_TREATED in chosen.columns
    contribution = ipw_incremental_profit(
        chosen[RETAINED].to_numpy(),
        chosen[TREATED].to_numpy(),
        chosen[CONTROL_SHARE].to_numpy(),
        chosen[EXPECTED_VALUE].to_numpy(),
        contact_cost,
        chosen[RETENTION_CONTROL].to_numpy() if augmented else None,
        chosen[RETENTION_TREATED].to_numpy() if augmented else None,
    )
    uplift_part = contribution * chosen[IN_UPLIFT_LIST].to_numpy()
    risk_part = contribution * chosen[IN_RISK_VALUE_LIST].to_numpy()
    columns = np.column_stack([uplift_part, risk_part, uplift_part - risk_part])
    codes, _ = pd.factorize(chosen[CUSTOMER_ID].astype(str))
    per_customer, draws, draw_variances = _bootstrap(codes, columns, params.bootstrap, params.seed)
    totals = columns.sum(axis=0)
    variances = _sum_variance(per_customer)
    intervals = [
        _interval(
            totals[k], variances[k], draws[:, k], draw_variances[:, k], params.false_switch_rate
        )
        for k in range(3)
    ]
    by_campaign = [
        {
            "campaign": str(campaign),
            "list_size": int(chosen[IN_UPLIFT_LIST].to_numpy()[index].sum()),
            "difference": round(float(columns[index, 2].sum()), 2),
        }
        for campaign, index in chosen.groupby(CAMPAIGN_ID, observed=True).indices.items()
    ]
    retained = chosen[RETAINED].to_numpy()
    treated = chosen[TREATED].to_numpy()
    risk_score = chosen[CHURN_PROBABILITY].to_numpy() * chosen[EXPECTED_VALUE].to_numpy()
    scores = {USE_UPLIFT: chosen[UPLIFT].to_numpy(), USE_RISK_VALUE: risk_score}
    policies = {}
    for position, (name, flag) in enumerate(
        ((USE_UPLIFT, IN_UPLIFT_LIST), (USE_RISK_VALUE, IN_RISK_VALUE_LIST))
    ):
        policies[name] = {
            "contacts": int(chosen[flag].sum()),
            "incremental_profit": intervals[position],
            "qini": _rounded(qini_coefficient(retained, scores[name], treated)),
            "uplift_at_k": _rounded(
                uplift_at_k(retained, scores[name], treated, params.list_share)
            ),
        }
    comparison = {
        "list_share": params.list_share,
        # at most list_share of each held-out campaign; fewer when fewer have positive uplift
        "list_size": int(chosen[IN_UPLIFT_LIST].sum()),
        "holdout_customers": int(chosen[CUSTOMER_ID].nunique()),
        "policies": policies,
        "difference": intervals[2],
        # the gain must replicate: positive in every held-out campaign, not only in the sum
        "by_campaign": by_campaign,
        "replicated": all(part["difference"] > 0 for part in by_campaign),
        "estimator": "AIPW (outcome models from the training campaigns)" if augmented else "IPW",
        "interval": "studentized customer bootstrap (bootstrap-t)",
        "bootstrap": params.bootstrap,
        # the lower end is a one-sided bound at false_switch_rate; the interval is two-sided
        "false_switch_rate": params.false_switch_rate,
        "confidence": round(1 - 2 * params.false_switch_rate, 6),
    }
    return comparison, chosen


def decide(comparison: dict[str, Any], campaigns: int) -> tuple[str, str]:
    """Return (policy in use, reason) from judge_policies' comparison over `campaigns` held-out
    campaigns: uplift only when the one-sided lower bound of the difference (at level
    false_switch_rate) is above 0 and the estimated difference is above 0 in every held-out
    campaign (the gain replicates)."""
    difference = comparison["difference"]
    alpha = comparison["false_switch_rate"]
    bound = (
        f"the one-sided {1 - alpha:.1%} lower bound of the difference in incremental profit at "
        f"the list size, {difference['ci_low']:,.2f} (estimate {difference['estimate']:,.2f})"
    )
    why = (
        f"uplift.false_switch_rate {alpha:g}: the gate decides again as campaigns mature, and "
        f"at this level a year of monthly decisions switches with no real gain at most "
        f"{min(1.0, 12 * alpha):.0%} of the time"
    )
    losing = [part["campaign"] for part in comparison["by_campaign"] if part["difference"] <= 0]
    if difference["ci_low"] > 0 and not losing:
        policy = USE_UPLIFT
        reason = (
            f"on {campaigns} held-out campaign(s) the uplift policy keeps more margin "
            f"net of contact cost than risk x value: {bound}, is above 0 ({why}), and it gains "
            "in every held-out campaign"
        )
    elif difference["ci_low"] > 0:
        policy = USE_RISK_VALUE
        reason = (
            f"the uplift policy's gain over risk x value does not replicate across the "
            f"{campaigns} held-out campaigns: {bound}, is above 0 ({why}), but the estimated "
            f"difference is not above 0 in {', '.join(losing)}"
        )
    else:
        policy = USE_RISK_VALUE
        reason = (
            f"the uplift policy is not shown to keep more margin than risk x value on "
            f"{campaigns} held-out campaign(s): {bound}, is not above 0 ({why})"
        )
    return policy, reason


def run_uplift_gate(
    rows: pd.DataFrame,
    params: UpliftParams,
    contact_cost: float,
    settings: LearnerSettings | None = None,
) -> UpliftGateOutcome:
    """Return which policy to use, why, and the held-out comparison; rows are checked campaign rows
    (churn.uplift.data.check_campaign_rows) whose label windows have all passed."""
    settings = settings or LearnerSettings(seed=params.seed)
    split = split_campaigns(rows, params.holdout_share)
    reason, counts = _shortage(rows, split, params)
    report: dict[str, Any] = {
        "minimum": {
            "min_campaigns": params.min_campaigns,
            "min_control_rows": params.min_control_rows,
        },
        "data": counts,
        "contact_cost": contact_cost,
        "learner": "X-learner over LightGBM (churn.uplift.learner)",
    }
    if reason is not None:
        report.update({"policy_in_use": USE_RISK_VALUE, "reason": reason, "comparison": None})
        return UpliftGateOutcome(report, None, None)
    training = rows[rows[CAMPAIGN_ID].isin(split.training)].reset_index(drop=True)
    holdout = rows[rows[CAMPAIGN_ID].isin(split.holdout)].reset_index(drop=True)
    learner = fit_uplift(training, campaign_feature_columns(rows), settings)
    source = "held-out campaign rows"
    without, with_contact = learner.predict_retention(holdout, source)
    holdout = holdout.assign(
        **{
            UPLIFT: learner.predict(holdout, source),
            RETENTION_CONTROL: without,
            RETENTION_TREATED: with_contact,
        }
    )
    comparison, chosen = judge_policies(holdout, params, contact_cost)
    policy, reason = decide(comparison, len(split.holdout))
    report.update({"policy_in_use": policy, "reason": reason, "comparison": comparison})
    return UpliftGateOutcome(report, chosen, learner)
