"""Campaign results for the page, read from the campaign ledger (reports/ledger.json)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from churn.errors import ChurnError
from churn.report.outcomes import pct_or_none

ROW_COLUMNS = [
    "as_of",
    "slice",
    "treated",
    "control",
    "treated_retention_pct",
    "control_retention_pct",
    "effect_pct",
    "effect_ci_low_pct",
    "effect_ci_high_pct",
    "kept",
    "kept_ci_low",
    "kept_ci_high",
    "margin",
    "margin_ci_low",
    "margin_ci_high",
    "reached_pct",
    "status",
]


@dataclass(frozen=True)
class CampaignResults:
    """Each matured list's measured campaign effect per slice, and the lists still collecting."""

    newest_data_date: str
    rows: pd.DataFrame  # one row per matured list and slice (ROW_COLUMNS; percents in percent)
    collecting: list[dict[str, Any]]  # as_of, matures_on, minimum detectable effect (points)


def summarize_campaigns(ledger: Mapping[str, Any], source: str) -> CampaignResults:
    """Return the page's view of `churn ledger`'s report; ChurnError naming the fix if it is not
    one."""
    if "lists" not in ledger or "newest_data_date" not in ledger:
        raise ChurnError(f"{source}: not a campaign ledger (no 'lists'); rerun `churn ledger`")
    rows, collecting = [], []
    for entry in ledger["lists"]:
        if entry.get("status") == "collecting":
            power = entry.get("power_check") or {}
            collecting.append(
                {
                    "as_of": entry["as_of"],
                    "matures_on": entry["matures_on"],
                    "mde_pct": pct_or_none(power.get("minimum_detectable_effect")),
                }
            )
            continue
        for part in entry.get("slices", []):
            kept_low, kept_high = part["incremental_customers_ci"]
            margin_low, margin_high = part["incremental_margin_ci"]
            label = (
                part["value"] if part["slice"] == "list" else f"{part['slice']}: {part['value']}"
            )
            rows.append(
                {
                    "as_of": entry["as_of"],
                    "slice": label,
                    "treated": part["treated_customers"],
                    "control": part["control_customers"],
                    "treated_retention_pct": pct_or_none(part["treated_retention"]),
                    "control_retention_pct": pct_or_none(part["control_retention"]),
                    "effect_pct": pct_or_none(part["retention_difference"]),
                    "effect_ci_low_pct": pct_or_none(part["ci_low"]),
                    "effect_ci_high_pct": pct_or_none(part["ci_high"]),
                    "kept": part["incremental_customers"],
                    "kept_ci_low": kept_low,
                    "kept_ci_high": kept_high,
                    "margin": part["incremental_margin"],
                    "margin_ci_low": margin_low,
                    "margin_ci_high": margin_high,
                    "reached_pct": pct_or_none((part.get("contact_log") or {}).get("compliance")),
                    "status": part["status"]
                    + ("" if entry.get("campaign_known", True) else " (no campaign known)"),
                }
            )
    return CampaignResults(
        newest_data_date=str(ledger["newest_data_date"]),
        rows=pd.DataFrame(rows, columns=ROW_COLUMNS),
        collecting=collecting,
    )


@dataclass(frozen=True)
class UpliftGateView:
    """The uplift gate's decision for the page (reports/uplift.json)."""

    policy: str  # uplift / risk_x_value
    reason: str
    holdout_campaigns: list[str]
    list_size: int | None  # contacts per policy on the held-out campaigns (None: not judged)
    rows: pd.DataFrame  # one row per policy: qini, uplift_at_k_pct, profit with its interval
    difference: dict[str, float] | None  # uplift minus risk x value incremental profit
    baseline_risk: str | None
    false_switch_rate: float | None = None  # the gate's one-sided level (None: not judged)


GATE_COLUMNS = ["policy", "qini", "uplift_at_k_pct", "profit", "profit_ci_low", "profit_ci_high"]
POLICY_NAMES = {"uplift": "uplift (incremental profit)", "risk_x_value": "risk x value"}


def summarize_uplift_gate(gate: Mapping[str, Any], source: str) -> UpliftGateView:
    """Return the page's view of `churn uplift`'s report; ChurnError naming the fix if it is not
    one."""
    if "policy_in_use" not in gate or "reason" not in gate:
        raise ChurnError(f"{source}: not an uplift gate report; rerun `dvc repro uplift`")
    comparison = gate.get("comparison") or {}
    policies = comparison.get("policies") or {}
    rows = []
    for name in ("uplift", "risk_x_value"):
        if name not in policies:
            continue
        policy = policies[name]
        profit = policy["incremental_profit"]
        rows.append(
            {
                "policy": POLICY_NAMES[name],
                "qini": policy.get("qini"),
                "uplift_at_k_pct": pct_or_none(policy.get("uplift_at_k")),
                "profit": profit["estimate"],
                "profit_ci_low": profit["ci_low"],
                "profit_ci_high": profit["ci_high"],
            }
        )
    data = gate.get("data") or {}
    return UpliftGateView(
        policy=str(gate["policy_in_use"]),
        reason=str(gate["reason"]),
        holdout_campaigns=[str(c) for c in data.get("holdout_campaigns", [])],
        list_size=comparison.get("list_size"),
        rows=pd.DataFrame(rows, columns=GATE_COLUMNS),
        difference=comparison.get("difference"),
        baseline_risk=gate.get("baseline_risk"),
        false_switch_rate=comparison.get("false_switch_rate"),
    )


SAVE_RATE_COLUMNS = ["tier", "save_rate", "source", "ci_low", "ci_high", "campaigns", "why"]


def summarize_save_rates(score_report: Mapping[str, Any], source: str) -> pd.DataFrame | None:
    """Return the save rate the score stage used per risk tier, its source (measured by the
    campaign ledger, or assumed score.save_rate) and its interval (reports/score.json's
    targeting); None when the report holds none (an older score stage)."""
    targeting = score_report.get("targeting")
    if not isinstance(targeting, Mapping) or not targeting.get("save_rates"):
        return None
    rates = targeting["save_rates"]
    sources = targeting.get("save_rate_sources") or {}
    if not isinstance(rates, Mapping):
        raise ChurnError(f"{source}: targeting.save_rates is not a table; rerun `dvc repro score`")
    rows = []
    for tier in ("high", "medium", "low"):
        if tier not in rates:
            continue
        info = sources.get(tier) or {}
        low, high = (info.get("save_rate_ci") or [None, None])[:2]
        measured = info.get("source") == "measured"
        rows.append(
            {
                "tier": tier,
                "save_rate": float(rates[tier]),
                "source": "measured" if measured else "assumed",
                "ci_low": low if measured else None,
                "ci_high": high if measured else None,
                "campaigns": len(info.get("campaigns", [])) if measured else 0,
                "why": str(info.get("status") or "") if measured else str(info.get("reason", "")),
            }
        )
    return pd.DataFrame(rows, columns=SAVE_RATE_COLUMNS)
