"""The power check run before publishing: the smallest campaign effect a list's control group can measure."""

from __future__ import annotations

import math
from collections.abc import Mapping
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

from churn.columns import AT_RISK, CHURN_PROBABILITY, GROUP, RISK_TIER, UPLIFT
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


def expected_effect(
    scores: pd.DataFrame,
    flagged: np.ndarray,
    save_rates: Mapping[str, float] | float,
    sources: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """Return the effect the campaign is expected to have on its flagged customers, in churn
    points, and where it comes from.

    A list chosen by the uplift policy (an `uplift` column on the flagged rows) expects the mean
    estimated uplift. Otherwise each flagged customer expects their tier's save rate x their
    churn probability: the save rates the score stage used (measured per tier by the campaign
    ledger where a matured campaign measured the tier, else the assumed score.save_rate; a
    single number is the assumed rate for every tier). The source is "measured" when every
    flagged customer's tier was measured, "assumed" when none was, else "measured and assumed".
    With every tier measured, `measured_effect` is the tiers' pooled treated-minus-control
    retention difference weighted by the list's tier mix, with its interval (the tiers' lists
    are independent, so variances add)."""
    probability = scores.loc[flagged, CHURN_PROBABILITY].to_numpy(dtype="float64")
    if UPLIFT in scores.columns and scores.loc[flagged, UPLIFT].notna().any():
        uplift = scores.loc[flagged, UPLIFT].to_numpy(dtype="float64")
        return {
            "expected_effect": float(np.nanmean(uplift)) if uplift.size else 0.0,
            "effect_source": "uplift",
            "effect_detail": "the uplift model's mean estimated incremental retention of the "
            "flagged customers (the list was chosen by the uplift policy)",
        }
    if not isinstance(save_rates, Mapping):
        rate = float(save_rates)
        return {
            "expected_effect": float(rate * probability.mean()) if probability.size else 0.0,
            "effect_source": "assumed",
            "effect_detail": f"score.save_rate {rate} x base churn",
        }
    sources = sources or {}
    tiers = (
        scores.loc[flagged, RISK_TIER].astype("string").fillna("").to_numpy()
        if RISK_TIER in scores.columns
        else np.full(probability.size, "", dtype=object)
    )
    fallback = float(np.mean(list(save_rates.values()))) if save_rates else 0.0
    rates = np.array([float(save_rates.get(t, fallback)) for t in tiers], dtype="float64")
    effect = float(np.mean(rates * probability)) if probability.size else 0.0
    shares = {str(t): float(np.mean(tiers == t)) for t in sorted(set(tiers))}
    measured = {t for t in shares if (sources.get(t) or {}).get("source") == "measured"}
    if measured and measured == set(shares):
        source = "measured"
    elif measured:
        source = "measured and assumed"
    else:
        source = "assumed"
    parts = []
    for tier, share in shares.items():
        info = sources.get(tier) or {}
        rate = float(save_rates.get(tier, fallback))
        if info.get("source") == "measured":
            low, high = (info.get("save_rate_ci") or [None, None])[:2]
            interval = "" if low is None else f" [{low:.2f}, {high:.2f}]"
            parts.append(
                f"{tier} {share:.0%}: save rate {rate:.3f}{interval} measured on "
                f"{len(info.get('campaigns', []))} campaign(s)"
            )
        else:
            parts.append(f"{tier} {share:.0%}: save rate {rate:.3f} assumed (score.save_rate)")
    result: dict[str, Any] = {
        "expected_effect": effect,
        "effect_source": source,
        "effect_detail": "; ".join(parts),
    }
    if source == "measured":
        difference = sum(
            share * float(sources[t]["retention_difference"]) for t, share in shares.items()
        )
        half = {t: (float(sources[t]["ci_high"]) - float(sources[t]["ci_low"])) / 2 for t in shares}
        spread = math.sqrt(sum((shares[t] * half[t]) ** 2 for t in shares))
        result["measured_effect"] = {
            "retention_difference": round(difference, 6),
            "ci_low": round(difference - spread, 6),
            "ci_high": round(difference + spread, 6),
        }
    return result


def check_power(
    scores: pd.DataFrame,
    save_rates: Mapping[str, float] | float,
    control_share: float,
    alpha: float = 0.05,
    power: float = 0.8,
    sources: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """Return the power check of the flagged customers of `scores`: group sizes, base churn (their
    mean predicted probability), the minimum detectable effect, the effect the campaign is
    expected to have (`expected_effect`: measured per tier by past campaigns, assumed, or the
    uplift estimates) and, when that is below the MDE, a warning in plain words. With measured
    save rates for every flagged tier it also says whether the list can detect an effect of the
    size the campaigns measured so far (`detects_measured_effect`)."""
    flagged = scores[AT_RISK].fillna(False).to_numpy(dtype=bool)
    group = scores[GROUP].astype("string").fillna("").to_numpy()
    treated = int((flagged & (group == TREATMENT)).sum())
    control = int((flagged & (group == CONTROL)).sum())
    probabilities = scores.loc[flagged, CHURN_PROBABILITY].to_numpy(dtype="float64")
    base = float(np.mean(probabilities)) if probabilities.size else 0.0
    effect = expected_effect(scores, flagged, save_rates, sources)
    expected = effect["expected_effect"]
    mde = minimum_detectable_effect(treated, control, base, alpha, power)
    measurable = mde is not None and mde <= expected
    result: dict[str, Any] = {
        "alpha": alpha,
        "power": power,
        "treated": treated,
        "control": control,
        "control_share": control_share,
        "base_churn": round(base, 6),
        "minimum_detectable_effect": None if mde is None else round(mde, 6),
        "expected_effect": round(expected, 6),
        "effect_source": effect["effect_source"],
        "effect_detail": effect["effect_detail"],
        "measurable": measurable,
        "warning": None,
    }
    if "measured_effect" in effect:
        so_far = effect["measured_effect"]
        result["measured_effect"] = so_far
        result["detects_measured_effect"] = (
            mde is not None and mde <= so_far["retention_difference"]
        )
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
    needed = control_share_needed(treated + control, base, expected, alpha, power)
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
        f"(alpha {alpha}, power {power}), above the expected effect of {100 * expected:.1f} "
        f"points ({effect['effect_source']}: {effect['effect_detail']}); {advice}"
    )
    return result
