"""The command line: thin commands in pipeline order, each its options and one call.

Each command parses params.yaml into the sections its stage declares in dvc.yaml (STAGE_PARAMS,
checked by a contract test) and calls its stage's own `run` (churn.<stage>, or
churn.<stage>.stage in a package), which reads the inputs, runs the stage and writes its outputs.
Stage commands take every path from dvc.yaml (no defaults here); the commands run outside DVC
(churn.lifecycle) find the stage files through `churn.pipeline`. tests/contract/test_thin_cli.py
keeps the commands thin.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from churn.config import StageParams, load_params
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
    "drift": ("drift", "engine"),
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


def _sections() -> set[str]:
    """Return every params section (or `section.key`) dvc.yaml's stages read."""
    return {section for names in STAGE_PARAMS.values() for section in names}


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
    from churn.config import run_check

    run_check(params, out, _sections())


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
    from churn.init.stage import init_options, run

    run(
        init_options(
            source,
            customers,
            nps,
            {
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
        ),
        params,
        _sections(),
        preview_rows,
        yes,
        typer.echo,
    )


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
    from churn.generate import run

    stage = _stage_params("generate", params)
    run(stage.generate, stage.score.tiers, out, file_format, customers)


# --------------------------------------------------------------------------- sources
@app.command()
def sources(
    out: Annotated[Path, _required("Fingerprints of the sources (the ingest stage's dependency).")],
    state: Annotated[Path, _required("Hashes of unchanged files between runs (outside DVC).")],
    params: ParamsPath = Path("params.yaml"),
) -> None:
    """Fingerprint each configured source, so that ingest reruns exactly when one changes."""
    from churn.ingest.fingerprint import run

    run(_stage_params("sources", params).ingest, out, state)


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
    from churn.ingest.stage import run

    settings = _stage_params("ingest", params)
    run(settings.ingest, settings.engine, out, report, sql_copies, state)


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
    from churn.ledger.stage import LedgerInputs, run

    run(
        _stage_params("ledger", params),
        exports,
        contacts,
        report,
        LedgerInputs(transactions, customers, nps, uplift_out, contacted_out),
    )


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
    from churn.features.stage import run

    run(_stage_params("features", params), transactions, customers, nps, out, report)


# --------------------------------------------------------------------------- train / evaluate
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
    from churn.train import run

    run(_stage_params("train", params), snapshots, out, evaluation_out, campaigns, tracking)


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
    from churn.evaluate.stage import run

    run(
        _stage_params("evaluate", params),
        snapshots,
        model_dir,
        metrics,
        segments,
        plots,
        production_dir,
        campaigns,
        tracking,
    )


# --------------------------------------------------------------------------- promote
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
    from churn.promote import run

    run(
        _stage_params("promote", params),
        challenger,
        snapshots,
        out,
        report,
        exports,
        apply=apply,
        new_definition=new_definition,
        new_registry=new_registry,
        apply_env=APPLY_ENV,
    )


# --------------------------------------------------------------------------- score / drift
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
    from churn.uplift.stage import run

    run(
        _stage_params("uplift", params),
        report,
        ledger_table=ledger_table,
        snapshots=snapshots,
        contacted=contacted,
        snapshot=snapshot,
        out=out,
        campaigns=campaigns,
        candidates=candidates,
        contacts=contacts,
        max_contacts=max_contacts,
    )


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
    from churn.score.stage import run

    run(
        _stage_params("score", params), snapshot, model, suppression, out, report, profit_curve,
        ledger, uplift_report, uplift,
    )  # fmt: skip


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
    from churn.drift.stage import run

    run(_stage_params("drift", params), champion, training, snapshot, scores, report)


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
    from churn.report.stage import run

    run(
        _stage_params("report", params),
        transactions,
        out,
        customers=customers,
        nps=nps,
        scores=scores,
        metrics=metrics,
        backtest=backtest,
        drift=drift,
        ledger=ledger,
        uplift=uplift,
        score_report=score_report,
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
    from churn.lifecycle import publish as publish_list

    publish_list(
        load_params(params),
        exports,
        force=force,
        accept_drift=accept_drift,
        allow_non_champion=allow_non_champion,
        sql=sql,
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
    from churn.lifecycle import at_risk as write_at_risk

    raise typer.Exit(
        write_at_risk(
            exports, date, tier, top, min_value, where, group, out, file_format, typer.echo
        )
    )


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
    from churn.lifecycle import serve_app as serve

    serve(params, host, port, exports, behind_proxy, tls_certfile, tls_keyfile)


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
    from churn.lifecycle import backtest as run_backtest

    run_backtest(load_params(params), exports, contacts, report)


@app.command()
def rollback(
    to: Annotated[str | None, typer.Option("--to", help="Registered version to restore.")] = None,
    list_versions: Annotated[
        bool, typer.Option("--list", help="List registered versions and exit.")
    ] = False,
    params: ParamsPath = Path("params.yaml"),
) -> None:
    """Point the champion alias back at an earlier version; `dvc repro` then rescores with it."""
    from churn.promote import rollback as roll_back

    roll_back(load_params(params).registry, to, list_versions)


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
    from churn.lifecycle import retrain as run_retrain

    raise typer.Exit(
        run_retrain(
            params,
            log_file,
            accept_drift=accept_drift,
            force=force,
            new_definition=new_definition,
            new_registry=new_registry,
            promote_env={
                "apply": APPLY_ENV,
                "new_definition": NEW_DEFINITION_ENV,
                "new_registry": NEW_REGISTRY_ENV,
            },
        )
    )


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
