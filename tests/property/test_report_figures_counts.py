"""Retention counts follow their definition on random transactions: end = start + new - lost."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support.report_data import report_for, report_settings

D = date


def naive_counts(rows, settings, periods):
    """Count CS, CN, won back, lost and CE straight from the definition, one date at a time."""
    window = settings[1].active_within_days
    purchases = [(c, d) for c, d, a in rows if a > 0 and d <= periods["period_end"].max()]

    def active(day):
        return {c for c, d in purchases if 0 <= (day - d).days < window}

    counts = []
    for start, end in zip(periods["period_start"], periods["period_end"], strict=True):
        before = start - timedelta(days=1)
        at_start, at_end = active(before), active(end)
        joined = at_end - at_start
        won_back = {c for c in joined if any(p <= before for q, p in purchases if q == c)}
        counts.append(
            (len(at_start), len(joined), len(won_back), len(at_start - at_end), len(at_end))
        )
    return counts


transactions_strategy = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c", "d", "e"]),
        st.dates(min_value=D(2024, 1, 1), max_value=D(2024, 9, 30)),
        st.sampled_from([-5.0, 0.0, 12.5, 40.0]),
    ),
    min_size=1,
    max_size=30,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=transactions_strategy,
    window=st.sampled_from([31, 45, 92, 365]),
    period=st.sampled_from(["week", "month"]),
)
def test_counts_follow_the_definition_and_customers_at_end_are_start_plus_new_minus_lost(
    rows, window, period
):
    # at least one purchase, data from 1 January to as_of (a zero amount is not a purchase)
    rows = [*rows, ("z", D(2024, 1, 1), 1.0), ("z", D(2024, 10, 6), 0.0)]
    settings_ = report_settings(active_within_days=window, period=period, as_of=D(2024, 10, 6))
    periods = report_for(rows, settings_).periods
    assert (
        periods["customers_end"]
        == periods["customers_start"] + periods["customers_new"] - periods["customers_lost"]
    ).all()
    assert (
        periods["customers_start"].iloc[1:].to_numpy()
        == periods["customers_end"].iloc[:-1].to_numpy()
    ).all()
    got = list(
        periods[
            [
                "customers_start",
                "customers_new",
                "customers_won_back",
                "customers_lost",
                "customers_end",
            ]
        ].itertuples(index=False, name=None)
    )
    assert got == naive_counts(rows, settings_, periods)
    assert (periods["revenue_new"] + periods["revenue_returning"]).round(2).tolist() == periods[
        "revenue"
    ].tolist()
