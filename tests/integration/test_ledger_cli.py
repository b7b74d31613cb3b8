"""`churn ledger` end to end: a published record with a download, a contact log and outcomes."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pandas as pd
import pytest
from typer.testing import CliRunner

from churn.cli import app
from churn.publish import record
from support.app_data import example_scores
from support.dvc_project import init_dvc_project
from support.score_data import AS_OF

LATER = AS_OF + timedelta(days=60)  # still collecting when the data ends


@pytest.fixture
def project(tmp_path, monkeypatch):
    # no demo data here: no simulated contact log, no past lists
    init_dvc_project(tmp_path)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _ledger_args(exports):
    return [
        "ledger",
        "--transactions",
        "data/interim/transactions.parquet",
        "--exports",
        str(exports),
        "--report",
        "reports/ledger.json",
        "--uplift-out",
        "data/ledger/uplift.parquet",
        "--contacted-out",
        "data/ledger/contacted.parquet",
    ]


def _publish_with_a_download(exports):
    scores = example_scores(600, seed=5)
    manifest = record.publish_lists(scores, exports, about={"definition": {"horizon_days": 90}})
    record.publish_lists(
        example_scores(600, seed=6, as_of=LATER),
        exports,
        about={"definition": {"horizon_days": 90}},
    )
    flagged = scores.loc[scores["at_risk"]]
    treated = flagged.loc[flagged["group"] == "treatment", "customer_id"].tolist()
    control = flagged.loc[flagged["group"] == "control", "customer_id"].tolist()
    download = {
        "as_of": manifest.manifest["as_of"],
        "list_sha256": manifest.manifest["sha256"],
        "model_version": manifest.manifest["model_version"],
        "filters": {"risk_tier": ["high"]},
        "format": "csv",
        "file_name": "at_risk_first_half.csv",
        "file_sha256": "cd" * 32,
        "rows": len(treated[: len(treated) // 2]),
        "control_rows": len(control[: len(control) // 2]),
    }
    record.record_download(
        exports, download, treated[: len(treated) // 2], control[: len(control) // 2]
    )
    return scores, treated, control


def test_ledger_command_measures_matured_lists_and_marks_the_others_collecting(project):
    exports = project / "exports" / "at_risk"
    scores, treated, control = _publish_with_a_download(exports)
    assert len(treated) >= 40 and len(control) >= 5
    # every treated customer buys again, no control customer does: a clear effect
    buyers = treated
    (project / "data" / "interim").mkdir(parents=True)
    pd.DataFrame(
        {
            "customer_id": pd.array([*buyers, "someone-else"], dtype="string"),
            "date": [AS_OF + timedelta(days=5)] * len(buyers) + [AS_OF + timedelta(days=95)],
            "amount": 20.0,
        }
    ).to_parquet(project / "data" / "interim" / "transactions.parquet", index=False)
    contacted = treated[: len(treated) // 2]
    pd.DataFrame(
        {
            "customer_id": contacted,
            "contacted_at": str(AS_OF + timedelta(days=2)),
            "action": "win-back offer",
            "channel": "email",
            "cost": 3.0,
        }
    ).to_csv(project / "contacts.csv", index=False)
    args = [*_ledger_args(exports), "--contacts", "contacts.csv"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    ledger = json.loads((project / "reports" / "ledger.json").read_text())
    first, second = ledger["lists"]
    assert (first["as_of"], second["as_of"]) == (str(AS_OF), str(LATER))
    assert second["status"] == "collecting" and second["slices"] == []
    assert first["status"] == "separated" and first["downloads"] == 1
    overall = first["slices"][0]
    assert overall["treated_retention"] == 1.0 and overall["control_retention"] == 0.0
    assert overall["treated_customers"] == len(treated)
    assert overall["contact_log"]["compliance"] == pytest.approx(
        len(contacted) / len(treated), abs=1e-6
    )
    assert overall["contact_cost"] == 3.0 * len(contacted)
    kinds = {part["slice"] for part in first["slices"]}
    assert kinds == {"list", "action", "tier", "download"}
    download = next(part for part in first["slices"] if part["slice"] == "download")
    assert download["treated_customers"] == len(treated) // 2
    assert download["control_customers"] == len(control) // 2
    # the table names each slice and its status; the log says when the second list matures
    assert "status=separated" in result.output and "slice=action: " in result.output
    assert f"collecting outcomes until {LATER + timedelta(days=90)}" in result.output


def test_ledger_command_names_a_contact_log_with_a_bad_cost(project):
    exports = project / "exports" / "at_risk"
    _publish_with_a_download(exports)
    (project / "contacts.csv").write_text("customer_id,contacted_at,cost\nc1,2025-01-01,free\n")
    result = CliRunner().invoke(app, [*_ledger_args(exports), "--contacts", "contacts.csv"])
    assert result.exit_code != 0
    assert "contacts.csv: column 'cost'" in str(result.exception)


def test_a_downloaded_list_is_known_to_the_backtest_as_used_by_a_campaign(project):
    exports = project / "exports" / "at_risk"
    scores, treated, _ = _publish_with_a_download(exports)
    (project / "data" / "interim").mkdir(parents=True)
    pd.DataFrame(
        {
            "customer_id": pd.array([*treated, "someone-else"], dtype="string"),
            "date": [AS_OF + timedelta(days=5)] * len(treated) + [AS_OF + timedelta(days=95)],
            "amount": 20.0,
        }
    ).to_parquet(project / "data" / "interim" / "transactions.parquet", index=False)
    result = CliRunner().invoke(app, ["backtest", "--exports", str(exports)])
    assert result.exit_code == 0, result.output
    run = json.loads((project / "reports" / "backtest.json").read_text())["runs"][0]
    # no contact log, but the record holds a download of this list: a campaign used it
    assert run["campaign"]["known"] is True
    assert run["campaign"]["retention_difference"] is not None
    assert run["flagged_vs_rest"]["judged_on"] == "customers the campaign did not treat"


def _record_bytes(exports):
    return {
        path.relative_to(exports).as_posix(): path.read_bytes()
        for path in sorted(exports.rglob("*"))
        if path.is_file()
    }


def _write_past_lists(folder, extra=()):
    treated = [f"t{i:03d}" for i in range(60)]
    control = [f"c{i:03d}" for i in range(20)]
    lines = ["list_id,list_date,customer_id,group,risk_tier"]
    lines += [f"spring,{AS_OF},{c},treatment,high" for c in treated]
    lines += [f"spring,{AS_OF},{c},control,high" for c in control]
    lines += [f"spring,{AS_OF},,treatment,high", f"spring,{AS_OF},x1,holdout,high", *extra]
    (folder / "past_lists.csv").write_text("\n".join(lines) + "\n")
    return treated, control


def test_past_lists_are_imported_once_and_the_ledger_stage_only_reads_them(tmp_path, monkeypatch):
    init_dvc_project(tmp_path)
    monkeypatch.chdir(tmp_path)
    treated, control = _write_past_lists(tmp_path)
    (tmp_path / "data" / "interim").mkdir(parents=True)
    buyers = treated[:45] + control[:5]  # 75% of treated and 25% of control buy again
    pd.DataFrame(
        {
            "customer_id": pd.array([*buyers, "late"], dtype="string"),
            "date": [AS_OF + timedelta(days=10)] * len(buyers) + [AS_OF + timedelta(days=100)],
            "amount": 20.0,
        }
    ).to_parquet(tmp_path / "data" / "interim" / "transactions.parquet", index=False)
    exports = tmp_path / "exports" / "at_risk"
    # the ledger stage reads the record and writes nothing into it
    result = CliRunner().invoke(app, _ledger_args(exports))
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "reports" / "ledger.json").read_text())["lists"] == []
    assert not exports.exists()

    imported = CliRunner().invoke(
        app, ["import-lists", "past_lists.csv", "--exports", str(exports)]
    )
    assert imported.exit_code == 0, imported.output
    assert "2 row(s) left out (bad_group: 1, missing_customer: 1); first at data row 81" in (
        imported.output
    )
    assert "1 list(s) from past_lists.csv, 1 new" in imported.output
    events = record.read_events(exports)
    assert [event["event"] for event in events] == ["imported"]
    before = _record_bytes(exports)
    # importing the same file again records nothing new
    again = CliRunner().invoke(app, ["import-lists", "past_lists.csv", "--exports", str(exports)])
    assert again.exit_code == 0, again.output
    assert "0 new" in again.output and _record_bytes(exports) == before

    result = CliRunner().invoke(app, _ledger_args(exports))
    assert result.exit_code == 0, result.output
    assert _record_bytes(exports) == before  # the stage only read the record
    ledger = json.loads((tmp_path / "reports" / "ledger.json").read_text())
    assert "past_lists" not in ledger  # what the import did is the command's log, not a metric
    (entry,) = ledger["lists"]
    assert entry["origin"] == "imported" and entry["list_id"] == "spring"
    assert entry["model_version"] is None and entry["status"] == "separated"
    overall = entry["slices"][0]
    assert (overall["treated_retention"], overall["control_retention"]) == (0.75, 0.25)
    assert [part["value"] for part in entry["slices"] if part["slice"] == "tier"] == ["high"]
    contacted = pd.read_parquet(tmp_path / "data" / "ledger" / "contacted.parquet")
    assert sorted(contacted["customer_id"]) == treated
    assert not (exports / "LATEST.json").exists()  # an imported list is never the list to contact
    # running again measures the same
    again = CliRunner().invoke(app, _ledger_args(exports))
    assert again.exit_code == 0, again.output
    assert (
        json.loads((tmp_path / "reports" / "ledger.json").read_text())["lists"] == ledger["lists"]
    )


def test_a_list_imported_again_with_other_rows_is_measured_once_from_the_newest_import(
    tmp_path, monkeypatch
):
    init_dvc_project(tmp_path)
    monkeypatch.chdir(tmp_path)
    exports = tmp_path / "exports" / "at_risk"
    _write_past_lists(tmp_path)
    first = CliRunner().invoke(app, ["import-lists", "past_lists.csv", "--exports", str(exports)])
    assert first.exit_code == 0, first.output
    _write_past_lists(tmp_path, extra=[f"spring,{AS_OF},t999,treatment,high"])
    second = CliRunner().invoke(app, ["import-lists", "past_lists.csv", "--exports", str(exports)])
    assert second.exit_code == 0, second.output
    assert len(record.imported_folders(exports)) == 2  # the older version stays as history
    (newest,) = record.read_imported(exports)
    assert newest["groups"] == {"treatment": 61, "control": 20}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "list_id,list_date,customer_id\nspring,2025-01-01,c1\n",
            r"past_lists.csv: column\(s\) \['group'\] missing",
        ),
        (
            "list_id,list_date,customer_id,group\nspring,2025-01-01,c1,treatment\n"
            "spring,2025-02-01,c2,control\n",
            r"past_lists.csv: list_id 'spring' has 2 list dates .*give each campaign wave its own",
        ),
        (
            "list_id,list_date,customer_id,group\nspring,2025-01-01,c1,holdout\n",
            r"past_lists.csv: no usable row .*first reason bad_group\); fix the file",
        ),
    ],
)
def test_import_lists_refuses_a_bad_file_and_writes_nothing(
    tmp_path, monkeypatch, content, message
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "past_lists.csv").write_text(content)
    exports = tmp_path / "exports" / "at_risk"
    result = CliRunner().invoke(app, ["import-lists", "past_lists.csv", "--exports", str(exports)])
    assert result.exit_code != 0
    assert re.search(message, str(result.exception) + result.output), (
        result.exception,
        result.output,
    )
    assert record.imported_folders(exports) == [] and record.read_events(exports) == []


def test_import_lists_names_a_missing_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["import-lists", "nowhere.csv"])
    assert result.exit_code != 0
    assert "nowhere.csv: past campaign lists not found" in str(result.exception) + result.output
