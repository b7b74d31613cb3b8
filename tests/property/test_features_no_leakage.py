"""No leakage, labels from an independent computation, row order and determinism (hypothesis)."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from churn.config import ChurnParams, EngineParams, FeaturesParams
from churn.features import build_snapshots
from support.features_tables import day, nps_frame, snapshot_at, transactions_frame

CHURN = ChurnParams()
PARAMS = FeaturesParams()
ENGINE = EngineParams(threads=1, memory_limit="500MB")
HORIZON = CHURN.horizon_days

amounts = st.sampled_from([-30.0, -5.5, 0.0, 0.01, 4.99, 12.0, 80.25, 300.0])
row = st.tuples(st.sampled_from(["a", "b", "c", "007"]), st.integers(-500, 200), amounts)


def as_rows(items):
    return [(customer, day(offset), amount) for customer, offset, amount in items]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    history=st.lists(row, min_size=1, max_size=25),
    later=st.lists(
        st.tuples(
            st.sampled_from(["a", "b", "c", "007"]),
            st.one_of(st.integers(1, 7), st.integers(1, 400)),  # right after t, or any time
            amounts,
        ),
        min_size=1,
        max_size=10,
    ),
    cutoff_offset=st.integers(-200, 0),
    joined=st.booleans(),
)
def test_features_ignore_transactions_after_cutoff(history, later, cutoff_offset, joined):
    cutoff = day(cutoff_offset)
    # joined: several cutoffs in one query (the training path) instead of the as-of scan
    cutoffs = [cutoff - timedelta(days=45), cutoff] if joined else cutoff
    before = [r for r in as_rows(history) if r[1] <= cutoff]
    after = [(c, cutoff + timedelta(days=o), a) for c, o, a in later]
    nps = nps_frame([("a", cutoff - timedelta(days=3), 4), ("a", cutoff + timedelta(days=1), 10)])
    base = snapshot_at(transactions_frame(before), cutoffs, nps=nps)
    more = snapshot_at(transactions_frame(before + after), cutoffs, nps=nps)
    pd.testing.assert_frame_equal(base, more)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(row, min_size=1, max_size=30),
    cutoff_offsets=st.sets(st.integers(-300, 0), min_size=1, max_size=3),
)
def test_labels_at_a_cutoff_depend_only_on_data_up_to_cutoff_plus_horizon(rows, cutoff_offsets):
    cutoffs = sorted(day(o) for o in cutoff_offsets)
    full = as_rows(rows)
    everything = snapshot_at(transactions_frame(full), cutoffs, labelled=True)
    for cutoff in cutoffs:
        kept = [r for r in full if r[1] <= cutoff + timedelta(days=HORIZON)]
        trimmed = snapshot_at(transactions_frame(kept), cutoff, labelled=True)
        expected = everything[everything.index.get_level_values("cutoff") == cutoff]
        if expected.empty:
            assert trimmed.empty
        else:
            pd.testing.assert_frame_equal(trimmed, expected)


@pytest.fixture(scope="module")
def generated(generated_tables):
    transactions, customers, nps = generated_tables(customers=600, seed=11, days=1095)
    return transactions.to_pandas(), customers, nps


@pytest.fixture(scope="module")
def snapshots(generated):
    return build_snapshots(*generated, CHURN, PARAMS, ENGINE)


def test_labels_match_an_independent_computation(generated, snapshots):
    transactions = generated[0]
    purchases = transactions[transactions["amount"] > 0]
    dates = {
        customer: np.array(sorted(group["date"]), dtype="datetime64[D]")
        for customer, group in purchases.groupby("customer_id")
    }
    expected = []
    for item in snapshots.cutoffs:
        t = np.datetime64(item.cutoff, "D")
        for customer, bought in dates.items():
            if not ((bought <= t) & (bought > t - CHURN.active_within_days)).any():
                continue  # not eligible at t
            future = (bought > t) & (bought <= t + HORIZON)
            expected.append((customer, item.cutoff, 0 if future.any() else 1))
    expected_frame = pd.DataFrame(expected, columns=["customer_id", "cutoff", "churned"])
    actual = snapshots.train[["customer_id", "cutoff", "churned"]].astype({"churned": "int64"})
    expected_frame = expected_frame.astype({"customer_id": "string"})
    merged = actual.merge(expected_frame, on=["customer_id", "cutoff"], how="outer", indicator=True)
    assert (merged["_merge"] == "both").all(), "eligible rows differ from the independent rule"
    assert (merged["churned_x"] == merged["churned_y"]).all()
    assert 0.2 < actual["churned"].mean() < 0.8


def test_core_features_match_pandas_on_generated_data(generated, snapshots):
    transactions = generated[0]
    t = snapshots.as_of
    purchases = transactions[(transactions["amount"] > 0) & (transactions["date"] <= t)]
    grouped = purchases.groupby("customer_id")
    last, first = grouped["date"].max(), grouped["date"].min()
    score = snapshots.score.set_index("customer_id")
    customers = score.index
    assert (score["recency_days"] == [(t - last[c]).days for c in customers]).all()
    assert (score["tenure_days"] == [(t - first[c]).days for c in customers]).all()
    assert (score["purchases"] == grouped.size()[customers].to_numpy()).all()
    assert (score["purchase_days"] == grouped["date"].nunique()[customers].to_numpy()).all()
    np.testing.assert_allclose(score["spend_total"], grouped["amount"].sum()[customers], rtol=1e-9)
    recent = purchases[purchases["date"] > t - timedelta(days=90)].groupby("customer_id")["amount"]
    expected_90 = recent.sum().reindex(customers, fill_value=0.0)
    np.testing.assert_allclose(score["spend_90d"], expected_90, rtol=1e-9, atol=1e-9)


def test_snapshot_schema_follows_the_contract(snapshots):
    train, score = snapshots.train, snapshots.score
    assert list(train.columns[:4]) == ["customer_id", "cutoff", "role", "churned"]
    assert list(score.columns) == [c for c in train.columns if c != "churned"]
    assert train["churned"].dtype == "int8"
    assert train["customer_id"].dtype == "string" and train["channel"].dtype == "string"
    assert set(score["role"]) == {"score"}
    assert set(train["role"]) == {"fit", "calibration", "test", "gap"}
    table = pa.Table.from_pandas(train, preserve_index=False)
    assert table.schema.field("cutoff").type == pa.date32()
    assert not train.duplicated(["customer_id", "cutoff"]).any()


def test_input_row_order_does_not_change_the_output(generated, snapshots):
    transactions, customers, nps = generated
    shuffled = [frame.sample(frac=1.0, random_state=5) for frame in (transactions, customers, nps)]
    again = build_snapshots(*shuffled, CHURN, PARAMS, ENGINE)
    pd.testing.assert_frame_equal(again.train, snapshots.train)
    pd.testing.assert_frame_equal(again.score, snapshots.score)


def test_snapshots_are_deterministic_with_parallel_threads(generated, snapshots):
    transactions = pa.Table.from_pandas(generated[0], preserve_index=False)
    # many small batches so DuckDB's threads really split the scan and the aggregation
    chunked = pa.Table.from_batches(transactions.to_batches(max_chunksize=2048))
    again = build_snapshots(
        chunked, *generated[1:], CHURN, PARAMS, ENGINE.model_copy(update={"threads": 2})
    )
    pd.testing.assert_frame_equal(again.train, snapshots.train)
    pd.testing.assert_frame_equal(again.score, snapshots.score)


# offsets around every frame edge of the default windows (30/90/180/365 days, trend 90/180)
edge_offset = st.sampled_from([0, -1, -29, -30, -31, -89, -90, -91, -179, -180, -181, -364,
                               -365, -366, -400, -700])  # fmt: skip


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(
        st.tuples(st.sampled_from(["a", "b", "007"]), edge_offset, st.integers(-60, 0), amounts),
        min_size=1,
        max_size=40,
    ),
    cutoff_offsets=st.sets(st.sampled_from([0, -1, -30, -45, -90, -200, -365]), min_size=2),
    rhythm=st.booleans(),
)
def test_all_cutoffs_in_one_pass_equal_a_filtered_scan_at_each_cutoff(rows, cutoff_offsets, rhythm):
    # the training path (segments and window frames over each customer's timeline) must
    # aggregate exactly what the as-of path's filtered scan does at the same cutoff
    cutoffs = sorted(day(o) for o in cutoff_offsets)
    transactions = transactions_frame(
        [(customer, day(edge + shift), amount) for customer, edge, shift, amount in rows]
    )
    nps = nps_frame([("a", day(-40), 3), ("007", day(-2), 9), ("007", day(-100), 6)])
    params = FeaturesParams(rhythm=rhythm)
    together = snapshot_at(transactions, cutoffs, nps=nps, params=params)
    for cutoff in cutoffs:
        alone = snapshot_at(transactions, cutoff, nps=nps, params=params)
        expected = together[together.index.get_level_values("cutoff") == cutoff]
        if alone.empty:
            assert expected.empty
        else:
            pd.testing.assert_frame_equal(expected, alone, check_exact=True)
