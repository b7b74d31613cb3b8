"""The `report` stage's wiring: read the clean tables and the other stages' reports, aggregate
the transactions (DuckDB, or Spark by engine.kind), build the report (churn.report.build) and
write its four files."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from churn.errors import ChurnError
from churn.files import read_json, write_csv, write_json, write_text
from churn.logs import get_logger
from churn.report.build import build_report, headline_figures
from churn.report.page import render_html

log = get_logger("report")


def _present(path: Path | None) -> Path | None:
    return path if path is not None and path.exists() else None


def run(
    settings: Any,  # churn.config.StageParams: churn, report, engine
    transactions: Path,
    out: Path,
    *,
    customers: Path | None,
    nps: Path | None,
    scores: Path | None,
    metrics: Path | None,
    backtest: Path | None,
    drift: Path | None,
    ledger: Path | None,
    uplift: Path | None,
    score_report: Path | None,
) -> None:
    """Write retention.html, retention.json, retention_monthly.csv and cohorts.csv to `out`.
    Every input but the transactions is optional: a missing one leaves its section out."""
    for path, what in ((transactions, "transactions"), (customers, "customers"), (nps, "nps")):
        if path is not None and not path.exists():
            raise ChurnError(f"{path}: {what} not found; run `churn ingest` first")
    scores, metrics, backtest = _present(scores), _present(metrics), _present(backtest)
    drift, ledger = _present(drift), _present(ledger)
    metric_values = read_json(metrics, "rerun `churn evaluate`")
    backtest_report = read_json(backtest, "rerun `churn backtest`")
    drift_report = read_json(drift, "rerun `churn drift`")
    ledger_report = read_json(ledger, "rerun `churn ledger`")
    uplift_report = read_json(uplift, "rerun `churn uplift`")
    score_summary = read_json(score_report, "rerun `churn score`")

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
        from churn.spark.session import spark_session
        from churn.spark.sources import read_source

        with spark_session(settings.engine, "report") as spark:
            # the transactions' aggregates run on Spark; only their small frames come back
            result = build_report(
                SparkReportAggregates(spark),
                read_source(spark, transactions),
                settings.report,
                settings.churn,
                **inputs(),
            )
    else:
        import duckdb

        from churn.engine import open_duckdb, resource_error
        from churn.report.activity import DuckDBAggregates

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
