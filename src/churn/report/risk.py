"""The latest scoring in business terms: at-risk customers and value at risk by tier and segment."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from churn.columns import (
    AS_OF,
    AT_RISK,
    CHANNEL,
    CHURN_PROBABILITY,
    CUSTOMER_ID,
    GROUP,
    MODEL_VERSION,
    REGION,
    RISK_TIER,
    VALUE_AT_RISK,
)
from churn.errors import ChurnError

TIER_ORDER = ("high", "medium", "low")
SEGMENTS = (CHANNEL, REGION)
UNKNOWN = "unknown"
CONTROL = "control"
NOT_AVAILABLE = "Model quality: not available"


def check_scores(scores: pd.DataFrame, source: str = "scores") -> None:
    """Raise ChurnError naming the column when the scores table lacks what the report reads."""
    for column in (CUSTOMER_ID, CHURN_PROBABILITY, RISK_TIER, VALUE_AT_RISK, AT_RISK):
        if column not in scores.columns:
            raise ChurnError(
                f"{source}: column '{column}' is missing; the report reads the scores written by "
                "`churn score`"
            )
    probability = pd.to_numeric(scores[CHURN_PROBABILITY], errors="coerce")
    if not probability.between(0, 1).all():
        raise ChurnError(
            f"{source}: column '{CHURN_PROBABILITY}' has values outside 0-1 or missing; "
            "rerun `churn score`"
        )


def attach_segments(scores: pd.DataFrame, customers: pd.DataFrame | None) -> pd.DataFrame:
    """Return scores with channel and region (from the customers table when scores lack them)."""
    missing = [column for column in SEGMENTS if column not in scores.columns]
    result = scores
    if missing and customers is not None and len(customers):
        lookup = customers.drop_duplicates(CUSTOMER_ID).set_index(CUSTOMER_ID)
        result = result.assign(
            **{
                column: result[CUSTOMER_ID].map(lookup[column])
                for column in missing
                if column in lookup.columns
            }
        )
    return result.assign(
        **{
            column: result[column].astype("string").fillna(UNKNOWN)
            if column in result.columns
            else UNKNOWN
            for column in SEGMENTS
        }
    )


def summarize_risk_by_tier(scores: pd.DataFrame) -> pd.DataFrame:
    """Return per risk tier (high, medium, low first): customers, at risk, mean risk, value at risk."""
    frame = scores.assign(
        _at_risk=scores[AT_RISK].astype(bool),
        _value=pd.to_numeric(scores[VALUE_AT_RISK], errors="coerce").fillna(0.0),
        _probability=pd.to_numeric(scores[CHURN_PROBABILITY]),
        _tier=scores[RISK_TIER].astype("string").fillna(UNKNOWN),
    )
    tiers = frame.groupby("_tier").agg(
        customers=(CUSTOMER_ID, "size"),
        at_risk_customers=("_at_risk", "sum"),
        mean_churn_probability_pct=("_probability", "mean"),
        value_at_risk=("_value", "sum"),
    )
    order = [tier for tier in TIER_ORDER if tier in tiers.index]
    order += sorted(tier for tier in tiers.index if tier not in TIER_ORDER)
    tiers = tiers.loc[order]
    tiers["mean_churn_probability_pct"] = (100 * tiers["mean_churn_probability_pct"]).round(1)
    tiers["value_at_risk"] = tiers["value_at_risk"].round(2)
    total = tiers["value_at_risk"].sum()
    tiers["share_of_value_at_risk_pct"] = (
        (100 * tiers["value_at_risk"] / total).round(1) if total > 0 else 0.0
    )
    tiers.index.name = "risk_tier"
    return tiers.reset_index().astype({"customers": "int64", "at_risk_customers": "int64"})


def summarize_risk_by_segment(scores: pd.DataFrame) -> pd.DataFrame:
    """Return per channel and per region: customers, at-risk customers and share, value at risk."""
    frame = scores.assign(
        _at_risk=scores[AT_RISK].astype(bool),
        _value=pd.to_numeric(scores[VALUE_AT_RISK], errors="coerce").fillna(0.0),
    )
    parts = []
    for column in SEGMENTS:
        grouped = frame.groupby(column).agg(
            customers=(CUSTOMER_ID, "size"),
            at_risk_customers=("_at_risk", "sum"),
            value_at_risk=("_value", "sum"),
        )
        grouped = grouped.sort_values(
            ["value_at_risk", "customers"], ascending=False, kind="stable"
        )
        parts.append(grouped.rename_axis("segment").reset_index().assign(segment_type=column))
    segments = pd.concat(parts, ignore_index=True)
    segments["at_risk_share_pct"] = (
        100 * segments["at_risk_customers"] / segments["customers"]
    ).round(1)
    segments["value_at_risk"] = segments["value_at_risk"].round(2)
    columns = ["segment_type", "segment", "customers", "at_risk_customers", "at_risk_share_pct"]
    return segments[[*columns, "value_at_risk"]].astype(
        {"customers": "int64", "at_risk_customers": "int64"}
    )


def summarize_scoring(scores: pd.DataFrame) -> dict[str, Any]:
    """Return headline facts of the scoring run: customers, at risk, value at risk, control, as-of."""
    at_risk = scores[AT_RISK].astype(bool)
    value = pd.to_numeric(scores[VALUE_AT_RISK], errors="coerce").fillna(0.0)
    control = scores[GROUP].astype("string").eq(CONTROL) if GROUP in scores.columns else None
    as_of = pd.to_datetime(scores[AS_OF]).max() if AS_OF in scores.columns else None
    versions = (
        sorted(scores[MODEL_VERSION].dropna().astype(str).unique())
        if MODEL_VERSION in scores.columns
        else []
    )
    return {
        "scored_customers": len(scores),
        "at_risk_customers": int(at_risk.sum()),
        "value_at_risk": round(float(value.sum()), 2),
        "value_at_risk_of_at_risk": round(float(value[at_risk].sum()), 2),
        "control_customers": int(control.fillna(False).sum()) if control is not None else None,
        "at_risk_control_customers": (
            int((control.fillna(False) & at_risk).sum()) if control is not None else None
        ),
        "scored_as_of": as_of.date().isoformat() if as_of is not None and pd.notna(as_of) else None,
        "model_version": ", ".join(versions) if versions else None,
    }


def _number(mapping: Any, *keys: str) -> float | None:
    """Return the finite number at mapping[keys[0]][keys[1]]..., or None if absent or not a number."""
    value = mapping
    for key in keys:
        if not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _percent(value: float) -> str:
    """Format a share given as 0-1 (or already in percent when above 1) as '27%'."""
    return f"{value * 100 if value <= 1 else value:.0f}%"


def describe_model_quality(metrics: Mapping[str, Any] | None) -> str:
    """Return one plain sentence on the model's out-of-time quality, or say it is not available."""
    if not metrics:
        return f"{NOT_AVAILABLE} (the evaluate stage has not written its metrics yet)."
    lift = _number(metrics, "model", "lift_top10")
    recall = _number(metrics, "model", "recall_top10")
    roc_auc = _number(metrics, "model", "roc_auc")
    base = _number(metrics, "base_churn_rate")
    parts = []
    if lift is not None and recall is not None:
        parts.append(
            f"the 10% of customers it rates riskiest hold {_percent(recall)} of those who "
            f"really stopped buying, {lift:.1f}× what a random 10% would"
        )
    elif lift is not None:
        parts.append(
            f"its riskiest 10% of customers stopped buying {lift:.1f}× as often as average"
        )
    elif recall is not None:
        parts.append(
            f"the 10% of customers it rates riskiest hold {_percent(recall)} of those who "
            "really stopped buying"
        )
    if roc_auc is not None:
        parts.append(f"ROC AUC {roc_auc:.2f} (0.5 = guessing, 1 = perfect)")
    if not parts:
        return f"{NOT_AVAILABLE} (the metrics file has none of the figures this line reads)."
    if metrics.get("evaluation") == "in_time_holdout":
        # short history: no later period exists, so customers were held out instead of dates
        sentence = (
            "Model quality, checked on an in-time holdout (customers it was never trained on, "
            "in the same period: the history is too short for a later period, so this is "
            "likely more flattering than a test on a later period): "
        )
        where = "Among them"
    else:
        sentence = "Model quality, checked on the most recent period it was not trained on: "
        where = "In that period"
    sentence += "; ".join(parts) + "."
    if base is not None:
        sentence += f" {where} {_percent(base)} of customers stopped buying."
    return sentence
