"""The features stage writes its snapshots in batches: the same tables and report as in memory."""

from __future__ import annotations

import json

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from churn.config import ChurnParams, EngineParams, FeaturesParams
from churn.errors import ChurnError
from churn.features import bgnbd_columns, build
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
        monkeypatch.setattr(bgnbd_columns, "MAX_FIT_CUSTOMERS", fit_limit)
    tables = [generated / f"{name}.parquet" for name in ("transactions", "customers", "nps")]
    features = FeaturesParams(bgnbd=bgnbd)
    args = (*tables, ChurnParams(), features, EngineParams(threads=1))
    snapshots = build.build_snapshots(*args)
    if bgnbd:
        assert snapshots.train[bgnbd_columns.P_ALIVE].notna().all()
        assert snapshots.train[bgnbd_columns.P_ALIVE].nunique() > 100
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


def test_a_cutoff_whose_features_fail_in_a_later_batch_is_null_in_every_batch(
    generated, tmp_path, monkeypatch
):
    # the stage computes BG/NBD features once, while writing: a cutoff whose features fail on a
    # row of its second batch must still be null in its first batch, already written (the
    # stage writes again), as in memory, where the cutoff fails as a whole
    monkeypatch.setattr(build, "STREAM_ROWS", 997)
    tables = [generated / f"{name}.parquet" for name in ("transactions", "customers", "nps")]
    args = (*tables, ChurnParams(), FeaturesParams(bgnbd=True), EngineParams(threads=1))
    train = build.build_snapshots(*args).train
    x, t_x, T = bgnbd_columns.summarize_histories(train)
    positions = np.arange(len(train))
    counts = train.groupby("cutoff").size()
    target = None
    for cutoff, rows in train.groupby("cutoff").indices.items():
        first_batch, last_batch = rows[0] // 997, rows[-1] // 997
        if first_batch == last_batch or (counts == len(rows)).sum() > 1:
            continue  # one batch only, or a fit we could not tell apart by its customer count
        later = rows[positions[rows] // 997 == last_batch]
        triples = list(zip(x[rows], t_x[rows], T[rows], strict=True))
        unique = [i for i in later if triples.count((x[i], t_x[i], T[i])) == 1]
        if unique:
            target, poison = cutoff, (x[unique[-1]], t_x[unique[-1]], T[unique[-1]])
            break
    assert target is not None, "no cutoff spans two batches with a distinct summary"
    failing_fit = int(counts[target])
    real = bgnbd_columns.cutoff_features

    def failing(params, horizon_days, xs, t_xs, Ts):
        hit = (xs == poison[0]) & (t_xs == poison[1]) & (Ts == poison[2])
        if params.customers == failing_fit and hit.any():
            raise ChurnError("BG/NBD: expected purchases are not finite (test)")
        return real(params, horizon_days, xs, t_xs, Ts)

    monkeypatch.setattr(bgnbd_columns, "cutoff_features", failing)
    passes = []
    write_pass = build._write_pass
    monkeypatch.setattr(build, "_write_pass", lambda *a: passes.append(1) or write_pass(*a))
    snapshots = build.build_snapshots(*args)
    write_parquet(snapshots.train, tmp_path / "a_train.parquet")
    expected = build.summarize_snapshots(snapshots, ChurnParams(), FeaturesParams(bgnbd=True))
    report = build.write_snapshots(*args, tmp_path / "train.parquet", tmp_path / "score.parquet")
    assert passes == [1, 1, 1]  # the training snapshot twice (one restart), the as-of once
    assert json.dumps(report, sort_keys=True) == json.dumps(expected, sort_keys=True)
    streamed = pq.read_table(tmp_path / "train.parquet")
    assert streamed.equals(pq.read_table(tmp_path / "a_train.parquet"))
    frame = streamed.to_pandas()
    at_target = frame["cutoff"] == target
    assert frame.loc[at_target, bgnbd_columns.P_ALIVE].isna().all()
    assert frame.loc[~at_target, bgnbd_columns.P_ALIVE].notna().all()


@pytest.mark.parametrize(("batch_rows", "chunk_rows"), [(1 << 20, 2000), (997, 500)])
def test_snapshots_computed_per_range_of_customers_equal_the_whole_query(
    generated, tmp_path, monkeypatch, batch_rows, chunk_rows
):
    # ~25k transactions in ranges of about 2,000 or 500 transactions: the ranges' results,
    # read side by side, give the rows, bytes (one batch) and report of the whole query
    monkeypatch.setattr(build, "STREAM_ROWS", batch_rows)
    # a dictionary page limit this small makes the writer fall back from dictionary encoding
    # within these few rows, where the chunks a column arrives in change the written pages (at
    # scale, a multi-chunk string column wrote other bytes than the whole query's one chunk)
    writer = build.pq.ParquetWriter
    monkeypatch.setattr(
        build.pq,
        "ParquetWriter",
        lambda *a, **k: writer(*a, **{**k, "dictionary_pagesize_limit": 512}),
    )
    tables = [generated / f"{name}.parquet" for name in ("transactions", "customers", "nps")]
    args = (*tables, ChurnParams(), FeaturesParams(bgnbd=True), EngineParams(threads=1))
    ranges = []
    customer_ranges = build._customer_ranges
    monkeypatch.setattr(
        build, "_customer_ranges", lambda *a: ranges.append(customer_ranges(*a)) or ranges[-1]
    )
    whole = build.write_snapshots(*args, tmp_path / "a_train.parquet", tmp_path / "a_score.parquet",
                                  chunk_rows=10**9)  # fmt: skip
    ranged = build.write_snapshots(*args, tmp_path / "train.parquet", tmp_path / "score.parquet",
                                   chunk_rows=chunk_rows)  # fmt: skip
    assert ranges[0] == [(None, None)]
    assert len(ranges[1]) > 10
    assert json.dumps(ranged, sort_keys=True) == json.dumps(whole, sort_keys=True)
    for name in ("train", "score"):
        assert (tmp_path / f"{name}.parquet").read_bytes() == (
            tmp_path / f"a_{name}.parquet"
        ).read_bytes()


def test_customer_ranges_hold_each_customer_once_and_start_every_chunk_rows(tmp_path):
    con = duckdb.connect()
    ids = ["a", "a", "a", "b", "c'quote", "c'quote", "d", "e", "e", "e", "e", "f"]
    con.register("transactions", pa.table({"customer_id": ids}))
    # a range starts at the customer whose transactions start at or past the next multiple of 3
    ranges = build._customer_ranges(con, 3)
    assert ranges == [(None, "b"), ("b", "d"), ("d", "f"), ("f", None)]
    assert build._customer_ranges(con, 12) == [(None, None)]
    con.execute("CREATE VIEW customers AS SELECT DISTINCT customer_id FROM transactions")
    con.execute("CREATE VIEW nps AS SELECT DISTINCT customer_id FROM transactions")
    seen = []
    for bounds in ranges:
        build._restrict_customers(con, bounds)
        rows = [row[0] for row in con.sql("SELECT customer_id FROM transactions").fetchall()]
        seen += rows
        assert con.sql("SELECT COUNT(*) FROM nps").fetchall()[0][0] == len(set(rows))
    assert sorted(seen) == sorted(ids)
