"""Optional BG/NBD features: a BG/NBD fitted per cutoff on that cutoff's histories (no labels)."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

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
from churn.features.sql import SUMMARY_EXPRESSIONS
from churn.logs import get_logger

log = get_logger("features")

EXPECTED = "bgnbd_expected_purchases"
P_ALIVE = "bgnbd_p_alive"
P_NO_PURCHASE = "bgnbd_p_no_purchase"
MAX_FIT_CUSTOMERS = 200_000  # larger cutoffs fit on a deterministic hash sample of this size
MIN_REPEAT_BUYERS = 10  # below this the four parameters are not identified: features stay null
_HASH_KEY = "churn-bgnbd-fit1"  # 16 bytes, as pandas needs


def cutoff_positions(frame: pd.DataFrame) -> dict[Any, np.ndarray]:
    """Return cutoff -> row positions, in cutoff order: `frame.groupby(cutoff).indices`.

    Snapshot rows come ordered by cutoff, so each cutoff is one run of rows: found by comparing
    neighbours instead of hashing a million date objects per batch (~0.2 s a call at 10M
    transactions); any other order falls back to the groupby."""
    values = frame[c.CUTOFF].to_numpy()
    if len(values) == 0 or values.dtype != object:  # dates are objects in snapshots
        return frame.groupby(c.CUTOFF, sort=True).indices
    starts = np.flatnonzero(values[1:] != values[:-1]) + 1
    bounds = [0, *starts.tolist(), len(values)]
    keys = [values[start] for start in bounds[:-1]]
    if all(a < b for a, b in zip(keys, keys[1:], strict=False)):
        return {
            key: np.arange(start, end)
            for key, start, end in zip(keys, bounds[:-1], bounds[1:], strict=True)
        }
    return frame.groupby(c.CUTOFF, sort=True).indices


def fit_hash(customer_ids: pd.Series) -> np.ndarray:
    """Return the fixed 64-bit hash of each customer id that orders customers for the fit sample
    (the same for an id in any batch or on any engine)."""
    # categorize=False: the same hashes (a categorical hashes its categories the same way), but
    # the ids of one cutoff are distinct, so factorizing them first only doubled the work
    return pd.util.hash_pandas_object(
        customer_ids.astype("string").astype(object),
        index=False,
        hash_key=_HASH_KEY,
        categorize=False,
    ).to_numpy()


def fit_sample(customer_ids: pd.Series, limit: int | None = None) -> np.ndarray:
    """Return a mask choosing at most `limit` (default MAX_FIT_CUSTOMERS) customers by a fixed
    hash of their id (stable)."""
    limit = MAX_FIT_CUSTOMERS if limit is None else limit
    if len(customer_ids) <= limit:
        return np.ones(len(customer_ids), dtype=bool)
    hashed = fit_hash(customer_ids)
    return hashed <= np.sort(hashed)[limit - 1]


def _fit_chosen(
    x: np.ndarray, t_x: np.ndarray, T: np.ndarray
) -> tuple[BGNBDParams | None, str | None]:
    """Return one cutoff's fit on its chosen (x, t_x, T), or None and why it was not fitted."""
    if int((x > 0).sum()) < MIN_REPEAT_BUYERS:
        return None, None
    try:
        # a canonical order: float sums inside the fit must not depend on row order
        order = np.lexsort((T, t_x, x))
        return fit_bgnbd(x[order], t_x[order], T[order]), None
    except ChurnError as error:
        return None, str(error)


def fit_cutoff(
    x: np.ndarray, t_x: np.ndarray, T: np.ndarray, chosen: np.ndarray
) -> BGNBDParams | None:
    """Return one cutoff's BG/NBD parameters fitted on the `chosen` customers' (x, t_x, T), or
    None (features null at that cutoff) when too few repeat buyers or the fit is degenerate."""
    params, error = _fit_chosen(x[chosen], t_x[chosen], T[chosen])
    if error is not None:  # a degenerate fit: say so, leave this cutoff's features null
        log.warning("BG/NBD features null at one cutoff: %s", error)
    return params


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
    chosen = fit_sample(rows[c.CUSTOMER_ID])
    params, error = _fit_chosen(x[chosen], t_x[chosen], T[chosen])
    if params is not None:
        try:
            return cutoff_features(params, horizon_days, x, t_x, T)
        except ChurnError as failed:
            error = str(failed)
    if error is not None:  # a degenerate fit: say so, leave this cutoff's features null
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
        for positions in cutoff_positions(frame).values():
            rows = frame.iloc[positions]
            values = _one_cutoff(rows, horizon_days)
            expected[positions], alive[positions], no_purchase[positions] = values
    out[EXPECTED] = expected
    out[P_ALIVE] = alive
    out[P_NO_PURCHASE] = no_purchase
    return out


# --------------------------------------------------------------------------- in batches
# the keys and the core features summarize_histories reads (churn.features.sql defines them)
SUMMARY_COLUMNS = [c.CUSTOMER_ID, c.CUTOFF, *SUMMARY_EXPRESSIONS]


class BGNBDFits:
    """add_bgnbd_features in passes over batches of snapshot rows, with bounded memory.

    Pass 1 (`add_fit_rows`) keeps per cutoff only the rows fit_sample could still choose (the
    MAX_FIT_CUSTOMERS smallest id hashes seen so far, ties kept) and the row count; `fit` then
    fits each cutoff on exactly the rows fit_sample chooses among all of them, in the same
    canonical order. Pass 2 (`check_rows`) computes the features of every row once, so a cutoff
    whose features fail anywhere is null everywhere, as in memory. Pass 3 (`add_columns`) adds
    the columns per batch. The result equals add_bgnbd_features on the whole snapshot. The
    features stage skips pass 2: pass 3 drops a failing cutoff's fit itself and says so
    (CutoffFailed), and the stage then writes again, so the features are computed once.
    """

    def __init__(self, horizon_days: int, limit: int | None = None) -> None:
        self.horizon_days = horizon_days
        self.limit = MAX_FIT_CUSTOMERS if limit is None else limit
        self.rows: dict[Any, int] = {}
        self.kept: dict[Any, list[np.ndarray]] = {}  # hash, x, t_x, T stacked as 4 x n
        self.params: dict[Any, BGNBDParams | None] = {}
        self.errors: dict[Any, str] = {}

    def add_fit_rows(self, frame: pd.DataFrame) -> None:
        """Pass 1: take one batch's (customer_id, cutoff, core features) into the samples."""
        for cutoff, positions in cutoff_positions(frame).items():
            rows = frame.iloc[positions]
            x, t_x, T = summarize_histories(rows)
            # the uint64 hashes ride along bit for bit as a float64 view (a cast would round)
            block = np.vstack([fit_hash(rows[c.CUSTOMER_ID]).view("float64"), x, t_x, T])
            self.rows[cutoff] = self.rows.get(cutoff, 0) + len(rows)
            parts = self.kept.setdefault(cutoff, [])
            parts.append(block)
            if sum(p.shape[1] for p in parts) > 2 * self.limit:
                self.kept[cutoff] = [self._smallest(np.hstack(parts))]

    def _smallest(self, block: np.ndarray) -> np.ndarray:
        hashes = block[0].view("uint64")
        if len(hashes) <= self.limit:
            return block
        return block[:, hashes <= np.sort(hashes)[self.limit - 1]]

    def fit(self) -> None:
        """Fit every cutoff seen in pass 1 on the rows fit_sample chooses among all its rows.

        The cutoffs' fits are independent and spend their time in NumPy/SciPy ufuncs, which
        release the GIL: they run in one thread per core, each fit the same as run alone (BLAS
        is held at one thread for all of them: churn.bgnbd._weighted_sum)."""
        chosen = []
        for cutoff in sorted(self.kept):
            block = np.hstack(self.kept.pop(cutoff))
            if self.rows[cutoff] > self.limit:
                block = self._smallest(block)
            chosen.append((cutoff, block[1].copy(), block[2].copy(), block[3].copy()))
        workers = max(1, min(len(chosen), os.cpu_count() or 1))
        with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(workers) as pool:
            fits = list(pool.map(lambda item: _fit_chosen(*item[1:]), chosen))
        for (cutoff, *_), (params, error) in zip(chosen, fits, strict=True):
            self.params[cutoff] = params
            if error is not None:
                self.errors[cutoff] = error

    def check_rows(self, frame: pd.DataFrame) -> None:
        """Pass 2: a cutoff whose features fail on any row (a degenerate fit) becomes null."""
        for cutoff, positions in cutoff_positions(frame).items():
            params = self.params.get(cutoff)
            if params is None:
                continue
            try:
                cutoff_features(
                    params, self.horizon_days, *summarize_histories(frame.iloc[positions])
                )
            except ChurnError as error:
                self.params[cutoff], self.errors[cutoff] = None, str(error)

    def warn(self) -> None:
        for error in self.errors.values():
            log.warning("BG/NBD features null at one cutoff: %s", error)

    def add_columns(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Pass 3: return the batch with the three BG/NBD columns, as add_bgnbd_features.

        Raises CutoffFailed when a cutoff's features fail on a row of this batch (after
        `check_rows` they cannot): its fit is dropped, and the caller writes again from the first
        batch, so that cutoff is null everywhere, as if `check_rows` had found it."""
        # a shallow copy: copy-on-write keeps `frame` unchanged, and a deep copy of a 2^20-row
        # batch (merging its Arrow-split blocks) cost ~4 CPU seconds per snapshot at 10M rows
        out = frame.copy(deep=False)
        columns = [np.full(len(frame), np.nan) for _ in range(3)]
        if len(frame):
            for cutoff, positions in cutoff_positions(frame).items():
                params = self.params.get(cutoff)
                if params is None:
                    continue
                try:
                    values = cutoff_features(
                        params, self.horizon_days, *summarize_histories(frame.iloc[positions])
                    )
                except ChurnError as error:
                    self.params[cutoff], self.errors[cutoff] = None, str(error)
                    raise CutoffFailed(str(error)) from None
                for column, value in zip(columns, values, strict=True):
                    column[positions] = value
        out[EXPECTED], out[P_ALIVE], out[P_NO_PURCHASE] = columns
        return out


class CutoffFailed(Exception):
    """A cutoff's BG/NBD features failed on a row while batches were written (BGNBDFits)."""
