"""The drift stage on Spark counts the scored rows per reference bin on the executors and gives
the report the pandas path gives, byte for byte: on generated data with moved features, unseen
levels, values outside the training range and customers scoring skipped; with an all-missing
numeric and text feature; for a single customer; and refuses an empty scored population alike."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from churn.columns import CHURN_PROBABILITY, CUSTOMER_ID, ROLE
from churn.config import DriftParams, EngineParams, StageParams
from churn.errors import ChurnError
from support.score_data import make_snapshot, train_model

pytestmark = [pytest.mark.slow, pytest.mark.spark]


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A champion and its training snapshots (some rows of the reference role)."""
    folder = tmp_path_factory.mktemp("drift")
    model = train_model(customers=1500, trees=20)
    model.save(folder / "champion")
    training = make_snapshot(2000, seed=21, labelled=True)
    training[ROLE] = np.where(np.arange(len(training)) % 3 == 0, "test", "fit")
    training.to_parquet(folder / "train.parquet", index=False)
    return folder, model


def _moved(customers: int, seed: int) -> pd.DataFrame:
    """An as-of snapshot that moved: longer recency, a new channel, tenure past the training
    maximum for some, more missing NPS answers."""
    snapshot = make_snapshot(customers, seed=seed, labelled=False)
    rng = np.random.default_rng(seed)
    snapshot["recency_days"] = snapshot["recency_days"] + rng.integers(0, 60, customers)
    snapshot.loc[snapshot.index % 7 == 0, "channel"] = "kiosk"  # a level training never saw
    snapshot.loc[snapshot.index % 11 == 0, "tenure_days"] = 5000
    snapshot.loc[snapshot.index % 5 == 0, "nps_last"] = np.nan
    return snapshot


def _write(folder, snapshot: pd.DataFrame, model, scored: np.ndarray) -> None:
    snapshot.to_parquet(folder / "score.parquet", index=False)
    rows = snapshot[scored]
    pd.DataFrame(
        {
            CUSTOMER_ID: rows[CUSTOMER_ID].astype("string"),
            CHURN_PROBABILITY: model.predict_proba(rows),
        }
    ).to_parquet(folder / "scores.parquet", index=False)


def _run(project, folder, params: DriftParams, engine: EngineParams) -> str:
    """Run the drift stage on `engine` over the folder's files; return the report's text."""
    from churn.drift.stage import run

    home, _ = project
    report = folder / f"drift-{engine.kind}.json"
    run(
        StageParams({"drift": params, "engine": engine}),
        home / "champion",
        home / "train.parquet",
        folder / "score.parquet",
        folder / "scores.parquet",
        report,
    )
    return report.read_text(encoding="utf-8")


def _engines(folder) -> list[EngineParams]:
    from support.spark_parity import spark_engine

    return [EngineParams(), spark_engine(folder / "spark-local")]


def _reports(spark, project, folder, params: DriftParams) -> dict[str, str]:
    """Run the drift stage on both engines over the same files; return each report's text."""
    return {engine.kind: _run(project, folder, params, engine) for engine in _engines(folder)}


def test_spark_drift_report_equals_the_pandas_one(spark, project, tmp_path):
    _, model = project
    snapshot = _moved(2500, seed=31)
    scored = np.arange(len(snapshot)) % 13 != 0  # scoring skipped some snapshot customers
    _write(tmp_path, snapshot, model, scored)
    params = DriftParams(blocking_features=("recency_days",), fail=0.2)
    texts = _reports(spark, project, tmp_path, params)
    assert texts["spark"] == texts["duckdb"]
    report = json.loads(texts["spark"])
    # the case holds what it claims: moved features, a level never seen, out-of-range tenure
    assert report["current_rows"] == int(scored.sum())
    assert report["features"]["recency_days"]["psi"] > 0.1
    assert report["features"]["channel"]["largest_shift"].startswith("bin (other/unseen)")
    assert report["outside_training_range"]["tenure_days"]["share_above_max"] > 0.05
    assert report["features"]["nps_last"]["missing_share_current"] > 0.15


def test_spark_drift_counts_add_up_across_partitions(spark, project, tmp_path):
    """measure_drift_on_spark over several partitions (each counted on its own, added on the
    driver) equals measure_drift on the whole frame."""
    from churn.drift import (
        measure_drift,
        read_role,
        reference_from_training,
        training_ranges_in_file,
    )
    from churn.spark.drift import measure_drift_on_spark

    home, model = project
    params = DriftParams()
    reference, _ = reference_from_training(
        read_role(home / "train.parquet", params.reference_role),
        model.spec.numeric,
        model.spec.categorical,
        model.predict_proba,
        params,
    )
    ranges = training_ranges_in_file(home / "train.parquet", model.spec.numeric)
    snapshot = _moved(3000, seed=41)
    _write(tmp_path, snapshot, model, np.ones(len(snapshot), dtype=bool))
    rows = pd.read_parquet(tmp_path / "score.parquet")
    scores = pd.read_parquet(tmp_path / "scores.parquet")
    want = measure_drift(reference, rows, scores[CHURN_PROBABILITY], params, ranges)
    got = measure_drift_on_spark(
        reference,
        spark.read.parquet(str(tmp_path / "score.parquet")).repartition(4),
        spark.read.parquet(str(tmp_path / "scores.parquet")).repartition(3),
        params,
        ranges,
    )
    assert got == want
    assert len(want["outside_training_range"]) >= 1


def test_spark_drift_with_an_all_missing_feature(spark, project, tmp_path):
    _, model = project
    snapshot = make_snapshot(600, seed=51, labelled=False)
    snapshot["nps_last"] = np.nan  # a numeric feature nobody answered
    snapshot["region"] = pd.Series([None] * len(snapshot), dtype="string")  # a text one
    _write(tmp_path, snapshot, model, np.ones(len(snapshot), dtype=bool))
    texts = _reports(spark, project, tmp_path, DriftParams())
    assert texts["spark"] == texts["duckdb"]
    report = json.loads(texts["spark"])
    assert report["features"]["nps_last"]["missing_share_current"] == 1.0
    assert report["features"]["region"]["missing_share_current"] == 1.0


def test_spark_drift_of_a_single_customer(spark, project, tmp_path):
    _, model = project
    snapshot = make_snapshot(1, seed=61, labelled=False)
    _write(tmp_path, snapshot, model, np.ones(1, dtype=bool))
    texts = _reports(spark, project, tmp_path, DriftParams())
    assert texts["spark"] == texts["duckdb"]
    assert json.loads(texts["spark"])["current_rows"] == 1


def test_spark_drift_refuses_an_empty_scored_population_alike(spark, project, tmp_path):
    _, model = project
    snapshot = make_snapshot(50, seed=71, labelled=False)
    _write(tmp_path, snapshot, model, np.zeros(len(snapshot), dtype=bool))
    messages = []
    for engine in _engines(tmp_path):
        with pytest.raises(ChurnError, match="no rows to measure drift on") as error:
            _run(project, tmp_path, DriftParams(), engine)
        messages.append(str(error.value))
    assert messages[0] == messages[1]
