"""Test helper: crude point-in-time snapshots (core features, label, role) built in pandas."""

from __future__ import annotations

import numpy as np
import pandas as pd

from churn.columns import AMOUNT, CHANNEL, CHURNED, CUSTOMER_ID, CUTOFF, DATE, ROLE
from churn.config import GenerateParams
from churn.generate import RAW_AMOUNT, RAW_CUSTOMER, RAW_TIMESTAMP, simulate


def generated_transactions(
    customers: int = 3000, seed: int = 7, days: int = 900
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return clean (customer_id, date, amount) rows and the customers table from `simulate`."""
    params = GenerateParams(customers=customers, chunk_customers=customers, seed=seed, days=days)
    chunks = list(simulate(params))
    raw = pd.concat([c.transactions for c in chunks], ignore_index=True)
    amount = pd.to_numeric(raw[RAW_AMOUNT], errors="coerce")
    when = pd.to_datetime(raw[RAW_TIMESTAMP], errors="coerce", format="%Y-%m-%d %H:%M:%S")
    ok = amount.notna() & np.isfinite(amount) & when.notna() & (when.dt.year < 2090)
    ok &= raw[RAW_CUSTOMER] != ""
    transactions = pd.DataFrame(
        {
            CUSTOMER_ID: raw.loc[ok, RAW_CUSTOMER].astype("string"),
            DATE: when[ok].dt.normalize(),
            AMOUNT: amount[ok].astype("float64"),
        }
    ).drop_duplicates()
    people = pd.concat([c.customers for c in chunks], ignore_index=True)
    people = pd.DataFrame(
        {
            CUSTOMER_ID: people[RAW_CUSTOMER].astype("string"),
            CHANNEL: people["channel"].astype("string"),
        }
    )
    return transactions.reset_index(drop=True), people


def snapshot_at(
    transactions: pd.DataFrame, cutoff: pd.Timestamp, horizon: int, active_within: int = 365
) -> pd.DataFrame:
    """Return one row per customer eligible at `cutoff`: core features and the churn label."""
    purchases = transactions[transactions[AMOUNT] > 0]
    past = purchases[purchases[DATE] <= cutoff]
    grouped = past.groupby(CUSTOMER_ID, observed=True)
    last = grouped[DATE].max()
    first = grouped[DATE].min()
    recent90 = past[past[DATE] > cutoff - pd.Timedelta(days=90)].groupby(CUSTOMER_ID)
    frame = pd.DataFrame(
        {
            "recency_days": (cutoff - last).dt.days.astype("float64"),
            "tenure_days": (cutoff - first).dt.days.astype("float64"),
            "purchases": grouped.size().astype("int64"),
            "purchase_days": grouped[DATE].nunique().astype("int64"),
            "spend_total": grouped[AMOUNT].sum(),
            "spend_max": grouped[AMOUNT].max(),
        }
    )
    frame["aov"] = frame["spend_total"] / frame["purchases"]
    frame["spend_90d"] = recent90[AMOUNT].sum().reindex(frame.index).fillna(0.0)
    frame["purchases_90d"] = recent90.size().reindex(frame.index).fillna(0).astype("int64")
    frame["gap_mean_days"] = np.where(
        frame["purchase_days"] > 1,
        (frame["tenure_days"] - frame["recency_days"]) / (frame["purchase_days"] - 1),
        np.nan,
    )
    frame = frame[frame["recency_days"] <= active_within]
    future = purchases[
        (purchases[DATE] > cutoff) & (purchases[DATE] <= cutoff + pd.Timedelta(days=horizon))
    ]
    bought = frame.index.isin(future[CUSTOMER_ID].unique())
    frame = frame.assign(**{CHURNED: (~bought).astype("int8")})
    frame.index.name = CUSTOMER_ID
    return frame.reset_index()


def build_snapshots(
    transactions: pd.DataFrame,
    customers: pd.DataFrame | None = None,
    horizon: int = 90,
    step: int = 30,
    fit_cutoffs: int = 4,
) -> pd.DataFrame:
    """Return fit / calibration / test snapshots at non-overlapping label windows (newest = test)."""
    as_of = transactions[DATE].max()
    test = as_of - pd.Timedelta(days=horizon)
    calibration = test - pd.Timedelta(days=horizon)
    newest_fit = calibration - pd.Timedelta(days=horizon)
    plan = [(test, "test"), (calibration, "calibration")]
    plan += [(newest_fit - pd.Timedelta(days=step * i), "fit") for i in range(fit_cutoffs)]
    frames = []
    for cutoff, role in plan:
        frame = snapshot_at(transactions, cutoff, horizon)
        frame.insert(1, CUTOFF, cutoff.date())
        frame.insert(2, ROLE, role)
        frames.append(frame)
    snapshots = pd.concat(frames, ignore_index=True)
    snapshots[CUSTOMER_ID] = snapshots[CUSTOMER_ID].astype("string")
    snapshots[ROLE] = snapshots[ROLE].astype("string")
    if customers is not None:
        snapshots = snapshots.merge(customers, on=CUSTOMER_ID, how="left")
    return snapshots.sort_values([CUTOFF, CUSTOMER_ID], ignore_index=True)
