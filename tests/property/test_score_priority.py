"""Priority ranking equals sorting by net benefit then customer id, for any list (hypothesis)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from support.score_data import rank_priority


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 40), st.sampled_from([-1.0, 0.0, 0.5, 2.0, 3.25])),
        min_size=1,
        max_size=30,
        unique_by=lambda pair: pair[0],
    )
)
def test_priority_matches_sorting_by_net_benefit_then_id(pairs):
    ids = pd.Series([f"c{i:03d}" for i, _ in pairs], dtype="string")
    net = np.array([value for _, value in pairs])
    expected = sorted(range(len(pairs)), key=lambda i: (-net[i], ids[i]))
    ranks = rank_priority(ids, net)
    assert [int(np.flatnonzero(ranks == r)[0]) for r in range(1, len(pairs) + 1)] == expected
