"""Small seeded transaction tables for the ingest integrity tests: a closed customer base that ages,
a December peak, and the broken exports the checks must stop (in the newest month only)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from churn import columns as C

START = dt.date(2022, 1, 1)
CHANNELS = ("web", "app", "store")


def closed_base(
    months: int,
    customers: int = 600,
    seed: int = 5,
    december_peak: float = 1.0,
    start: dt.date = START,
) -> pd.DataFrame:
    """Return clean transactions (the ingest output schema plus a `channel` and a `coupon` column)
    of a closed base: every customer joins in the first two months, then buys at their own rate
    until they silently stop; nobody new arrives, so the base ages as `months` grows."""
    rng = np.random.default_rng(seed)
    days = int(months * 30.44)
    first = rng.integers(0, 60, customers)
    lifetime = rng.exponential(500, customers)
    rate = rng.gamma(2.0, 1 / 20, customers)  # purchases per day: one every ~40 days on average
    mean_amount = rng.lognormal(3.5, 0.4, customers)
    rows = []
    for customer in range(customers):
        day = float(first[customer])
        end = min(days, first[customer] + lifetime[customer])
        while day < end:
            date = start + dt.timedelta(days=int(day))
            amount = mean_amount[customer] * rng.lognormal(0, 0.3)
            if date.month == 12 and december_peak > 1 and rng.random() < 0.5:
                # peak buyers buy more often in December, a little dearer (gifts)
                for _ in range(int(december_peak)):
                    rows.append((customer, date, amount * 1.2))
            rows.append((customer, date, amount))
            day += rng.exponential(1 / rate[customer])
    frame = pd.DataFrame(rows, columns=["c", "date", "amount"])
    n = len(frame)
    hours = rng.choice(24, n, p=_hour_profile())
    timestamps = pd.to_datetime(frame["date"]) + pd.to_timedelta(hours, unit="h")
    coupon = pd.array(rng.choice(["none", "spring", "loyal"], n), dtype="string")
    coupon[rng.random(n) < 0.02] = pd.NA
    return pd.DataFrame(
        {
            C.CUSTOMER_ID: frame["c"].map(lambda c: f"{c:05d}").astype("string"),
            C.TIMESTAMP: timestamps,
            C.DATE: frame["date"],
            C.AMOUNT: frame["amount"].round(2),
            C.TRANSACTION_ID: pd.array([f"o{i}" for i in range(n)], dtype="string"),
            "channel": pd.array(rng.choice(CHANNELS, n, p=[0.5, 0.3, 0.2]), dtype="string"),
            "coupon": coupon,
        }
    )


def _hour_profile() -> np.ndarray:
    """Shop hours: quiet at night, a lunch bump and an evening peak."""
    weights = np.array(
        [1, 1, 1, 1, 1, 1, 2, 4, 6, 7, 8, 10, 12, 10, 8, 8, 9, 11, 14, 16, 14, 10, 5, 2], float
    )
    return weights / weights.sum()


def newest_month(transactions: pd.DataFrame, days: int = 30) -> pd.Series:
    """Return the mask of the newest `days` days (the period the checks call newest)."""
    last = transactions[C.DATE].max()
    return transactions[C.DATE] > last - dt.timedelta(days=days)


def amounts_times_100(transactions: pd.DataFrame) -> pd.DataFrame:
    """Return the table with the newest month's amounts in cents (x100): a unit change upstream."""
    out = transactions.copy()
    mask = newest_month(out)
    out.loc[mask, C.AMOUNT] = out.loc[mask, C.AMOUNT] * 100
    return out


def renamed_category(transactions: pd.DataFrame) -> pd.DataFrame:
    """Return the table with channel 'web' renamed 'online' in the newest month."""
    out = transactions.copy()
    mask = newest_month(out) & (out["channel"] == "web")
    out.loc[mask, "channel"] = "online"
    return out


def null_jump(transactions: pd.DataFrame, share: float = 0.4, seed: int = 9) -> pd.DataFrame:
    """Return the table with `share` of the newest month's coupons empty (2% before)."""
    out = transactions.copy()
    rng = np.random.default_rng(seed)
    mask = newest_month(out) & (rng.random(len(out)) < share)
    out.loc[mask, "coupon"] = pd.NA
    return out


def shifted_hours(transactions: pd.DataFrame, hours: int = 5) -> pd.DataFrame:
    """Return the table with the newest month's timestamps shifted by whole hours (a time zone)."""
    out = transactions.copy()
    mask = newest_month(out)
    out.loc[mask, C.TIMESTAMP] = out.loc[mask, C.TIMESTAMP] + pd.Timedelta(hours=hours)
    out[C.DATE] = out[C.TIMESTAMP].dt.date
    return out


def quarantine_rows(
    transactions: pd.DataFrame,
    column: str,
    newest_share: float,
    trailing_share: float = 0.001,
    seed: int = 11,
    newest_days: int = 30,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (clean, quarantine): `newest_share` of the newest days' rows and `trailing_share`
    of the older rows lost their `column` (customer_id or amount) upstream, so ingest quarantined
    them; the quarantine has quarantine.parquet's columns, original values as text."""
    rng = np.random.default_rng(seed)
    share = np.where(newest_month(transactions, newest_days), newest_share, trailing_share)
    lost = rng.random(len(transactions)) < share
    reason = {C.CUSTOMER_ID: "missing_customer_id", C.AMOUNT: "missing_amount"}[column]
    rows = transactions[lost]
    quarantine = pd.DataFrame(
        {
            C.QUARANTINE_TABLE: "transactions",
            C.SOURCE_FILE: "tx.csv",
            C.SOURCE_ROW: np.flatnonzero(lost) + 1,
            C.REASON: reason,
            C.DETAIL: f"column '{column}' is empty",
            C.CUSTOMER_ID: rows[C.CUSTOMER_ID].astype("string"),
            C.TIMESTAMP: rows[C.TIMESTAMP].dt.strftime("%Y-%m-%d %H:%M:%S").astype("string"),
            C.AMOUNT: rows[C.AMOUNT].map(lambda v: f"{v:.2f}").astype("string"),
        }
    )
    quarantine[column] = pd.array([None] * len(quarantine), dtype="string")
    return transactions[~lost].reset_index(drop=True), quarantine.reset_index(drop=True)
