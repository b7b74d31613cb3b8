"""The command line: the only place that reads files, parses params and writes outputs.

Commands in pipeline order. Stage commands take every path from dvc.yaml (no defaults here) and
read only the params sections their stage declares there (STAGE_PARAMS, checked by a contract
test). Commands run outside DVC find the stage files through `churn.pipeline`.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from churn.config import StageParams, TrainParams, load_params
from churn.errors import DATA_CHECK_PREFIX, ChurnError, DataCheckFailed
from churn.logs import get_logger, setup_logging

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="churn: point-in-time churn prediction pipeline (one command per DVC stage).",
)
log = get_logger("cli")

# The params sections each DVC stage reads: the same lists as `params:` in dvc.yaml.
STAGE_PARAMS: dict[str, tuple[str, ...]] = {
    "generate": ("generate", "score.tiers"),
    "sources": ("ingest",),
    "ingest": ("ingest", "engine"),
    "features": (
        "churn",
        "features",
        "engine",
        # with engine.kind spark, train.parquet holds only the rows these readers' samples read
        "train.sample_customers",
        "train.sample_held_out_customers",
        "uplift.sample_customers",
        "drift.reference_role",
    ),
    "train": ("churn", "train", "registry"),
    "evaluate": ("churn", "evaluate", "registry", "train"),
    "promote": ("promote", "drift", "registry", "train"),
    "score": ("score", "engine", "uplift"),
    "drift": ("drift",),
    "report": ("churn", "report", "engine"),
    "ledger": ("churn", "features", "engine", "score", "backtest"),
    "uplift": ("churn", "score", "uplift"),
}
APPLY_ENV = "CHURN_PROMOTE_APPLY"  # set by `churn retrain` for the promote stage it runs
NEW_DEFINITION_ENV = "CHURN_PROMOTE_NEW_DEFINITION"
NEW_REGISTRY_ENV = (
    "CHURN_PROMOTE_NEW_REGISTRY"  # the registry was lost: register the champion again
)

ParamsPath = Annotated[Path, typer.Option("--params", help="params.yaml to read.", dir_okay=False)]
# The commands run outside DVC find the record where dvc.yaml's stages name it (churn.pipeline)
ExportsOption = Annotated[
    Path | None,
    typer.Option(help="The published-lists record (default: dvc.yaml's, e.g. exports/at_risk)."),
]


def _required(help_text: str) -> object:
    return typer.Option(..., help=help_text)


def _stage_params(stage: str, path: Path) -> StageParams:
    """Return the params sections `stage` declares (reading any other one is an error)."""
    return load_params(path).select(*STAGE_PARAMS[stage])


@app.callback()
def _root(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
) -> None:
    setup_logging(verbose)


# --------------------------------------------------------------------------- check
@app.command()
def check(
    out: Annotated[
        Path | None, typer.Option(help="Stamp file every stage depends on (dvc.yaml).")
    ] = None,
    params: ParamsPath = Path("params.yaml"),
) -> None:
    """Validate params.yaml before any stage runs (DVC deletes a stage's outputs before it runs)."""
    from churn.config import check_sections
    from churn.files import write_json

    settings = load_params(params)
    present = check_sections(params, {s for names in STAGE_PARAMS.values() for s in names})
    if out is not None:
        write_json({"params": str(params), "valid": True, "sections": present}, out)
    log.info("%s: valid (%d sections)", params, len(type(settings).model_fields))


# --------------------------------------------------------------------------- init
def _column_option(role: str) -> object:
    return typer.Option(help=f"Source column holding the {role} (overrides the guess).")


@app.command()
def init(
    source: Annotated[
        str, typer.Option(help="Your export: a CSV/TSV (.gz) or Parquet file or folder.")
    ],
    customers: Annotated[
        str | None, typer.Option(help="Optional customers table (file or folder).")
    ] = None,
    nps: Annotated[
        str | None, typer.Option(help="Optional NPS survey answers (file or folder).")
    ] = None,
    customer_id: Annotated[str | None, _column_option("customer id")] = None,
    timestamp: Annotated[str | None, _column_option("transaction time")] = None,
    amount: Annotated[str | None, _column_option("amount")] = None,
    transaction_id: Annotated[str | None, _column_option("transaction/order id")] = None,
    no_transaction_id: Annotated[
        bool,
        typer.Option("--no-transaction-id", help="Map no transaction id (each row counts)."),
    ] = False,
    delimiter: Annotated[
        str | None, typer.Option(help="CSV delimiter: one character, 'tab' or 'whitespace'.")
    ] = None,
    decimal: Annotated[str | None, typer.Option(help="Decimal mark of amounts: . or ,")] = None,
    thousands: Annotated[str | None, typer.Option(help="Thousands separator of amounts.")] = None,
    encoding: Annotated[str | None, typer.Option(help="File encoding (e.g. cp1252).")] = None,
    date_format: Annotated[
        str | None, typer.Option(help="strptime format of the timestamps, e.g. '%d.%m.%Y %H:%M'.")
    ] = None,
    dayfirst: Annotated[
        bool | None,
        typer.Option("--dayfirst/--monthfirst", help="Order of dates like 03/04/2024."),
    ] = None,
    timezone: Annotated[
        str | None, typer.Option(help="Zone of naive timestamps (default: ingest.timezone).")
    ] = None,
    preview_rows: Annotated[
        int, typer.Option(help="Rows of the dry read through the ingest reader.", min=1)
    ] = 10_000,
    yes: Annotated[bool, typer.Option("--yes", help="Apply the changes shown.")] = False,
    params: ParamsPath = Path("params.yaml"),
) -> None:
    """Point the pipeline at your export: propose params.yaml/dvc.yaml changes; --yes applies."""
    import contextlib
    import shutil

    from churn.config import check_sections
    from churn.files import atomic_path
    from churn.init import InitOptions, plan_init, render_plan, render_preview
    from churn.init.sample import preview_ingest

    if decimal is not None and decimal not in (".", ","):
        raise ChurnError(f"--decimal {decimal!r}: use . or ,")
    if transaction_id and no_transaction_id:
        raise ChurnError("--transaction-id and --no-transaction-id: give one of them")
    named = {"tab": "\t", "\\t": "\t", "space": "whitespace"}
    delimiter = named.get(delimiter, delimiter) if delimiter else None
    if delimiter is not None and len(delimiter) != 1 and delimiter != "whitespace":
        raise ChurnError(f"--delimiter {delimiter!r}: give one character, 'tab' or 'whitespace'")
    options = InitOptions(
        source=source,
        customers=customers,
        nps=nps,
        columns={
            "customer_id": customer_id,
            "timestamp": timestamp,
            "amount": amount,
            "transaction_id": transaction_id,
        },
        no_transaction_id=no_transaction_id,
        delimiter=delimiter,
        decimal=decimal,
        thousands=thousands,
        encoding=encoding,
        date_format=date_format,
        dayfirst=dayfirst,
        timezone=timezone,
    )
    pipeline = params.parent / "dvc.yaml"
    plan = plan_init(options, params, pipeline)
    typer.echo(render_plan(plan))
    if not yes:
        typer.echo("")
        typer.echo(
            render_preview(preview_ingest(plan.ingest, _engine(params), preview_rows), preview_rows)
        )
        typer.echo("\nNothing changed. Run the same command with --yes to apply it.")
        return
    # Demo state first: deleting is idempotent, so if anything fails the files still differ and
    # the next `churn init` shows the whole plan again. Both files are renamed into place only
    # after both are written.
    for path, _ in plan.delete:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    with contextlib.ExitStack() as stack:
        for path, old, new in ((params, plan.params_old, plan.params_new),
                               (pipeline, plan.pipeline_old, plan.pipeline_new)):  # fmt: skip
            if new != old:
                stack.enter_context(atomic_path(path)).write_text(new, encoding="utf-8")
    typer.echo(f"\nApplied: wrote {params} and {pipeline}, deleted {len(plan.delete)} path(s).")
    # the same checks as `churn check`, then a dry read with the params just written
    settings = load_params(params)
    check_sections(params, {s for names in STAGE_PARAMS.values() for s in names})
    typer.echo(f"{params}: valid (churn check)")
    ingest = settings.ingest
    if not Path(ingest.source).is_absolute():
        ingest = ingest.model_copy(update={"source": str(params.parent / ingest.source)})
    typer.echo(render_preview(preview_ingest(ingest, settings.engine, preview_rows), preview_rows))
    typer.echo("Next: `make run` (or `dvc repro` then `churn publish`).")


def _engine(params: Path):  # noqa: ANN202 - churn.config.EngineParams
    from churn.config import EngineParams

    try:
        return load_params(params).engine
    except ChurnError:
        return EngineParams()


# --------------------------------------------------------------------------- generate
@app.command()
def generate(
    out: Annotated[Path, _required("Folder for the raw files.")],
    params: ParamsPath = Path("params.yaml"),
    customers: Annotated[
        int | None, typer.Option(help="Override generate.customers (benchmarks).")
    ] = None,
    file_format: Annotated[
        str, typer.Option("--format", help="csv (gzip) or parquet for transactions.")
    ] = "csv",
) -> None:
    """Write the seeded synthetic default data (transactions, customers, NPS, ground truth, and
    the simulated past campaigns: their lists, contact log and true effects)."""
    import pandas as pd

    from churn.files import TableStream
    from churn.generate import (
        CAMPAIGN_LISTS_COLUMNS,
        CAMPAIGN_TRUTH_COLUMNS,
        CONTACTS_COLUMNS,
        simulate,
    )
    from churn.logs import track

    stage = _stage_params("generate", params)
    settings = stage.generate
    if customers is not None:
        settings = settings.model_copy(update={"customers": customers})
    if file_format not in ("csv", "parquet"):
        raise ChurnError(f"--format {file_format!r}: use 'csv' or 'parquet'")
    txn_name = "transactions.csv.gz" if file_format == "csv" else "transactions.parquet"
    chunks = -(-settings.customers // settings.chunk_customers)
    with (
        TableStream(out / txn_name) as transactions,
        TableStream(out / "customers.csv") as customer_table,
        TableStream(out / "nps.csv") as nps,
        TableStream(out / "truth.parquet") as truth,
        TableStream(out / "campaign_lists.csv") as campaign_lists,
        TableStream(out / "contacts.csv") as contacts,
        TableStream(out / "campaign_truth.parquet") as campaign_truth,
    ):
        for chunk in track(
            simulate(settings, stage.score.tiers), "simulating customers", total=chunks
        ):
            transactions.write(chunk.transactions)
            truth.write(chunk.truth)
            for stream, frame in (
                (campaign_lists, chunk.campaign_lists),
                (contacts, chunk.contacts),
                (campaign_truth, chunk.campaign_truth),
            ):
                if len(frame):  # a chunk may list nobody; an empty frame has no typed schema
                    stream.write(frame)
        for stream, names in (
            (campaign_lists, CAMPAIGN_LISTS_COLUMNS),
            (contacts, CONTACTS_COLUMNS),
            (campaign_truth, CAMPAIGN_TRUTH_COLUMNS),
        ):
            if stream.rows == 0:  # campaigns off (or nobody listed): the files keep their header
                stream.write(pd.DataFrame({name: pd.Series(dtype="string") for name in names}))
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
    log.info("generated %d customers, %d rows into %s", settings.customers, transactions.rows, out)


# --------------------------------------------------------------------------- sources
@app.command()
def sources(
    out: Annotated[Path, _required("Fingerprints of the sources (the ingest stage's dependency).")],
    state: Annotated[Path, _required("Hashes of unchanged files between runs (outside DVC).")],
    params: ParamsPath = Path("params.yaml"),
) -> None:
    """Fingerprint each configured source, so that ingest reruns exactly when one changes."""
    import time

    from churn.files import read_json, write_json
    from churn.ingest.fingerprint import fingerprint_sources

    settings = _stage_params("sources", params)
    try:
        kept = (read_json(state, "it is rebuilt on the next run") or {}).get("files")
    except ChurnError as error:
        log.warning("%s; hashing every file afresh", error)
        kept = None
    previous = kept if isinstance(kept, dict) else {}
    started = time.monotonic()
    result = fingerprint_sources(settings.ingest, previous, os.environ, time.time_ns())
    write_json(result.report, out)
    write_json({"files": result.cache}, state)
    log.info(
        "wrote %s: %d file(s) hashed (%.0f MB), %d unchanged (%.1f s)",
        out,
        result.files_hashed,
        result.bytes_hashed / 1e6,
        result.files_cached,
        time.monotonic() - started,
    )


# --------------------------------------------------------------------------- ingest
@app.command()
def ingest(
    out: Annotated[Path, _required("Folder for the clean tables.")],
    report: Annotated[Path, _required("JSON report (DVC metrics).")],
    sql_copies: Annotated[Path, _required("Folder for the sorted copies of SQL sources.")],
    state: Annotated[Path, _required("Run history for the volume check (outside DVC outputs).")],
    params: ParamsPath = Path("params.yaml"),
) -> None:
    """Read, type and check the transactions export; quarantine bad rows; write the report."""
    import json
    import tempfile
    from datetime import UTC, datetime

    from churn.files import write_json
    from churn.ingest import IngestOutputs, mask_url, run_ingest

    settings = _stage_params("ingest", params)
    try:
        history = json.loads(state.read_text(encoding="utf-8")) if state.exists() else {}
    except (OSError, ValueError):
        log.warning("%s: unreadable run history, the volume check starts afresh", state)
        history = {}
    with tempfile.TemporaryDirectory(prefix="churn-ingest-") as work_dir:
        cleaner = None
        if settings.engine.kind == "spark":
            from churn.spark.ingest import spark_cleaner, typed_source

            if typed_source(settings.ingest) is None:
                log.info(
                    "engine.kind is spark, but %s is a text export or SQL source: it goes "
                    "through the DuckDB ingest first (the Spark stages read its clean tables)",
                    mask_url(settings.ingest.source),
                )
            else:  # the row rules on Spark; side tables and checks by the shared code
                cleaner = spark_cleaner(settings.ingest, settings.engine, Path(work_dir))
        result, history = run_ingest(
            settings.ingest,
            settings.engine,
            IngestOutputs.in_folder(out),
            sql_copies,
            history,
            datetime.now(UTC),
            os.environ,
            Path(work_dir),
            cleaner,
        )
    write_json(result, report)
    write_json(history, state)
    log.info("wrote %s and %s", out, report)


@app.command()
def ledger(
    transactions: Annotated[Path, _required("Clean transactions (Parquet).")],
    exports: Annotated[Path, _required("The published-lists record (exports/at_risk).")],
    report: Annotated[Path, _required("Ledger report (JSON).")],
    uplift_out: Annotated[Path, _required("Uplift table of matured lists (Parquet).")],
    contacted_out: Annotated[Path, _required("Treatment-group members of every list (Parquet).")],
    contacts: Annotated[
        Path | None,
        typer.Option(
            help="Contact log CSV (customer_id, contacted_at[, action, channel, cost]); "
            "without it, no contact log."
        ),
    ] = None,
    customers: Annotated[
        Path | None,
        typer.Option(help="Clean customers (Parquet); with --nps: features at the list dates."),
    ] = None,
    nps: Annotated[Path | None, typer.Option(help="Clean NPS answers (Parquet).")] = None,
    params: ParamsPath = Path("params.yaml"),
) -> None:
    """Measure each list's campaign in the published-lists record (treated vs control retention,
    with intervals) and write the uplift and contacted tables; the record is only read."""
    from churn.ledger.stage import LedgerInputs, run_ledger_report, show_rows

    inputs = LedgerInputs(transactions, customers, nps, uplift_out, contacted_out)
    rows = run_ledger_report(
        _stage_params("ledger", params), exports, contacts, report, inputs=inputs
    )
    show_rows(rows, "Campaign ledger")


# --------------------------------------------------------------------------- features
@app.command()
def features(
    transactions: Annotated[Path, _required("Clean transactions (Parquet).")],
    customers: Annotated[Path, _required("Clean customers (Parquet).")],
    nps: Annotated[Path, _required("Clean NPS answers (Parquet).")],
    out: Annotated[Path, _required("Folder for train.parquet and score.parquet.")],
    report: Annotated[Path, _required("Features report (JSON).")],
    params: ParamsPath = Path("params.yaml"),
) -> None:
    """Build labelled point-in-time training snapshots and the as-of snapshot to score."""
    from churn.features.build import write_snapshots
    from churn.files import write_json

    settings = _stage_params("features", params)
    if settings.engine.kind == "spark":
        import tempfile

        from churn.spark.features import write_snapshots as write_on_spark
        from churn.spark.sample import SampleParams
        from churn.spark.session import open_spark

        # train.parquet holds the rows of the samples its readers draw (churn.spark.sample)
        sample = SampleParams(
            settings.train.sample_customers, settings.train.sample_held_out_customers,
            settings.uplift.sample_customers, settings.drift.reference_role,
        )  # fmt: skip
        spark = open_spark(settings.engine)
        try:
            # Spark writes part files here; the driver streams them into the two DVC outputs
            with tempfile.TemporaryDirectory(prefix="churn-spark-features-") as work_dir:
                summary = write_on_spark(
                    spark, transactions, customers, nps, settings.churn, settings.features,
                    out / "train.parquet", out / "score.parquet", Path(work_dir), sample,
                )  # fmt: skip
        finally:
            spark.stop()
    else:
        # streamed to Parquet in batches: no snapshot is held in memory whole
        summary = write_snapshots(
            transactions, customers, nps, settings.churn, settings.features, settings.engine,
            out / "train.parquet", out / "score.parquet",
        )  # fmt: skip
    write_json(summary, report)
    log.info("wrote %s, %s and %s", out / "train.parquet", out / "score.parquet", report)


# --------------------------------------------------------------------------- train / evaluate
def _read_parquet(
    path: Path, what: str, columns: list[str] | None = None, filters: list | None = None
):
    """Read a Parquet input of a stage; a missing file names the stage that makes it."""
    import pandas as pd

    return pd.read_parquet(_existing(path, what), columns=columns, filters=filters)


def _existing(path: Path, what: str) -> Path:
    """Return a stage's input path; a missing file names the stage that makes it."""
    if not path.is_file():
        raise ChurnError(f"{path}: not found ({what}); run `dvc repro` first")
    return path


def _read_snapshots(path: Path, train: TrainParams, horizon_days: int | None = None):
    """Read the training snapshots with fit and gap rows thinned to train.sample_customers and
    calibration and test rows to train.sample_held_out_customers before pandas holds them
    (churn.train.read_snapshots). Without horizon_days, only the evaluation model's sample (no
    production refit's rows)."""
    from churn.train import read_snapshots

    if not path.is_file():
        raise ChurnError(f"{path}: not found (training snapshots); run `dvc repro` first")
    return read_snapshots(
        path, train.sample_customers, horizon_days, train.sample_held_out_customers
    )


def _read_role(path: Path, role: str):
    """Read the training snapshots' rows of one role (all rows when it has none: short
    histories, where the drift reference falls back to the newest cutoff)."""
    from churn.columns import ROLE

    rows = _read_parquet(path, "training snapshots", filters=[(ROLE, "==", role)])
    return rows if len(rows) else _read_parquet(path, "training snapshots")


@app.command()
def train(
    snapshots: Annotated[Path, _required("Training snapshots (features stage).")],
    out: Annotated[Path, _required("Folder for the model to promote and score (challenger).")],
    evaluation_out: Annotated[Path, _required("Folder for the model evaluate measures.")],
    campaigns: Annotated[
        Path | None,
        typer.Option(help="Treatment-group members of every list (ledger stage); left out."),
    ] = None,
    params: ParamsPath = Path("params.yaml"),
    tracking: Annotated[
        bool, typer.Option(help="Log the run and register the model in MLflow.")
    ] = True,
) -> None:
    """Fit LightGBM + calibrator (plus the production refit); register the challenger in MLflow."""
    from churn import tracking as mlflow_tracking
    from churn.columns import ROLE
    from churn.definition import describe_definition
    from churn.model import MODEL_FILE
    from churn.train import exclude_campaign_contacts, feature_columns, fit_model

    settings = _stage_params("train", params)
    frame, customers_fit = _read_snapshots(snapshots, settings.train, settings.churn.horizon_days)
    fingerprint = mlflow_tracking.data_fingerprint(frame, snapshots)
    definition = describe_definition(settings.churn, feature_columns(frame, str(snapshots)))
    contacted = _read_parquet(campaigns, "campaign contacts") if campaigns is not None else None
    frame, excluded = exclude_campaign_contacts(frame, contacted, settings.churn.horizon_days)
    log.info(
        "campaigns: %d training rows of %d customers left out (treated while their label was "
        "being observed); the model learns from control and never-listed customers",
        excluded["rows_excluded"],
        excluded.get("customers_excluded", 0),
    )
    result = fit_model(
        frame,
        settings.train,
        settings.churn.horizon_days,
        str(snapshots),
        metadata={"data": fingerprint, "definition": definition, "campaigns": excluded},
        customers_fit=customers_fit,
    )
    model = result.production_model
    # each folder is written once and holds no run id: DVC tracks it, so it must be reproducible
    model.save(out)
    evaluation_shas = result.model.save(evaluation_out)
    log.info(
        "trained %d rounds on %d fit rows; calibrator %s; held-out calibration log loss %.4f",
        result.rounds,
        int(result.diagnostics["rows_fit"]),
        model.calibrator.kind,
        result.diagnostics["calibration_logloss"],
    )
    if result.production is not None:
        log.info(
            "production refit on %d rows over %d cutoffs, calibrated on the test customers it "
            "did not train on; its booster ranks them at ROC AUC %.4f",
            int(result.diagnostics["production_rows"]),
            int(result.diagnostics["production_cutoffs"]),
            result.diagnostics["production_test_roc_auc"],
        )
    if not tracking:
        return
    root = Path.cwd()
    names = settings.registry
    record = mlflow_tracking.log_training(
        mlflow_tracking.tracking_uri(root),
        names.training_experiment,
        names.model,
        out,
        {"churn": settings.churn.model_dump(mode="json"), "train": settings.train.model_dump()},
        result.diagnostics,
        {
            **mlflow_tracking.git_revision(root),
            "definition": definition["fingerprint"],
            "evaluation": model.evaluation,  # out_of_time, or in_time_holdout (short history)
        },
        fingerprint,
        mlflow_tracking.synthetic_input_example(model, frame[frame[ROLE] == "fit"]),
        extra_shas={mlflow_tracking.EVALUATION_SHA_TAG: evaluation_shas[MODEL_FILE]},
    )
    log.info(
        "MLflow run %s: %s version %s is now @challenger",
        record.run_id,
        record.model_name,
        record.model_version,
    )


@app.command()
def evaluate(
    snapshots: Annotated[Path, _required("Training snapshots (features stage).")],
    model_dir: Annotated[
        Path, typer.Option("--model", help="Model that never saw the test cutoff.")
    ],
    metrics: Annotated[Path, _required("Metrics JSON to write.")],
    segments: Annotated[Path, _required("Per-segment metrics JSON to write.")],
    plots: Annotated[Path, _required("Folder for plot tables.")],
    production_dir: Annotated[
        Path | None,
        typer.Option("--production", help="Production model folder: its ranking too."),
    ] = None,
    campaigns: Annotated[
        Path | None,
        typer.Option(help="Treatment-group members of every list (ledger stage); left out."),
    ] = None,
    params: ParamsPath = Path("params.yaml"),
    tracking: Annotated[bool, typer.Option(help="Log to the model's MLflow run.")] = True,
) -> None:
    """Measure the model and the baselines on the test cutoff; write metrics and plot tables."""
    from churn import tracking as mlflow_tracking
    from churn.evaluate import evaluate_model
    from churn.files import write_csv, write_json
    from churn.model import MODEL_FILE, ChurnModel
    from churn.train import exclude_campaign_contacts

    settings = _stage_params("evaluate", params)
    model = ChurnModel.load(model_dir)
    production = None if production_dir is None else ChurnModel.load(production_dir)
    if production is not None and production.metadata.get("role") != "production":
        production = None  # train.production_refit off: the challenger is the evaluation model
    # like train: rows whose label a campaign may have changed measure the campaign, not the model
    contacted = _read_parquet(campaigns, "campaign contacts") if campaigns is not None else None
    frame, excluded = exclude_campaign_contacts(
        _read_snapshots(snapshots, settings.train)[0],
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


# --------------------------------------------------------------------------- promote
def _registry(names):  # noqa: ANN001 - churn.config.RegistryParams
    from churn.tracking import ModelRegistry, tracking_uri

    return ModelRegistry(tracking_uri(Path.cwd()), names.model)


def _production(folder: Path, exports: Path):  # noqa: ANN202 - churn.promote.Production
    """Read what production is outside the registry: the champion folder and published lists."""
    from churn.model import ChurnModel
    from churn.promote import Production
    from churn.publish.record import published_dates

    published = tuple(published_dates(exports))
    if not folder.is_dir() or not any(folder.iterdir()):
        return Production(folder, None, published=published)
    try:
        return Production(folder, ChurnModel.load(folder), published=published)
    except ChurnError as error:
        return Production(folder, None, folder_error=str(error), published=published)


def _restore_champion(registry, production, names) -> str:  # noqa: ANN001
    """Register the champion folder in a new registry (once) and point the alias at it."""
    import datetime as dt
    import tempfile

    from churn.promote import model_sha
    from churn.tracking import RESTORED_TAG

    model = production.model
    sha = model_sha(model)
    version = registry.find_version(sha) if sha else None
    if version is None:
        stamp = dt.datetime.now().astimezone().isoformat(timespec="seconds")
        note = (
            f"version {model.metadata.get('model_version')} of "
            f"{model.metadata.get('registered_model')!r} in a lost registry, re-registered from "
            f"{production.folder} at {stamp}"
        )
        with tempfile.TemporaryDirectory(prefix="churn-restore-") as tmp:
            model.save(tmp)
            version = registry.register_folder(tmp, names.gate_experiment, {RESTORED_TAG: note})
    registry.set_alias(names.champion_alias, version)
    log.warning(
        "--new-registry: the champion in %s (was version %s) is version %s of %r in this "
        "registry; published manifests name its old number",
        production.folder,
        model.metadata.get("model_version"),
        version,
        names.model,
    )
    return version


@app.command()
def promote(
    challenger: Annotated[Path, _required("Challenger model folder.")],
    snapshots: Annotated[Path, _required("Training snapshots (the gate's rows).")],
    out: Annotated[Path, _required("Folder that holds the champion after this run.")],
    report: Annotated[Path, _required("Decision report.")],
    exports: Annotated[
        Path, _required("The published-lists record (read: a lost registry must not pass).")
    ],
    apply: Annotated[
        bool,
        typer.Option(
            "--apply", envvar=APPLY_ENV, help="Move the champion alias if the challenger wins."
        ),
    ] = False,
    new_definition: Annotated[
        bool,
        typer.Option(
            "--new-definition",
            envvar=NEW_DEFINITION_ENV,
            help="Start a new line of models under a changed churn definition (floor only).",
        ),
    ] = False,
    new_registry: Annotated[
        bool,
        typer.Option(
            "--new-registry",
            envvar=NEW_REGISTRY_ENV,
            help="The registry was lost: register the champion in --out again, then gate.",
        ),
    ] = False,
    params: ParamsPath = Path("params.yaml"),
) -> None:
    """Champion/challenger gate; writes the champion folder (what the alias points to) last."""
    import tempfile

    from churn.files import write_json
    from churn.model import ChurnModel
    from churn.promote import registry_gap, registry_gap_error, resolve_version, run_gate

    settings = _stage_params("promote", params)
    names = settings.registry
    registry = _registry(names)
    production = _production(out, exports)
    location = registry.tracking_uri.removeprefix("sqlite:///")
    gap = registry_gap(production, registry, names.champion_alias, location)
    if gap is not None:
        if not new_registry or production.model is None:
            raise registry_gap_error(gap, production)
        _restore_champion(registry, production, names)
    elif new_registry:
        log.info("--new-registry: the registry already holds the champion; nothing to restore")
    model = ChurnModel.load(challenger)
    version = resolve_version(model, registry)
    if version is None:
        # trained with --no-tracking: register it (a new version, not an alias move)
        with tempfile.TemporaryDirectory(prefix="churn-register-") as tmp:
            model.save(tmp)
            version = registry.register_folder(tmp, names.gate_experiment)
    outcome = run_gate(
        model,
        version,
        _read_snapshots(snapshots, settings.train)[0],
        registry,
        settings.promote,
        settings.drift,
        names,
        apply=apply,
        new_definition=new_definition,
    )
    outcome.champion.save(out)
    if outcome.report.get("fallback"):
        log.warning(
            "%s holds the fallback %s, not a registered model: %s",
            out,
            outcome.champion_version,
            outcome.report["fallback"]["why"],
        )
    elif not registry.has_reference(outcome.champion_version):
        registry.attach_reference(outcome.champion_version, out)
    write_json(outcome.report, report)
    registry.log_decision(names.gate_experiment, outcome.report, report)
    if outcome.move_alias:
        # the very last step: production changes only after the folder and the report exist
        registry.set_alias(names.champion_alias, outcome.champion_version)
    alias = outcome.report["alias"]
    log.info(
        "gate: %s; %s holds version %s; alias %r %s",
        outcome.report["decision"],
        out,
        outcome.champion_version,
        alias["name"],
        f"moved {alias['before']} -> {alias['after']}" if outcome.move_alias else "unchanged",
    )
    for reason in outcome.report["reasons"]:
        log.info("  %s", reason)
    if alias["pending_apply"]:
        log.info(
            "challenger %s passes the gate; production stays on %s until applied "
            "(`churn retrain`, or %s=1 dvc repro)",
            version,
            alias["before"],
            APPLY_ENV,
        )


# --------------------------------------------------------------------------- score / drift
def _read_json(path: Path | None, stage: str) -> dict | None:
    """Read a stage's JSON report (None without a path or file); bad JSON names the rerun."""
    import json

    if path is None or not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ChurnError(f"{path}: not valid JSON ({error}); rerun `{stage}`") from None


@app.command()
def uplift(
    report: Annotated[Path, _required("Gate report (JSON).")],
    ledger_table: Annotated[
        Path | None,
        typer.Option(help="The ledger stage's uplift table (Parquet): matured lists' customers."),
    ] = None,
    snapshots: Annotated[
        Path | None,
        typer.Option(help="Training snapshots (features): the baseline's risk model learns here."),
    ] = None,
    contacted: Annotated[
        Path | None,
        typer.Option(
            help="Treatment-group members of every list (ledger): left out of the risk model."
        ),
    ] = None,
    snapshot: Annotated[
        Path | None, typer.Option(help="As-of snapshot (features): today's customers.")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Today's per-customer uplift for the score stage (Parquet; empty "
            "unless the gate switched)."
        ),
    ] = None,
    campaigns: Annotated[
        Path | None,
        typer.Option(
            help="Instead of --ledger-table: campaign rows, Parquet or CSV (columns: "
            "churn.uplift.data)."
        ),
    ] = None,
    candidates: Annotated[
        Path | None,
        typer.Option(
            help="With --campaigns: customers to choose from (features, expected_value, covered)."
        ),
    ] = None,
    contacts: Annotated[
        Path | None, typer.Option(help="Where to write the chosen contacts (Parquet).")
    ] = None,
    max_contacts: Annotated[
        int | None, typer.Option(help="Campaign capacity: contact at most this many.", min=1)
    ] = None,
    params: ParamsPath = Path("params.yaml"),
) -> None:
    """Gate uplift targeting on held-out campaigns (the `uplift` stage reads the ledger's table);
    with candidates, choose contacts by uplift."""
    import pandas as pd

    from churn.files import parquet_bytes, write_bytes, write_json, write_parquet

    settings = _stage_params("uplift", params)
    if (ledger_table is None) == (campaigns is None):
        raise ChurnError("uplift: pass exactly one of --ledger-table (the stage) or --campaigns")
    if ledger_table is not None:
        from churn.uplift.stage import run_uplift_stage

        missing = [
            f"--{name}"
            for name, value in (("snapshots", snapshots), ("snapshot", snapshot), ("out", out))
            if value is None
        ]
        if missing:
            raise ChurnError(f"uplift: --ledger-table also needs {', '.join(missing)}")
        result = run_uplift_stage(
            _read_parquet(ledger_table, "the ledger's uplift table"),
            _existing(snapshots, "training snapshots"),
            _read_parquet(contacted, "campaign contacts") if contacted is not None else None,
            _existing(snapshot, "as-of snapshot"),  # read only when the gate switched
            settings.churn,
            settings.score,
            settings.uplift,
            str(ledger_table),
        )
        write_json(result.report, report)
        write_bytes(out, parquet_bytes(result.uplift))
        log.info("uplift gate: %s — %s", result.report["policy_in_use"], result.report["reason"])
        return

    from churn.uplift.plan import plan_uplift

    def read(path: Path, what: str) -> pd.DataFrame:
        if not path.is_file():
            raise ChurnError(f"{path}: not found ({what})")
        if path.suffix == ".parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path, dtype={"customer_id": str, "campaign_id": str})

    if contacts is not None and candidates is None:
        raise ChurnError("uplift: --contacts needs --candidates (whom to choose from)")
    rows = read(campaigns, "campaign rows")
    pool = read(candidates, "uplift candidates") if candidates is not None else None
    result, chosen = plan_uplift(
        rows, settings.uplift, settings.score.contact_cost, pool, max_contacts, str(campaigns)
    )
    write_json(result, report)
    log.info("uplift gate: %s — %s", result["policy_in_use"], result["reason"])
    if chosen is not None and contacts is not None:
        write_parquet(chosen, contacts)
        log.info(
            "uplift contacts: %s of %s candidates -> %s",
            int(chosen["contact"].sum()),
            len(chosen),
            contacts,
        )
    elif candidates is not None:
        log.info("no uplift contact list: the gate keeps risk x value")


@app.command()
def score(
    snapshot: Annotated[Path, _required("As-of snapshot (features).")],
    model: Annotated[Path, _required("Champion model folder (promote stage).")],
    suppression: Annotated[Path, _required("Suppression list CSV (customer_id).")],
    out: Annotated[Path, _required("Scores table.")],
    report: Annotated[Path, _required("Metrics JSON.")],
    profit_curve: Annotated[Path, _required("Profit curve CSV (DVC plot).")],
    ledger: Annotated[
        Path | None,
        typer.Option(help="Campaign ledger report (JSON): measured save rates per tier."),
    ] = None,
    uplift_report: Annotated[
        Path | None, typer.Option(help="Uplift gate report (JSON): the policy in use.")
    ] = None,
    uplift: Annotated[
        Path | None,
        typer.Option(help="Per-customer uplift (Parquet), used when the gate switched."),
    ] = None,
    params: ParamsPath = Path("params.yaml"),
) -> None:
    """Score every customer of the as-of snapshot: probability, tier, value, target, reasons."""
    from churn.columns import CUSTOMER_ID
    from churn.files import parquet_bytes, write_bytes, write_csv, write_json
    from churn.model import ChurnModel
    from churn.score import build_profit_curve, build_scores, summarise_scores
    from churn.score.suppression import check_suppression, read_suppression
    from churn.score.targeting import UpliftTargeting, choose_save_rates

    stage = _stage_params("score", params)
    settings = stage.score
    champion = ChurnModel.load(model)
    suppressed = read_suppression(suppression)
    save_rates = choose_save_rates(_read_json(ledger, "churn ledger"), settings)
    for tier, source in save_rates.sources.items():
        log.info(
            "save rate %s: %.4f (%s%s)",
            tier,
            save_rates.rates[tier],
            source["source"],
            f", {source['reason']}"
            if source["source"] == "assumed"
            else f" by {len(source['campaigns'])} campaign(s), {source['status']}",
        )
    gate = _read_json(uplift_report, "churn uplift")
    targeting = None
    if gate is not None and gate.get("policy_in_use") == "uplift":
        if uplift is None:
            raise ChurnError(
                f"score: {uplift_report} says the uplift policy is in use; pass --uplift "
                "(data/uplift/uplift.parquet)"
            )
        if not uplift.is_file():
            raise ChurnError(f"{uplift}: not found (per-customer uplift); run `dvc repro` first")
        targeting = UpliftTargeting(
            # on Spark the table is read by Spark (_score_on_spark), never whole on the driver
            None if stage.engine.kind == "spark" else _read_parquet(uplift, "per-customer uplift"),
            stage.uplift.exploration_share,
            stage.uplift.seed,
            str(gate.get("reason")),
        )
    log.info(
        "targeting policy: %s",
        "uplift (the gate switched)"
        if targeting
        else "risk x value (the uplift gate did not "
        "switch" + (f": {gate.get('reason')})" if gate else ")"),
    )
    if stage.engine.kind == "spark":
        scores = _score_on_spark(
            snapshot, champion, settings, suppressed, stage.engine, out, save_rates, targeting,
            uplift,
        )  # fmt: skip
    else:
        scores = build_scores(
            _read_parquet(snapshot, "as-of snapshot"),
            champion,
            settings,
            suppressed,
            save_rates,
            targeting,
        )
    matched, warning = check_suppression(suppressed, scores[CUSTOMER_ID], str(suppression))
    if warning:
        log.warning("%s", warning)
    if stage.engine.kind != "spark":  # Spark wrote the file from its part files
        write_bytes(out, parquet_bytes(scores))
    write_csv(build_profit_curve(scores, settings), profit_curve)
    metrics = summarise_scores(scores, len(suppressed))
    as_of = str(scores["as_of"].iloc[0])
    report_data = {"as_of": as_of, "model_version": champion.version, **metrics}
    write_json({**report_data, "suppression": {**matched, "warned": warning is not None}}, report)
    log.info(
        "scored %d customers as of %s with model %s: %d flagged (%d control), %d suppressed",
        metrics["customers"],
        as_of,
        champion.version,
        metrics["flagged"],
        metrics["flagged_control"],
        metrics["suppressed"],
    )


def _score_on_spark(  # noqa: ANN202
    snapshot: Path, champion, settings, suppressed, engine, out: Path, save_rates, targeting=None,  # noqa: ANN001
    uplift: Path | None = None,
):  # fmt: skip
    """Score every customer on Spark and write `out`; return the written scores (pandas) for the
    stage's two small reports. With `targeting` (the uplift policy) Spark reads `uplift`."""
    import tempfile
    from dataclasses import replace

    from churn.score.targeting import TARGETING_ATTRS
    from churn.spark.score import score_on_spark, write_scores
    from churn.spark.session import open_spark
    from churn.spark.sources import read_source

    if not snapshot.is_file():
        raise ChurnError(f"{snapshot}: not found (as-of snapshot); run `dvc repro` first")
    spark = open_spark(engine)
    try:
        if targeting is not None:
            targeting = replace(targeting, uplift=read_source(spark, uplift))
        result = score_on_spark(
            read_source(spark, snapshot), champion, settings, suppressed, save_rates, targeting
        )
        with tempfile.TemporaryDirectory(prefix="churn-spark-score-") as work_dir:
            write_scores(result, out, Path(work_dir))
        log.info("scored %d customers on Spark (%d flagged)", result.customers, result.flagged)
    finally:
        spark.stop()
    # the profit curve and reports/score.json read the written file (every customer's row)
    scores = _read_parquet(out, "scores")
    scores.attrs[TARGETING_ATTRS] = result.targeting
    return scores


@app.command()
def drift(
    champion: Annotated[Path, _required("Champion model folder.")],
    training: Annotated[Path, _required("Training snapshots (the newest labelled cutoff).")],
    snapshot: Annotated[Path, _required("As-of feature snapshot.")],
    scores: Annotated[Path, _required("Scores of that snapshot.")],
    report: Annotated[Path, _required("Drift report (DVC metrics).")],
    params: ParamsPath = Path("params.yaml"),
) -> None:
    """PSI of every feature and the score against the newest labelled cutoff (warnings), and the
    features outside the training range."""
    from churn.columns import CHURN_PROBABILITY, CUSTOMER_ID
    from churn.drift import measure_drift, reference_from_training, training_ranges_in_file
    from churn.files import write_json
    from churn.model import ChurnModel

    settings = _stage_params("drift", params).drift
    model = ChurnModel.load(champion)
    # the reference is one cutoff's rows; the training ranges are read one column at a time
    reference, _ = reference_from_training(
        _read_role(training, settings.reference_role),
        model.spec.numeric,
        model.spec.categorical,
        model.predict_proba,
        settings,
    )
    ranges = training_ranges_in_file(training, model.spec.numeric)
    rows = _read_parquet(snapshot, "as-of snapshot")
    scored = _read_parquet(scores, "scores", [CUSTOMER_ID, CHURN_PROBABILITY])
    # measure the population that was scored (the snapshot may hold customers scoring skipped)
    rows = rows[rows[CUSTOMER_ID].isin(scored[CUSTOMER_ID])]
    result = measure_drift(reference, rows, scored[CHURN_PROBABILITY], settings, ranges)
    write_json(result, report)
    level = log.warning if result["status"] != "ok" else log.info
    blocks = "blocks publish" if result["publish_blocked"] else "a warning, publish not blocked"
    level("drift: PSI %s (%s) — %s", result["status"], blocks, result["detail"])


# --------------------------------------------------------------------------- report
@app.command()
def report(
    transactions: Annotated[Path, _required("Clean transactions (Parquet).")],
    out: Annotated[Path, _required("Folder for the report files.")],
    customers: Annotated[Path | None, typer.Option(help="Customers (Parquet): segments.")] = None,
    nps: Annotated[Path | None, typer.Option(help="NPS answers (Parquet).")] = None,
    scores: Annotated[Path | None, typer.Option(help="Latest scores (Parquet), if any.")] = None,
    metrics: Annotated[Path | None, typer.Option(help="Evaluate metrics (JSON), if any.")] = None,
    backtest: Annotated[Path | None, typer.Option(help="`churn backtest` report, if any.")] = None,
    drift: Annotated[
        Path | None, typer.Option(help="`churn drift` report: features outside the training range.")
    ] = None,
    ledger: Annotated[Path | None, typer.Option(help="`churn ledger` report, if any.")] = None,
    uplift: Annotated[
        Path | None, typer.Option(help="`churn uplift` report (the targeting policy), if any.")
    ] = None,
    score_report: Annotated[
        Path | None,
        typer.Option(help="`churn score` report (the save rates per tier and their source)."),
    ] = None,
    params: ParamsPath = Path("params.yaml"),
) -> None:
    """Write the retention report: retention.html, retention.json, retention_monthly.csv, cohorts.csv."""
    import json
    import tempfile

    import duckdb
    import pandas as pd

    from churn.engine import open_duckdb, resource_error
    from churn.files import write_csv, write_json, write_text
    from churn.report import build_report, headline_figures
    from churn.report.activity import DuckDBAggregates
    from churn.report.page import render_html

    settings = _stage_params("report", params)
    for path, what in ((transactions, "transactions"), (customers, "customers"), (nps, "nps")):
        if path is not None and not path.exists():
            raise ChurnError(f"{path}: {what} not found; run `churn ingest` first")
    scores = scores if scores is not None and scores.exists() else None
    metrics = metrics if metrics is not None and metrics.exists() else None
    try:
        metric_values = json.loads(metrics.read_text(encoding="utf-8")) if metrics else None
    except json.JSONDecodeError as error:
        raise ChurnError(f"{metrics}: not valid JSON ({error}); rerun `churn evaluate`") from None
    backtest = backtest if backtest is not None and backtest.exists() else None
    try:
        backtest_report = json.loads(backtest.read_text(encoding="utf-8")) if backtest else None
    except json.JSONDecodeError as error:
        raise ChurnError(f"{backtest}: not valid JSON ({error}); rerun `churn backtest`") from None
    drift = drift if drift is not None and drift.exists() else None
    try:
        drift_report = json.loads(drift.read_text(encoding="utf-8")) if drift else None
    except json.JSONDecodeError as error:
        raise ChurnError(f"{drift}: not valid JSON ({error}); rerun `churn drift`") from None
    ledger = ledger if ledger is not None and ledger.exists() else None
    try:
        ledger_report = json.loads(ledger.read_text(encoding="utf-8")) if ledger else None
    except json.JSONDecodeError as error:
        raise ChurnError(f"{ledger}: not valid JSON ({error}); rerun `churn ledger`") from None
    uplift_report = _read_json(uplift, "churn uplift")
    score_summary = _read_json(score_report, "churn score")

    def inputs() -> dict:  # read inside the engine's try: a MemoryError there gets the hint
        return {
            "nps": pd.read_parquet(nps) if nps else None,
            "customers": pd.read_parquet(customers) if customers else None,
            "scores": pd.read_parquet(scores) if scores else None,
            "metrics": metric_values,
            "backtest": backtest_report,
            "drift": drift_report,
            "ledger": ledger_report,
            "uplift": uplift_report,
            "score_report": score_summary,
            "sources": {
                "transactions": str(transactions),
                "nps": str(nps),
                "scores": str(scores),
                "backtest": str(backtest),
                "drift": str(drift),
                "ledger": str(ledger),
                "uplift": str(uplift),
                "score_report": str(score_report),
            },
        }

    if settings.engine.kind == "spark":
        from churn.spark.report import SparkReportAggregates
        from churn.spark.session import open_spark
        from churn.spark.sources import read_source

        spark = open_spark(settings.engine)
        try:
            # the transactions' aggregates run on Spark; only their small frames come back
            result = build_report(
                SparkReportAggregates(spark),
                read_source(spark, transactions),
                settings.report,
                settings.churn,
                **inputs(),
            )
        finally:
            spark.stop()
    else:
        with tempfile.TemporaryDirectory(prefix="churn-report-") as spill:
            con = open_duckdb(settings.engine, spill)
            try:
                result = build_report(
                    DuckDBAggregates(con),
                    con.read_parquet(str(transactions)),
                    settings.report,
                    settings.churn,
                    **inputs(),
                )
            except (duckdb.Error, MemoryError, OSError) as error:
                friendly = resource_error(error, settings.engine, "report", spill)
                if friendly is None:
                    raise
                raise friendly from None
            finally:
                con.close()
    write_text(out / "retention.html", render_html(result))
    write_json(headline_figures(result), out / "retention.json")
    write_csv(
        result.periods.drop(columns="period_index", errors="ignore"), out / "retention_monthly.csv"
    )
    write_csv(result.cohorts.drop(columns="period_index", errors="ignore"), out / "cohorts.csv")
    log.info(
        "report: %d %ss to %s, in %s%s",
        len(result.periods),
        settings.report.period,
        result.as_of,
        out,
        " (transactions aggregated on Spark)" if settings.engine.kind == "spark" else "",
    )


# --------------------------------------------------------------------------- import-lists / publish / at-risk
@app.command("import-lists")
def import_lists(
    source: Annotated[
        Path,
        typer.Argument(
            help="CSV of past campaign lists: list_id, list_date, customer_id, group "
            "(treatment/control)[, suggested_action, risk_tier, expected_value].",
            dir_okay=False,
        ),
    ],
    exports: ExportsOption = None,
) -> None:
    """Import campaign lists run before (or besides) churn into the published-lists record, for
    the campaign ledger (the same file twice records nothing new). Not a DVC stage: no
    `dvc repro` or `dvc exp run` writes the record."""
    from churn.lifecycle import import_past_lists

    import_past_lists(source, exports)


@app.command()
def publish(
    exports: ExportsOption = None,
    force: Annotated[
        bool, typer.Option(help="Replace a different list already published for the date.")
    ] = False,
    accept_drift: Annotated[
        bool, typer.Option(help="Publish despite a failed drift gate.")
    ] = False,
    allow_non_champion: Annotated[
        bool, typer.Option(help="Publish a list scored by a model that is not the champion.")
    ] = False,
    sql: Annotated[
        bool | None, typer.Option("--sql/--no-sql", help="Override publish.sql.enabled.")
    ] = None,
    params: ParamsPath = Path("params.yaml"),
) -> None:
    """Check the gates, then atomically publish the dated at-risk list and switch LATEST.json."""
    from churn import pipeline
    from churn.lifecycle import publish_scores

    settings = load_params(params)
    champion = _registry(settings.registry).alias_version(settings.registry.champion_alias)
    publish_scores(
        settings,
        exports or pipeline.exports_path(),
        champion,
        force=force,
        accept_drift=accept_drift,
        allow_non_champion=allow_non_champion,
        sql=sql,
        environ=os.environ,
    )


@app.command("at-risk")
def at_risk(
    exports: ExportsOption = None,
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
    from churn import pipeline
    from churn.files import write_bytes, write_stdout
    from churn.publish import lists
    from churn.publish.formats import render_list
    from churn.publish.record import read_list, read_manifest

    if group not in ("treatment", "control"):
        raise ChurnError(f"--group {group!r}: use treatment or control")
    to_stdout = out is None or str(out) == "-"
    file_format = file_format or (
        "csv" if to_stdout else {".json": "json", ".xlsx": "xlsx"}.get(out.suffix.lower(), "csv")
    )
    exports = exports or pipeline.exports_path()
    manifest = read_manifest(exports, date)
    selected = lists.filter_list(
        read_list(exports, manifest, group),
        tiers=tier,
        top=top,
        min_value=min_value,
        where=lists.parse_where(where or []),
    )
    data = render_list(selected, file_format)
    if to_stdout:
        if file_format == "xlsx":
            raise ChurnError("--format xlsx: give --out FILE.xlsx (no Excel on stdout)")
        try:
            write_stdout(data)
        except BrokenPipeError:
            # the reader stopped early (`| head`): stop quietly, with the shell's SIGPIPE status
            with contextlib.suppress(OSError, ValueError):  # no more "broken pipe" at exit
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(141) from None
    else:
        write_bytes(out, data)
    summary = f"{group} list as of {manifest['as_of']} (model {manifest['model_version']}):\n"
    typer.echo(summary + lists.summarise_list(selected), err=to_stdout)


@app.command("app")
def serve_app(
    host: Annotated[str, typer.Option(help="Address to listen on (loopback by default).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8050,
    exports: ExportsOption = None,
    behind_proxy: Annotated[
        bool,
        typer.Option(help="A proxy in front terminates TLS (trust its X-Forwarded-* headers)."),
    ] = False,
    tls_certfile: Annotated[Path | None, typer.Option(help="TLS certificate (PEM).")] = None,
    tls_keyfile: Annotated[Path | None, typer.Option(help="TLS private key (PEM).")] = None,
    params: ParamsPath = Path("params.yaml"),
) -> None:
    """For marketing: a web page over the published lists (filter, what-if, download, history)."""
    from churn import pipeline
    from churn.app.security import SECRET_ENV, check_bind, is_loopback
    from churn.lifecycle import app_paths

    try:
        from churn.app.server import AppConfig, serve
    except ImportError as error:
        raise ChurnError(
            f"churn app needs the `app` extra ({error.name} is missing): pip install 'churn[app]'"
        ) from None
    from churn.score.targeting import choose_save_rates

    settings = load_params(params)
    secret = os.environ.get(SECRET_ENV) or None
    tls = tls_certfile is not None and tls_keyfile is not None
    check_bind(host, secret=secret, tls=tls, behind_proxy=behind_proxy)
    suppression, report_page, ledger_report, backtest_report = app_paths()
    # the same save rates the score stage used (measured per tier where campaigns measured them)
    save_rates = choose_save_rates(_read_json(ledger_report, "churn ledger"), settings.score)
    config = AppConfig(
        exports=exports or pipeline.exports_path(),
        suppression=suppression,
        backtest=backtest_report,
        ledger=ledger_report,
        report_page=report_page,
        contact_cost=settings.score.contact_cost,
        save_rates=save_rates.rates,
        save_rate_measured=any(
            source["source"] == "measured" for source in save_rates.sources.values()
        ),
        horizon_days=settings.churn.horizon_days,
        expected_value_days=settings.score.expected_value_days,
        currency=settings.app.currency,
        secret=secret,
        # behind a proxy the Host header is the public name; a login guards the page instead
        loopback_only=is_loopback(host) and not behind_proxy,
        behind_proxy=behind_proxy,
    )
    scheme = "https" if tls else "http"
    log.info("churn app: open %s://%s:%d/ (Ctrl+C stops it)", scheme, host, port)
    serve(config, host, port, tls_certfile, tls_keyfile)


# --------------------------------------------------------------------------- backtest / rollback / retrain
@app.command()
def backtest(
    exports: ExportsOption = None,
    contacts: Annotated[
        Path | None,
        typer.Option(
            help="Contact log CSV (customer_id, contacted_at); default: the ledger stage's "
            "--contacts in dvc.yaml."
        ),
    ] = None,
    report: Annotated[
        Path | None, typer.Option(help="Backtest report (default: dvc.yaml's, read by report).")
    ] = None,
    params: ParamsPath = Path("params.yaml"),
) -> None:
    """Check published at-risk lists against what happened once their horizon passed."""
    from churn import pipeline
    from churn.lifecycle import run_backtest_report, show_rows

    rows = run_backtest_report(
        load_params(params),
        exports or pipeline.exports_path(),
        contacts,
        report or pipeline.backtest_report_path(),
    )
    show_rows(rows, "Backtest of published at-risk lists")


@app.command()
def rollback(
    to: Annotated[str | None, typer.Option("--to", help="Registered version to restore.")] = None,
    list_versions: Annotated[
        bool, typer.Option("--list", help="List registered versions and exit.")
    ] = False,
    params: ParamsPath = Path("params.yaml"),
) -> None:
    """Point the champion alias back at an earlier version; `dvc repro` then rescores with it."""
    import datetime as dt

    from churn.promote import rollback_to

    names = load_params(params).registry
    registry = _registry(names)
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
    stamp = dt.datetime.now().astimezone().isoformat(timespec="seconds")
    result = rollback_to(to, registry, names, f"rolled back to {to} at {stamp}")
    log.info("champion is version %s again (was %s)", result["after"], result["before"])
    log.info("run `dvc repro` (or `churn retrain`) so models/champion/ and the list follow")


@app.command()
def retrain(
    accept_drift: Annotated[
        bool, typer.Option("--accept-drift", help="Publish even if drift blocks it (reviewed).")
    ] = False,
    new_definition: Annotated[
        bool,
        typer.Option(
            "--new-definition",
            help="Start a new line of models under a changed churn definition (logged).",
        ),
    ] = False,
    force: Annotated[
        bool,
        typer.Option(help="Replace a different list already published for the date (kept aside)."),
    ] = False,
    new_registry: Annotated[
        bool,
        typer.Option(
            "--new-registry",
            help="The registry was lost: register models/champion again before the gate.",
        ),
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
    """For schedulers: lock, dvc repro (gate applied), publish, backtest; exits 0/10/20/75/1."""
    from churn.lifecycle import retrain_steps
    from churn.logs import add_log_file
    from churn.retrain import EXIT_ERROR, child_environ, run_retrain

    if log_file is not None:
        add_log_file(log_file)
    try:
        settings = load_params(params)
    except ChurnError as error:
        log.error("%s", error)  # into the log file too, where whoever reads the schedule looks
        raise typer.Exit(EXIT_ERROR) from None
    # a scheduler's bare PATH lacks the venv: the stages' `churn` must come from this one
    child_env = {**child_environ(sys.executable, os.environ), APPLY_ENV: "1"}
    if new_definition:
        log.warning("--new-definition: a challenger under a changed definition may become champion")
        child_env[NEW_DEFINITION_ENV] = "1"
    if new_registry:
        log.warning("--new-registry: models/champion/ is registered again in this registry")
        child_env[NEW_REGISTRY_ENV] = "1"
    steps = retrain_steps(settings, None, child_env, accept_drift, force)
    raise typer.Exit(run_retrain(steps, settings.retrain.lock_file))


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
    except Exception as error:  # noqa: BLE001 - only out-of-memory is turned into a message
        from churn.engine import in_process_out_of_memory, is_in_process_out_of_memory

        if not is_in_process_out_of_memory(error):
            raise
        stage = next((word for word in sys.argv[1:] if not word.startswith("-")), "churn")
        print(f"error: {in_process_out_of_memory(stage, type(error).__name__)}", file=sys.stderr)
        sys.exit(1)
