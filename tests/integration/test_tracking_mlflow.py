"""MLflow: every train run is recorded and registered as challenger; the pyfunc equals the pipeline."""

from __future__ import annotations

import json

import numpy as np
import pytest

from churn import tracking
from churn.config import EvaluateParams, LightGBMParams, TrainParams
from churn.evaluate import evaluate_model
from churn.evaluate.plots import evaluation_figures
from churn.train import fit_model
from support.snapshot_helper import build_snapshots

FAST = TrainParams(
    lightgbm=LightGBMParams(learning_rate=0.15, max_rounds=150, early_stopping_rounds=20)
)
MODEL_NAME = "churn-test-classifier"


@pytest.fixture(scope="module")
def logged(tmp_path_factory, generated_tables, _migrated_mlflow_db):
    import shutil

    root = tmp_path_factory.mktemp("mlflow")
    shutil.copyfile(_migrated_mlflow_db, root / "mlflow.db")  # an empty, already-migrated store
    tables = generated_tables(customers=1200, seed=5)
    snapshots = build_snapshots(tables, horizon=90, fit_cutoffs=2)
    result = fit_model(snapshots, FAST, horizon_days=90)
    model_dir = root / "challenger"
    result.model.save(model_dir)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    fit_rows = snapshots[snapshots["role"] == "fit"]
    record = tracking.log_training(
        uri,
        "churn-tests",
        MODEL_NAME,
        model_dir,
        {"train": FAST.model_dump()},
        result.diagnostics,
        {"git_commit": "abc123", "git_dirty": "false"},
        tracking.data_fingerprint(snapshots),
        tracking.synthetic_input_example(result.model, fit_rows),
    )
    return uri, record, result, snapshots, root


def test_tracking_uri_defaults_to_an_absolute_sqlite_file_and_env_overrides(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert tracking.tracking_uri(tmp_path) == f"sqlite:///{tmp_path.resolve()}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert tracking.tracking_uri(tmp_path) == "http://127.0.0.1:5000"


def test_run_has_params_metrics_fingerprint_and_commit(logged):
    import mlflow

    uri, record, _, _, _ = logged
    run = mlflow.MlflowClient(uri).get_run(record.run_id)
    assert run.data.params["train.lightgbm.learning_rate"] == "0.15"
    assert run.data.params["train.monotone.recency_days"] == "1"
    assert int(run.data.params["data.test.rows"]) > 0
    assert "rounds" in run.data.metrics
    assert run.data.tags["git_commit"] == "abc123"
    assert run.data.tags["model_version"] == record.model_version


def test_model_version_is_registered_with_the_challenger_alias_only(logged):
    uri, record, _, _, _ = logged
    assert (
        tracking.ModelRegistry(uri, MODEL_NAME).alias_version("challenger") == record.model_version
    )
    assert tracking.ModelRegistry(uri, MODEL_NAME).alias_version("champion") is None


def test_pyfunc_model_returns_exactly_the_pipelines_calibrated_probabilities(logged):
    uri, _, result, snapshots, _ = logged
    import mlflow

    mlflow.set_tracking_uri(uri)
    pyfunc = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}@challenger")
    rows = snapshots[snapshots["role"] == "test"].reset_index(drop=True)
    features = rows[result.model.spec.names].copy()
    features.loc[0, "channel"] = "carrier pigeon"  # unseen level
    features.loc[1, "gap_mean_days"] = np.nan
    served = np.asarray(pyfunc.predict(features))
    np.testing.assert_array_equal(served, result.model.predict_proba(features))


def test_no_customer_id_reaches_mlflow(logged):
    import mlflow

    uri, record, _, snapshots, root = logged
    run = mlflow.MlflowClient(uri).get_run(record.run_id)
    some_ids = set(snapshots["customer_id"].head(50))
    logged_text = json.dumps([run.data.params, run.data.tags])
    for path in (root / "mlartifacts").rglob("*"):
        if path.is_file() and path.suffix in (".json", ".txt", ".yaml", ".csv", ""):
            logged_text += path.read_text(errors="ignore")
    assert not [i for i in some_ids if f'"{i}"' in logged_text or f"'{i}'" in logged_text]


def test_evaluation_is_added_to_the_training_run(logged):
    import mlflow

    uri, record, result, snapshots, root = logged
    evaluation = evaluate_model(snapshots, result.model, EvaluateParams(bootstrap=10), 90)
    tracking.log_evaluation(
        uri,
        record.run_id,
        evaluation.metrics,
        evaluation_figures(evaluation.curves),
        evaluation.curves,
    )
    client = mlflow.MlflowClient(uri)
    run = client.get_run(record.run_id)
    assert run.data.metrics["test.model.roc_auc"] == pytest.approx(
        evaluation.metrics["model"]["roc_auc"]
    )
    assert "test.baselines.bgnbd.roc_auc" in run.data.metrics
    names = {a.path for a in client.list_artifacts(record.run_id, "evaluation")}
    assert {"evaluation/roc.png", "evaluation/calibration.png", "evaluation/metrics.json"} <= names


def test_a_second_training_moves_challenger_and_leaves_champion_alone(logged):
    import mlflow

    uri, record, result, snapshots, root = logged
    client = mlflow.MlflowClient(uri)
    client.set_registered_model_alias(MODEL_NAME, "champion", record.model_version)
    second = tracking.log_training(
        uri,
        "churn-tests",
        MODEL_NAME,
        root / "challenger",
        {"train": FAST.model_dump()},
        result.diagnostics,
        {"git_commit": "def456", "git_dirty": "true"},
        tracking.data_fingerprint(snapshots),
        tracking.synthetic_input_example(result.model, snapshots),
    )
    assert int(second.model_version) == int(record.model_version) + 1
    assert (
        tracking.ModelRegistry(uri, MODEL_NAME).alias_version("challenger") == second.model_version
    )
    assert tracking.ModelRegistry(uri, MODEL_NAME).alias_version("champion") == record.model_version


@pytest.mark.slow
@pytest.mark.spark
def test_spark_udf_scoring_gives_the_pipelines_probabilities(logged, spark):
    uri, _, result, snapshots, _ = logged
    rows = snapshots[snapshots["role"] == "test"].reset_index(drop=True).head(300)
    features = rows[result.model.spec.names].copy()
    # the worker's shared Spark local session (conftest); its Python workers run this interpreter
    # (the venv): open_spark points PYSPARK_PYTHON at it (unless set) before starting one
    # keep the snapshot's column types (int32 counts, doubles, strings) as a Parquet read would
    text = features.select_dtypes(include=["string", "object"]).columns
    as_spark = features.astype({name: object for name in text})
    as_spark[text] = as_spark[text].where(features[text].notna(), None)
    frame = spark.createDataFrame(as_spark)
    udf = tracking.spark_udf(spark, uri, f"models:/{MODEL_NAME}@challenger")
    scored = frame.withColumn("p", udf(*[frame[name] for name in features.columns]))
    spark_scores = np.array([row["p"] for row in scored.select("p").collect()])
    np.testing.assert_allclose(
        spark_scores, result.model.predict_proba(features), rtol=0, atol=1e-12
    )
