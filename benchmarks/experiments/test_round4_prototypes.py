"""A check of the round-4 experiment (benchmarks/results/model_round4.md): its candidate features
and count target (model_quality.py, objectives.py: prototypes, not in churn) give correct values on
hand-built rows and read nothing from another cutoff or from after the label window.

    pytest benchmarks/experiments/test_round4_prototypes.py

It lives beside the experiment, not in tests/ (tests and benchmarks never import each other), and
`make test` does not run it (pytest's testpaths is tests/)."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from benchmarks.experiments.model_quality import add_cutoff_ranks, add_eb_rhythm, fit_nbd
from benchmarks.experiments.objectives import purchase_day_counts


def _rows(cutoff: date, purchase_days, tenure, recency) -> pd.DataFrame:  # noqa: ANN001
    return pd.DataFrame(
        {
            "customer_id": pd.array([f"c{i}" for i in range(len(tenure))], dtype="string"),
            "cutoff": cutoff,
            "purchase_days": purchase_days,
            "tenure_days": np.asarray(tenure, dtype="float64"),
            "recency_days": np.asarray(recency, dtype="float64"),
            "purchases": purchase_days,
            "spend_total": np.arange(len(tenure), dtype="float64"),
        }
    )


def test_nbd_fit_recovers_the_gamma_prior_of_simulated_rates():
    rng = np.random.default_rng(3)
    rates = rng.gamma(2.0, 1 / 100.0, 20_000)  # r = 2, alpha = 100 days
    exposure = rng.uniform(100, 400, 20_000)
    r, alpha = fit_nbd(rng.poisson(rates * exposure).astype("float64"), exposure)
    assert r == pytest.approx(2.0, rel=0.1)
    assert alpha == pytest.approx(100.0, rel=0.1)


def test_eb_rhythm_values_follow_the_formulas_with_the_cutoffs_own_prior(monkeypatch):
    import benchmarks.experiments.model_quality as mq

    priors = iter([(2.0, 50.0), (1.0, 10.0)])  # one fit per cutoff, in cutoff order
    monkeypatch.setattr(mq, "fit_nbd", lambda x, T: next(priors))
    frame = pd.concat(
        [
            _rows(date(2024, 1, 1), [1, 3], [100, 100], [100, 10]),
            _rows(date(2024, 2, 1), [3], [100], [60]),
        ],
        ignore_index=True,
    )
    out = add_eb_rhythm(frame, 90)
    # one-time buyer: x = 0, t_x = 0; repeat buyer: x = 2, t_x = tenure - recency
    assert out["eb_rate"].tolist() == pytest.approx([2 / 150, 4 / 150, 3 / 110])
    assert out["eb_gap_survival"].tolist() == pytest.approx(
        [(50 / 150) ** 2, (140 / 150) ** 4, (50 / 110) ** 3]
    )
    assert out["eb_silence_purchases"].tolist() == pytest.approx(
        [100 * 2 / 50, 10 * 4 / 140, 60 * 3 / 50]
    )


def test_eb_rhythm_and_cutoff_ranks_at_a_cutoff_ignore_every_other_cutoff():
    first = _rows(date(2024, 1, 1), [1, 3, 5, 2], [100, 200, 300, 150], [100, 20, 5, 40])
    other = _rows(date(2024, 6, 1), [9, 9, 1, 4], [400, 380, 10, 260], [1, 300, 10, 2])
    for add in (add_eb_rhythm, add_cutoff_ranks):
        alone = add(first, 90)
        together = add(pd.concat([first, other], ignore_index=True), 90).iloc[: len(first)]
        pd.testing.assert_frame_equal(alone, together)


def test_cutoff_ranks_are_percentiles_within_the_cutoff():
    frame = pd.concat(
        [
            _rows(date(2024, 1, 1), [1, 3, 3], [10, 30, 20], [10, 5, 15]),
            _rows(date(2024, 2, 1), [2], [500], [400]),
        ],
        ignore_index=True,
    )
    out = add_cutoff_ranks(frame, 90)
    assert out["recency_days_pct"].tolist() == pytest.approx([2 / 3, 1 / 3, 1.0, 1.0])
    assert out["tenure_days_pct"].tolist() == pytest.approx([1 / 3, 1.0, 2 / 3, 1.0])
    assert out["purchase_days_pct"].tolist() == pytest.approx([1 / 3, 2.5 / 3, 2.5 / 3, 1.0])


def test_purchase_day_counts_read_only_the_label_window():
    known = pd.DataFrame(
        {
            "customer_id": pd.array(["a", "a", "a", "a", "a", "b", "b"], dtype="string"),
            "date": [
                date(2024, 1, 1),  # on the cutoff: before the window
                date(2024, 1, 2),
                date(2024, 1, 2),  # the same day twice: one purchase day
                date(2024, 1, 31),  # the window's last day
                date(2024, 2, 1),  # after the window
                date(2024, 1, 15),
                date(2024, 1, 16),
            ],
            "amount": [10.0, 5.0, 7.0, 3.0, 9.0, -4.0, 0.0],  # b: a refund and a zero row
        }
    )
    rows = pd.DataFrame(
        {
            "customer_id": pd.array(["a", "b", "a", "c"], dtype="string"),
            "cutoff": [date(2024, 1, 1), date(2024, 1, 1), date(2024, 1, 31), date(2024, 1, 1)],
        }
    )
    counts = purchase_day_counts(known, rows, 30)
    assert counts.tolist() == [2.0, 0.0, 1.0, 0.0]
