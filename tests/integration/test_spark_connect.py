"""The Spark engine over Spark Connect (a Connect server: a local Spark with the Connect plugin
in a child process, on a free port, reached by its sc:// URL): the same feature tables as
DuckDB, the ingest stage's outputs (row rules on Spark) equal to the DuckDB ingest's, and the scores table equal to the
pandas score stage's, with the risk x value rule and with the uplift policy. One Connect session
for the module; the tests are few and small (Connect is slow here)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from churn.columns import AT_RISK, CUSTOMER_ID, UPLIFT
from churn.config import (
    ChurnParams,
    EngineParams,
    FeaturesParams,
    IngestParams,
    ScoreParams,
    TargetParams,
)
from churn.features import build_snapshots as build_on_duckdb
from churn.ingest import IngestOutputs, run_ingest
from support.features_tables import day
from support.score_data import make_snapshot, train_model
from support.spark_ingest_data import NOW, side_tables, typed_folder
from support.spark_parity import (
    assert_same_snapshots,
    connect_session,
    edge_tables,
    frame_differences,
    spark_all_scores,
    spark_engine,
    spark_published_list,
)

pytestmark = [pytest.mark.slow, pytest.mark.spark]


@pytest.fixture(scope="module")
def connect(tmp_path_factory):
    with connect_session(tmp_path_factory.mktemp("spark-connect")) as session:
        yield session


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


def test_connect_ingest_stage_writes_the_duckdb_ingests_outputs(connect, tmp_path):
    from churn.spark.ingest import spark_cleaner

    # zoned timestamps read in Berlin (a DST night), ids, re-sent rows across files, every reason
    params = IngestParams(
        source=str(typed_folder(tmp_path / "export", zoned=True)),
        columns={
            "customer_id": "customer",
            "timestamp": "ordered_at",
            "amount": "amount",
            "transaction_id": "order_id",
        },
        passthrough=("store",),
        timezone="Europe/Berlin",
        reject_after=datetime(2025, 6, 30, 23, 59, 59),
        **side_tables(tmp_path),
    )
    engine = spark_engine(tmp_path / "unused", remote="sc://unused:15002")  # not opened
    reports = {}
    for name, cleaner in (
        ("duckdb", None),
        ("connect", spark_cleaner(params, engine, tmp_path / "w-connect", spark=connect)),
    ):
        out, work = tmp_path / name, tmp_path / f"w-{name}"
        work.mkdir(exist_ok=True)
        reports[name] = run_ingest(
            params, EngineParams(), IngestOutputs.in_folder(out), out, {}, NOW, {}, work, cleaner
        )
    assert reports["connect"] == reports["duckdb"]
    report = reports["duckdb"][0]
    assert (
        report["duplicates_removed"] == 2
        and "reused_transaction_id" in report["quarantined_by_reason"]
    )
    for name in ("transactions", "quarantine", "customers", "nps"):
        want_file, got_file = (tmp_path / e / f"{name}.parquet" for e in ("duckdb", "connect"))
        assert pq.read_schema(got_file) == pq.read_schema(want_file), name
        want, got = pd.read_parquet(want_file), pd.read_parquet(got_file)
        assert len(want) > 0
        assert frame_differences(got, want) == [], name
    # the stage left the caller's session open and its settings as they were
    assert connect.conf.get("spark.sql.parquet.outputTimestampType") != "TIMESTAMP_MICROS"
    assert connect.range(1).count() == 1


def _uplift_table(ids: pd.Series) -> pd.DataFrame:
    """Estimates for most customers: positive, zero, negative and missing; some not covered."""
    rng = np.random.default_rng(5)
    kept = ids.astype(str).to_numpy()[rng.random(len(ids)) > 0.15]
    uplift = rng.normal(0.02, 0.06, len(kept))
    uplift[::23], uplift[::29] = 0.0, np.nan
    return pd.DataFrame(
        {"customer_id": kept, "uplift": uplift, "covered": rng.random(len(kept)) > 0.3}
    )


def test_connect_scores_equal_the_pandas_score_stage_by_risk_and_by_uplift(connect, tmp_path):
    from churn.score import build_scores
    from churn.score.targeting import UpliftTargeting
    from churn.spark.score import score_on_spark

    model = train_model(customers=800, trees=15)
    path = tmp_path / "score.parquet"
    make_snapshot(1200, seed=11, labelled=False).to_parquet(path, index=False)
    snapshot = pd.read_parquet(path)
    suppressed = snapshot[CUSTOMER_ID].astype(str).iloc[::37].tolist()
    table_path = tmp_path / "uplift.parquet"
    _uplift_table(snapshot[CUSTOMER_ID]).to_parquet(table_path, index=False)
    # a capacity cap counted across sorted tasks; the uplift run also explores
    params = ScoreParams(
        target=TargetParams(max_customers=120), control_share=0.2, contact_cost=2.0
    )
    frame = connect.read.parquet(str(path)).repartition(2)
    for policy in (None, "uplift"):
        expected_policy = on_spark = None
        if policy:
            why = "the gate switched (test)"
            expected_policy = UpliftTargeting(pd.read_parquet(table_path), 0.25, 17, why)
            on_spark = UpliftTargeting(connect.read.parquet(str(table_path)), 0.25, 17, why)
        expected = build_scores(snapshot, model, params, suppressed, uplift=expected_policy)
        result = score_on_spark(frame, model, params, suppressed, uplift=on_spark)
        scores = spark_all_scores(result)
        flagged = expected[AT_RISK].to_numpy()
        assert result.customers == len(expected) == len(scores) == 1200
        # the cap binds the chosen list; the exploration's random contacts come on top of it
        explored = result.targeting.get("explored", 0)
        assert result.flagged == int(flagged.sum()) == 120 + explored, policy
        assert result.targeting == expected.attrs["targeting"]
        if policy:
            assert result.targeting["explored"] > 0
            assert UPLIFT in scores.columns
        assert (
            frame_differences(
                spark_published_list(result), expected[flagged].reset_index(drop=True)
            )
            == []
        )
        assert frame_differences(scores, expected.reset_index(drop=True)) == []
