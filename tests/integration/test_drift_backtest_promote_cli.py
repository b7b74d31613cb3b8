"""The drift, backtest, promote and rollback commands end to end on small files under tmp_path."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pandas as pd
import pytest
from typer.testing import CliRunner

from churn.cli import app
from churn.config import DriftParams
from churn.model import ChurnModel
from churn.promote import drift_reference_for
from churn.publish.record import publish_lists
from support.dvc_project import init_dvc_project
from support.promote_helpers import make_snapshots, train_model
from support.score_data import make_scores

# the paths dvc.yaml's stages pass (the commands have no path defaults)
DRIFT = ["drift", "--champion", "models/champion", "--training", "data/features/train.parquet"]
DRIFT += [
    "--snapshot",
    "data/features/score.parquet",
    "--scores",
    "data/scores/scores.parquet",
    "--report",
    "reports/drift.json",
]
PROMOTE = ["promote", "--challenger", "models/challenger"]
PROMOTE += ["--snapshots", "data/features/train.parquet", "--out", "models/champion"]
PROMOTE += ["--report", "reports/promotion.json", "--exports", "exports/at_risk"]


@pytest.fixture
def project(tmp_path, project_root, monkeypatch):
    (tmp_path / "params.yaml").write_text((project_root / "params.yaml").read_text())
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _champion(project, snapshots):
    model = train_model(snapshots, ["recency_days", "tenure_days", "channel"])
    reference = drift_reference_for(model, snapshots, DriftParams())
    ChurnModel(model.booster, model.calibrator, model.spec, {"model_version": "1"}, reference).save(
        project / "models" / "champion"
    )
    return model


def _as_of_files(project, model, snapshot, training=None):
    (project / "data" / "features").mkdir(parents=True)
    (project / "data" / "scores").mkdir(parents=True)
    if training is not None:
        training.to_parquet(project / "data" / "features" / "train.parquet", index=False)
    snapshot.to_parquet(project / "data" / "features" / "score.parquet", index=False)
    scores = pd.DataFrame(
        {"customer_id": snapshot["customer_id"], "churn_probability": model.predict_proba(snapshot)}
    )
    scores.to_parquet(project / "data" / "scores" / "scores.parquet", index=False)


def test_drift_command_writes_a_passing_report_for_the_training_population(project):
    snapshots = make_snapshots(seed=4)
    model = _champion(project, snapshots)
    current = make_snapshots(seed=5)
    _as_of_files(
        project, model, current[current["role"] == "test"].drop(columns=["churned"]), snapshots
    )
    result = CliRunner().invoke(app, DRIFT)
    assert result.exit_code == 0, result.output
    report = json.loads((project / "reports" / "drift.json").read_text())
    assert report["passed"] is True
    assert set(report["features"]) == {"recency_days", "tenure_days", "channel"}


def test_drift_command_warns_naming_the_moved_and_out_of_range_feature_without_blocking(project):
    snapshots = make_snapshots(seed=4)
    model = _champion(project, snapshots)
    current = make_snapshots(seed=5)
    current = current[current["role"] == "test"].drop(columns=["churned"])
    current = current.assign(recency_days=current["recency_days"] + 400)
    _as_of_files(project, model, current, snapshots)
    result = CliRunner().invoke(app, DRIFT)
    assert result.exit_code == 0, result.output
    report = json.loads((project / "reports" / "drift.json").read_text())
    assert report["passed"] is True and report["blocking_failures"] == []
    assert "recency_days" in report["failures"]
    assert report["reference_role"] == "test"
    assert report["reference_cutoff"] == str(
        snapshots.loc[snapshots["role"] == "test", "cutoff"].max()
    )
    assert "recency_days" in report["features_outside_training_range"]
    assert "recency_days (" in report["detail"] and "a warning, not blocking" in report["detail"]


def test_drift_command_blocks_a_moved_feature_only_when_opted_in(project):
    params = (project / "params.yaml").read_text()
    params = params.replace("blocking_features: []", "blocking_features: [recency_days]")
    (project / "params.yaml").write_text(params)
    snapshots = make_snapshots(seed=4)
    model = _champion(project, snapshots)
    current = make_snapshots(seed=5)
    current = current[current["role"] == "test"].drop(columns=["churned"])
    current = current.assign(recency_days=current["recency_days"] + 120)
    _as_of_files(project, model, current, snapshots)
    result = CliRunner().invoke(app, DRIFT)
    assert result.exit_code == 0, result.output
    report = json.loads((project / "reports" / "drift.json").read_text())
    assert report["passed"] is False and report["blocking_failures"] == ["recency_days"]
    assert "recency_days: PSI" in report["detail"]


def test_drift_command_without_training_snapshots_says_which_file_is_missing(project):
    snapshots = make_snapshots(seed=4)
    model = _champion(project, snapshots)
    _as_of_files(project, model, snapshots[snapshots["role"] == "test"].drop(columns=["churned"]))
    result = CliRunner().invoke(app, DRIFT)
    assert result.exit_code != 0
    assert "train.parquet" in str(result.exception)


def test_backtest_command_reads_the_published_record_and_reports_matured_lists(project):
    # the lists are read from the published record (score archives nothing any more)
    init_dvc_project(project)  # no demo contact log here
    exports = project / "exports" / "at_risk"
    for seed, as_of in enumerate((date(2024, 1, 31), date(2024, 3, 15))):
        scores = make_scores(200, seed=seed, as_of=as_of, model_version="1")
        publish_lists(scores, exports, about={"definition": {"horizon_days": 90}})
    ids = list(scores["customer_id"])
    (project / "data" / "interim").mkdir(parents=True)
    pd.DataFrame(
        {
            "customer_id": pd.array(ids[:120] + ["no-such-customer"], dtype="string"),
            "date": [date(2024, 2, 20)] * 120 + [date(2024, 5, 1)],
            "amount": [10.0] * 121,
        }
    ).to_parquet(project / "data" / "interim" / "transactions.parquet", index=False)
    args = ["backtest", "--exports", str(exports), "--report", "reports/backtest.json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads((project / "reports" / "backtest.json").read_text())
    assert [run["as_of"] for run in report["runs"]] == ["2024-01-31"]
    assert report["runs"][0]["horizon_days"] == 90
    assert report["runs"][0]["churn_rate"] == 0.4
    assert report["pending"] == [{"as_of": "2024-03-15", "matures_on": "2024-06-13"}]


def test_backtest_command_warns_when_flagged_customers_churn_less_than_predicted(project):
    init_dvc_project(project)  # no demo contact log here
    exports = project / "exports" / "at_risk"
    scores = make_scores(300, seed=4, model_version="1")
    publish_lists(scores, exports, about={"definition": {"horizon_days": 90}})
    as_of = scores["as_of"].iloc[0]
    flagged = scores.loc[scores["at_risk"], "customer_id"].tolist()
    assert len(flagged) >= 30  # enough for a tight interval
    # every flagged customer buys again: none churned, although each was predicted >= 20%
    (project / "data" / "interim").mkdir(parents=True)
    pd.DataFrame(
        {
            "customer_id": pd.array([*flagged, flagged[0]], dtype="string"),
            "date": [as_of + timedelta(days=10)] * len(flagged) + [as_of + timedelta(days=120)],
            "amount": 10.0,
        }
    ).to_parquet(project / "data" / "interim" / "transactions.parquet", index=False)
    args = ["backtest", "--exports", str(exports), "--report", "reports/backtest.json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    run = json.loads((project / "reports" / "backtest.json").read_text())["runs"][0]
    assert run["flagged_vs_rest"]["flagged"]["churn_rate"] == 0.0
    assert run["flagged_vs_rest"]["flagged"]["predicted"] >= 0.2
    assert run["flagged_vs_rest"]["rest"]["churn_rate"] == 1.0
    assert run["flagged_vs_rest"]["flagged_below_predicted"] is True
    assert "WARNING" in result.output and "below the" in result.output
    # nobody is known to have run a campaign on this list: no effect is printed
    assert run["campaign"]["known"] is False
    assert "no campaign is known" in result.output
    assert "effect [CI]=no campaign known" in result.output


def test_promote_then_rollback_through_the_commands(project, mlflow_store, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_store)
    snapshots = make_snapshots(seed=3)
    (project / "data" / "features").mkdir(parents=True)
    snapshots.to_parquet(project / "data" / "features" / "train.parquet", index=False)
    runner = CliRunner()
    for features in (["recency_days"], ["recency_days", "channel"]):
        train_model(snapshots, features).save(project / "models" / "challenger")
        result = runner.invoke(app, [*PROMOTE, "--apply"])
        assert result.exit_code == 0, result.output
    report = json.loads((project / "reports" / "promotion.json").read_text())
    assert report["decision"] == "promote"
    assert report["alias"] == {
        "name": "champion",
        "before": "1",
        "after": "2",
        "moved_by_this_run": True,
        "pending_apply": False,
    }

    listed = runner.invoke(app, ["rollback", "--list"])
    assert listed.exit_code == 0
    assert listed.output.split()[:2] == ["2", "champion"]
    result = runner.invoke(app, ["rollback", "--to", "1"])
    assert result.exit_code == 0, result.output
    assert "rolled back: rolled back to 1" in runner.invoke(app, ["rollback", "--list"]).output
    # rollback moves the registry only; the next pipeline run's promote stage writes the folder
    assert ChurnModel.load(project / "models" / "champion").version == "2"
    result = runner.invoke(app, [*PROMOTE, "--apply"])
    assert result.exit_code == 0, result.output
    assert ChurnModel.load(project / "models" / "champion").version == "1"
    report = json.loads((project / "reports" / "promotion.json").read_text())
    assert [c["rule"] for c in report["checks"] if not c["passed"]] == ["not_rolled_back"]


def test_backtest_warns_when_the_contact_log_lost_its_leading_zeros(project):
    init_dvc_project(project)  # no demo contact log here
    exports = project / "exports" / "at_risk"
    scores = make_scores(200, seed=0, as_of=date(2024, 1, 31), model_version="1")
    publish_lists(scores, exports, about={"definition": {"horizon_days": 90}})
    ids = list(scores["customer_id"])
    (project / "data" / "interim").mkdir(parents=True)
    pd.DataFrame(
        {
            "customer_id": pd.array(ids, dtype="string"),
            "date": [date(2024, 2, 20)] * len(ids),
            "amount": [10.0] * len(ids),
        }
    ).to_parquet(project / "data" / "interim" / "transactions.parquet", index=False)
    flagged = scores.loc[scores["at_risk"], "customer_id"].head(5)
    assert all(i.startswith("0") for i in flagged)
    # saved through Excel: a byte-order mark, and '0000012' became '12'
    lines = [f"{int(i)},2024-02-02" for i in flagged]
    (project / "contacts.csv").write_bytes(
        ("\ufeffcustomer_id,contacted_at\r\n" + "\r\n".join(lines) + "\r\n").encode()
    )
    args = ["backtest", "--exports", str(exports), "--report", "reports/backtest.json"]
    args += ["--contacts", str(project / "contacts.csv")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads((project / "reports" / "backtest.json").read_text())
    assert report["contact_log"]["unmatched"] == 5
    assert report["contact_log"]["match_after_zero_padding"] == 5
    assert "contacts.csv: 5 of 5 ids (100%) match no customer" in result.output
    assert any(f"'{int(i)}' → '{i}'" in result.output for i in flagged)
    assert "leading zeros were probably lost" in result.output
