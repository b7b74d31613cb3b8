"""The uplift stage's snapshot reader (one row group and column at a time, ids chosen by DuckDB)
returns exactly the frame of a plain filtered pq.read_table, and the rows risk_training_rows takes
from the whole table, for any snapshots, row groups, sample size and label end (hypothesis)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from churn.training_rows import sampled_ids
from churn.uplift.from_ledger import (
    SNAPSHOT_KEYS,
    read_labelled_snapshots,
    risk_training_rows,
)

HORIZON = 90
FIRST_CUTOFF = dt.date(2025, 1, 1)
FEATURES = ["recency_days", "frequency", "channel"]


def _plain_read(path, horizon_days, labels_end_by, campaign_features, max_customers):
    """The reader before it streamed: the ids of the labelled rows read into pandas, the sample
    chosen on them, then one filtered pq.read_table of the chosen rows."""
    names = pq.ParquetFile(path).schema_arrow.names
    columns = [n for n in names if n in SNAPSHOT_KEYS or n in set(campaign_features)]
    by_cutoff = [("cutoff", "<=", labels_end_by - dt.timedelta(days=horizon_days))]
    filters = [by_cutoff]
    if max_customers is not None:
        ids = pq.read_table(path, columns=["customer_id"], filters=by_cutoff)
        ids = pd.Series(ids.column(0).to_pandas(), dtype="string")
        chosen = None if ids.empty else sampled_ids(ids, max_customers)
        if chosen is not None:
            filters = [[*by_cutoff, ("customer_id", "in", chosen.tolist())]]
    return pq.read_table(path, columns=columns, filters=filters).to_pandas()


def _snapshots(seed: int, customers: int, cutoffs: int) -> pd.DataFrame:
    """Return training snapshots in no particular order: each customer has a row at some of the
    monthly cutoffs, with missing feature values and zero-padded ids."""
    rng = np.random.default_rng(seed)
    days = [FIRST_CUTOFF + dt.timedelta(days=30 * k) for k in range(cutoffs)]
    pairs = [(f"{c:05d}", day) for c in range(customers) for day in days if rng.random() < 0.7]
    order = rng.permutation(len(pairs))
    n = len(pairs)
    recency = rng.exponential(40.0, n)
    recency[rng.random(n) < 0.1] = np.nan
    channel = rng.choice(np.array(["web", "shop", None], dtype=object), n)
    return pd.DataFrame(
        {
            "customer_id": pd.array([pairs[i][0] for i in order], dtype="string"),
            "cutoff": [pairs[i][1] for i in order],
            "role": rng.choice(["fit", "gap", "calibration", "test"], n),
            "churned": rng.integers(0, 2, n).astype("int8"),
            "recency_days": recency,
            "frequency": rng.integers(0, 20, n).astype("int32"),
            "channel": pd.array(channel, dtype="string"),
            "unrelated": rng.random(n),  # not a campaign feature: never read
        }
    )


def _write(snapshots: pd.DataFrame, path, row_group_size: int) -> None:
    """Write the snapshots as the features stage does (cutoff a date column, even when empty)."""
    table = pa.Table.from_pandas(snapshots, preserve_index=False)
    cutoff = table.schema.get_field_index("cutoff")
    dates = pa.array(snapshots["cutoff"].tolist(), type=pa.date32())
    pq.write_table(table.set_column(cutoff, "cutoff", dates), path, row_group_size=row_group_size)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    seed=st.integers(0, 2**16),
    customers=st.integers(0, 40),
    cutoffs=st.integers(1, 8),
    row_group_size=st.sampled_from([1, 3, 17, 10_000]),
    sample=st.sampled_from([None, 1, 4, 15, 1_000]),
    end_offset=st.integers(0, 8 * 30 + 2 * HORIZON),
)
def test_streamed_reader_equals_the_plain_filtered_read(
    tmp_path, seed, customers, cutoffs, row_group_size, sample, end_offset
):
    snapshots = _snapshots(seed, customers, cutoffs)
    path = tmp_path / f"train_{seed}_{row_group_size}.parquet"
    _write(snapshots, path, row_group_size)
    end = FIRST_CUTOFF + dt.timedelta(days=end_offset)

    streamed = read_labelled_snapshots(path, HORIZON, end, FEATURES, sample)

    # same rows, same order, same columns and dtypes as the filtered read it replaces
    pd.testing.assert_frame_equal(streamed, _plain_read(path, HORIZON, end, FEATURES, sample))
    # and the risk model's rows are those risk_training_rows takes from the whole table
    whole = risk_training_rows(pd.read_parquet(path), None, HORIZON, end, sample)
    from_file = risk_training_rows(streamed, None, HORIZON, end, sample)
    assert list(from_file.columns) == ["customer_id", "cutoff", "role", "churned", *FEATURES]
    pd.testing.assert_frame_equal(from_file, whole[list(from_file.columns)])


@pytest.mark.parametrize("sample", [None, 3, 10**6], ids=["no-sample", "sampled", "all-fit"])
def test_streamed_reader_keeps_every_labelled_row_of_the_chosen_customers(tmp_path, sample):
    snapshots = _snapshots(seed=7, customers=12, cutoffs=6)
    path = tmp_path / "train.parquet"
    _write(snapshots, path, row_group_size=5)
    end = FIRST_CUTOFF + dt.timedelta(days=30 * 3 + HORIZON)  # the first four cutoffs labelled

    read = read_labelled_snapshots(path, HORIZON, end, FEATURES, sample)

    labelled = snapshots[snapshots["cutoff"] <= FIRST_CUTOFF + dt.timedelta(days=90)]
    assert read["cutoff"].max() == FIRST_CUTOFF + dt.timedelta(days=90)
    expected_customers = labelled["customer_id"].nunique() if sample != 3 else 3
    assert read["customer_id"].nunique() == expected_customers
    kept = labelled[labelled["customer_id"].isin(read["customer_id"])]
    # file order: the kept rows in the order they were written
    assert read["customer_id"].tolist() == kept["customer_id"].tolist()
    assert read["cutoff"].tolist() == kept["cutoff"].tolist()
    assert read["customer_id"].str.len().eq(5).all()  # ids stay strings: 00003 stays 00003


def test_a_path_with_glob_characters_reads_that_file_only(tmp_path):
    """DuckDB's read_parquet expands * ? [ ] { } in a path: the sample must still come from the
    snapshots file itself, not from a sibling the pattern also matches."""
    snapshots = _snapshots(seed=11, customers=15, cutoffs=4)
    path = tmp_path / "train[ab].parquet"
    _write(snapshots, path, row_group_size=7)
    sibling = snapshots[snapshots["customer_id"].isin(["00001", "00002", "00003"])]
    _write(sibling, tmp_path / "traina.parquet", row_group_size=7)  # matches train[ab].parquet
    end = FIRST_CUTOFF + dt.timedelta(days=30 * 3 + HORIZON)

    read = read_labelled_snapshots(path, HORIZON, end, FEATURES, 5)

    assert read["customer_id"].nunique() == 5
    pd.testing.assert_frame_equal(read, _plain_read(path, HORIZON, end, FEATURES, 5))


def test_dictionary_encoded_ids_are_sampled_like_plain_ones(tmp_path):
    """Snapshots written from a categorical customer_id (dictionary-encoded in Parquet)."""
    snapshots = _snapshots(seed=5, customers=20, cutoffs=4)
    snapshots["customer_id"] = snapshots["customer_id"].astype("category")
    path = tmp_path / "train.parquet"
    _write(snapshots, path, row_group_size=6)
    assert pa.types.is_dictionary(pq.ParquetFile(path).schema_arrow.field("customer_id").type)
    end = FIRST_CUTOFF + dt.timedelta(days=30 * 3 + HORIZON)

    read = read_labelled_snapshots(path, HORIZON, end, FEATURES, 4)

    assert read["customer_id"].nunique() == 4
    pd.testing.assert_frame_equal(read, _plain_read(path, HORIZON, end, FEATURES, 4))
