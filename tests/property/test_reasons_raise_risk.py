"""No shown reason lowers the customer's risk, for any contributions and values (hypothesis)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from churn.config import ReasonsParams
from churn.score.phrasing import build_references
from churn.score.reasons import explain_reasons

FEATURES = [
    "recency_days",
    "gap_mean_days",
    "purchases_90d",
    "purchases_365d",
    "purchases",
    "spend_90d",
    "spend_total",
    "aov",
    "tenure_days",
    "nps_last",
    "refunds",
    "channel",
]
CONTRIBUTION = st.floats(-1.5, 1.5, allow_nan=False).map(lambda x: round(x, 2))


@st.composite
def customers(draw):
    rows = draw(st.integers(1, 12))
    frame = pd.DataFrame(
        {
            "recency_days": draw(st.lists(st.integers(0, 500), min_size=rows, max_size=rows)),
            "gap_mean_days": draw(
                st.lists(st.one_of(st.none(), st.floats(1, 200)), min_size=rows, max_size=rows)
            ),
            "purchase_days": draw(st.lists(st.integers(1, 30), min_size=rows, max_size=rows)),
            "purchases_90d": draw(st.lists(st.integers(0, 10), min_size=rows, max_size=rows)),
            "purchases_365d": draw(st.lists(st.integers(0, 30), min_size=rows, max_size=rows)),
            "purchases": draw(st.lists(st.integers(1, 60), min_size=rows, max_size=rows)),
            "spend_90d": draw(st.lists(st.floats(0, 500), min_size=rows, max_size=rows)),
            "spend_total": draw(st.lists(st.floats(1, 5000), min_size=rows, max_size=rows)),
            "aov": draw(st.lists(st.floats(1, 300), min_size=rows, max_size=rows)),
            "tenure_days": draw(st.lists(st.integers(1, 1500), min_size=rows, max_size=rows)),
            "nps_last": draw(
                st.lists(st.one_of(st.none(), st.integers(0, 10)), min_size=rows, max_size=rows)
            ),
            "refunds": draw(st.lists(st.integers(0, 4), min_size=rows, max_size=rows)),
            "channel": draw(st.lists(st.sampled_from("abc"), min_size=rows, max_size=rows)),
        }
    ).astype({"gap_mean_days": "float64", "nps_last": "float64"})
    contributions = np.array(
        draw(
            st.lists(
                st.lists(CONTRIBUTION, min_size=len(FEATURES), max_size=len(FEATURES)),
                min_size=rows,
                max_size=rows,
            )
        )
    )
    risk = np.array(draw(st.lists(st.floats(0, 1), min_size=rows, max_size=rows)))
    return frame, contributions, risk


@settings(max_examples=300, deadline=None)
@given(customers(), st.sampled_from([0.0, 0.1, 0.3]), st.integers(1, 4))
def test_every_shown_reason_and_its_stated_feature_raise_the_risk(data, threshold, top_k):
    frame, contributions, risk = data
    params = ReasonsParams(descriptive_min_contribution=threshold, top_k=top_k)
    references = build_references(frame, params.peer_tenure_bands_days, risk)
    reasons = explain_reasons(contributions, FEATURES, frame, params, references)
    column = {name: i for i, name in enumerate(FEATURES)}
    plain = set(params.descriptive_families)
    for row, shown in enumerate(reasons):
        assert len(shown) <= top_k
        assert len({reason.text for reason in shown}) == len(shown)
        for reason in shown:
            assert reason.contribution > 0
            assert contributions[row, column[reason.feature]] > 0
            if reason.family in plain:
                assert reason.contribution >= threshold
        assert [r.contribution for r in shown] == sorted(
            (r.contribution for r in shown), reverse=True
        )
