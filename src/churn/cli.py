"""The command line: the only place that reads files, parses params and writes outputs."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from churn.config import load_params
from churn.errors import ChurnError
from churn.logs import get_logger, setup_logging

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
        log.info("gate %s: %s (%s)", gate.name, "pass" if gate.passed else "FAIL", gate.detail)
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
        if file_format == "xlsx" and sys.stdout.isatty():
            raise ChurnError("--format xlsx: give --out FILE.xlsx (binary data on a terminal)")
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        write_atomic(out, data)
    summary = f"{group} list as of {manifest['as_of']} (model {manifest['model_version']}):\n"
    typer.echo(summary + lists.summarise_list(selected), err=to_stdout)


def main() -> None:
    """Run the CLI; user-fixable problems print one clear message and exit 1, no traceback."""
    try:
        app()
    except ChurnError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
