"""The label-window rules of churn.cutoffs (hypothesis): one overlap rule and one "window ended"
rule, the same for one cutoff and for a column of them, and equal to the inline copies they
replaced in train, the ledger, the backtest, uplift and the marketing page."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from churn.cutoffs import (
    cutoff_windows_overlap,
    label_end,
    label_windows_overlap,
    labelled_by,
    windows_overlap,
)

DAYS = st.dates(min_value=date(2020, 1, 1), max_value=date(2026, 12, 31))
HORIZONS = st.integers(1, 400)


@settings(max_examples=300, deadline=None)
@given(cutoff=DAYS, horizon=HORIZONS, newest=DAYS)
def test_the_window_has_ended_exactly_when_cutoff_plus_horizon_is_on_or_before_the_day(
    cutoff, horizon, newest
):
    # the inline forms replaced: date + timedelta <= newest (ledger, backtest), and the
    # Timestamp form of uplift's risk rows; the day the window ends still counts as ended
    expected = cutoff + timedelta(days=horizon) <= newest
    assert label_end(cutoff, horizon) == cutoff + timedelta(days=horizon)
    assert isinstance(label_end(cutoff, horizon), date)
    assert labelled_by(cutoff, horizon, newest) is expected
    assert labelled_by(pd.Timestamp(cutoff), horizon, newest) is expected
    assert labelled_by(cutoff.isoformat(), horizon, pd.Timestamp(newest)) is expected
    column = pd.Series([cutoff, cutoff - timedelta(days=1), cutoff + timedelta(days=1)])
    ends = pd.to_datetime(column) + pd.Timedelta(days=horizon)
    assert labelled_by(column, horizon, newest).tolist() == (ends <= pd.Timestamp(newest)).tolist()
    assert labelled_by(column, horizon, newest).tolist()[0] is expected


def test_the_window_ends_on_its_last_day_not_after_it():
    assert labelled_by(date(2024, 1, 1), 90, date(2024, 3, 31))  # 1 Jan + 90 days = 31 Mar
    assert not labelled_by(date(2024, 1, 1), 90, date(2024, 3, 30))
    assert label_end("2024-01-01", 90) == date(2024, 3, 31)


@settings(max_examples=300, deadline=None)
@given(
    cutoffs=st.lists(DAYS, min_size=1, max_size=8),
    horizon=HORIZONS,
    starts=st.lists(DAYS, min_size=1, max_size=8),
    lengths=st.lists(HORIZONS, min_size=8, max_size=8),
)
def test_row_by_row_overlap_equals_the_inline_rule_train_used(cutoffs, horizon, starts, lengths):
    n = min(len(cutoffs), len(starts))
    cutoff = pd.Series(pd.to_datetime(cutoffs[:n]))
    start = pd.Series(pd.to_datetime(starts[:n]))
    length = pd.Series(lengths[:n], dtype="int64")
    got = cutoff_windows_overlap(cutoff, horizon, start, length)
    # training_rows.campaign_contacted_rows before: list_date < cutoff + h & list_date + list_h > cutoff
    list_h = pd.to_timedelta(length, unit="D")
    inline = (start < cutoff + pd.Timedelta(days=horizon)) & (start + list_h > cutoff)
    assert got.tolist() == inline.tolist()
    for i in range(n):
        if lengths[i] == horizon:  # the same horizon on both sides: the cutoff-range guard agrees
            assert bool(got.iloc[i]) is windows_overlap(
                cutoff.iloc[i], cutoff.iloc[i], start.iloc[i], start.iloc[i], horizon
            )


@settings(max_examples=300, deadline=None)
@given(a=DAYS, b=DAYS, c=DAYS, d=DAYS, horizon=HORIZONS)
def test_the_cutoff_range_guard_is_the_inline_rule_it_always_was(a, b, c, d, horizon):
    oldest_a, newest_a = sorted((a, b))
    oldest_b, newest_b = sorted((c, d))
    window = timedelta(days=horizon)
    inline = oldest_a < newest_b + window and oldest_b < newest_a + window
    assert windows_overlap(oldest_a, newest_a, oldest_b, newest_b, horizon) is inline
    assert windows_overlap(oldest_a, newest_a, oldest_b, newest_b, horizon) == windows_overlap(
        oldest_b, newest_b, oldest_a, newest_a, horizon
    )


def test_windows_that_only_touch_do_not_overlap():
    # (0, 10] and (10, 20] share no day; (0, 10] and (9, 19] share day 10
    assert not label_windows_overlap(0, 10, 10, 20)
    assert label_windows_overlap(0, 10, 9, 19)
    starts, ends = np.array([0, 0]), np.array([10, 10])
    assert label_windows_overlap(starts, ends, np.array([10, 9]), np.array([20, 19])).tolist() == [
        False,
        True,
    ]
