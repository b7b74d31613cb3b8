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
