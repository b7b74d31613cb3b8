"""The Spark engine (engine.kind: spark) gives DuckDB's feature tables: Spark local with ANSI on,
in a JVM far from UTC, on generated data and on hand-built edge cases; Delta tables read at
their current version; the features command on Spark writes the same files as on DuckDB."""

from __future__ import annotations

from pathlib import Path

import pytest

from churn.config import ChurnParams, FeaturesParams
from churn.errors import ChurnError
from churn.features import build_snapshots as build_on_duckdb
from support.features_tables import day, transactions_frame
from support.spark_parity import (
    assert_same_snapshots,
    edge_tables,
    spark_engine,
)

pytestmark = [pytest.mark.slow, pytest.mark.spark]


def test_session_runs_in_utc_with_ansi_on(spark):
    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"
    assert spark.conf.get("spark.sql.ansi.enabled") == "true"
    with pytest.raises(Exception, match="(?i)divide|zero"):
        spark.sql("SELECT 1 / 0").collect()  # ANSI: an unsafe division aborts, hence NULLIF


def test_spark_features_equal_duckdb_on_generated_data(spark, generated_interim):
    from churn.spark.features import build_snapshots as build_on_spark

    interim = generated_interim(customers=400, seed=5, days=1095)
    files = [interim / f"{name}.parquet" for name in ("transactions", "customers", "nps")]
    churn, params = ChurnParams(), FeaturesParams()
    on_duckdb = build_on_duckdb(*files, churn, params, engine=spark_engine(Path("/tmp")))
    on_spark = build_on_spark(spark, *files, churn, params)
    assert len(on_duckdb.cutoffs) == 12
    assert_same_snapshots(on_spark, on_duckdb)


def test_spark_features_equal_duckdb_on_edge_cases(spark):
    from churn.spark.features import build_snapshots as build_on_spark

    transactions, customers, nps = edge_tables()
    churn = ChurnParams(as_of=day(0))
    params = FeaturesParams(season=True, bgnbd=True)
    on_duckdb = build_on_duckdb(
        transactions, customers, nps, churn, params, spark_engine(Path("/tmp"))
    )
    frames = [spark.createDataFrame(table.to_pandas()) for table in (transactions, customers, nps)]
    on_spark = build_on_spark(spark, *frames, churn, params)
    assert_same_snapshots(on_spark, on_duckdb)
    assert set(on_spark.score["customer_id"]) >= {"00001", "A", "a", "é", "zero_spend"}


def test_spark_bgnbd_features_equal_duckdb(spark, generated_interim):
    from churn.spark.features import build_snapshots as build_on_spark

    interim = generated_interim(customers=400, seed=5, days=1095)
    files = [interim / f"{name}.parquet" for name in ("transactions", "customers", "nps")]
    churn, params = ChurnParams(), FeaturesParams(bgnbd=True)
    on_duckdb = build_on_duckdb(*files, churn, params, engine=spark_engine(Path("/tmp")))
    on_spark = build_on_spark(spark, *files, churn, params)
    assert on_duckdb.train["bgnbd_p_no_purchase"].notna().any()
    assert_same_snapshots(on_spark, on_duckdb)


def test_spark_bgnbd_hash_sample_fit_equals_duckdb(spark, generated_interim, monkeypatch):
    from churn.features import bgnbd_columns
    from churn.spark.features import build_snapshots as build_on_spark

    # a cutoff with more customers than the limit fits on the hash sample: both engines must
    # choose the same customers (the pandas hash on the executors, the rank in Spark)
    monkeypatch.setattr(bgnbd_columns, "MAX_FIT_CUSTOMERS", 60)
    interim = generated_interim(customers=400, seed=5, days=1095)
    files = [interim / f"{name}.parquet" for name in ("transactions", "customers", "nps")]
    churn, params = ChurnParams(), FeaturesParams(bgnbd=True)
    on_duckdb = build_on_duckdb(*files, churn, params, engine=spark_engine(Path("/tmp")))
    assert on_duckdb.score.shape[0] > 60 and on_duckdb.train["bgnbd_p_alive"].notna().any()
    on_spark = build_on_spark(spark, *files, churn, params)
    assert_same_snapshots(on_spark, on_duckdb)
    monkeypatch.setattr(bgnbd_columns, "MAX_FIT_CUSTOMERS", 200_000)
    on_all = build_on_duckdb(*files, churn, params, engine=spark_engine(Path("/tmp")))
    # the sample changed the fit: the test exercised the sampled path, not the full one
    assert not on_all.score["bgnbd_p_alive"].equals(on_duckdb.score["bgnbd_p_alive"])


def test_spark_features_equal_duckdb_with_every_sql_option_changed(spark, generated_interim):
    """The golden file's second variant (rhythm on, season off, other windows, trend span and
    churn definition), with BG/NBD on: the same tables on both engines, not only at defaults."""
    from churn.spark.features import build_snapshots as build_on_spark
    from support.spark_golden import FEATURE_VARIANTS

    interim = generated_interim(customers=300, seed=11, days=1095)
    files = [interim / f"{name}.parquet" for name in ("transactions", "customers", "nps")]
    _, churn, params = FEATURE_VARIANTS[1]
    params = params.model_copy(update={"bgnbd": True})
    on_duckdb = build_on_duckdb(*files, churn, params, engine=spark_engine(Path("/tmp")))
    on_spark = build_on_spark(spark, *files, churn, params)
    assert "gap_max_days" in on_duckdb.train.columns and "season_sin" not in on_duckdb.train
    assert_same_snapshots(on_spark, on_duckdb)


def test_spark_reads_only_the_current_version_of_a_delta_table(spark, tmp_path):
    deltalake = pytest.importorskip("deltalake")
    from churn.spark.sources import read_source

    table = transactions_frame([(f"c{i:03d}", day(-i), float(i + 1)) for i in range(40)])
    folder = tmp_path / "transactions_delta"
    deltalake.write_deltalake(str(folder), table)
    deltalake.DeltaTable(str(folder)).delete("customer_id IN ('c001', 'c002', 'c003')")
    frame = read_source(spark, folder)
    ids = {row[0] for row in frame.select("customer_id").collect()}
    assert len(ids) == 37 and not ids & {"c001", "c002", "c003"}
    # the folder still holds the deleted rows' old file: read as plain Parquet they come back
    assert spark.read.parquet(str(folder)).count() > 37


def test_a_delta_table_with_deletion_vectors_is_refused_without_a_spark_delta_reader(
    spark, tmp_path
):
    """Deleted rows kept in deletion vectors would come back from the file list: such a table
    is refused with what to do, never read as its files."""
    deltalake = pytest.importorskip("deltalake")
    from churn.spark.sources import read_source

    table = transactions_frame([(f"c{i:03d}", day(-i), float(i + 1)) for i in range(10)])
    folder = tmp_path / "transactions_dv"
    deltalake.write_deltalake(
        str(folder), table, configuration={"delta.enableDeletionVectors": "true"}
    )
    assert "deletionVectors" in (deltalake.DeltaTable(str(folder)).protocol().reader_features or [])
    with pytest.raises(ChurnError, match=r"uses deletionVectors.*delta-spark.*PURGE"):
        read_source(spark, folder)


def test_spark_refuses_a_missing_source_and_an_unknown_catalog_table(spark, tmp_path):
    from churn.spark.sources import read_source

    with pytest.raises(ChurnError, match="not found"):
        read_source(spark, tmp_path / "nothing.parquet")
    with pytest.raises(ChurnError, match="Spark catalog"):
        read_source(spark, "sales.no_such_table")


def test_spark_reads_a_catalog_table_by_name(spark):
    from churn.spark.sources import read_source

    spark.createDataFrame(
        transactions_frame([("x", day(0), 1.0)]).to_pandas()
    ).createOrReplaceTempView("catalog_transactions")
    assert read_source(spark, "catalog_transactions").count() == 1
