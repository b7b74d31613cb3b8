"""Backtest: published at-risk lists against what happened: flagged vs rest vs predicted, effect."""

from __future__ import annotations

import math
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from datetime import date, timedelta
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

from churn.columns import (
    AMOUNT,
    AT_RISK,
    CHURN_PROBABILITY,
    CONTACT_ACTION,
    CONTACT_CHANNEL,
    CONTACT_COST,
    CONTACTED_AT,
    CUSTOMER_ID,
    DATE,
    GROUP,
    MODEL_VERSION,
)
from churn.config import BacktestParams
from churn.cutoffs import label_end, labelled_by
from churn.errors import ChurnError
from churn.ids import ids_in
from churn.metrics import calibration_rows, expected_calibration_error, precision_recall

TREATMENT, CONTROL = "treatment", "control"


# --------------------------------------------------------------------------- intervals
def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Return the Wilson score interval of a proportion (NaN bounds when n is 0)."""
    if n == 0:
        return (math.nan, math.nan)
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - half, centre + half)


def newcombe_interval(
    successes_a: int, n_a: int, successes_b: int, n_b: int, confidence: float = 0.95
) -> tuple[float, float]:
    """Return Newcombe's hybrid score interval (method 10) for p_a - p_b from two Wilson intervals."""
    if n_a == 0 or n_b == 0:
        return (math.nan, math.nan)
    p_a, p_b = successes_a / n_a, successes_b / n_b
    low_a, high_a = wilson_interval(successes_a, n_a, confidence)
    low_b, high_b = wilson_interval(successes_b, n_b, confidence)
    difference = p_a - p_b
    return (
        difference - math.sqrt((p_a - low_a) ** 2 + (high_b - p_b) ** 2),
        difference + math.sqrt((high_a - p_a) ** 2 + (p_b - low_b) ** 2),
    )


# --------------------------------------------------------------------------- outcomes
def purchase_dates(transactions: pd.DataFrame) -> pd.DataFrame:
    """Return (customer_id, date) of purchases (amount > 0), one row per customer and date."""
    missing = [c for c in (CUSTOMER_ID, DATE, AMOUNT) if c not in transactions.columns]
    if missing:
        raise ChurnError(
            f"transactions: missing column(s) {missing} for the backtest; rerun `dvc repro ingest`"
        )
    purchases = transactions.loc[transactions[AMOUNT] > 0, [CUSTOMER_ID, DATE]]
    return purchases.drop_duplicates().reset_index(drop=True)


def within_days(values: pd.Series, first: date, last: date) -> np.ndarray:
    """Return whether each date (or timestamp, by its calendar date) lies in [first, last].

    Compares datetime64 values with the bounds' midnights, never builds a Python date per row
    (the same answer as `.dt.date` comparisons, tens of times faster on millions of rows)."""
    stamps = pd.to_datetime(values)
    if getattr(stamps.dt, "tz", None) is not None:
        stamps = stamps.dt.tz_localize(None)  # its wall-clock date, as `.dt.date` gives
    low = pd.Timestamp(first)
    high = pd.Timestamp(last + timedelta(days=1))
    return ((stamps >= low) & (stamps < high)).to_numpy(dtype=bool, na_value=False)


def outcome_window(as_of: date, horizon_days: int) -> tuple[date, date]:
    """Return the first and last day (both included) of the outcome window (as_of, as_of +
    horizon]: a purchase dated in it means the customer was kept."""
    return as_of + timedelta(days=1), label_end(as_of, horizon_days)


def churned_after(
    customers: pd.Series, purchases: pd.DataFrame, as_of: date, horizon_days: int
) -> np.ndarray:
    """Return 1 for each customer with no purchase dated in (as_of, as_of + horizon], else 0."""
    first, last = outcome_window(as_of, horizon_days)
    inside = purchases.loc[within_days(purchases[DATE], first, last), CUSTOMER_ID]
    return (~ids_in(customers, inside)).astype("int8")


def contacted_within(
    customers: pd.Series, contacts: pd.DataFrame | None, as_of: date, horizon_days: int
) -> np.ndarray | None:
    """Return True for customers contacted in [as_of, as_of + horizon], or None without a log."""
    if contacts is None:
        return None
    end = label_end(as_of, horizon_days)
    inside = contacts.loc[within_days(contacts[CONTACTED_AT], as_of, end), CUSTOMER_ID]
    return ids_in(customers, inside)


# --------------------------------------------------------------------------- one run
def _rate(values: np.ndarray) -> float | None:
    return round(float(values.mean()), 6) if values.size else None


def compare_groups(
    churned_a: np.ndarray, churned_b: np.ndarray, confidence: float, names: tuple[str, str]
) -> dict[str, Any]:
    """Return retention of two groups and the difference a - b with a Newcombe interval."""
    kept_a, kept_b = int((churned_a == 0).sum()), int((churned_b == 0).sum())
    n_a, n_b = int(churned_a.size), int(churned_b.size)
    low, high = newcombe_interval(kept_a, n_a, kept_b, n_b, confidence)
    effect = None if n_a == 0 or n_b == 0 else round(kept_a / n_a - kept_b / n_b, 6)
    return {
        f"{names[0]}_customers": n_a,
        f"{names[1]}_customers": n_b,
        f"{names[0]}_retention": round(kept_a / n_a, 6) if n_a else None,
        f"{names[1]}_retention": round(kept_b / n_b, 6) if n_b else None,
        "retention_difference": effect,
        "ci_low": None if math.isnan(low) else round(low, 6),
        "ci_high": None if math.isnan(high) else round(high, 6),
        "confidence": confidence,
        "significant": bool(not math.isnan(low) and (low > 0 or high < 0)),
    }


def observed_against_predicted(
    churned: np.ndarray, probabilities: np.ndarray, confidence: float
) -> dict[str, Any]:
    """Return a group's observed churn rate with its Wilson interval and its mean predicted risk."""
    n = int(churned.size)
    low, high = wilson_interval(int(churned.sum()), n, confidence)
    return {
        "customers": n,
        "churn_rate": _rate(churned),
        "ci_low": None if math.isnan(low) else round(low, 6),
        "ci_high": None if math.isnan(high) else round(high, 6),
        "predicted": _rate(probabilities),
    }


def compare_flagged_with_rest(
    churned: np.ndarray,
    probabilities: np.ndarray,
    flagged: np.ndarray,
    judged: np.ndarray,
    confidence: float,
    judged_on: str,
    tolerance: float = 0.0,
) -> dict[str, Any]:
    """Return the flagged customers' churn against the rest's and against what was predicted.

    Only `judged` customers count (those a known campaign did not treat: its effect would lower
    their churn). `shortfall_beyond_interval` is how far the flagged customers' mean predicted
    probability lies above the upper bound of the interval of their observed churn rate (0 when
    inside it); `flagged_below_predicted` is set when that exceeds `tolerance`: the list did not
    hold customers as risky as it said.
    """
    chosen, rest = flagged & judged, ~flagged & judged
    result = {
        "judged_on": judged_on,
        "flagged": observed_against_predicted(churned[chosen], probabilities[chosen], confidence),
        "rest": observed_against_predicted(churned[rest], probabilities[rest], confidence),
    }
    flagged_group, rest_group = result["flagged"], result["rest"]
    shortfall = (
        None
        if flagged_group["ci_high"] is None
        else round(max(0.0, flagged_group["predicted"] - flagged_group["ci_high"]), 6)
    )
    result["shortfall_beyond_interval"] = shortfall
    result["shortfall_tolerance"] = tolerance
    result["flagged_below_predicted"] = bool(shortfall is not None and shortfall > tolerance)
    result["flagged_below_rest"] = bool(
        flagged_group["churn_rate"] is not None
        and rest_group["churn_rate"] is not None
        and flagged_group["churn_rate"] < rest_group["churn_rate"]
    )
    return result


NO_CAMPAIGN = (
    "no campaign is known to have used this list (no contact log: the ledger stage's --contacts "
    "in dvc.yaml; no download recorded); the treatment-vs-control comparison is not an effect"
)


def _warnings(as_of: date, comparison: Mapping[str, Any], campaign_known: bool) -> list[str]:
    """Return the plain-word warnings about one list (empty when its flagged customers held up).

    Flagged customers churning less than the rest is not a warning by itself: a rule that weighs
    value picks valuable customers, who churn less, and the prediction says so; it is shown in
    the comparison. Falling short of what was predicted for them is a warning.
    """
    flagged = comparison["flagged"]
    found = []
    if comparison["flagged_below_predicted"]:
        found.append(
            f"list of {as_of}: flagged customers churned {flagged['churn_rate']:.1%} "
            f"[{flagged['ci_low']:.1%}, {flagged['ci_high']:.1%}], below the "
            f"{flagged['predicted']:.1%} predicted for them by more than the tolerated "
            f"{comparison['shortfall_tolerance']:.0%} (backtest.shortfall_tolerance)"
            + (
                ""
                if campaign_known
                else " (if the list was used in a campaign, give its contact log: a campaign "
                "lowers the churn of the customers it reached)"
            )
        )
    return found


def backtest_run(
    scores: pd.DataFrame,
    purchases: pd.DataFrame,
    as_of: date,
    horizon_days: int,
    params: BacktestParams,
    contacts: pd.DataFrame | None = None,
    campaign_known: bool = False,
) -> dict[str, Any]:
    """Return what one archived scoring run's list got right: rates, precision, recall, effect.

    The flagged customers' churn is compared with the rest's and with what was predicted for
    them. A treated-vs-control effect is reported only when a campaign is known to have run: a
    contact log is given, or `campaign_known` (the record says the list was used); otherwise
    the control comparison is kept under `campaign.control_comparison`, labelled as no effect.
    """
    missing = [
        c for c in (CUSTOMER_ID, CHURN_PROBABILITY, AT_RISK, GROUP) if c not in scores.columns
    ]
    if missing:
        raise ChurnError(
            f"archived scores for {as_of}: missing column(s) {missing}; the archive was written "
            "by an older `churn score` — rescore that date or remove it from the archive"
        )
    customers = scores[CUSTOMER_ID]
    churned = churned_after(customers, purchases, as_of, horizon_days)
    flagged = scores[AT_RISK].fillna(False).to_numpy(dtype=bool)
    group = scores[GROUP].astype("string").fillna("").to_numpy()
    probabilities = scores[CHURN_PROBABILITY].to_numpy(dtype="float64")
    treatment, control = group == TREATMENT, group == CONTROL
    assigned = flagged & treatment
    contacted = contacted_within(customers, contacts, as_of, horizon_days)
    treated = assigned if contacted is None else assigned & contacted
    precision, recall = precision_recall(churned, flagged)
    # the campaign changes outcomes of treated customers: calibration is judged on the others
    untreated = ~treated
    table = calibration_rows(probabilities[untreated], churned[untreated])
    ece = (
        round(expected_calibration_error(churned[untreated], probabilities[untreated]), 6)
        if untreated.any()
        else None
    )
    versions = (
        sorted(set(scores[MODEL_VERSION].astype("string").dropna()))
        if MODEL_VERSION in scores
        else []
    )
    campaign_known = campaign_known or contacted is not None
    comparison = compare_flagged_with_rest(
        churned,
        probabilities,
        flagged,
        untreated if campaign_known else np.ones(len(scores), dtype=bool),
        params.confidence,
        "customers the campaign did not treat" if campaign_known else "every scored customer",
        params.shortfall_tolerance,
    )
    result: dict[str, Any] = {
        "as_of": str(as_of),
        "outcome_window": [
            str(as_of + timedelta(days=1)),
            str(label_end(as_of, horizon_days)),
        ],
        "model_version": ", ".join(versions) or None,
        "customers": len(scores),
        "churn_rate": _rate(churned),
        "flagged": int(flagged.sum()),
        "churn_rate_flagged": _rate(churned[flagged]),
        "churn_rate_not_flagged": _rate(churned[~flagged]),
        "precision": None if precision is None else round(precision, 6),
        "recall": None if recall is None else round(recall, 6),
        # the control group was never contacted: its precision is the model's, untouched by the campaign
        "precision_control": _rate(churned[flagged & control]),
        "calibration_ece_untreated": ece,
        "calibration": table,
        "flagged_vs_rest": comparison,
        "warnings": _warnings(as_of, comparison, campaign_known),
    }
    groups = compare_groups(
        churned[treated], churned[flagged & control], params.confidence, ("treated", "control")
    )
    if not campaign_known:
        result["campaign"] = {
            "known": False,
            "note": NO_CAMPAIGN,
            "control_comparison": {
                "treated_definition": "flagged, group treatment (not known to be contacted)",
                **{k: v for k, v in groups.items() if k != "significant"},
            },
        }
        return result
    result["campaign"] = {
        "known": True,
        "treated_definition": "flagged, group treatment"
        + ("" if contacted is None else ", contacted within the window (contact log)"),
        **groups,
    }
    if contacted is not None:
        result["campaign"]["intention_to_treat"] = compare_groups(
            churned[assigned],
            churned[flagged & control],
            params.confidence,
            ("assigned", "control"),
        )
        result["campaign"]["control_contacted"] = int((flagged & control & contacted).sum())
        result["campaign"]["assigned_not_contacted"] = int((assigned & ~contacted).sum())
    return result


def run_backtest(
    published: Mapping[date, tuple[int, pd.DataFrame]],
    transactions: pd.DataFrame,
    params: BacktestParams,
    contacts: pd.DataFrame | None = None,
    used: AbstractSet[date] = frozenset(),
) -> dict[str, Any]:
    """Return reports/backtest.json: every published list whose horizon has passed, and those
    pending. `published` maps each list's as-of date to (its model's horizon_days, every
    customer scored for it); each list is judged under the definition it was scored with.
    `used` holds the as-of dates of lists the record says a campaign used."""
    purchases = purchase_dates(transactions)
    if transactions.empty:
        raise ChurnError("transactions: empty; nothing to compare the published lists with")
    newest = pd.to_datetime(transactions[DATE]).max().date()
    runs, pending = [], []
    for as_of in sorted(published):
        horizon_days, scores = published[as_of]
        matures = label_end(as_of, horizon_days)
        if labelled_by(as_of, horizon_days, newest):
            run = backtest_run(
                scores, purchases, as_of, horizon_days, params, contacts, as_of in used
            )
            runs.append({**run, "horizon_days": horizon_days})
        else:
            pending.append({"as_of": str(as_of), "matures_on": str(matures)})
    return {
        "newest_data_date": str(newest),
        "confidence": params.confidence,
        "interval_method": "Newcombe hybrid score (method 10) from Wilson intervals",
        "contact_log": contacts is not None,
        "warnings": [warning for run in runs for warning in run["warnings"]],
        "runs": runs,
        "pending": pending,
    }


def check_contacts(contacts: pd.DataFrame, source: str) -> pd.DataFrame:
    """Return the contact log with string ids and dates, plus the optional action, channel and
    cost columns when the log has them; raise naming the file on bad input."""
    missing = [c for c in (CUSTOMER_ID, CONTACTED_AT) if c not in contacts.columns]
    if missing:
        raise ChurnError(
            f"{source}: missing column(s) {missing}; the contact log needs customer_id, contacted_at"
        )
    when = pd.to_datetime(contacts[CONTACTED_AT], errors="coerce")
    bad = contacts.loc[when.isna(), CONTACTED_AT]
    if len(bad):
        raise ChurnError(
            f"{source}: column 'contacted_at' has {len(bad)} unreadable value(s) "
            f"(first at data row {int(bad.index[0]) + 1}: {bad.iloc[0]!r}); use ISO dates"
        )
    checked = pd.DataFrame(
        {CUSTOMER_ID: contacts[CUSTOMER_ID].astype("string"), CONTACTED_AT: when.dt.date}
    )
    for column in (CONTACT_ACTION, CONTACT_CHANNEL):
        if column in contacts.columns:
            checked[column] = contacts[column].astype("string")
    if CONTACT_COST in contacts.columns:
        cost = pd.to_numeric(contacts[CONTACT_COST], errors="coerce")
        bad = contacts.loc[
            (cost.isna() & contacts[CONTACT_COST].notna()) | (cost < 0), CONTACT_COST
        ]
        if len(bad):
            raise ChurnError(
                f"{source}: column 'cost' has {len(bad)} value(s) that are not a number >= 0 "
                f"(first at data row {int(bad.index[0]) + 1}: {bad.iloc[0]!r}); give the cost of "
                "each contact as a plain number, or leave the cell empty when it is unknown"
            )
        checked[CONTACT_COST] = cost.astype("float64")
    return checked


def summary_rows(report: Mapping[str, Any]) -> list[dict[str, str]]:
    """Return one display row per backtested run (strings, for a terminal table or a log line)."""

    def pct(value: Any) -> str:
        return "-" if value is None else f"{value:.1%}"

    def observed(group: Mapping[str, Any]) -> str:
        if group["churn_rate"] is None:
            return "-"
        return f"{group['churn_rate']:.1%} [{group['ci_low']:.1%}, {group['ci_high']:.1%}]"

    rows = []
    for run in report["runs"]:
        campaign = run["campaign"]
        comparison = run["flagged_vs_rest"]
        if campaign["known"]:
            effect = campaign["retention_difference"]
            interval = (
                "-"
                if campaign["ci_low"] is None
                else f"{effect:+.1%} [{campaign['ci_low']:+.1%}, {campaign['ci_high']:+.1%}]"
            )
        else:
            interval = "no campaign known"
        rows.append(
            {
                "as of": run["as_of"],
                "model": str(run["model_version"] or "-"),
                "customers": str(run["customers"]),
                "flagged": str(run["flagged"]),
                "churn flagged [CI]": observed(comparison["flagged"]),
                "predicted flagged": pct(comparison["flagged"]["predicted"]),
                "churn rest": pct(comparison["rest"]["churn_rate"]),
                "predicted rest": pct(comparison["rest"]["predicted"]),
                "precision": pct(run["precision"]),
                "recall": pct(run["recall"]),
                "ECE": "-"
                if run["calibration_ece_untreated"] is None
                else f"{run['calibration_ece_untreated']:.3f}",
                "effect [CI]": interval,
                "check": "WARN" if run["warnings"] else "ok",
            }
        )
    return rows
