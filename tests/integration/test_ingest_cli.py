"""`churn ingest` end to end: outputs and report on generated data; errors reach users as one line."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

from support.churn_cli import run_churn
from support.paths import ROOT

SRC = ROOT / "src"


# the paths dvc.yaml's ingest stage passes (the command has no path defaults)
STAGE_PATHS = (
    "--out",
    "data/interim",
    "--report",
    "reports/ingest.json",
    "--sql-copies",
    "data/raw",
)


def _churn(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return run_churn(cwd, *args, timeout=120)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A project folder with the repository's params.yaml (small data) and generated raw files."""
    root = tmp_path_factory.mktemp("project")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["generate"]["customers"] = 400
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    done = _churn(root, "generate", "--out", "data/raw")
    assert done.returncode == 0, done.stderr
    return root


def _set_ingest(root: Path, **changes) -> None:
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["ingest"].update(changes)
    (root / "params.yaml").write_text(yaml.safe_dump(params))


def test_ingest_writes_clean_tables_quarantine_and_report(project):
    done = _churn(project, "ingest", *STAGE_PATHS, "--state", "state/history.json")
    assert done.returncode == 0, done.stderr
    report = json.loads((project / "reports/ingest.json").read_text())
    assert report["rows_read"] == (
        report["rows_clean"] + report["quarantined"] + report["duplicates_removed"]
    )
    assert report["quarantined"] > 0 and report["duplicates_removed"] > 0
    assert set(report["quarantined_by_reason"]) <= {
        "missing_customer_id", "unparseable_timestamp", "non_numeric_amount",
        "non_finite_amount", "future_timestamp",
    }  # fmt: skip
    schema = pq.read_schema(project / "data/interim/transactions.parquet")
    assert [f.name for f in schema] == [
        "customer_id",
        "timestamp",
        "date",
        "amount",
        "transaction_id",
    ]
    assert str(schema.field("timestamp").type) == "timestamp[us]"
    assert str(schema.field("date").type) == "date32[day]"
    transactions = pd.read_parquet(project / "data/interim/transactions.parquet")
    ordered = transactions.sort_values(["customer_id", "timestamp"], kind="stable")
    assert transactions["customer_id"].tolist() == ordered["customer_id"].tolist()
    assert transactions["customer_id"].str.len().eq(6).all()  # leading zeros kept
    quarantine = pd.read_parquet(project / "data/interim/quarantine.parquet")
    assert len(quarantine) == report["quarantined"]
    customers = pd.read_parquet(project / "data/interim/customers.parquet")
    nps = pd.read_parquet(project / "data/interim/nps.parquet")
    assert len(customers) == 400 and nps["nps_score"].between(0, 10).all()
    history = json.loads((project / "state/history.json").read_text())
    assert list(history["sources"].values())[0][-1]["rows_read"] == report["rows_read"]


def test_second_run_compares_volume_and_identical_input_gives_identical_output(project):
    first = (project / "data/interim/transactions.parquet").read_bytes()
    done = _churn(project, "ingest", *STAGE_PATHS, "--state", "state/history.json")
    assert done.returncode == 0, done.stderr
    report = json.loads((project / "reports/ingest.json").read_text())
    assert report["checks"]["volume"]["status"] == "ok"
    assert (project / "data/interim/transactions.parquet").read_bytes() == first


def test_volume_drop_fails_when_configured_without_a_traceback(project):
    small = project / "data/raw/small.csv"
    small.write_text("customer,order_id,ordered_at,amount\n000001,x,2024-01-01,1\n")
    _set_ingest(
        project, source="data/raw/small.csv", volume={"max_drop_share": 0.5, "action": "fail"}
    )
    history = project / "state/history.json"
    runs = json.loads(history.read_text())
    runs["sources"]["data/raw/small.csv|"] = [{"rows_read": 100, "run_at": "earlier"}]
    history.write_text(json.dumps(runs))
    done = _churn(project, "ingest", *STAGE_PATHS, "--state", "state/history.json")
    assert done.returncode == 1
    assert "fewer than the previous run" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"columns": {"customer_id": "client", "timestamp": "ordered_at", "amount": "amount"}},
         "column 'client'"),
        ({"source": "data/raw/nope.csv"}, "not found"),
        ({"source": "postgresql://u:pw@localhost/db", "sql": {"table": "t"}}, "password"),
    ],
)  # fmt: skip
def test_user_errors_print_one_clear_line_and_exit_1(project, change, expected):
    backup = (project / "params.yaml").read_text()
    try:
        _set_ingest(project, **change)
        done = _churn(project, "ingest", *STAGE_PATHS, "--state", "state/other.json")
    finally:
        (project / "params.yaml").write_text(backup)
    assert done.returncode == 1
    assert expected in done.stderr
    assert "Traceback" not in done.stderr
    assert "pw@" not in done.stderr
