"""The command line: the only place that reads files, parses params and writes outputs."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from churn.config import load_params
from churn.errors import ChurnError, DataCheckFailed
from churn.logs import get_logger, setup_logging
from churn.retrain import DATA_CHECK_PREFIX

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="churn: point-in-time churn prediction pipeline (one command per DVC stage).",
)
log = get_logger("cli")

ParamsPath = Annotated[Path, typer.Option("--params", help="params.yaml to read.", dir_okay=False)]


@app.callback()
def _root(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
) -> None:
    setup_logging(verbose)


@app.command()
def generate(
    out: Annotated[Path, typer.Option(help="Folder for the raw files.")] = Path("data/raw"),
    params: ParamsPath = Path("params.yaml"),
    customers: Annotated[
        int | None, typer.Option(help="Override generate.customers (benchmarks).")
    ] = None,
    file_format: Annotated[
        str, typer.Option("--format", help="csv (gzip) or parquet for transactions.")
    ] = "csv",
) -> None:
    """Write the seeded synthetic default data (transactions, customers, NPS, ground truth)."""
    from churn.generate import simulate
    from churn.io import TableStream
    from churn.logs import track

    settings = load_params(params).generate
    if customers is not None:
        settings = settings.model_copy(update={"customers": customers})
    if file_format not in ("csv", "parquet"):
        raise ChurnError(f"--format {file_format!r}: use 'csv' or 'parquet'")
    out.mkdir(parents=True, exist_ok=True)
    txn_name = "transactions.csv.gz" if file_format == "csv" else "transactions.parquet"
    chunks = -(-settings.customers // settings.chunk_customers)
    with (
        TableStream(out / txn_name) as transactions,
        TableStream(out / "customers.csv") as customer_table,
        TableStream(out / "nps.csv") as nps,
        TableStream(out / "truth.parquet") as truth,
    ):
        for chunk in track(simulate(settings), "simulating customers", total=chunks):
            transactions.write(chunk.transactions)
            truth.write(chunk.truth)
            if settings.with_customers:
                customer_table.write(chunk.customers)
            if settings.with_nps:
                nps.write(chunk.nps)
    for name, enabled in (
        ("customers.csv", settings.with_customers),
        ("nps.csv", settings.with_nps),
    ):
        if not enabled:
            (out / name).unlink(missing_ok=True)
    log.info(
        "generated %d customers, %d transaction rows into %s",
        settings.customers,
        transactions.rows,
        out / txn_name,
    )


# --------------------------------------------------------------------------- train / evaluate
def _horizon_days(settings) -> int:  # noqa: ANN001 - churn.config.Params
    """Return features.horizon_days: train and evaluate must use the features stage's horizon."""
    return int(settings.features.horizon_days)


@app.command()
def train(
    snapshots: Annotated[Path, typer.Option(help="Training snapshots (features stage).")] = Path(
        "data/features/train.parquet"
    ),
    out: Annotated[
        Path, typer.Option(help="Folder for the model to promote and score (the challenger).")
    ] = Path("models/challenger"),
    evaluation_out: Annotated[
        Path, typer.Option(help="Folder for the model that never saw the test cutoff (evaluate).")
    ] = Path("models/evaluation"),
    params: ParamsPath = Path("params.yaml"),
    tracking: Annotated[
        bool, typer.Option(help="Log the run and register the model in MLflow.")
    ] = True,
) -> None:
    """Fit LightGBM + calibrator on fit/calibration cutoffs (plus the production refit); register
    the challenger in MLflow."""
    import pandas as pd

    from churn import tracking as mlflow_tracking
    from churn.columns import ROLE
    from churn.train import fit_model

    settings = load_params(params)
    if not snapshots.is_file():
        raise ChurnError(f"{snapshots}: not found; run `dvc repro features` first")
    frame = pd.read_parquet(snapshots)
    horizon = _horizon_days(settings)
    fingerprint = mlflow_tracking.data_fingerprint(frame, snapshots)
    result = fit_model(
        frame,
        settings.train,
        horizon,
        str(snapshots),
        metadata={"data": fingerprint},
        ece_bins=settings.promote.ece_bins,
    )
    model = result.production_model
    model.save(out)
    result.model.save(evaluation_out)
    log.info(
        "trained %d rounds on %d fit rows; calibrator %s; held-out calibration log loss %.4f",
        result.rounds,
        int(result.diagnostics["rows_fit"]),
        model.calibrator.kind,
        result.diagnostics["calibration_logloss"],
    )
    if result.production is not None:
        log.info(
            "production refit on %d rows over %d cutoffs (every customer up to %s, part of %s), "
            "calibrated on the test customers it did not train on; its booster ranks them at "
            "ROC AUC %.4f",
            int(result.diagnostics["production_rows"]),
            int(result.diagnostics["production_cutoffs"]),
            model.metadata["training_cutoffs"][1],
            model.metadata["held_out"]["cutoff"],
            result.diagnostics["production_test_roc_auc"],
        )
    if not tracking:
        return
    root = Path.cwd()
    uri = mlflow_tracking.tracking_uri(root)
    sections = {"train": settings.train.model_dump()}
    if getattr(settings, "features", None) is not None:
        sections["features"] = settings.features.model_dump(mode="json")
    record = mlflow_tracking.log_training(
        uri,
        settings.train.experiment,
        settings.train.registered_model,
        out,
        sections,
        result.diagnostics,
        mlflow_tracking.git_revision(root),
        fingerprint,
        mlflow_tracking.synthetic_input_example(model, frame[frame[ROLE] == "fit"]),
    )
    metadata = {
        **model.metadata,
        "run_id": record.run_id,
        "registered_model": record.model_name,
        "model_version": record.model_version,
    }
    type(model)(model.booster, model.calibrator, model.spec, metadata).save(out)
    evaluation = result.model
    # the run id (evaluate logs there) and which registered version this model stands in for;
    # not model_version: this booster is not that registered model
    type(evaluation)(
        evaluation.booster,
        evaluation.calibrator,
        evaluation.spec,
        {
            **evaluation.metadata,
            "run_id": record.run_id,
            "evaluates_version": record.model_version,
        },
    ).save(evaluation_out)
    log.info(
        "MLflow run %s: %s version %s is now @challenger",
        record.run_id,
        record.model_name,
        record.model_version,
    )


@app.command()
def evaluate(
    snapshots: Annotated[Path, typer.Option(help="Training snapshots (features stage).")] = Path(
        "data/features/train.parquet"
    ),
    model_dir: Annotated[
        Path, typer.Option("--model", help="Model folder (one that never saw the test cutoff).")
    ] = Path("models/evaluation"),
    production_dir: Annotated[
        Path | None,
        typer.Option(
            "--production", help="Production model folder: its ranking on the test cutoff too."
        ),
    ] = None,
    metrics: Annotated[Path, typer.Option(help="Metrics JSON to write.")] = Path(
        "reports/metrics.json"
    ),
    segments: Annotated[Path, typer.Option(help="Per-segment metrics JSON to write.")] = Path(
        "reports/segments.json"
    ),
    plots: Annotated[Path, typer.Option(help="Folder for plot tables.")] = Path("reports/plots"),
    params: ParamsPath = Path("params.yaml"),
    tracking: Annotated[bool, typer.Option(help="Log to the model's MLflow run.")] = True,
) -> None:
    """Measure the model and the baselines on the test cutoff; write metrics and plot tables."""
    import pandas as pd

    from churn import tracking as mlflow_tracking
    from churn.evaluate import evaluate_model
    from churn.io import atomic_path, write_json
    from churn.model import ChurnModel

    settings = load_params(params)
    if not snapshots.is_file():
        raise ChurnError(f"{snapshots}: not found; run `dvc repro features` first")
    model = ChurnModel.load(model_dir)
    production = None if production_dir is None else ChurnModel.load(production_dir)
    if production is not None and production.metadata.get("role") != "production":
        production = None  # train.production_refit off: the challenger is the evaluation model
    result = evaluate_model(
        pd.read_parquet(snapshots),
        model,
        settings.evaluate,
        _horizon_days(settings),
        str(snapshots),
        production,
        str(model_dir),
    )
    write_json(result.metrics, metrics)
    write_json(result.segments, segments)
    plots.mkdir(parents=True, exist_ok=True)
    for name, table in result.curves.items():
        with atomic_path(plots / f"{name}.csv") as tmp:
            table.to_csv(tmp, index=False)
    scores = result.metrics["model"]
    log.info(
        "test cutoff %s: ROC AUC %.4f, PR AUC %.4f, ECE %.4f (recency ROC AUC %.4f)",
        result.metrics["test_cutoff"],
        scores.get("roc_auc", float("nan")),
        scores.get("pr_auc", float("nan")),
        scores.get("ece", float("nan")),
        result.metrics["baselines"]["recency"].get("roc_auc", float("nan")),
    )
    if "production" in result.metrics:
        log.info(
            "production refit ranks the %d test customers it never trained on at ROC AUC %.4f, "
            "PR AUC %.4f (evaluation model on the same customers: %.4f, %.4f)",
            result.metrics["production"]["rows"],
            result.metrics["production"].get("roc_auc", float("nan")),
            result.metrics["production"].get("pr_auc", float("nan")),
            result.metrics["production"].get("evaluation_model_roc_auc", float("nan")),
            result.metrics["production"].get("evaluation_model_pr_auc", float("nan")),
        )
    run_id = model.metadata.get("run_id")
    if tracking and run_id:
        from churn.plots import evaluation_figures

        mlflow_tracking.log_evaluation(
            mlflow_tracking.tracking_uri(Path.cwd()),
            str(run_id),
            {**result.metrics, "segments": result.segments},
            evaluation_figures(result.curves),
            result.curves,
        )
    elif tracking:
        log.warning("%s has no MLflow run id (trained with --no-tracking); not logged", model_dir)


# --------------------------------------------------------------------------- report
def _optional_input(path: Path | None, what: str) -> Path | None:
    """Return path when it exists; log and return None when the producing stage has not run."""
    if path is None or path.exists():
        return path
    log.info("%s: %s not found; the report says this part is not available", what, path)
    return None


@app.command()
def report(
    transactions: Annotated[
        Path, typer.Option(help="Clean transactions (Parquet) written by `churn ingest`.")
    ] = Path("data/interim/transactions.parquet"),
    customers: Annotated[
        Path | None, typer.Option(help="Customers table (Parquet): channel/region segments.")
    ] = None,
    nps: Annotated[Path | None, typer.Option(help="NPS answers (Parquet).")] = None,
    scores: Annotated[
        Path | None, typer.Option(help="Latest scores (Parquet); skipped while it does not exist.")
    ] = None,
    metrics: Annotated[
        Path | None,
        typer.Option(help="Evaluate-stage metrics (JSON); skipped while it does not exist."),
    ] = None,
    out: Annotated[Path, typer.Option(help="Folder for the report files.")] = Path("reports"),
    params: ParamsPath = Path("params.yaml"),
) -> None:
    """Write the retention report: retention.html, retention.json, retention_monthly.csv, cohorts.csv."""
    import json
    import tempfile

    import duckdb
    import pandas as pd

    from churn.io import atomic_path, write_json
    from churn.report import build_report, headline_figures
    from churn.report.page import render_html

    settings = load_params(params).report
    for path, what in ((transactions, "transactions"), (customers, "customers"), (nps, "nps")):
        if path is not None and not path.exists():
            raise ChurnError(f"{path}: {what} not found; run `churn ingest` first")
    scores, metrics = _optional_input(scores, "scores"), _optional_input(metrics, "metrics")
    try:
        metric_values = json.loads(metrics.read_text(encoding="utf-8")) if metrics else None
    except json.JSONDecodeError as error:
        raise ChurnError(f"{metrics}: not valid JSON ({error}); rerun `churn evaluate`") from None
    with tempfile.TemporaryDirectory(prefix="churn-report-") as spill:
        config = {"memory_limit": settings.memory_limit, "temp_directory": spill}
        if settings.threads:
            config["threads"] = str(settings.threads)
        with duckdb.connect(config=config) as con:
            result = build_report(
                con,
                con.read_parquet(str(transactions)),
                settings,
                nps=pd.read_parquet(nps) if nps else None,
                customers=pd.read_parquet(customers) if customers else None,
                scores=pd.read_parquet(scores) if scores else None,
                metrics=metric_values,
                sources={"transactions": str(transactions), "nps": str(nps), "scores": str(scores)},
            )
    with atomic_path(out / "retention.html") as tmp:
        tmp.write_text(render_html(result), encoding="utf-8")
    write_json(headline_figures(result), out / "retention.json")
    for frame, name in ((result.periods, "retention_monthly.csv"), (result.cohorts, "cohorts.csv")):
        with atomic_path(out / name) as tmp:
            frame.drop(columns="period_index", errors="ignore").to_csv(
                tmp, index=False, lineterminator="\n"
            )
    log.info(
        "report: %d %ss to %s, written to %s",
        len(result.periods),
        settings.period,
        result.as_of,
        out,
    )


# --------------------------------------------------------------------------- features
@app.command()
def features(
    transactions: Annotated[Path, typer.Option(help="Clean transactions (Parquet).")] = Path(
        "data/interim/transactions.parquet"
    ),
    customers: Annotated[Path, typer.Option(help="Clean customers (Parquet).")] = Path(
        "data/interim/customers.parquet"
    ),
    nps: Annotated[Path, typer.Option(help="Clean NPS answers (Parquet).")] = Path(
        "data/interim/nps.parquet"
    ),
    out: Annotated[Path, typer.Option(help="Folder for train.parquet and score.parquet.")] = Path(
        "data/features"
    ),
    report: Annotated[Path, typer.Option(help="Features report (JSON).")] = Path(
        "reports/features.json"
    ),
    params: ParamsPath = Path("params.yaml"),
) -> None:
    """Build labelled point-in-time training snapshots and the as-of snapshot to score."""
    from churn.features import build_snapshots, summarize_snapshots
    from churn.io import write_json, write_parquet

    settings = load_params(params).features
    snapshots = build_snapshots(transactions, customers, nps, settings)
    write_parquet(snapshots.train, out / "train.parquet")
    write_parquet(snapshots.score, out / "score.parquet")
    write_json(summarize_snapshots(snapshots, settings), report)
    log.info("wrote %s, %s and %s", out / "train.parquet", out / "score.parquet", report)


# --------------------------------------------------------------------------- ingest
@app.command()
def ingest(
    out: Annotated[Path, typer.Option(help="Folder for the clean tables.")] = Path("data/interim"),
    report: Annotated[Path, typer.Option(help="JSON report (DVC metrics).")] = Path(
        "reports/ingest.json"
    ),
    snapshots: Annotated[Path, typer.Option(help="Folder for SQL source snapshots.")] = Path(
        "data/raw"
    ),
    state: Annotated[
        Path, typer.Option(help="Run history for the volume check (outside DVC outputs).")
    ] = Path(".churn/ingest_history.json"),
    params: ParamsPath = Path("params.yaml"),
) -> None:
    """Read, type and check the transactions export; quarantine bad rows; write the report."""
    import json
    import os
    import tempfile
    from datetime import UTC, datetime

    from churn.ingest import IngestOutputs, run_ingest
    from churn.io import write_json

    settings = load_params(params).ingest
    try:
        history = json.loads(state.read_text(encoding="utf-8")) if state.exists() else {}
    except (OSError, ValueError):
        log.warning("%s: unreadable run history, the volume check starts afresh", state)
        history = {}
    with tempfile.TemporaryDirectory(prefix="churn-ingest-") as work_dir:
        result, history = run_ingest(
            settings,
            IngestOutputs.in_folder(out),
            snapshots,
            history,
            datetime.now(UTC),
            os.environ,
            Path(work_dir),
        )
    write_json(result, report)
    write_json(history, state)
    log.info("wrote %s and %s", out, report)


# --------------------------------------------------------------------------- score / publish / at-risk
@app.command()
def score(
    snapshot: Annotated[Path, typer.Option(help="As-of snapshot (features).")] = Path(
        "data/features/score.parquet"
    ),
    model: Annotated[Path, typer.Option(help="Model folder (champion, or challenger).")] = Path(
        "models/challenger"
    ),
    out: Annotated[Path, typer.Option(help="Scores table.")] = Path("data/scores/scores.parquet"),
    report: Annotated[Path, typer.Option(help="Metrics JSON.")] = Path("reports/score.json"),
    profit_curve: Annotated[Path, typer.Option(help="Profit curve CSV (DVC plot).")] = Path(
        "reports/score_profit_curve.csv"
    ),
    archive: Annotated[Path, typer.Option(help="Per-date archive of full tables.")] = Path(
        "data/archive/scores"
    ),
    params: ParamsPath = Path("params.yaml"),
) -> None:
    """Score every customer of the as-of snapshot: probability, tier, value, target, reasons."""
    import pandas as pd

    from churn.io import write_json
    from churn.model import ChurnModel
    from churn.score import build_profit_curve, build_scores, summarise_scores
    from churn.score.publish import archive_scores, parquet_bytes, read_suppression, write_atomic

    settings = load_params(params).score
    if not snapshot.is_file():
        raise ChurnError(f"{snapshot}: not found; run `dvc repro features` first")
    churn_model = ChurnModel.load(model)
    suppressed = read_suppression(settings.suppression_file)
    scores = build_scores(pd.read_parquet(snapshot), churn_model, settings, suppressed)
    data = parquet_bytes(scores)
    write_atomic(out, data)
    as_of = str(scores["as_of"].iloc[0])
    kept, status = archive_scores(data, archive, as_of)
    if status == "replaced":
        log.warning("%s: replaced a different earlier table for %s (kept beside it)", kept, as_of)
    curve = build_profit_curve(scores, settings.profit_curve_points)
    write_atomic(profit_curve, curve.to_csv(index=False, lineterminator="\n").encode("utf-8"))
    metrics = summarise_scores(scores, len(suppressed))
    write_json({"as_of": as_of, "model_version": churn_model.version, **metrics}, report)
    log.info(
        "scored %d customers as of %s with model %s: %d flagged (%d control), %d suppressed",
        metrics["customers"],
        as_of,
        churn_model.version,
        metrics["flagged"],
        metrics["flagged_control"],
        metrics["suppressed"],
    )


@app.command()
def publish(
    scores: Annotated[Path, typer.Option(help="Scores table from `churn score`.")] = Path(
        "data/scores/scores.parquet"
    ),
    exports: Annotated[Path, typer.Option(help="Folder of dated lists and LATEST.json.")] = Path(
        "exports/at_risk"
    ),
    ingest_report: Annotated[Path, typer.Option(help="Ingest report (gate if present).")] = Path(
        "reports/ingest.json"
    ),
    drift_report: Annotated[Path, typer.Option(help="Drift report (gate if present).")] = Path(
        "reports/drift.json"
    ),
    force: Annotated[
        bool, typer.Option(help="Replace a different list already published for the date.")
    ] = False,
    accept_drift: Annotated[
        bool, typer.Option(help="Publish despite a failed drift gate.")
    ] = False,
    sql: Annotated[
        bool | None, typer.Option("--sql/--no-sql", help="Override publish.sql.enabled.")
    ] = None,
    params: ParamsPath = Path("params.yaml"),
) -> None:
    """Check the gates, then atomically publish the dated at-risk list and switch LATEST.json."""
    import datetime as dt
    import json
    import os

    import pandas as pd

    from churn.score import publish as publishing

    settings = load_params(params).publish
    if not scores.is_file():
        raise ChurnError(f"{scores}: not found; run `dvc repro` (the score stage) first")
    table = pd.read_parquet(scores)
    publishing.validate_scores(table, str(scores))
    reports = {}
    for name, path in (("ingest", ingest_report), ("drift", drift_report)):
        reports[name] = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    gates = [
        publishing.check_volume(table, settings),
        publishing.check_freshness(table["as_of"].iloc[0], dt.date.today(), settings),
        publishing.check_ingest_report(reports["ingest"], settings),
        publishing.check_drift_gate(reports["drift"]),
    ]
    for gate in gates:
        status = "pass" if gate.passed else "FAIL"
        if not gate.passed and gate.name == "drift" and accept_drift:
            status = "FAIL, accepted with --accept-drift"
        log.info("gate %s: %s (%s)", gate.name, status, gate.detail)
    publishing.enforce_gates(gates, accept_drift)
    result = publishing.publish_lists(table, exports, force=force)
    manifest = result.manifest
    log.info(
        "%s %s: %d customers to contact, %d control (model %s)",
        result.status,
        exports / manifest["path"],
        manifest["rows"],
        manifest["groups"]["control"],
        manifest["model_version"],
    )
    if sql if sql is not None else settings.sql.enabled:
        url = os.environ.get(settings.sql.url_env)
        if not url:
            raise ChurnError(
                f"SQL export: environment variable {settings.sql.url_env} is not set; set it to a "
                "SQLAlchemy URL (credentials stay in the environment) or use --no-sql"
            )
        listed = publishing.read_list(exports, manifest)
        rows = publishing.export_to_sql(listed, url, settings.sql.table, settings.sql.schema_name)
        log.info(
            "SQL export: %d rows for %s in table %s", rows, manifest["as_of"], settings.sql.table
        )


@app.command("at-risk")
def at_risk(
    exports: Annotated[Path, typer.Option(help="Folder of published lists.")] = Path(
        "exports/at_risk"
    ),
    date: Annotated[str | None, typer.Option(help="As-of date (default: LATEST).")] = None,
    tier: Annotated[list[str] | None, typer.Option(help="Risk tier(s): high, medium, low.")] = None,
    top: Annotated[int | None, typer.Option(help="Only the first N by priority.")] = None,
    min_value: Annotated[float | None, typer.Option(help="Minimum expected value.")] = None,
    where: Annotated[
        list[str] | None, typer.Option(help="Segment filter column=value, e.g. channel=app.")
    ] = None,
    group: Annotated[str, typer.Option(help="treatment (to contact) or control.")] = "treatment",
    out: Annotated[Path | None, typer.Option(help="Output file; '-' or none: stdout.")] = None,
    file_format: Annotated[
        str | None, typer.Option("--format", help="csv, json or xlsx (default: from --out).")
    ] = None,
) -> None:
    """Filter the published at-risk list for a campaign; write CSV/JSON/Excel and a summary."""
    from churn.score import at_risk as lists
    from churn.score.publish import read_list, read_manifest, write_atomic

    if group not in ("treatment", "control"):
        raise ChurnError(f"--group {group!r}: use treatment or control")
    to_stdout = out is None or str(out) == "-"
    file_format = file_format or (
        "csv" if to_stdout else {".json": "json", ".xlsx": "xlsx"}.get(out.suffix.lower(), "csv")
    )
    manifest = read_manifest(exports, date)
    selected = lists.filter_list(
        read_list(exports, manifest, group),
        tiers=tier,
        top=top,
        min_value=min_value,
        where=lists.parse_where(where or []),
    )
    data = lists.render_list(selected, file_format)
    if to_stdout:
        if file_format == "xlsx":
            raise ChurnError(
                "--format xlsx: give --out FILE.xlsx (Excel files are not written to stdout)"
            )
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        write_atomic(out, data)
    summary = f"{group} list as of {manifest['as_of']} (model {manifest['model_version']}):\n"
    typer.echo(summary + lists.summarise_list(selected), err=to_stdout)


# --------------------------------------------------------------------------- promote / rollback / drift / backtest / retrain
def _read_parquet(path: Path, what: str, columns: list[str] | None = None):
    """Read a Parquet input of a stage; a missing file names the stage that makes it."""
    import pandas as pd

    if not path.exists():
        raise ChurnError(f"{path}: not found ({what}); run `dvc repro` first")
    return pd.read_parquet(path, columns=columns)


def _registry(settings):
    from churn.tracking import ModelRegistry, tracking_uri

    return ModelRegistry(tracking_uri(Path.cwd()), settings.train.registered_model)


@app.command()
def promote(
    challenger: Annotated[Path, typer.Option(help="Challenger model folder.")] = Path(
        "models/challenger"
    ),
    snapshots: Annotated[Path, typer.Option(help="Training snapshots.")] = Path(
        "data/features/train.parquet"
    ),
    out: Annotated[Path, typer.Option(help="Champion model folder to write.")] = Path(
        "models/champion"
    ),
    report: Annotated[Path, typer.Option(help="Decision report.")] = Path("reports/promotion.json"),
    apply: Annotated[
        bool, typer.Option("--apply", help="Move the production alias if the challenger wins.")
    ] = False,
    params: ParamsPath = Path("params.yaml"),
) -> None:
    """Champion/challenger gate on the newest out-of-time cutoff; writes the chosen model folder."""
    from churn.promote import run_promotion

    settings = load_params(params)
    result = run_promotion(
        challenger,
        _read_parquet(snapshots, "training snapshots"),
        _registry(settings),
        settings.promote,
        settings.drift,
        out,
        report,
        apply=apply,
    )
    log.info(
        "gate: %s; champion folder holds version %s; alias %r on %s",
        result["decision"],
        result["chosen_version"],
        result["alias"]["name"],
        result["alias"]["after"],
    )
    for reason in result["reasons"]:
        log.info("  %s", reason)


@app.command()
def rollback(
    to: Annotated[str | None, typer.Option("--to", help="Registered version to restore.")] = None,
    list_versions: Annotated[
        bool, typer.Option("--list", help="List registered versions and exit.")
    ] = False,
    out: Annotated[Path, typer.Option(help="Champion model folder to rewrite.")] = Path(
        "models/champion"
    ),
    snapshots: Annotated[
        Path, typer.Option(help="Training snapshots (only if the version lacks a drift reference).")
    ] = Path("data/features/train.parquet"),
    params: ParamsPath = Path("params.yaml"),
) -> None:
    """Put an earlier registered model back as champion (alias and models/champion/)."""
    import datetime as dt

    from churn.promote import rollback_champion

    settings = load_params(params)
    registry = _registry(settings)
    if list_versions or to is None:
        for row in registry.versions():
            rejected = row["tags"].get("churn.rejected")
            print(
                f"{row['version']:>5}  {', '.join(row['aliases']) or '-':<22} "
                f"{dt.datetime.fromtimestamp(row['created'] / 1000):%Y-%m-%d %H:%M}"
                + (f"  rolled back: {rejected}" if rejected else "")
            )
        if to is None and not list_versions:
            raise ChurnError("rollback: pass --to VERSION (versions listed above)")
        return
    frame = _read_parquet(snapshots, "training snapshots") if snapshots.exists() else None
    stamp = dt.datetime.now().astimezone().isoformat(timespec="seconds")
    result = rollback_champion(
        to,
        registry,
        settings.promote,
        settings.drift,
        out,
        frame,
        f"rolled back to {to} at {stamp}",
    )
    log.info("champion is version %s again (was %s)", result["after"], result["before"])
    log.info("run `dvc repro` (or `dvc commit promote`) so scoring uses it")


@app.command()
def drift(
    champion: Annotated[Path, typer.Option(help="Champion model folder.")] = Path(
        "models/champion"
    ),
    snapshot: Annotated[Path, typer.Option(help="As-of feature snapshot.")] = Path(
        "data/features/score.parquet"
    ),
    scores: Annotated[Path, typer.Option(help="Scores of that snapshot.")] = Path(
        "data/scores/scores.parquet"
    ),
    report: Annotated[Path, typer.Option(help="Drift report (DVC metrics).")] = Path(
        "reports/drift.json"
    ),
    params: ParamsPath = Path("params.yaml"),
) -> None:
    """Population stability of every feature and the score against the champion's training data."""
    from churn.columns import CHURN_PROBABILITY, CUSTOMER_ID
    from churn.drift import measure_drift
    from churn.io import write_json
    from churn.model import ChurnModel

    settings = load_params(params).drift
    model = ChurnModel.load(champion)
    if model.drift_reference is None:
        raise ChurnError(
            f"{champion}: no drift_reference.json; rerun `dvc repro promote` to write one"
        )
    features = _read_parquet(snapshot, "as-of snapshot")
    scored = _read_parquet(scores, "scores", [CUSTOMER_ID, CHURN_PROBABILITY])
    # measure the population that was scored (the snapshot may hold customers scoring skipped)
    features = features[features[CUSTOMER_ID].isin(scored[CUSTOMER_ID])]
    result = measure_drift(model.drift_reference, features, scored[CHURN_PROBABILITY], settings)
    write_json(result, report)
    level = log.warning if result["status"] != "ok" else log.info
    level("drift: %s — %s", result["status"], result["detail"])


@app.command()
def backtest(
    archive: Annotated[
        Path, typer.Option(help="Archived scoring runs (<as_of>/scores.parquet).")
    ] = Path("data/archive/scores"),
    transactions: Annotated[Path, typer.Option(help="Clean transactions.")] = Path(
        "data/interim/transactions.parquet"
    ),
    contacts: Annotated[
        Path | None, typer.Option(help="Contact log CSV (customer_id, contacted_at).")
    ] = None,
    report: Annotated[Path, typer.Option(help="Backtest report.")] = Path("reports/backtest.json"),
    params: ParamsPath = Path("params.yaml"),
) -> None:
    """Check earlier at-risk lists against what happened once their horizon passed."""
    import datetime as dt

    import pandas as pd

    from churn.backtest import check_contacts, run_backtest, summary_rows
    from churn.columns import AMOUNT, CUSTOMER_ID, DATE
    from churn.io import write_json

    settings = load_params(params)
    runs = {}
    for folder in sorted(archive.glob("*/")) if archive.is_dir() else []:
        try:
            as_of = dt.date.fromisoformat(folder.name)
        except ValueError:
            log.warning("%s: not an ISO date folder; skipped", folder)
            continue
        if (folder / "scores.parquet").is_file():
            runs[as_of] = pd.read_parquet(folder / "scores.parquet")
    contact_path = contacts or (
        Path(settings.backtest.contact_log) if settings.backtest.contact_log else None
    )
    contact_log = None
    if contact_path is not None:
        if not contact_path.exists():
            raise ChurnError(f"{contact_path}: contact log not found; fix backtest.contact_log")
        raw = pd.read_csv(contact_path, dtype={CUSTOMER_ID: "string"})
        contact_log = check_contacts(raw, str(contact_path))
    result = run_backtest(
        runs,
        _read_parquet(transactions, "clean transactions", [CUSTOMER_ID, DATE, AMOUNT]),
        _horizon_days(settings),
        settings.backtest,
        contact_log,
    )
    write_json(result, report)
    rows = summary_rows(result)
    if not rows:
        log.info(
            "backtest: no archived list has reached its horizon yet (%d pending)",
            len(result["pending"]),
        )
    _show_rows(rows, "Backtest of archived at-risk lists")
    for pending in result["pending"]:
        log.info("pending: list of %s matures on %s", pending["as_of"], pending["matures_on"])


def _show_rows(rows: list[dict[str, str]], title: str) -> None:
    """Print rows as a rich table on a terminal, else as plain log lines."""
    if not rows:
        return
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title)
        for column in rows[0]:
            table.add_column(column, justify="left" if column == "as of" else "right")
        for row in rows:
            table.add_row(*row.values())
        Console().print(table)
    else:
        for row in rows:
            log.info("  ".join(f"{k}={v}" for k, v in row.items()))


@app.command()
def retrain(
    accept_drift: Annotated[
        bool, typer.Option("--accept-drift", help="Publish even if drift blocks it (reviewed).")
    ] = False,
    params: ParamsPath = Path("params.yaml"),
    log_file: Annotated[
        Path | None,
        typer.Option(
            "--log-file",
            help="Append the log here (folder created); then only errors go to stderr.",
            dir_okay=False,
        ),
    ] = None,
) -> None:
    """For schedulers: lock, dvc repro, gate with alias move, publish, backtest; exits 0/10/20/75/1."""
    import functools
    import os

    from churn.logs import add_log_file
    from churn.retrain import (
        EXIT_ERROR,
        RetrainSteps,
        child_environ,
        resolve_command,
        run_repro,
        run_retrain,
    )

    if log_file is not None:
        add_log_file(log_file)
    try:
        settings = load_params(params)
    except ChurnError as error:
        log.error("%s", error)  # into the log file too, where whoever reads the schedule looks
        raise typer.Exit(EXIT_ERROR) from None
    registry = functools.cache(lambda: _registry(settings))  # opened after the lock is taken

    def apply_gate() -> bool:
        import json

        from churn.model import ChurnModel
        from churn.promote import apply_decision

        stage = _stage_options("promote")
        report_path = Path(stage.get("--report", "reports/promotion.json"))
        decision = json.loads(report_path.read_text(encoding="utf-8"))
        champion = ChurnModel.load(Path(stage.get("--out", "models/champion")))
        return apply_decision(decision, champion, registry(), settings.promote)

    steps = RetrainSteps(
        champion_version=lambda: registry().alias_version(settings.promote.alias),
        # a scheduler's bare PATH lacks the venv: find dvc, and let its stages find churn, there
        repro=lambda: run_repro(
            resolve_command(settings.retrain.repro_command, sys.executable, os.environ),
            env=child_environ(sys.executable, os.environ),
        ),
        apply_gate=apply_gate,
        publish=lambda: _retrain_publish(params, accept_drift),
        backtest=(lambda: backtest(params=params)) if settings.retrain.backtest else None,
    )
    raise typer.Exit(run_retrain(steps, settings.retrain.lock_file))


def _stage_options(name: str, dvc_yaml: Path = Path("dvc.yaml")) -> dict[str, str]:
    """Return the --option values of a stage's command in dvc.yaml (paths are written there once)."""
    import shlex

    import yaml

    if not dvc_yaml.exists():
        raise ChurnError(f"{dvc_yaml}: not found; run `churn retrain` from the project folder")
    stages = yaml.safe_load(dvc_yaml.read_text(encoding="utf-8")).get("stages", {})
    if name not in stages:
        raise ChurnError(f"{dvc_yaml}: no stage {name!r}; `churn retrain` needs it")
    argv = shlex.split(" ".join(str(stages[name]["cmd"]).split()))
    return {
        key: value
        for key, value in zip(argv, argv[1:], strict=False)
        if key.startswith("--") and not value.startswith("--")
    }


def _retrain_publish(params: Path, accept_drift: bool) -> None:
    """Publish the scored list through the same code as `churn publish` (raises DataCheckFailed)."""
    publish(params=params, accept_drift=accept_drift)


def main() -> None:
    """Run the CLI; user-fixable problems print one clear message and exit 1, no traceback."""
    try:
        app()
    except DataCheckFailed as error:
        # its own prefix, so `churn retrain` tells a data check from an error in dvc repro's output
        print(f"{DATA_CHECK_PREFIX}{error}", file=sys.stderr)
        sys.exit(1)
    except ChurnError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
