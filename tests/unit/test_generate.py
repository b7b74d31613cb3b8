"""The synthetic default data behaves like real non-contractual customers, deterministically."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churn.config import GenerateParams
from churn.generate import RAW_AMOUNT, RAW_CUSTOMER, RAW_TIMESTAMP, simulate


@pytest.fixture(scope="module")
def small():
    params = GenerateParams(customers=3000, chunk_customers=1000, seed=7)
    chunks = list(simulate(params))
    txn = pd.concat([c.transactions for c in chunks], ignore_index=True)
    truth = pd.concat([c.truth for c in chunks], ignore_index=True)
    return params, chunks, txn, truth


def _clean(txn):
    amount = pd.to_numeric(txn[RAW_AMOUNT], errors="coerce")
    when = pd.to_datetime(txn[RAW_TIMESTAMP], errors="coerce", format="%Y-%m-%d %H:%M:%S")
    ok = amount.notna() & np.isfinite(amount) & when.notna() & (when.dt.year < 2090)
    ok &= txn[RAW_CUSTOMER] != ""
    return txn.assign(amount=amount, when=when)[ok]


def test_generation_is_deterministic_for_a_seed():
    params = GenerateParams(customers=500, chunk_customers=200, seed=3)
    first = [c.transactions for c in simulate(params)]
    second = [c.transactions for c in simulate(params)]
    for a, b in zip(first, second, strict=True):
        pd.testing.assert_frame_equal(a, b)


def test_customer_ids_keep_leading_zeros(small):
    _, _, txn, truth = small
    assert truth["customer_id"].str.len().eq(6).all()
    assert truth["customer_id"].iloc[0] == "000001"


def test_refunds_are_about_two_percent_and_negative(small):
    clean = _clean(small[2])
    refund_share = (clean["amount"] < 0).mean()
    assert 0.01 < refund_share < 0.03


def test_purchase_rates_are_heterogeneous(small):
    clean = _clean(small[2])
    per_customer = clean[clean["amount"] > 0].groupby(RAW_CUSTOMER).size()
    assert per_customer.quantile(0.9) >= 4 * per_customer.median()
    assert (per_customer == 1).mean() > 0.1  # plenty of one-time buyers, as in real data


def test_no_purchase_after_hidden_dropout(small):
    clean = _clean(small[2])
    truth = small[3].set_index("customer_id")
    purchases = clean[clean["amount"] > 0]
    dropout = purchases[RAW_CUSTOMER].map(truth["dropout_date"])
    assert (purchases["when"].dt.normalize() <= dropout).all()


def test_customers_join_over_the_whole_period(small):
    params, _, _, truth = small
    days = (truth["first_purchase"] - pd.Timestamp(params.start)).dt.days
    assert days.min() < 31 and days.max() > params.days - 120


def test_export_contains_dirty_rows_and_duplicates(small):
    txn = small[2]
    assert (txn[RAW_CUSTOMER] == "").any()
    assert (txn[RAW_TIMESTAMP] == "not a date").any()
    assert txn["order_id"].duplicated().any()


def test_weekend_and_december_purchases_are_more_frequent(small):
    clean = _clean(small[2])
    purchases = clean[clean["amount"] > 0]
    by_weekday = purchases["when"].dt.day_of_week.value_counts()
    assert by_weekday[5] > by_weekday[1]


def test_nps_is_lower_close_to_dropout(small):
    chunks = small[1]
    nps = pd.concat([c.nps for c in chunks], ignore_index=True)
    truth = small[3].set_index("customer_id")
    days_left = (
        truth.loc[nps[RAW_CUSTOMER], "dropout_date"].to_numpy()
        - pd.to_datetime(nps["answered_at"]).to_numpy()
    ) / np.timedelta64(1, "D")
    near = nps["score"][days_left < 90].mean()
    far = nps["score"][days_left > 180].mean()
    assert near < far - 1


def test_a_closed_base_acquires_everyone_in_its_first_days():
    params = GenerateParams(
        customers=800, seed=5, pre_period_share=0.0, acquisition_days=90, with_nps=False
    )
    truth = pd.concat([chunk.truth for chunk in simulate(params)], ignore_index=True)
    joined = (truth["first_purchase"] - pd.Timestamp(params.start)).dt.days
    assert joined.between(0, 89).all()


def test_seasonality_amplitude_sets_the_december_peak():
    def december_share(amplitude: float) -> float:
        params = GenerateParams(
            customers=1500, seed=5, seasonality=amplitude, days=730, with_nps=False
        )
        clean = _clean(pd.concat([chunk.transactions for chunk in simulate(params)]))
        return float((clean.loc[clean["amount"] > 0, "when"].dt.month == 12).mean())

    flat, strong = december_share(0.0), december_share(0.8)
    assert 0.06 < flat < 0.11  # about 1/12 without a yearly cycle
    assert strong > flat * 1.4


def test_the_written_files_hold_every_chunks_customers_and_answers_once(tmp_path):
    """`churn generate` over several chunks: customers.csv has one row per customer of every
    chunk and nps.csv every chunk's answers (they were once written in the wrong loop: three
    copies of the last chunk's rows, the other chunks' customers missing)."""
    from churn.config import TiersParams
    from churn.generate import run

    params = GenerateParams(customers=2500, chunk_customers=1000, seed=3)
    run(params, TiersParams(), tmp_path, "csv")
    chunks = list(simulate(params, TiersParams()))
    customers = pd.read_csv(tmp_path / "customers.csv", dtype=str, keep_default_na=False)
    expected = pd.concat([c.customers for c in chunks], ignore_index=True)
    assert len(customers) == len(expected) == 2500
    assert customers.iloc[:, 0].is_unique
    assert set(customers.iloc[:, 0]) == set(expected.iloc[:, 0].astype(str))
    nps = pd.read_csv(tmp_path / "nps.csv", dtype=str, keep_default_na=False)
    assert len(nps) == sum(len(c.nps) for c in chunks)
