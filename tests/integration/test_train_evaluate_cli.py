"""`churn train` and `churn evaluate` run end to end on a small snapshot file and record everything."""

from __future__ import annotations

import json

import pandas as pd
import yaml
from typer.testing import CliRunner

from churn.cli import app
from support.snapshot_helper import build_snapshots


def test_train_then_evaluate_write_model_metrics_plots_and_one_mlflow_run(
    tmp_path, monkeypatch, project_root, generated_tables
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
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    runner = CliRunner()

    trained = runner.invoke(app, ["train"])
    assert trained.exit_code == 0, trained.output
    metadata = json.loads((tmp_path / "models" / "challenger" / "metadata.json").read_text())
    assert metadata["model_version"] == "1" and metadata["run_id"]
    assert metadata["role"] == "production"
    evaluation = json.loads((tmp_path / "models" / "evaluation" / "metadata.json").read_text())
    assert evaluation["role"] == "evaluation" and evaluation["run_id"] == metadata["run_id"]
    assert evaluation["calibration_cutoff"] < metadata["calibration_cutoff"]

    # the production model is not an out-of-time model for the test cutoff: evaluate refuses it
    refused = runner.invoke(app, ["evaluate", "--model", "models/challenger"])
    assert refused.exit_code != 0
    assert "models/evaluation" in str(refused.exception)

    evaluated = runner.invoke(app, ["evaluate", "--production", "models/challenger"])
    assert evaluated.exit_code == 0, evaluated.output
    metrics = json.loads((tmp_path / "reports" / "metrics.json").read_text())
    assert metrics["production"]["roc_auc"] > metrics["baselines"]["recency"]["roc_auc"]
    assert metrics["production"]["calibration_cutoff"] == metrics["test_cutoff"]
    assert set(metrics["baselines"]) == {"recency", "frequency", "rfm_logistic", "bgnbd"}
    assert metrics["model"]["roc_auc"] > metrics["baselines"]["recency"]["roc_auc"]
    assert 0 <= metrics["model"]["ece"] <= 1
    segments = json.loads((tmp_path / "reports" / "segments.json").read_text())
    assert set(segments["channel"]) == {"web", "app", "store", "marketplace"}
    roc = pd.read_csv(tmp_path / "reports" / "plots" / "roc.csv")
    assert list(roc.columns) == ["fpr", "model", "recency", "frequency", "rfm_logistic", "bgnbd"]
    assert roc["model"].is_monotonic_increasing

    import mlflow

    run = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}").get_run(metadata["run_id"])
    assert "test.model.pr_auc" in run.data.metrics
    assert not (tmp_path / "mlruns").exists()


def test_missing_snapshots_is_a_clear_error(tmp_path, monkeypatch, project_root):
    (tmp_path / "params.yaml").write_text((project_root / "params.yaml").read_text())
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["train", "--no-tracking"])
    assert result.exit_code != 0
    assert "dvc repro features" in str(result.exception)
