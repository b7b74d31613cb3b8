"""Report test data: a scores table in the score stage's contract and a report on the dev data."""

from __future__ import annotations

from datetime import date

import duckdb
import numpy as np
import pandas as pd

from churn.columns import CUSTOMER_ID
from churn.config import ChurnParams, ReportParams
from churn.report import build_report
from churn.report.activity import DuckDBAggregates


def report_settings(active_within_days, as_of=None, **report) -> tuple[ReportParams, ChurnParams]:
    """Return the (report, churn) sections build_report reads: the definition lives in churn."""
    return ReportParams(**report), ChurnParams(active_within_days=active_within_days, as_of=as_of)


# the hand-computed retention example's settings (tests/unit/test_report_figures.py)
EXAMPLE_SETTINGS = report_settings(active_within_days=40, as_of=date(2024, 4, 30))
# the files `churn report` writes into its folder (dvc.yaml declares the same)
OUTPUTS = ("retention.html", "retention.json", "retention_monthly.csv", "cohorts.csv")


def fake_scores(customers: pd.DataFrame, as_of: str, seed: int = 0) -> pd.DataFrame:
    """Return a scores table in the score stage's contract, with seeded random probabilities."""
    rng = np.random.default_rng(seed)
    n = len(customers)
    probability = rng.beta(2, 5, n)
    expected = np.round(rng.gamma(2.0, 60.0, n), 2)
    tier = np.select([probability >= 0.5, probability >= 0.25], ["high", "medium"], "low")
    value_at_risk = np.round(probability * expected, 2)
    return pd.DataFrame(
        {
            CUSTOMER_ID: customers[CUSTOMER_ID].astype("string"),
            "as_of": pd.Timestamp(as_of).date(),
            "churn_probability": probability,
            "risk_tier": tier,
            "expected_value": expected,
            "value_at_risk": value_at_risk,
            "expected_net_benefit": value_at_risk * 0.2 - 1.0,
            "priority": pd.Series(-value_at_risk).rank(method="first").astype("int64"),
            "at_risk": probability >= 0.25,
            "reasons": "no purchase for a while",
            "suggested_action": "send a personal offer",
            "group": np.where(rng.random(n) < 0.1, "control", "treatment"),
            "model_version": "3",
        }
    )


def drift_report(**above_max: float) -> dict:
    """Return a `churn drift` report whose out-of-range part names each feature given with the
    share of scored customers above its training maximum (0 to 1004, today up to 1200)."""
    entries = {
        name: {
            "training_min": 0.0,
            "training_max": 1004.0,
            "current_min": 0.0,
            "current_max": 1200.0,
            "share_below_min": 0.0,
            "share_above_max": share,
            "named": True,
        }
        for name, share in above_max.items()
    }
    return {
        "passed": True,
        "outside_training_range": entries,
        "features_outside_training_range": list(entries),
    }


METRICS = {"model": {"roc_auc": 0.78, "lift_top10": 2.9, "recall_top10": 0.29}}
HOSTILE = "<b>partner</b>"  # a segment name that must show as text, not markup


def make_report(
    dev_data,
    definition: ChurnParams | None = None,
    with_extras: bool = True,
    drift: dict | None = None,
):
    """Return a report on the dev data (`dev_data` fixture), with scores, metrics and NPS or none,
    and the given `churn drift` report."""
    settings, definition = ReportParams(), definition or ChurnParams()
    transactions, customers, nps = dev_data()
    con = duckdb.connect()
    if not with_extras:
        return build_report(
            DuckDBAggregates(con), con.from_arrow(transactions), settings, definition
        )
    segments = customers.assign(channel=customers["channel"].replace("marketplace", HOSTILE))
    return build_report(
        DuckDBAggregates(con),
        con.from_arrow(transactions),
        settings,
        definition,
        nps=nps,
        customers=segments,
        scores=fake_scores(customers, "2025-12-30"),
        metrics=METRICS,
        drift=drift,
    )


def transactions_frame(rows) -> pd.DataFrame:
    """Return clean transactions (customer_id, date, amount) from (id, date, amount) tuples."""
    return pd.DataFrame(rows, columns=["customer_id", "date", "amount"]).astype(
        {"customer_id": "string", "amount": "float64"}
    )


def report_for(rows, settings=EXAMPLE_SETTINGS, **optional):
    """Return the report on clean transactions given as (id, date, amount) tuples; `settings` is
    a (report, churn) pair from report_settings."""
    con = duckdb.connect()
    return build_report(
        DuckDBAggregates(con), con.from_df(transactions_frame(rows)), *settings, **optional
    )
