"""`churn ingest` integrity end to end: a first run passes with a note and records the columns;
a broken newest month stops the command, names the fix and replaces no output."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from churn import columns as C
from support.churn_cli import run_churn
from support.integrity_data import amounts_times_100, closed_base, newest_month
from support.paths import ROOT

ARGS = ["ingest", "--out", "data/interim", "--report", "reports/ingest.json"]
ARGS += ["--sql-copies", "data/raw", "--state", ".churn/ingest_history.json"]


def _churn(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return run_churn(cwd, *args, timeout=120)


def _write_export(transactions: pd.DataFrame, path: Path) -> None:
    export = pd.DataFrame(
        {
            "customer": transactions[C.CUSTOMER_ID],
            "ordered_at": transactions[C.TIMESTAMP].dt.strftime("%Y-%m-%d %H:%M:%S"),
            "amount": transactions[C.AMOUNT].map(lambda v: f"{v:.2f}"),
            "order_id": transactions[C.TRANSACTION_ID],
            "channel": transactions["channel"],
        }
    )
    export.to_csv(path, index=False)


def test_ingest_blocks_amounts_times_100_in_the_newest_month_after_a_clean_first_run(tmp_path):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["ingest"].update(
        source="export.csv",
        passthrough=["channel"],
        timezone="UTC",
        reject_after="2030-01-01 00:00:00",
        customers=None,
        nps=None,
    )
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    transactions = closed_base(24, customers=400)

    _write_export(
        transactions[transactions[C.DATE] < pd.Timestamp("2022-02-01").date()],
        tmp_path / "export.csv",
    )
    first = _churn(tmp_path, *ARGS)
    assert first.returncode == 0, first.stderr
    report = json.loads((tmp_path / "reports" / "ingest.json").read_text())
    assert "no trailing period" in report["integrity"]["note"]
    assert report["checks"]["integrity_amounts"]["status"] == "skipped"
    state = json.loads((tmp_path / ".churn" / "ingest_history.json").read_text())
    assert next(iter(state["sources"].values()))[-1]["columns"] == [
        "customer",
        "ordered_at",
        "amount",
        "order_id",
        "channel",
    ]

    _write_export(transactions, tmp_path / "export.csv")
    grown = _churn(tmp_path, *ARGS)
    assert grown.returncode == 0, grown.stderr
    report = json.loads((tmp_path / "reports" / "ingest.json").read_text())
    assert report["checks"]["integrity_amounts"]["status"] == "ok"
    assert report["checks"]["integrity_schema"]["status"] == "ok"
    written = (tmp_path / "data" / "interim" / "transactions.parquet").stat().st_mtime_ns

    _write_export(amounts_times_100(transactions), tmp_path / "export.csv")
    broken = _churn(tmp_path, *ARGS)
    assert broken.returncode != 0
    assert "export.csv: column 'amount'" in broken.stderr
    assert "ingest.integrity.accept: [amounts]" in broken.stderr
    assert (tmp_path / "data" / "interim" / "transactions.parquet").stat().st_mtime_ns == written


def test_ingest_blocks_amounts_emptied_in_the_newest_month_under_the_quarantine_share(tmp_path):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["ingest"].update(
        source="export.csv",
        passthrough=["channel"],
        timezone="UTC",
        reject_after="2030-01-01 00:00:00",
        customers=None,
        nps=None,
    )
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    transactions = closed_base(24, customers=400)
    _write_export(transactions, tmp_path / "export.csv")
    first = _churn(tmp_path, *ARGS)
    assert first.returncode == 0, first.stderr
    report = json.loads((tmp_path / "reports" / "ingest.json").read_text())
    assert report["checks"]["integrity_nulls_amount"]["status"] == "ok"
    assert report["checks"]["integrity_nulls_timestamp"]["status"] == "skipped"
    written = (tmp_path / "data" / "interim" / "transactions.parquet").stat().st_mtime_ns

    # 30% of the newest month's amounts come out empty: 0.6% of all rows, under the 5% share
    export = pd.read_csv(tmp_path / "export.csv", dtype=str)
    emptied = newest_month(transactions).to_numpy() & (np.arange(len(export)) % 10 < 3)
    export.loc[emptied, "amount"] = ""
    export.to_csv(tmp_path / "export.csv", index=False)
    assert emptied.sum() / len(export) < params["ingest"]["max_quarantine_share"]
    broken = _churn(tmp_path, *ARGS)
    assert broken.returncode != 0
    assert "export.csv: required column 'amount' (ingest.columns.amount)" in broken.stderr
    assert "look as if customers stopped buying" in broken.stderr
    assert "ingest.integrity.accept: [nulls:amount]" in broken.stderr
    assert (tmp_path / "data" / "interim" / "transactions.parquet").stat().st_mtime_ns == written
