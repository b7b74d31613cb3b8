"""The Spark engine over Spark Connect (engine.spark.remote: local, the Connect server pyspark
ships, started in this machine's JVM): the same feature tables as DuckDB."""

from __future__ import annotations

from pathlib import Path

import pytest

from churn.config import ChurnParams, FeaturesParams
from churn.features import build_snapshots as build_on_duckdb
from support.features_tables import day
from support.spark_parity import (
    assert_same_snapshots,
    edge_tables,
    require_spark,
    spark_engine,
    stop_local_spark,
)

pytestmark = [pytest.mark.slow, pytest.mark.spark]


@pytest.fixture(scope="module")
def connect(tmp_path_factory):
    require_spark()
    pytest.importorskip("pyspark.sql.connect.session")
    from churn.spark.session import open_spark

    stop_local_spark()  # the worker's shared local session (conftest): one SparkContext at a time
    session = open_spark(spark_engine(tmp_path_factory.mktemp("spark-connect"), remote="local"))
    yield session
    session.stop()


def test_session_is_a_spark_connect_client_in_utc_with_ansi_on(connect):
    assert type(connect).__module__.startswith("pyspark.sql.connect")
    assert connect.conf.get("spark.sql.session.timeZone") == "UTC"
    assert connect.conf.get("spark.sql.ansi.enabled") == "true"


def test_connect_features_equal_duckdb_on_generated_data_and_edge_cases(connect, generated_interim):
    from churn.spark.features import build_snapshots as build_on_spark

    interim = generated_interim(customers=400, seed=5, days=1095)
    files = [interim / f"{name}.parquet" for name in ("transactions", "customers", "nps")]
    engine = spark_engine(Path("/tmp"))
    # BG/NBD on: the fit summaries, mapInPandas and the cached frames over Connect too
    churn, params = ChurnParams(), FeaturesParams(bgnbd=True)
    assert_same_snapshots(
        build_on_spark(connect, *files, churn, params),
        build_on_duckdb(*files, churn, params, engine),
    )
    tables = edge_tables()
    churn = ChurnParams(as_of=day(0))
    frames = [connect.createDataFrame(table) for table in tables]
    assert_same_snapshots(
        build_on_spark(connect, *frames, churn, params),
        build_on_duckdb(*tables, churn, params, engine),
    )
