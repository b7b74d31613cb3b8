"""train.sample_customers: whole customers by stable id hash, deterministic, blind to labels."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from churn.config import parse_params
from churn.errors import ChurnError
from churn.training_rows import sample_customers

CUTOFFS = [date(2024, 1, 1) + timedelta(days=30 * k) for k in range(6)]


def _rows(customers: int = 3000, seed: int = 3) -> pd.DataFrame:
    """Customers present at a random subset of six cutoffs, with random labels and a feature."""
    rng = np.random.default_rng(seed)
    present = rng.random((customers, len(CUTOFFS))) < 0.6
    ids, cutoffs = np.nonzero(present)
    return pd.DataFrame(
        {
            "customer_id": pd.array([f"{i:06d}" for i in ids], dtype="string"),
            "cutoff": [CUTOFFS[k] for k in cutoffs],
            "role": "fit",
            "churned": rng.integers(0, 2, len(ids)).astype("int8"),
            "recency_days": rng.integers(0, 365, len(ids)).astype("int32"),
        }
    )


def _pairs(frame: pd.DataFrame) -> set[tuple[str, date]]:
    return set(zip(frame["customer_id"], frame["cutoff"], strict=True))


def test_sampling_keeps_every_cutoff_of_a_chosen_customer_and_none_of_the_others():
    rows = _rows()
    kept = sample_customers(rows, 1000)
    assert kept["customer_id"].nunique() == 1000
    chosen = set(kept["customer_id"])
    assert _pairs(kept) == _pairs(rows[rows["customer_id"].isin(chosen)])


def test_sampling_is_deterministic_and_ignores_row_order():
    rows = _rows()
    first = sample_customers(rows, 800)
    shuffled = rows.sample(frac=1.0, random_state=9).reset_index(drop=True)
    assert _pairs(sample_customers(shuffled, 800)) == _pairs(first)
    assert _pairs(sample_customers(rows, 800)) == _pairs(first)


def test_sampling_never_reads_labels_or_features():
    rows = _rows()
    flipped = rows.assign(churned=(1 - rows["churned"]).astype("int8"), recency_days=0)
    keys_only = rows[["customer_id", "cutoff"]]
    expected = _pairs(sample_customers(rows, 700))
    assert _pairs(sample_customers(flipped, 700)) == expected
    assert _pairs(sample_customers(keys_only, 700)) == expected


def test_each_cutoff_keeps_about_the_same_share_of_its_customers():
    rows = _rows(customers=6000)
    kept = sample_customers(rows, 2000)
    share = kept.groupby("cutoff").size() / rows.groupby("cutoff").size()
    assert share.index.tolist() == CUTOFFS
    assert share.between(1 / 3 - 0.04, 1 / 3 + 0.04).all(), share.to_dict()


def test_a_smaller_sample_is_part_of_a_larger_one():
    rows = _rows()
    small, large = sample_customers(rows, 300), sample_customers(rows, 900)
    assert set(small["customer_id"]) < set(large["customer_id"])


def test_the_same_customers_are_chosen_whatever_else_is_in_the_table():
    """A customer's rank depends on its id only: removing other customers never reorders them."""
    rows = _rows()
    ids = pd.Series(sorted(rows["customer_id"].unique()))
    kept = set(sample_customers(rows, 1000)["customer_id"])
    fewer = rows[rows["customer_id"].isin(ids.iloc[::2])]  # half of the customers gone
    still_there = kept & set(fewer["customer_id"])
    assert set(sample_customers(fewer, len(still_there))["customer_id"]) == still_there


@pytest.mark.parametrize("limit", [None, 3000, 10_000])
def test_no_sampling_when_unset_or_when_there_are_not_more_customers(limit):
    rows = _rows()
    assert sample_customers(rows, limit) is rows


def test_sample_customers_must_be_positive():
    assert parse_params({"train": {"sample_customers": 250000}}).train.sample_customers == 250000
    assert parse_params({}).train.sample_customers == 100_000
    assert parse_params({"train": {"sample_customers": None}}).train.sample_customers is None
    with pytest.raises(ChurnError, match="sample_customers"):
        parse_params({"train": {"sample_customers": 0}})
