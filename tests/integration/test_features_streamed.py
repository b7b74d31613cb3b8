"""The features stage writes its snapshots in batches: the same tables and report as in memory."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from churn.config import ChurnParams, EngineParams, FeaturesParams
from churn.features import bgnbd as bgnbd_features
from churn.features import build
from churn.files import write_parquet


@pytest.fixture(scope="module")
def generated(generated_interim):
    return generated_interim(1500, 7, days=1095, chunk_customers=1000)


@pytest.mark.parametrize(
    ("batch_rows", "bgnbd", "fit_limit"),
    [(1 << 20, False, None), (997, False, None), (1 << 20, True, None), (997, True, 300)],
)
def test_streamed_snapshots_equal_the_in_memory_ones(
    generated, tmp_path, monkeypatch, batch_rows, bgnbd, fit_limit
):
    # 997 rows: many batches, none aligned with DuckDB's row groups or a cutoff's rows; with
    # BG/NBD and a fit sample of 300 customers per cutoff, the batched fit keeps trimming its
    # candidates and must still choose and fit exactly the in-memory sample
    monkeypatch.setattr(build, "STREAM_ROWS", batch_rows)
    if fit_limit is not None:
        monkeypatch.setattr(bgnbd_features, "MAX_FIT_CUSTOMERS", fit_limit)
    tables = [generated / f"{name}.parquet" for name in ("transactions", "customers", "nps")]
    features = FeaturesParams(bgnbd=bgnbd)
    args = (*tables, ChurnParams(), features, EngineParams(threads=1))
    snapshots = build.build_snapshots(*args)
    if bgnbd:
        assert snapshots.train[bgnbd_features.P_ALIVE].notna().all()
        assert snapshots.train[bgnbd_features.P_ALIVE].nunique() > 100
    write_parquet(snapshots.train, tmp_path / "a_train.parquet")
    write_parquet(snapshots.score, tmp_path / "a_score.parquet")
    expected = build.summarize_snapshots(snapshots, ChurnParams(), features)
    report = build.write_snapshots(*args, tmp_path / "train.parquet", tmp_path / "score.parquet")
    assert json.dumps(report, sort_keys=True) == json.dumps(expected, sort_keys=True)
    assert len(snapshots.train) > 5 * 997
    for name in ("train", "score"):
        streamed = pq.read_table(tmp_path / f"{name}.parquet")
        in_memory = pq.read_table(tmp_path / f"a_{name}.parquet")
        assert streamed.schema == in_memory.schema
        assert streamed.equals(in_memory)
        if batch_rows == 1 << 20:  # the same row groups as one write: the same bytes
            assert (tmp_path / f"{name}.parquet").read_bytes() == (
                tmp_path / f"a_{name}.parquet"
            ).read_bytes()
        else:
            groups = pq.ParquetFile(tmp_path / f"{name}.parquet").metadata.num_row_groups
            assert groups == -(-streamed.num_rows // 997)
