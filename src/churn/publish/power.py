"""The power check run before publishing: the smallest campaign effect a list's control group can measure."""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

from churn.columns import AT_RISK, CHURN_PROBABILITY, GROUP
from churn.score.targeting import CONTROL, TREATMENT


def _z_sum(alpha: float, power: float) -> float:
    normal = NormalDist()
    return normal.inv_cdf(1 - alpha / 2) + normal.inv_cdf(power)


def minimum_detectable_effect(
    treated: int, control: int, base_churn: float, alpha: float = 0.05, power: float = 0.8
) -> float | None:
    """Return the smallest absolute difference in churn rate (control minus treated) that a
    two-sided test at level `alpha` detects with probability `power`; None when a group is empty.

    Two-proportion normal approximation with the variance at the base churn rate p in both
    groups (the effect is small next to p):

        MDE = (z_{1-alpha/2} + z_{power}) * sqrt(p (1 - p) (1/n_t + 1/n_c))

    With alpha = 0.05 and power = 0.8 the factor is 1.95996 + 0.84162 = 2.80158. Example:
    n_t = 900, n_c = 100, p = 0.4 gives 2.80158 * sqrt(0.24 * (1/900 + 1/100)) = 0.1447.
    """
    if treated <= 0 or control <= 0:
        return None
    variance = base_churn * (1 - base_churn) * (1 / treated + 1 / control)
    return _z_sum(alpha, power) * math.sqrt(variance)


def control_share_needed(
    listed: int, base_churn: float, effect: float, alpha: float = 0.05, power: float = 0.8
) -> float | None:
    """Return the smallest control share of `listed` flagged customers that makes `effect`
    detectable; None when no split of this many customers can (even half and half).

    With n_t = N (1 - s) and n_c = N s the MDE formula gives s (1 - s) >= k, where
    k = (z_{1-alpha/2} + z_{power})^2 p (1 - p) / (N effect^2); so s = (1 - sqrt(1 - 4k)) / 2.
    """
    if effect <= 0 or listed <= 0 or not 0 < base_churn < 1:
        return None
    k = _z_sum(alpha, power) ** 2 * base_churn * (1 - base_churn) / (listed * effect**2)
    if k > 0.25:
        return None
    return (1 - math.sqrt(1 - 4 * k)) / 2


def check_power(
    scores: pd.DataFrame,
    save_rate: float,
    control_share: float,
    alpha: float = 0.05,
    power: float = 0.8,
) -> dict[str, Any]:
    """Return the power check of the flagged customers of `scores`: group sizes, base churn (their
    mean predicted probability), the minimum detectable effect, the effect the campaign is assumed
    to have (save_rate x base churn) and, when that is below the MDE, a warning in plain words."""
    flagged = scores[AT_RISK].fillna(False).to_numpy(dtype=bool)
    group = scores[GROUP].astype("string").fillna("").to_numpy()
    treated = int((flagged & (group == TREATMENT)).sum())
    control = int((flagged & (group == CONTROL)).sum())
    probabilities = scores.loc[flagged, CHURN_PROBABILITY].to_numpy(dtype="float64")
    base = float(np.mean(probabilities)) if probabilities.size else 0.0
    assumed = save_rate * base
    mde = minimum_detectable_effect(treated, control, base, alpha, power)
    measurable = mde is not None and mde <= assumed
    result: dict[str, Any] = {
        "alpha": alpha,
        "power": power,
        "treated": treated,
        "control": control,
        "control_share": control_share,
        "base_churn": round(base, 6),
        "minimum_detectable_effect": None if mde is None else round(mde, 6),
        "assumed_effect": round(assumed, 6),
        "measurable": measurable,
        "warning": None,
    }
    if measurable:
        return result
    if treated == 0 and control == 0:
        result["warning"] = "no customer is flagged: there is no campaign to measure"
        return result
    if control == 0:
        result["warning"] = (
            f"the list has no control group (score.control_share = {control_share}): the "
            "campaign's effect cannot be measured; hold out a control share"
        )
        return result
    needed = control_share_needed(treated + control, base, assumed, alpha, power)
    advice = (
        f"a control share of at least {math.ceil(needed * 1000) / 1000:.3f} of this list would "
        "measure it (score.control_share)"
        if needed is not None
        else "no control share can at this list size: contact more customers, or expect to "
        "pool several campaigns before the effect is known"
    )
    result["control_share_needed"] = None if needed is None else round(needed, 6)
    shown = "undefined" if mde is None else f"{100 * mde:.1f} percentage points"
    result["warning"] = (
        f"the campaign cannot be measured: with {treated} treated and {control} control "
        f"customers at base churn {base:.1%}, the smallest detectable effect is {shown} "
        f"(alpha {alpha}, power {power}), above the assumed effect of {100 * assumed:.1f} points "
        f"(score.save_rate {save_rate} x base churn); {advice}"
    )
    return result
