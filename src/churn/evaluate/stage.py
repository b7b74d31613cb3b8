"""The `evaluate` stage's wiring: read the snapshots and models, measure (churn.evaluate), write
the metrics, segments and plot tables, and log them to the model's MLflow run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from churn.evaluate import evaluate_model
from churn.files import read_input_parquet, write_csv, write_json
from churn.logs import get_logger
from churn.model import MODEL_FILE, ChurnModel
from churn.training_rows import exclude_campaign_contacts, read_training_snapshots

log = get_logger("evaluate")


def run(
    settings: Any,  # churn.config.StageParams: churn, evaluate, registry, train
    snapshots: Path,
    model_dir: Path,
    metrics: Path,
    segments: Path,
    plots: Path,
    production_dir: Path | None,
    campaigns: Path | None,
    tracking: bool,
) -> None:
    """Measure the model in `model_dir` (and the production model's ranking) and the baselines
    on the test cutoff; write the metrics, segments and plot tables; with `tracking`, log them to
    the MLflow run that trained the model."""
    from churn import tracking as mlflow_tracking

    model = ChurnModel.load(model_dir)
    production = None if production_dir is None else ChurnModel.load(production_dir)
    if production is not None and production.metadata.get("role") != "production":
        production = None  # train.production_refit off: the challenger is the evaluation model
    # like train: rows whose label a campaign may have changed measure the campaign, not the model
    contacted = (
        read_input_parquet(campaigns, "campaign contacts") if campaigns is not None else None
    )
    frame, excluded = exclude_campaign_contacts(
        read_training_snapshots(snapshots, settings.train)[0],
        contacted,
        settings.churn.horizon_days,
    )
    log.info(
        "campaigns: %d evaluation rows left out (treated while their label was being observed)",
        excluded["rows_excluded"],
    )
    result = evaluate_model(
        frame,
        model,
        settings.evaluate,
        settings.churn.horizon_days,
        str(snapshots),
        production,
        str(model_dir),
    )
    result.metrics["campaigns"] = excluded
    write_json(result.metrics, metrics)
    write_json(result.segments, segments)
    for name, table in result.curves.items():
        write_csv(table, plots / f"{name}.csv")
    scores = result.metrics["model"]
    log.info(
        "test cutoff %s: ROC AUC %.4f, PR AUC %.4f, ECE %.4f (recency ROC AUC %.4f)",
        result.metrics["test_cutoff"],
        scores.get("roc_auc", float("nan")),
        scores.get("pr_auc", float("nan")),
        scores.get("ece", float("nan")),
        result.metrics["baselines"]["recency"].get("roc_auc", float("nan")),
    )
    if not tracking:
        return
    uri = mlflow_tracking.tracking_uri(Path.cwd())
    sha = model.metadata.get("files_sha256", {}).get(MODEL_FILE, "")
    run_id = mlflow_tracking.find_run(
        uri, settings.registry.training_experiment, mlflow_tracking.EVALUATION_SHA_TAG, sha
    )
    if run_id is None:
        log.warning("%s: no MLflow training run holds this model; metrics not logged", model_dir)
        return
    from churn.evaluate.plots import evaluation_figures

    mlflow_tracking.log_evaluation(
        uri,
        run_id,
        {**result.metrics, "segments": result.segments},
        evaluation_figures(result.curves),
        result.curves,
    )
