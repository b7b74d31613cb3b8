"""Optional BG/NBD features: a BG/NBD fitted per cutoff on that cutoff's histories (no labels)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from churn import columns as c
from churn.bgnbd import (
    DAYS_PER_WEEK,
    BGNBDParams,
    expected_purchases,
    fit_bgnbd,
    probability_alive,
    probability_no_purchase,
    summarize_histories,
)
from churn.errors import ChurnError
from churn.logs import get_logger

log = get_logger("features")

EXPECTED = "bgnbd_expected_purchases"
P_ALIVE = "bgnbd_p_alive"
P_NO_PURCHASE = "bgnbd_p_no_purchase"
MAX_FIT_CUSTOMERS = 200_000  # larger cutoffs fit on a deterministic hash sample of this size
MIN_REPEAT_BUYERS = 10  # below this the four parameters are not identified: features stay null
_HASH_KEY = "churn-bgnbd-fit1"  # 16 bytes, as pandas needs


def fit_hash(customer_ids: pd.Series) -> np.ndarray:
    """Return the fixed 64-bit hash of each customer id that orders customers for the fit sample."""
    return pd.util.hash_pandas_object(
        customer_ids.astype("string").astype(object), index=False, hash_key=_HASH_KEY
    ).to_numpy()


def fit_sample(customer_ids: pd.Series, limit: int | None = None) -> np.ndarray:
    """Return a mask choosing at most `limit` (default MAX_FIT_CUSTOMERS) customers by a fixed
    hash of their id (stable)."""
    limit = MAX_FIT_CUSTOMERS if limit is None else limit
    if len(customer_ids) <= limit:
        return np.ones(len(customer_ids), dtype=bool)
    hashed = fit_hash(customer_ids)
    return hashed <= np.sort(hashed)[limit - 1]


def fit_cutoff(
    x: np.ndarray, t_x: np.ndarray, T: np.ndarray, chosen: np.ndarray
) -> BGNBDParams | None:
    """Return one cutoff's BG/NBD parameters fitted on the `chosen` customers' (x, t_x, T), or
    None (features null at that cutoff) when too few repeat buyers or the fit is degenerate."""
    if int((x[chosen] > 0).sum()) < MIN_REPEAT_BUYERS:
        return None
    try:
        # a canonical order: float sums inside the fit must not depend on row order
        order = np.lexsort((T[chosen], t_x[chosen], x[chosen]))
        return fit_bgnbd(x[chosen][order], t_x[chosen][order], T[chosen][order])
    except ChurnError as error:  # a degenerate fit: say so, leave this cutoff's features null
        log.warning("BG/NBD features null at one cutoff: %s", error)
        return None


def cutoff_features(
    params: BGNBDParams, horizon_days: int, x: np.ndarray, t_x: np.ndarray, T: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (expected purchases in the horizon, P(alive), P(no purchase in the horizon)) per
    customer under one cutoff's fitted parameters; ChurnError when the expectation is not finite."""
    horizon = horizon_days / DAYS_PER_WEEK
    expected = expected_purchases(params, horizon, x, t_x, T)
    no_purchase = probability_no_purchase(params, horizon, x, t_x, T)
    return expected, probability_alive(params, x, t_x, T), no_purchase


def _one_cutoff(rows: pd.DataFrame, horizon_days: int) -> tuple[np.ndarray, ...]:
    x, t_x, T = summarize_histories(rows)
    nulls = (np.full(len(rows), np.nan),) * 3
    params = fit_cutoff(x, t_x, T, fit_sample(rows[c.CUSTOMER_ID]))
    if params is None:
        return nulls
    try:
        return cutoff_features(params, horizon_days, x, t_x, T)
    except ChurnError as error:  # a degenerate fit: say so, leave this cutoff's features null
        log.warning("BG/NBD features null at one cutoff: %s", error)
        return nulls


def add_bgnbd_features(frame: pd.DataFrame, horizon_days: int) -> pd.DataFrame:
    """Return the snapshot with BG/NBD expected purchases in the horizon, P(alive) and the
    probability of no purchase in the horizon per row.

    Each cutoff gets its own maximum-likelihood fit on the (x, t_x, T) of that cutoff's rows
    only, so nothing dated after the cutoff (and no label) can reach a feature.
    """
    out = frame.copy()
    expected = np.full(len(frame), np.nan)
    alive = np.full(len(frame), np.nan)
    no_purchase = np.full(len(frame), np.nan)
    if len(frame):
        for positions in frame.groupby(c.CUTOFF, sort=True).indices.values():
            rows = frame.iloc[positions]
            values = _one_cutoff(rows, horizon_days)
            expected[positions], alive[positions], no_purchase[positions] = values
    out[EXPECTED] = expected
    out[P_ALIVE] = alive
    out[P_NO_PURCHASE] = no_purchase
    return out
