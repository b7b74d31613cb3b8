"""The report stage on Spark (engine.kind: spark) gives DuckDB's figures: every aggregate the report
takes from the transactions, computed by the same SQL on Spark local (ANSI on, JVM zone far from
UTC) and on DuckDB, on generated data and on hand-built edge cases, and once over Spark Connect;
and `churn report` with the Spark engine writes DuckDB's files byte for byte."""

from __future__ import annotations

import contextlib
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from churn.cli import app
from churn.config import ChurnParams, ReportParams
from churn.definition import resolve_as_of
from churn.report import build_report, headline_figures
from churn.report.activity import (
    DuckDBAggregates,
    active_runs,
    check_transactions,
    count_churn_by_nps,
    count_cohorts,
    count_flows,
    summarize_sales,
)
from churn.report.build import assemble_periods
from churn.report.periods import last_complete_period
from churn.report.survey import nps_answers_by_day
from support.features_tables import nps_frame, transactions_frame
from support.paths import ROOT
from support.report_data import OUTPUTS
from support.spark_parity import (
    connect_session,
    frame_differences,
    require_spark,
)

pytestmark = [pytest.mark.slow, pytest.mark.spark]

D = date
MONEY = ["gross_sales", "refunds", "revenue", "revenue_new", "revenue_returning"]

# with active_within_days 40 and as_of 2024-09-30: a spell ends 39 days after its last purchase
EDGE_ROWS = [
    ("one_purchase", D(2024, 3, 15), 20.0),
    ("refunds_only", D(2024, 2, 10), -5.0),
    ("refunds_only", D(2024, 5, 10), -7.25),
    # a month's last day then the next's first; a week's Sunday then Monday; a quarter's last day
    ("boundary", D(2024, 1, 31), 10.0),
    ("boundary", D(2024, 2, 1), 11.0),
    ("boundary", D(2024, 3, 3), 12.0),
    ("boundary", D(2024, 3, 4), 13.0),
    ("boundary", D(2024, 3, 31), 14.0),
    # leap day; the next purchase exactly 40 days later (a gap of 40 keeps the spell), then 41
    ("leap", D(2024, 2, 29), 9.99),
    ("leap", D(2024, 4, 9), 9.99),
    ("leap", D(2024, 5, 20), 9.99),
    # active until 2024-05-31 exactly (a period's last day), back on its next day
    ("ends_on_period_end", D(2024, 4, 22), 30.0),
    ("ends_on_period_end", D(2024, 7, 1), 30.0),
    # same-day purchases and a refund on a purchase day; amounts with more than 4 decimals
    ("same_day", D(2024, 1, 5), 12.345678),
    ("same_day", D(2024, 1, 5), 0.00005),
    ("same_day", D(2024, 1, 5), -0.00005),
    ("same_day", D(2024, 8, 30), 999_999_999.9999),
    ("same_day", D(2024, 8, 30), -3.33333),
    # bought in the first period, refunded in a later one, bought again after as_of
    ("refund_later", D(2024, 1, 2), 50.0),
    ("refund_later", D(2024, 3, 20), -50.0),
    ("refund_later", D(2024, 10, 5), 50.0),
    ("ids 00001", D(2024, 7, 31), 1.0),
    ("Ids 00001", D(2024, 9, 30), 2.0),
]
# June 2024 has no transactions at all: an empty period between full ones
assert not any(row[1].month == 6 for row in EDGE_ROWS)
EDGE_NPS = [
    ("boundary", D(2024, 3, 1), 9),  # on a period's first day: counts from the next period on
    ("boundary", D(2024, 4, 15), 3),
    ("leap", D(2024, 2, 29), 7),
    ("refunds_only", D(2024, 3, 1), 10),  # never active
    ("one_purchase", D(2024, 12, 1), 0),  # after as_of: ignored
    ("same_day", D(2024, 1, 5), 8),
    ("same_day", D(2024, 1, 5), 6),  # two answers on one day: the lower one is kept
]


def _write_inputs(folder: Path, transactions: pa.Table, nps: pa.Table) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(transactions, folder / "transactions.parquet")
    pq.write_table(nps, folder / "nps.parquet")
    return folder / "transactions.parquet", folder / "nps.parquet"


def _aggregates(aggregates, transactions, nps, settings: ReportParams, churn: ChurnParams) -> dict:
    """Return every frame the report aggregates from the transactions, computed by `aggregates`."""
    span = check_transactions(aggregates, transactions, "transactions")
    as_of = resolve_as_of(churn, span.first_date, span.last_date)
    period, window = settings.period, churn.active_within_days
    answers = nps_answers_by_day(nps, as_of)
    sales = summarize_sales(aggregates, transactions, period, as_of)
    with active_runs(aggregates, transactions, period, window, as_of) as runs:
        with aggregates.registered(runs=runs) as views:
            spells = aggregates.frame(
                f"SELECT customer_id, lo, hi, first_time FROM {views['runs']} "
                "ORDER BY customer_id, lo"
            )
        flows = count_flows(aggregates, runs)
        periods = assemble_periods(span, flows, sales, period, window, as_of)
        by_nps = count_churn_by_nps(aggregates, runs, answers, periods)
    last = last_complete_period(settings.cohort_period, as_of)
    cohorts = count_cohorts(aggregates, transactions, settings.cohort_period, as_of, last)
    return {
        "span": span,
        "sales": sales,
        "spells": spells,
        "flows": flows,
        "churn_by_nps": by_nps,
        "cohorts": cohorts,
    }


def _assert_same_aggregates(spark, files: tuple[Path, Path], settings, churn) -> dict:
    """Assert the report's aggregates and the whole report agree on both engines; return
    DuckDB's aggregates."""
    from churn.spark.report import SparkReportAggregates
    from churn.spark.sources import read_source

    transactions_file, nps_file = files
    nps = pq.read_table(nps_file).to_pandas()
    con = duckdb.connect()
    on_duckdb_engine = DuckDBAggregates(con)
    on_spark_engine = SparkReportAggregates(spark)
    duckdb_transactions = con.read_parquet(str(transactions_file))
    spark_transactions = read_source(spark, transactions_file)
    want = _aggregates(on_duckdb_engine, duckdb_transactions, nps, settings, churn)
    got = _aggregates(on_spark_engine, spark_transactions, nps, settings, churn)
    assert got["span"] == want["span"]
    for name in ("sales", "spells", "flows", "churn_by_nps", "cohorts"):
        assert len(want[name]) > 0, name
        assert frame_differences(got[name], want[name]) == [], name
    # money is summed as DECIMAL on both engines: the totals are equal exactly, not within 1e-9
    assert got["sales"][MONEY].equals(want["sales"][MONEY])

    reports = [
        build_report(engine, table, settings, churn, nps=nps)
        for engine, table in (
            (on_spark_engine, spark_transactions),
            (on_duckdb_engine, duckdb_transactions),
        )
    ]
    on_spark, on_duckdb = reports
    for part in ("periods", "cohorts", "churn_by_nps"):
        assert frame_differences(getattr(on_spark, part), getattr(on_duckdb, part)) == [], part
    assert headline_figures(on_spark) == headline_figures(on_duckdb)
    con.close()
    return want


@pytest.mark.parametrize(("period", "cohort_period"), [("month", "month"), ("week", "quarter")])
def test_spark_report_aggregates_equal_duckdb_on_generated_data(
    spark, generated_interim, period, cohort_period
):
    interim = generated_interim(customers=400, seed=5, days=1095)
    files = (interim / "transactions.parquet", interim / "nps.parquet")
    settings = ReportParams(period=period, cohort_period=cohort_period)
    want = _assert_same_aggregates(spark, files, settings, ChurnParams())
    assert want["churn_by_nps"]["customers_lost"].sum() > 0


@pytest.mark.parametrize(
    ("period", "cohort_period", "window"),
    [("month", "month", 40), ("week", "quarter", 40), ("quarter", "week", 365)],
)
def test_spark_report_aggregates_equal_duckdb_on_edge_cases(
    spark, tmp_path, period, cohort_period, window
):
    files = _write_inputs(tmp_path, transactions_frame(EDGE_ROWS), nps_frame(EDGE_NPS))
    settings = ReportParams(period=period, cohort_period=cohort_period)
    churn = ChurnParams(active_within_days=window, as_of=D(2024, 9, 30))
    want = _assert_same_aggregates(spark, files, settings, churn)
    # the edge cases are in the data compared: refunds-only customers have no spell, June is empty
    assert "refunds_only" not in set(want["spells"]["customer_id"])
    assert want["span"].rows == len(EDGE_ROWS)
    if period == "month":
        june = 2024 * 12 + 5
        assert june not in set(want["sales"]["period_index"])


def _report_cli(project: Path, params: Path) -> None:
    stage = yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]["report"]
    argv = [*str(stage["cmd"]).split()[1:], "--params", str(params)]
    with contextlib.chdir(project):
        result = CliRunner().invoke(app, argv)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0, result.output


def test_report_command_on_spark_writes_duckdbs_files(generated_interim, tmp_path):
    require_spark()
    interim = generated_interim(customers=400, seed=5, days=1095)
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    outputs = {}
    for kind in ("duckdb", "spark"):
        project = tmp_path / kind
        (project / "data").mkdir(parents=True)
        (project / "data" / "interim").symlink_to(interim)
        params["engine"]["kind"] = kind
        params["engine"]["spark"]["master"] = "local[1]"
        params["engine"]["spark"]["conf"].update(
            {"spark.driver.memory": "512m", "spark.local.dir": str(tmp_path)}
        )
        params_file = project / "params.yaml"
        params_file.write_text(yaml.safe_dump(params), encoding="utf-8")
        _report_cli(project, params_file)
        outputs[kind] = {name: (project / "reports" / name).read_bytes() for name in OUTPUTS}
    assert b"churn_rate_pct_by_nps_group" in outputs["duckdb"]["retention.json"]
    for name in OUTPUTS:  # the page too: it is deterministic
        assert outputs["spark"][name] == outputs["duckdb"][name], name


@pytest.fixture(scope="module")
def connect(tmp_path_factory):
    """A Spark Connect session on a local Connect server; the module's last test uses it,
    after the classic ones."""
    with connect_session(tmp_path_factory.mktemp("spark-connect")) as session:
        yield session


def test_connect_report_aggregates_equal_duckdb_on_edge_cases(connect, tmp_path):
    assert type(connect).__module__.startswith("pyspark.sql.connect")
    files = _write_inputs(tmp_path, transactions_frame(EDGE_ROWS), nps_frame(EDGE_NPS))
    settings = ReportParams(period="month", cohort_period="month")
    churn = ChurnParams(active_within_days=40, as_of=D(2024, 9, 30))
    _assert_same_aggregates(connect, files, settings, churn)
