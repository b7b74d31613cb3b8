"""Optional BG/NBD features: per-cutoff fits from data up to the cutoff only, exact and stable."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from churn.bgnbd import (
    BGNBDParams,
    expected_purchases,
    fit_bgnbd,
    probability_alive,
    probability_no_purchase,
    summarize_histories,
)
from churn.config import FeaturesParams
from churn.features.bgnbd_columns import (
    EXPECTED,
    P_ALIVE,
    P_NO_PURCHASE,
    add_bgnbd_features,
    fit_sample,
)
from churn.features.build import snapshot_columns
from support.features_tables import snapshot_at, transactions_frame

PARAMS = FeaturesParams(bgnbd=True)


@pytest.fixture(scope="module")
def transactions(generated_tables):
    return generated_tables(customers=300, seed=5, days=1095)[0].to_pandas()


@pytest.fixture(scope="module")
def cutoffs(transactions):
    last = max(transactions["date"])
    return [last - timedelta(days=400), last - timedelta(days=250)]


@settings(
    max_examples=5,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(keep=st.floats(0.0, 1.0), seed=st.integers(0, 1000))
def test_bgnbd_features_ignore_transactions_after_the_cutoff(transactions, cutoffs, keep, seed):
    newest = max(cutoffs)
    dates = pd.Series(transactions["date"])
    later = transactions[(dates > newest).to_numpy()].sample(frac=keep, random_state=seed)
    before = transactions[(dates <= newest).to_numpy()]
    base = snapshot_at(before, cutoffs, params=PARAMS)
    more = snapshot_at(pd.concat([before, later]), cutoffs, params=PARAMS)
    assert base[EXPECTED].notna().all()
    pd.testing.assert_frame_equal(base, more)


def test_bgnbd_features_equal_a_direct_fit_at_each_cutoff(transactions, cutoffs):
    frame = snapshot_at(transactions, cutoffs, params=PARAMS).reset_index()
    for cutoff in cutoffs:
        rows = frame[frame["cutoff"] == cutoff]
        x = rows["purchase_days"].to_numpy("float64") - 1
        tenure = rows["tenure_days"].to_numpy("float64")
        t_x = np.where(x > 0, tenure - rows["recency_days"].to_numpy("float64"), 0.0)
        order = np.lexsort((tenure, t_x, x))  # the features fit in this canonical order
        fitted = fit_bgnbd(x[order], t_x[order] / 7, tenure[order] / 7)
        expected = expected_purchases(fitted, 90 / 7, x, t_x / 7, tenure / 7)
        np.testing.assert_allclose(rows[EXPECTED], expected, rtol=1e-9)
        no_purchase = probability_no_purchase(fitted, 90 / 7, x, t_x / 7, tenure / 7)
        np.testing.assert_allclose(rows[P_NO_PURCHASE], no_purchase, rtol=1e-9)
        assert (rows.loc[rows["purchase_days"] == 1, P_ALIVE] == 1.0).all()
        assert rows[P_ALIVE].between(0, 1).all()


def test_bgnbd_features_are_listed_in_the_schema_only_when_enabled():
    assert snapshot_columns(PARAMS, True)[-3:] == [EXPECTED, P_ALIVE, P_NO_PURCHASE]
    assert EXPECTED not in snapshot_columns(FeaturesParams(), True)


def test_too_few_repeat_buyers_leave_the_features_null_not_an_error():
    rows = [
        ("a", pd.Timestamp("2024-01-01").date(), 5.0),
        ("a", pd.Timestamp("2024-02-01").date(), 5.0),
    ]
    frame = snapshot_at(transactions_frame(rows), pd.Timestamp("2024-03-01").date(), params=PARAMS)
    assert frame[[EXPECTED, P_ALIVE, P_NO_PURCHASE]].isna().all().all()
    assert frame[EXPECTED].dtype == "float64"


def test_fit_sample_is_a_stable_hash_sample_of_the_requested_size():
    ids = pd.Series([f"c{i:05d}" for i in range(1000)], dtype="string")
    chosen = fit_sample(ids, limit=100)
    assert chosen.sum() == 100
    shuffled = ids.sample(frac=1.0, random_state=3)
    assert set(shuffled[fit_sample(shuffled, limit=100)]) == set(ids[chosen])
    assert fit_sample(ids, limit=5000).all()


def test_row_order_within_a_cutoff_does_not_change_the_features(transactions, cutoffs):
    frame = snapshot_at(transactions, cutoffs, params=PARAMS).reset_index()
    plain = frame.drop(columns=[EXPECTED, P_ALIVE, P_NO_PURCHASE])
    again = add_bgnbd_features(plain.sample(frac=1.0, random_state=1), 90).sort_index()
    pd.testing.assert_frame_equal(again, frame)


def test_p_alive_falls_as_the_silence_grows_and_is_one_without_repeats():
    params = BGNBDParams(0.24, 4.41, 0.79, 2.43, 0.0, 1, True)
    x = np.array([0.0, 3.0, 3.0, 3.0])
    t_x = np.array([0.0, 30.0, 30.0, 30.0])
    T = np.array([40.0, 31.0, 40.0, 60.0])
    alive = probability_alive(params, x, t_x, T)
    assert alive[0] == 1.0
    assert 1.0 > alive[1] > alive[2] > alive[3] > 0.0
    x_summary = summarize_histories(
        pd.DataFrame({"purchase_days": [1, 4], "tenure_days": [70, 70], "recency_days": [70, 7]})
    )
    np.testing.assert_allclose(x_summary[1], [0.0, 9.0])
