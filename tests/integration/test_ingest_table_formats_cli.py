"""`churn ingest` refuses a Delta Lake table folder (transactions or a side table) in one clear line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from support.paths import ROOT
from support.table_folders import write_delta_table

STAGE_PATHS = (
    "--out",
    "data/interim",
    "--report",
    "reports/ingest.json",
    "--sql-copies",
    "data/raw",
)


def _project(root: Path, ingest: dict) -> Path:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["ingest"].update(ingest)
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    (root / "data/raw").mkdir(parents=True)
    (root / "data/raw/tx.csv").write_text(
        "customer,order_id,ordered_at,amount\nkept,o1,2024-01-01 10:00:00,10\n"
    )
    return root


def _ingest(cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run(
        [sys.executable, "-m", "churn", "ingest", *STAGE_PATHS, "--state", "state/history.json"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


COLUMNS = {"customer_id": "customer", "timestamp": "ordered_at", "amount": "amount"}


@pytest.mark.parametrize(
    ("ingest", "key"),
    [
        ({"source": "data/raw/orders", "columns": COLUMNS}, "ingest.source"),
        (
            {
                "source": "data/raw/tx.csv",
                "columns": COLUMNS,
                "customers": {
                    "source": "data/raw/orders",
                    "columns": {"customer_id": "customer", "signup_date": "ordered_at"},
                },
            },
            "ingest.customers.source",
        ),
    ],
    ids=["transactions", "customers"],
)
def test_churn_ingest_refuses_a_delta_table_in_one_line(tmp_path, ingest, key):
    root = _project(tmp_path, {"customers": None, "nps": None, **ingest})
    write_delta_table(root / "data/raw/orders")
    done = _ingest(root)
    assert done.returncode == 1, done.stderr
    assert f"data/raw/orders: {key} points at a Delta Lake table" in done.stderr
    assert "Export the table's current version to Parquet or CSV" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (root / "data/interim/transactions.parquet").exists()
