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
