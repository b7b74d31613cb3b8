"""`churn report` end to end: the DVC stage's command on dev data, with and without scores."""

from __future__ import annotations

import contextlib
import io
import json
import shlex

import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from churn.cli import app
from churn.errors import ChurnError
from support.paths import ROOT
from support.report_data import OUTPUTS, drift_report, fake_scores


def write_project(folder, project_root, dev_data):
    """Fill folder with params.yaml and the ingest outputs the report stage depends on."""
    transactions, customers, nps = dev_data()
    interim = folder / "data" / "interim"
    interim.mkdir(parents=True)
    pq.write_table(transactions, interim / "transactions.parquet")
    customers.to_parquet(interim / "customers.parquet", index=False)
    nps.to_parquet(interim / "nps.parquet", index=False)
    (folder / "params.yaml").write_text((project_root / "params.yaml").read_text())
    return folder


@pytest.fixture
def project(tmp_path, project_root, monkeypatch, dev_data):
    monkeypatch.chdir(write_project(tmp_path, project_root, dev_data))
    return tmp_path


def stage_command(project_root) -> list[str]:
    """Return the report stage's command from dvc.yaml, without the leading `churn`."""
    stage = yaml.safe_load((project_root / "dvc.yaml").read_text())["stages"]["report"]
    return shlex.split(stage["cmd"])[1:]


def run(args):
    result = CliRunner().invoke(app, args)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, dev_data):
    """Run the stage's command once, before the score and evaluate stages have written anything."""
    project_root = ROOT
    folder = write_project(tmp_path_factory.mktemp("report"), project_root, dev_data)
    with contextlib.chdir(folder):
        run(stage_command(project_root))
    return {name: (folder / "reports" / name).read_bytes() for name in OUTPUTS}


def test_stage_command_writes_every_output_before_scores_and_metrics_exist(first_run):
    figures = json.loads(first_run["retention.json"])
    assert figures["latest_period"] == "Nov 2025"  # data ends 30 Dec 2025: December is unfinished
    assert figures["customers_end"] == (
        figures["customers_start"] + figures["customers_new"] - figures["customers_lost"]
    )
    assert "scoring" not in figures
    page = first_run["retention.html"].decode()
    assert "Not available yet: no scoring was found" in page
    assert "Model quality: not available" in page


def test_csv_plots_have_the_columns_dvc_plots_name(first_run):
    monthly = pd.read_csv(io.BytesIO(first_run["retention_monthly.csv"]))
    cohorts = pd.read_csv(io.BytesIO(first_run["cohorts.csv"]))
    assert {"period", "period_start", "retention_rate_pct", "churn_rate_pct"} <= set(monthly)
    assert {"cohort", "periods_since_first", "retention_pct"} <= set(cohorts)
    assert monthly["period_start"].is_monotonic_increasing
    settled = monthly[~monthly["warm_up"]]
    assert settled["retention_rate_pct"].between(50, 100).all()
    assert (settled["retention_rate_pct"] + settled["churn_rate_pct"]).round(1).eq(100).all()


def test_rerunning_gives_byte_identical_outputs(first_run, project, project_root):
    run(stage_command(project_root))
    assert {name: (project / "reports" / name).read_bytes() for name in OUTPUTS} == first_run


def test_scores_and_metrics_are_used_once_they_exist(project, project_root, dev_data):
    _, customers, _ = dev_data()
    (project / "data" / "scores").mkdir(parents=True)
    fake_scores(customers, "2025-12-30").to_parquet(project / "data" / "scores" / "scores.parquet")
    (project / "reports").mkdir()
    (project / "reports" / "metrics.json").write_text(
        json.dumps({"model": {"roc_auc": 0.8, "lift_top10": 3.1}, "base_churn_rate": 0.3})
    )
    (project / "reports" / "drift.json").write_text(json.dumps(drift_report(tenure_days=0.101)))
    run(stage_command(project_root))
    figures = json.loads((project / "reports" / "retention.json").read_text())
    assert figures["scoring"]["scored_customers"] == len(customers)
    page = (project / "reports" / "retention.html").read_text()
    assert "ROC AUC 0.80" in page
    assert "By channel" in page
    assert "<code>tenure_days</code>: 10.1% of the scored customers lie outside" in page


def test_missing_transactions_is_an_error_saying_to_run_ingest(project):
    with pytest.raises(
        ChurnError, match="nothing.parquet: transactions not found; run `churn ingest`"
    ):
        run(["report", "--transactions", "nothing.parquet", "--out", "reports"])


def test_broken_metrics_file_is_an_error_naming_the_file(project):
    (project / "metrics.json").write_text("{not json")
    with pytest.raises(ChurnError, match="metrics.json: not valid JSON"):
        run(
            [
                "report",
                "--transactions",
                "data/interim/transactions.parquet",
                "--metrics",
                "metrics.json",
                "--out",
                "reports",
            ]
        )
