"""The methods the model must beat: recency, frequency, logistic regression on RFM, BG/NBD
(expected purchases, and the probability of no purchase in the horizon)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from churn.bgnbd import (
    DAYS_PER_WEEK,
    BGNBDParams,
    expected_purchases,
    fit_bgnbd,
    probability_no_purchase,
    summarize_histories,
)
from churn.columns import CHURNED
from churn.errors import ChurnError

RECENCY, TENURE, PURCHASES, PURCHASE_DAYS, SPEND_TOTAL = (
    "recency_days",
    "tenure_days",
    "purchases",
    "purchase_days",
    "spend_total",
)


@dataclass(frozen=True)
class BaselineScores:
    """Churn scores of one baseline on the test rows (higher = more likely to churn)."""

    name: str
    score: np.ndarray
    is_probability: bool  # only probabilities get log loss, Brier and calibration error


def _require(frame: pd.DataFrame, columns: list[str], source: str) -> None:
    missing = [name for name in columns if name not in frame.columns]
    if missing:
        raise ChurnError(
            f"{source}: baselines need the core feature column(s) {missing}; "
            "rebuild features (they are part of the snapshot contract)"
        )


def rfm_matrix(frame: pd.DataFrame) -> np.ndarray:
    """Return recency, log frequency and log monetary value as a numeric matrix (missing -> 0)."""
    recency = frame[RECENCY].astype("float64").fillna(0.0)
    frequency = np.log1p(frame[PURCHASES].astype("float64").fillna(0.0).clip(lower=0))
    monetary = np.log1p(frame[SPEND_TOTAL].astype("float64").fillna(0.0).clip(lower=0))
    return np.column_stack([recency, frequency, monetary])


def fit_rfm_logistic(fit_rows: pd.DataFrame, seed: int = 0) -> object:
    """Return a standardised logistic regression on RFM fitted on the fit rows."""
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, random_state=seed))
    model.fit(rfm_matrix(fit_rows), fit_rows[CHURNED].to_numpy("int64"))
    return model


def score_baselines(
    test_rows: pd.DataFrame,
    fit_rows: pd.DataFrame,
    horizon_days: int,
    seed: int = 0,
    source: str = "snapshots",
) -> tuple[list[BaselineScores], BGNBDParams]:
    """Return every baseline's churn score on the test rows, and the BG/NBD fit behind one of them."""
    _require(test_rows, [RECENCY, TENURE, PURCHASES, PURCHASE_DAYS, SPEND_TOTAL], source)
    rfm = fit_rfm_logistic(fit_rows, seed)
    # BG/NBD needs no labels: it is fitted on the purchase histories as of the test cutoff itself,
    # which is how it is used in practice (history up to today -> purchases expected next)
    x, t_x, T = summarize_histories(test_rows)
    bgnbd = fit_bgnbd(x, t_x, T)
    horizon_weeks = horizon_days / DAYS_PER_WEEK
    expected = expected_purchases(bgnbd, horizon_weeks, x, t_x, T)
    no_purchase = probability_no_purchase(bgnbd, horizon_weeks, x, t_x, T)
    scores = [
        BaselineScores("recency", test_rows[RECENCY].astype("float64").to_numpy(), False),
        BaselineScores("frequency", -test_rows[PURCHASES].astype("float64").to_numpy(), False),
        BaselineScores("rfm_logistic", rfm.predict_proba(rfm_matrix(test_rows))[:, 1], True),
        # fewer expected purchases = more likely to churn; P(alive) would rank every one-time
        # buyer as certainly alive, so it is not used
        BaselineScores("bgnbd", -expected, False),
        # the quantity the churn label is: no purchase in (cutoff, cutoff + horizon]; a
        # probability, so it is calibrated (or not) like the model
        BaselineScores("bgnbd_no_purchase", no_purchase, True),
    ]
    return scores, bgnbd
