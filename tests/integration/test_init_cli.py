"""`churn init` end to end on a temp copy of the project files: it shows and changes nothing
without --yes; with --yes params.yaml and dvc.yaml point at the export, the demo state is gone,
`churn check` passes, DVC reads the pipeline and the ingest stage runs on the new params."""

from __future__ import annotations

import json
import shlex
import shutil

import pytest
import yaml
from typer.testing import CliRunner

from churn.cli import app
from churn.errors import ChurnError
from support.init_data import (
    cdnow_like,
    write_iso_offset,
    write_parquet,
    write_semicolon_dayfirst,
    write_whitespace,
)
from support.paths import ROOT

DEMO_FILES = ("data/raw/transactions.csv.gz", "data/raw/customers.csv", "data/raw/truth.parquet",
              "data/interim/transactions.parquet", "models/champion/model.txt", "mlflow.db",
              "exports/at_risk/LATEST.json", ".churn/ingest_history.json")  # fmt: skip


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A project folder: the repository's params.yaml and dvc.yaml as they are, the demo's state."""
    root = tmp_path / "project"
    root.mkdir()
    for name in ("params.yaml", "dvc.yaml"):
        shutil.copy(ROOT / name, root / name)
    for name in DEMO_FILES:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("demo")
    (root / "data/suppression.csv").write_text("customer_id\n")
    monkeypatch.chdir(root)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return root


def _init(*args: str):
    return CliRunner().invoke(app, ["init", *args], catch_exceptions=True)


def _stage_args(root, stage: str) -> list[str]:
    cmd = yaml.safe_load((root / "dvc.yaml").read_text())["stages"][stage]["cmd"]
    return shlex.split(" ".join(cmd.split()))[1:]


def test_without_yes_it_shows_the_changes_and_changes_nothing(project):
    source = write_whitespace(cdnow_like(), project / "CDNOW_master.txt")
    before = {p: p.read_bytes() for p in project.rglob("*") if p.is_file()}
    result = _init("--source", str(source))
    assert result.exit_code == 0, result.output
    assert "-  generate:" in result.output and "+  customers: null" in result.output
    assert "mlflow.db" in result.output and "models/champion/" in result.output
    assert "Dry read of the first 10,000 rows" in result.output
    assert "Nothing changed" in result.output
    assert {p: p.read_bytes() for p in project.rglob("*") if p.is_file()} == before


@pytest.mark.parametrize(
    ("name", "write"),
    [
        ("data/raw/CDNOW_master.txt", write_whitespace),
        ("exports_in/tx.csv", write_semicolon_dayfirst),
        ("tx_iso.csv.gz", write_iso_offset),
        ("tx.parquet", write_parquet),
    ],
)
def test_yes_points_the_pipeline_at_the_export_and_ingest_runs(project, name, write):
    frame = cdnow_like()
    (project / name).parent.mkdir(parents=True, exist_ok=True)
    source = write(frame, project / name)
    result = _init("--source", str(source), "--yes")
    assert result.exit_code == 0, result.output
    assert "valid (churn check)" in result.output

    ingest = yaml.safe_load((project / "params.yaml").read_text())["ingest"]
    assert ingest["source"] == name  # inside the project: written relative to it
    assert ingest["customers"] is None and ingest["nps"] is None
    stages = yaml.safe_load((project / "dvc.yaml").read_text())["stages"]
    assert "generate" not in stages
    assert not [d for d in stages["sources"]["deps"] if d.startswith("data/raw/")]
    for demo in DEMO_FILES:
        assert not (project / demo).exists(), demo
    assert source.exists() and (project / "data/suppression.csv").exists()
    # comments survive the edit
    assert "# zone of naive timestamps" in (project / "params.yaml").read_text()

    assert CliRunner().invoke(app, ["check"]).exit_code == 0
    fingerprinted = CliRunner().invoke(app, _stage_args(project, "sources"))
    assert fingerprinted.exit_code == 0, fingerprinted.output
    sources = json.loads((project / "reports/sources.json").read_text())["sources"]
    assert [f["path"] for f in sources["transactions"]["files"]] == [name]
    assert sources["customers"] is None and sources["nps"] is None
    done = CliRunner().invoke(app, _stage_args(project, "ingest"))
    assert done.exit_code == 0, done.output
    report = json.loads((project / "reports/ingest.json").read_text())
    assert report["rows_read"] == report["rows_clean"] == len(frame)
    assert report["customers"] == frame["customer_id"].nunique()

    again = _init("--source", str(source))
    assert "params.yaml: no change" in again.output and "dvc.yaml: no change" in again.output
    assert "Delete: nothing" in again.output


def test_dvc_reads_the_new_pipeline(project):
    from dvc.repo import Repo

    source = write_semicolon_dayfirst(cdnow_like(), project / "tx.csv")
    assert _init("--source", str(source), "--yes").exit_code == 0
    Repo.init(str(project), no_scm=True).close()
    with Repo(str(project)) as repo:
        names = [stage.name for stage in repo.index.stages]
    assert names[:3] == ["check", "sources", "ingest"] and "generate" not in names


def test_a_users_file_named_like_the_demo_data_is_kept(project):
    source = project / "data/raw/transactions.csv.gz"
    source.unlink()
    write_iso_offset(cdnow_like(), source)
    result = _init("--source", str(source), "--yes")
    assert result.exit_code == 0, result.output
    assert source.exists() and not (project / "data/raw/truth.parquet").exists()


def test_a_customers_table_is_mapped_and_stays_in_the_pipeline(project):
    frame = cdnow_like()
    source = write_iso_offset(frame, project / "tx.csv")
    ids = sorted(frame["customer_id"].unique())
    (project / "crm.csv").write_text(
        "Kundennummer;Anmeldung;Kanal;Land\n"
        + "".join(f"{i};0{n % 9 + 1}.0{n % 9 + 1}.1996;web;DE\n" for n, i in enumerate(ids)),
        encoding="utf-8",
    )
    result = _init("--source", str(source), "--customers", "crm.csv", "--dayfirst", "--yes")
    assert result.exit_code == 0, result.output
    customers = yaml.safe_load((project / "params.yaml").read_text())["ingest"]["customers"]
    assert customers["columns"] == {"customer_id": "Kundennummer", "signup_date": "Anmeldung",
                                    "channel": "Kanal", "region": "Land"}  # fmt: skip
    assert customers["date_format"] == "%d.%m.%Y"
    fingerprinted = CliRunner().invoke(app, _stage_args(project, "sources"))
    assert fingerprinted.exit_code == 0, fingerprinted.output
    sources = json.loads((project / "reports/sources.json").read_text())["sources"]
    assert [f["path"] for f in sources["customers"]["files"]] == ["crm.csv"]
    assert sources["nps"] is None
    done = CliRunner().invoke(app, _stage_args(project, "ingest"))
    assert done.exit_code == 0, done.output
    report = json.loads((project / "reports/ingest.json").read_text())
    assert report["customers_table"]["rows_clean"] == len(ids)


# --------------------------------------------------------------------------- undecidable inputs
def _error(result) -> str:
    assert result.exit_code != 0
    assert isinstance(result.exception, ChurnError), result.exception
    return str(result.exception)


def test_undecidable_inputs_are_errors_that_change_nothing(project):
    before = (project / "params.yaml").read_bytes()
    (project / "two_ids.csv").write_text(
        "a,b,day,amount\nx1,y1,2024-01-01,1.5\nx1,y1,2024-01-02,2.5\n"
    )
    message = _error(_init("--source", "two_ids.csv", "--yes"))
    assert "two_ids.csv" in message and "--customer-id" in message
    (project / "no_dates.csv").write_text("customer,amount\na1,1.5\na2,2.5\n")
    assert "no column holds dates" in _error(_init("--source", "no_dates.csv", "--yes"))
    message = _error(_init("--source", "postgresql://analyst@db/shop"))
    assert "SQL sources are not inspected" in message
    (project / "export.xlsx").write_bytes(b"PK\x03\x04")
    assert "save the export as CSV" in _error(_init("--source", "export.xlsx"))
    assert (project / "params.yaml").read_bytes() == before
    assert (project / "mlflow.db").exists()


def test_dates_that_read_both_ways_in_every_row_need_dayfirst_or_monthfirst(project, monkeypatch):
    import churn.init.sample as sample

    frame = cdnow_like()
    frame = frame[frame["date"].dt.day <= 12]
    source = write_semicolon_dayfirst(frame, project / "tx.csv")
    assert "--dayfirst or --monthfirst" in _error(_init("--source", str(source)))
    result = _init("--source", str(source), "--monthfirst", "--yes")
    assert result.exit_code == 0, result.output
    assert yaml.safe_load((project / "params.yaml").read_text())["ingest"]["timestamp_format"] == (
        "%m/%d/%Y"
    )
    # a head of early-month dates is settled by the rest of the file, read through ingest
    monkeypatch.setattr(sample, "SAMPLE_ROWS", 3)
    sorted_frame = cdnow_like().sort_values("date")
    source = write_semicolon_dayfirst(sorted_frame, project / "sorted.csv")
    result = _init("--source", str(source))
    assert result.exit_code == 0, result.output
    assert "day/month order from every row of the file" in result.output
    assert '+  timestamp_format: "%d/%m/%Y"' in result.output


def test_options_override_the_guesses(project):
    source = write_iso_offset(cdnow_like(), project / "tx.csv")
    result = _init("--source", str(source), "--no-transaction-id", "--timezone", "UTC",
                   "--customer-id", "client", "--yes")  # fmt: skip
    assert result.exit_code == 0, result.output
    ingest = yaml.safe_load((project / "params.yaml").read_text())["ingest"]
    assert ingest["columns"]["transaction_id"] is None and ingest["timezone"] == "UTC"
    assert "(given)" in result.output
    message = _error(_init("--source", str(source), "--delimiter", "ab"))
    assert "--delimiter 'ab'" in message


def test_a_folder_of_cp1252_exports_with_thousands_separators(project):
    folder = project / "exports_in"
    folder.mkdir()
    for month, rows in (("01", ["00001;Müller GmbH;03.01.2024;1.234,50", "00002;Zoë;13.01.2024;7,10"]),
                        ("02", ["00001;Müller GmbH;02.02.2024;99,00"])):  # fmt: skip
        text = "Kunde;Firma;Buchungsdatum;Umsatz €\n" + "\n".join(rows) + "\n"
        (folder / f"2024-{month}.csv").write_bytes(text.encode("cp1252"))
    result = _init("--source", "exports_in", "--yes")
    assert result.exit_code == 0, result.output
    ingest = yaml.safe_load((project / "params.yaml").read_text())["ingest"]
    assert ingest["csv"] == {**ingest["csv"], "delimiter": ";", "encoding": "cp1252",
                             "decimal": ",", "thousands": "."}  # fmt: skip
    assert ingest["columns"]["amount"] == "Umsatz €"
    assert ingest["timestamp_format"] == "%d.%m.%Y" and ingest["dayfirst"] is True
    assert "2 read, 2 clean, 0 quarantined" in result.output  # the first file
    (folder / "2024-03.csv").write_text("customer,when,amount\n1,2024-03-01,2\n")
    assert "differs from" in _error(_init("--source", "exports_in"))


def test_the_dry_read_shows_what_ingest_would_quarantine_and_why(project):
    source = write_semicolon_dayfirst(cdnow_like(), project / "tx.csv")
    text = source.read_text().splitlines(keepends=True)
    text[3] = "00002;31/02/1997;1;12,00\n"
    source.write_text("".join(text))
    result = _init("--source", str(source))
    assert result.exit_code == 0, result.output
    assert "1 quarantined" in result.output
    assert "unparseable_timestamp: 1 (first: column 'Datum' value '31/02/1997'" in result.output


def test_cdnow_without_a_header_is_read_by_content_and_ingested(project):
    frame = cdnow_like()
    source = write_whitespace(frame, project / "CDNOW_master.txt", header=False)
    lines = source.read_bytes().split(b"\r\n")
    lines[4] = b" 00002 19971345  1   12.00"  # line 5 = data row 5 (no header)
    source.write_bytes(b"\r\n".join(lines))
    result = _init("--source", str(source), "--yes")
    assert result.exit_code == 0, result.output
    assert "none: the first line is data (csv.header: false)" in result.output
    ingest = yaml.safe_load((project / "params.yaml").read_text())["ingest"]
    assert ingest["csv"]["header"] is False and ingest["csv"]["delimiter"] == "whitespace"
    assert ingest["columns"] == {"customer_id": "column0", "timestamp": "column1",
                                 "amount": "column3", "transaction_id": None}  # fmt: skip
    done = CliRunner().invoke(app, _stage_args(project, "ingest"))
    assert done.exit_code == 0, done.output
    report = json.loads((project / "reports/ingest.json").read_text())
    assert report["rows_read"] == len(frame) and report["quarantined"] == 1
    import pandas as pd

    quarantine = pd.read_parquet(project / "data/interim/quarantine.parquet")
    assert quarantine["source_row"].tolist() == [5]
