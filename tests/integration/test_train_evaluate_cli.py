"""`churn train` and `churn evaluate` run end to end on a small snapshot file and record everything."""

from __future__ import annotations

import json

import pandas as pd
import yaml
from typer.testing import CliRunner

from churn.cli import app
from support.snapshot_helper import build_snapshots

# the paths dvc.yaml's train and evaluate stages pass (the commands have no path defaults)
SNAPSHOTS = "data/features/train.parquet"
TRAIN_PATHS = ("--snapshots", SNAPSHOTS, "--out", "models/challenger")
TRAIN_PATHS += ("--evaluation-out", "models/evaluation")


def evaluate_paths(model: str) -> tuple[str, ...]:
    return (
        *("--snapshots", SNAPSHOTS, "--model", model, "--metrics", "reports/metrics.json"),
        *("--segments", "reports/segments.json", "--plots", "reports/plots"),
    )


def test_train_then_evaluate_write_model_metrics_plots_and_one_mlflow_run(
    tmp_path, monkeypatch, project_root, generated_tables, mlflow_store
):
    tables = generated_tables(customers=1200, seed=9)
    snapshots = build_snapshots(tables, horizon=90, fit_cutoffs=2)
    (tmp_path / "data" / "features").mkdir(parents=True)
    snapshots.to_parquet(tmp_path / "data" / "features" / "train.parquet", index=False)
    params = yaml.safe_load((project_root / "params.yaml").read_text())
    params["train"]["lightgbm"].update(learning_rate=0.15, max_rounds=150)
    params["evaluate"]["bootstrap"] = 20
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_store)  # an empty, already-migrated store
    runner = CliRunner()

    trained = runner.invoke(app, ["train", *TRAIN_PATHS])
    assert trained.exit_code == 0, trained.output
    metadata = json.loads((tmp_path / "models" / "challenger" / "metadata.json").read_text())
    # model folders are written once: no run id or registry version inside them
    assert "run_id" not in metadata and "model_version" not in metadata
    assert metadata["role"] == "production"
    assert metadata["definition"]["horizon_days"] == 90 and metadata["definition"]["fingerprint"]
    evaluation = json.loads((tmp_path / "models" / "evaluation" / "metadata.json").read_text())
    assert evaluation["role"] == "evaluation" and "run_id" not in evaluation
    assert evaluation["calibration_cutoff"] < metadata["calibration_cutoff"]

    import mlflow

    from churn import tracking

    uri = mlflow_store
    client = mlflow.MlflowClient(uri)
    (version,) = client.search_model_versions("name = 'churn-classifier'")
    assert str(version.version) == "1"
    assert tracking.ModelRegistry(uri, "churn-classifier").alias_version("challenger") == "1"
    sha = metadata["files_sha256"]["model.txt"]
    eval_sha = evaluation["files_sha256"]["model.txt"]
    # the run is found by the evaluation model's sha (how `churn evaluate` finds it)
    run_id = tracking.find_run(uri, "churn", tracking.EVALUATION_SHA_TAG, eval_sha)
    assert run_id == version.run_id
    assert client.get_run(run_id).data.tags[tracking.SHA_TAG] == sha

    # the production model is not an out-of-time model for the test cutoff: evaluate refuses it
    refused = runner.invoke(app, ["evaluate", *evaluate_paths("models/challenger")])
    assert refused.exit_code != 0
    assert "models/evaluation" in str(refused.exception)

    evaluated = runner.invoke(
        app, ["evaluate", *evaluate_paths("models/evaluation"), "--production", "models/challenger"]
    )
    assert evaluated.exit_code == 0, evaluated.output
    metrics = json.loads((tmp_path / "reports" / "metrics.json").read_text())
    assert metrics["production"]["roc_auc"] > metrics["baselines"]["recency"]["roc_auc"]
    assert metrics["production"]["calibration_cutoff"] == metrics["test_cutoff"]
    assert set(metrics["baselines"]) == {
        "recency",
        "frequency",
        "rfm_logistic",
        "bgnbd",
        "bgnbd_no_purchase",
    }
    assert metrics["model"]["roc_auc"] > metrics["baselines"]["recency"]["roc_auc"]
    assert 0 <= metrics["model"]["ece"] <= 1
    segments = json.loads((tmp_path / "reports" / "segments.json").read_text())
    assert set(segments["channel"]) == {"web", "app", "store", "marketplace"}
    roc = pd.read_csv(tmp_path / "reports" / "plots" / "roc.csv")
    assert list(roc.columns) == [
        "fpr",
        "model",
        "recency",
        "frequency",
        "rfm_logistic",
        "bgnbd",
        "bgnbd_no_purchase",
    ]
    assert roc["model"].is_monotonic_increasing

    run = client.get_run(run_id)
    assert "test.model.pr_auc" in run.data.metrics
    assert not (tmp_path / "mlruns").exists()


def test_missing_snapshots_is_a_clear_error(tmp_path, monkeypatch, project_root):
    (tmp_path / "params.yaml").write_text((project_root / "params.yaml").read_text())
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["train", *TRAIN_PATHS, "--no-tracking"])
    assert result.exit_code != 0
    assert "train.parquet: not found (training snapshots); run `dvc repro`" in str(result.exception)


def test_evaluate_leaves_out_rows_a_campaign_treated_like_train(
    tmp_path, monkeypatch, project_root, generated_tables
):
    tables = generated_tables(customers=800, seed=11)
    snapshots = build_snapshots(tables, horizon=90, fit_cutoffs=2)
    (tmp_path / "data" / "features").mkdir(parents=True)
    snapshots.to_parquet(tmp_path / "data" / "features" / "train.parquet", index=False)
    params = yaml.safe_load((project_root / "params.yaml").read_text())
    params["train"]["lightgbm"].update(learning_rate=0.15, max_rounds=100)
    params["evaluate"]["bootstrap"] = 20
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    trained = runner.invoke(app, ["train", *TRAIN_PATHS, "--no-tracking"])
    assert trained.exit_code == 0, trained.output
    # 30 customers of the test cutoff were treated by a campaign listed on that day
    test_rows = snapshots[snapshots["role"] == "test"]
    treated = test_rows["customer_id"].astype("string").drop_duplicates().head(30)
    pd.DataFrame(
        {
            "customer_id": treated,
            "list_id": "sim",
            "list_date": pd.to_datetime(test_rows["cutoff"]).dt.date.iloc[0],
            "horizon_days": 90,
        }
    ).to_parquet(tmp_path / "contacted.parquet", index=False)
    written = {}
    for extra in ((), ("--campaigns", "contacted.parquet")):
        evaluated = runner.invoke(
            app, ["evaluate", *evaluate_paths("models/evaluation"), "--no-tracking", *extra]
        )
        assert evaluated.exit_code == 0, evaluated.output
        written[bool(extra)] = json.loads((tmp_path / "reports" / "metrics.json").read_text())
    assert written[False]["campaigns"]["rows_excluded"] == 0
    assert written[True]["campaigns"]["rows_excluded_by_role"]["test"] == 30
    assert written[True]["rows"] == written[False]["rows"] - 30
