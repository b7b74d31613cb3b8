"""Earlier published lists against what happened, read from the backtest (reports/backtest.json)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from churn.errors import ChurnError

NO_CAMPAIGN = "no campaign known"


@dataclass(frozen=True)
class ListOutcomes:
    """The matured published lists: flagged vs rest vs predicted, warnings, pending lists."""

    newest_data_date: str
    runs: pd.DataFrame  # one row per matured list, oldest first (percent columns in percent)
    warnings: list[str]
    pending: list[dict[str, str]]


def pct_or_none(value: Any) -> float | None:
    """Return a share as a percentage rounded to 2 decimals; None stays None."""
    return None if value is None else round(100 * float(value), 2)


def summarize_list_outcomes(backtest: Mapping[str, Any], source: str) -> ListOutcomes:
    """Return the page's view of `churn backtest`'s report; ChurnError naming the fix if it is old."""
    if "runs" not in backtest or "newest_data_date" not in backtest:
        raise ChurnError(f"{source}: not a backtest report (no 'runs'); rerun `churn backtest`")
    rows = []
    for run in backtest["runs"]:
        if "flagged_vs_rest" not in run or "known" not in run.get("campaign", {}):
            raise ChurnError(
                f"{source}: the list of {run.get('as_of')} was backtested by an older "
                "`churn backtest` (no flagged-vs-rest comparison); rerun `churn backtest`"
            )
        comparison, campaign = run["flagged_vs_rest"], run["campaign"]
        flagged, rest = comparison["flagged"], comparison["rest"]
        if campaign["known"] and campaign.get("retention_difference") is not None:
            effect = (
                f"{100 * campaign['retention_difference']:+.1f} points retention "
                f"[{100 * campaign['ci_low']:+.1f}, {100 * campaign['ci_high']:+.1f}]"
            )
        else:
            effect = NO_CAMPAIGN if not campaign["known"] else "-"
        rows.append(
            {
                "as_of": run["as_of"],
                "horizon_days": run.get("horizon_days"),
                "flagged": flagged["customers"],
                "churn_flagged_pct": pct_or_none(flagged["churn_rate"]),
                "churn_flagged_ci_low_pct": pct_or_none(flagged["ci_low"]),
                "churn_flagged_ci_high_pct": pct_or_none(flagged["ci_high"]),
                "predicted_flagged_pct": pct_or_none(flagged["predicted"]),
                "churn_rest_pct": pct_or_none(rest["churn_rate"]),
                "predicted_rest_pct": pct_or_none(rest["predicted"]),
                "below_predicted": bool(comparison["flagged_below_predicted"]),
                "judged_on": comparison["judged_on"],
                "effect": effect,
            }
        )
    return ListOutcomes(
        newest_data_date=str(backtest["newest_data_date"]),
        runs=pd.DataFrame(rows, columns=list(rows[0]) if rows else ["as_of"]),
        warnings=[str(w) for w in backtest.get("warnings", [])],
        pending=[dict(p) for p in backtest.get("pending", [])],
    )
