"""The features stage writes its snapshots in batches: the same tables and report as in memory."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from churn.config import ChurnParams, EngineParams, FeaturesParams
from churn.features import build
from churn.files import write_parquet


@pytest.fixture(scope="module")
def generated(generated_interim):
    return generated_interim(1500, 7, days=1095, chunk_customers=1000)


@pytest.mark.parametrize("batch_rows", [1 << 20, 997])
def test_streamed_snapshots_equal_the_in_memory_ones(generated, tmp_path, monkeypatch, batch_rows):
    # 997 rows: many batches, none aligned with DuckDB's row groups or a cutoff's rows
    monkeypatch.setattr(build, "STREAM_ROWS", batch_rows)
    tables = [generated / f"{name}.parquet" for name in ("transactions", "customers", "nps")]
    args = (*tables, ChurnParams(), FeaturesParams(), EngineParams(threads=1))
    snapshots = build.build_snapshots(*args)
    write_parquet(snapshots.train, tmp_path / "a_train.parquet")
    write_parquet(snapshots.score, tmp_path / "a_score.parquet")
    expected = build.summarize_snapshots(snapshots, ChurnParams(), FeaturesParams())
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
