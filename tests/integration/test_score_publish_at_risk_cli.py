"""`churn score`, `churn publish` and `churn at-risk` end to end through the CLI."""

from __future__ import annotations

import io
import json

import openpyxl
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from churn.cli import app
from churn.errors import ChurnError, DataCheckFailed
from support.score_data import AS_OF, make_snapshot, train_model


@pytest.fixture
def project(tmp_path):
    """A project folder with an as-of snapshot, a model folder, a suppression list and params."""
    train_model(version="11").save(tmp_path / "models/challenger")
    snapshot = make_snapshot(1200, seed=21)
    (tmp_path / "data/features").mkdir(parents=True)
    snapshot.to_parquet(tmp_path / "data/features/score.parquet")
    (tmp_path / "suppression.csv").write_text("customer_id\n0000001\n0000002\n")
    params = {"score": {"suppression_file": str(tmp_path / "suppression.csv")}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    return tmp_path


def _run(project, *args: str):
    result = CliRunner().invoke(app, [*args, "--params", str(project / "params.yaml")])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0, result.output
    return result


def _score(project, **params):
    if params:
        (project / "params.yaml").write_text(
            yaml.safe_dump(
                {"score": {"suppression_file": str(project / "suppression.csv"), **params}}
            )
        )
    return _run(
        project,
        "score",
        "--snapshot",
        str(project / "data/features/score.parquet"),
        "--model",
        str(project / "models/challenger"),
        "--out",
        str(project / "data/scores/scores.parquet"),
        "--report",
        str(project / "reports/score.json"),
        "--profit-curve",
        str(project / "reports/score_profit_curve.csv"),
        "--archive",
        str(project / "data/archive/scores"),
    )


def _publish(project, *extra: str):
    return _run(
        project,
        "publish",
        "--scores",
        str(project / "data/scores/scores.parquet"),
        "--exports",
        str(project / "exports/at_risk"),
        "--ingest-report",
        str(project / "reports/ingest.json"),
        "--drift-report",
        str(project / "reports/drift.json"),
        *extra,
    )


def test_score_command_writes_scores_metrics_profit_curve_and_archive(project):
    _score(project)
    out = project / "data/scores/scores.parquet"
    scores = pd.read_parquet(out)
    assert len(scores) == 1200 and set(scores["model_version"]) == {"11"}
    assert scores.loc[scores["customer_id"].isin(["0000001", "0000002"]), "suppressed"].all()
    report = json.loads((project / "reports/score.json").read_text())
    assert report["customers"] == 1200 and report["suppressed"] == 2
    assert report["flagged"] == int(scores["at_risk"].sum())
    assert sum(t["customers"] for t in report["tiers"].values()) == 1200
    curve = pd.read_csv(project / "reports/score_profit_curve.csv")
    assert list(curve.columns) == ["list_size", "expected_net_benefit"]
    archived = project / f"data/archive/scores/{AS_OF}/scores.parquet"
    first = out.read_bytes()
    assert archived.read_bytes() == first
    _score(project)
    assert out.read_bytes() == first  # byte-identical rerun
    _score(project, save_rate=0.3)
    assert archived.read_bytes() == out.read_bytes() != first
    assert len(list(archived.parent.glob("scores.superseded-*.parquet"))) == 1


def test_publish_refuses_a_failed_drift_gate_unless_accepted(project):
    _score(project)
    (project / "reports").mkdir(exist_ok=True)
    (project / "reports/drift.json").write_text(json.dumps({"passed": False, "detail": "PSI 0.5"}))
    with pytest.raises(DataCheckFailed, match="drift: PSI 0.5"):
        _publish(project)
    assert not (project / "exports/at_risk/LATEST.json").exists()
    _publish(project, "--accept-drift")
    assert (project / "exports/at_risk/LATEST.json").exists()


def test_publish_refuses_a_high_quarantine_share(project):
    _score(project)
    (project / "reports").mkdir(exist_ok=True)
    (project / "reports/ingest.json").write_text(json.dumps({"quarantine_share": 0.3}))
    with pytest.raises(DataCheckFailed, match="quarantine"):
        _publish(project)


def test_at_risk_writes_filtered_data_to_stdout_and_the_summary_to_stderr(project):
    _score(project)
    _publish(project)
    exports = str(project / "exports/at_risk")
    result = CliRunner().invoke(
        app,
        ["at-risk", "--exports", exports, "--tier", "high", "--where", "channel=app", "--top", "5"],
    )
    assert result.exit_code == 0, result.output
    listed = pd.read_csv(io.StringIO(result.stdout), dtype={"customer_id": "string"})
    assert 0 < len(listed) <= 5
    assert set(listed["risk_tier"]) == {"high"} and set(listed["channel"]) == {"app"}
    assert listed["priority"].is_monotonic_increasing and set(listed["group"]) == {"treatment"}
    assert "customers, value at risk" in result.stderr and "high" in result.stderr
    assert "priority," not in result.stderr


def test_at_risk_writes_excel_or_json_files_for_a_given_date_and_group(project):
    _score(project)
    _publish(project)
    exports = str(project / "exports/at_risk")
    target = project / "campaign.xlsx"
    result = CliRunner().invoke(app, ["at-risk", "--exports", exports, "--out", str(target)])
    assert result.exit_code == 0 and "customers" in result.stdout
    rows = list(openpyxl.load_workbook(target).active.values)
    latest = json.loads((project / "exports/at_risk/LATEST.json").read_text())
    assert len(rows) == latest["rows"] + 1
    control = project / "control.json"
    args = ["at-risk", "--exports", exports, "--date", str(AS_OF), "--group", "control"]
    result = CliRunner().invoke(app, [*args, "--out", str(control)])
    assert result.exit_code == 0
    records = json.loads(control.read_text())
    assert len(records) == latest["groups"]["control"]
    assert {r["group"] for r in records} == {"control"}
    result = CliRunner().invoke(app, ["at-risk", "--exports", exports, "--date", "2020-01-01"])
    assert isinstance(result.exception, ChurnError) and str(AS_OF) in str(result.exception)


def test_sql_export_without_the_url_variable_is_a_clear_error(project, monkeypatch):
    monkeypatch.delenv("CHURN_EXPORT_DB_URL", raising=False)
    _score(project)
    with pytest.raises(ChurnError, match="CHURN_EXPORT_DB_URL is not set"):
        _publish(project, "--sql")
    assert (project / "exports/at_risk/LATEST.json").exists()  # the files were published first


def test_at_risk_refuses_to_write_excel_to_stdout(project):
    _score(project)
    _publish(project)
    exports = str(project / "exports/at_risk")
    result = CliRunner().invoke(app, ["at-risk", "--exports", exports, "--format", "xlsx"])
    assert result.exit_code != 0
    assert "--out FILE.xlsx" in str(result.exception) + result.output
