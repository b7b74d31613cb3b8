"""`churn score`, `churn publish` and `churn at-risk` end to end through the CLI."""

from __future__ import annotations

import io
import json

import openpyxl
import pandas as pd
import pytest
from typer.testing import CliRunner

from churn import tracking
from churn.cli import app
from churn.errors import ChurnError, DataCheckFailed
from churn.publish.record import read_manifest, read_scored
from support.dvc_project import init_dvc_project, write_params
from support.score_data import AS_OF, make_snapshot, train_model


class _Registry:
    """The registry `churn publish` asks for the champion: version 11 holds the alias."""

    def alias_version(self, alias: str) -> str | None:
        return "11"


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A project folder (dvc.yaml, params) with an as-of snapshot, the champion model folder and
    a suppression list where dvc.yaml puts them; the champion alias names version 11."""
    init_dvc_project(tmp_path)
    train_model(version="11").save(tmp_path / "models/champion")
    snapshot = make_snapshot(1200, seed=21)
    (tmp_path / "data/features").mkdir(parents=True)
    snapshot.to_parquet(tmp_path / "data/features/score.parquet")
    (tmp_path / "data" / "suppression.csv").write_text("customer_id\n0000001\n0000002\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(tracking, "project_registry", lambda names: _Registry())
    return tmp_path


def _run(project, *args: str):
    result = CliRunner().invoke(app, [*args, "--params", str(project / "params.yaml")])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0, result.output
    return result


def _score(project, **params):
    if params:
        write_params(project, score=params)
    return _run(
        project,
        "score",
        "--snapshot",
        str(project / "data/features/score.parquet"),
        "--model",
        str(project / "models/champion"),
        "--suppression",
        str(project / "data" / "suppression.csv"),
        "--out",
        str(project / "data/scores/scores.parquet"),
        "--report",
        str(project / "reports/score.json"),
        "--profit-curve",
        str(project / "reports/score_profit_curve.csv"),
    )


def _publish(project, *extra: str):
    # the scores, ingest and drift reports are found where dvc.yaml's stages write them
    return _run(project, "publish", "--exports", str(project / "exports/at_risk"), *extra)


def test_score_command_writes_scores_metrics_and_profit_curve(project):
    _score(project)
    out = project / "data/scores/scores.parquet"
    scores = pd.read_parquet(out)
    assert len(scores) == 1200 and set(scores["model_version"]) == {"11"}
    assert scores.loc[scores["customer_id"].isin(["0000001", "0000002"]), "suppressed"].all()
    report = json.loads((project / "reports/score.json").read_text())
    assert report["customers"] == 1200 and report["suppressed"] == 2
    assert report["suppression"] == {
        "list_size": 2,
        "matched": 2,
        "unmatched": 0,
        "unmatched_share": 0.0,
        "match_after_zero_padding": 0,
        "warned": False,
    }
    assert report["flagged"] == int(scores["at_risk"].sum())
    assert sum(t["customers"] for t in report["tiers"].values()) == 1200
    curve = pd.read_csv(project / "reports/score_profit_curve.csv")
    assert list(curve.columns) == ["list_size", "expected_net_benefit"]
    # the curve ends at the customers a list could hold: not all 1,200 (floor and suppression)
    assert curve["list_size"].iloc[-1] == report["targeting"]["candidates"] < 1200 - 2
    assert not (project / "data/archive").exists()  # scoring archives nothing
    first = out.read_bytes()
    _score(project)
    assert out.read_bytes() == first  # byte-identical rerun
    _score(project, save_rate=0.3)
    assert out.read_bytes() != first


def test_score_warns_when_a_suppression_list_lost_its_leading_zeros(project):
    """Saved through Excel: a byte-order mark, ';' between columns, '0000001' became '1'."""
    suppression = project / "data" / "suppression.csv"
    suppression.write_bytes("\ufeffcustomer_id;reason\r\n1;opt-out\r\n2;opt-out\r\n".encode())
    result = _score(project)
    report = json.loads((project / "reports/score.json").read_text())
    assert report["suppressed"] == 0  # ids are never rewritten: the file must be fixed
    assert report["suppression"]["unmatched"] == 2
    assert report["suppression"]["match_after_zero_padding"] == 2
    assert report["suppression"]["warned"] is True
    assert "2 of 2 ids (100%) match no scored customer" in result.stderr
    assert "'1' → '0000001'" in result.stderr and "leading zeros" in result.stderr


@pytest.mark.integration
def test_publish_records_every_scored_customer_and_keeps_a_replaced_list(project):
    """What the score archive did before: the record holds every scored customer of each date."""
    exports = project / "exports/at_risk"
    _score(project)
    first = pd.read_parquet(project / "data/scores/scores.parquet")
    _publish(project)
    manifest = read_manifest(exports, str(AS_OF))
    pd.testing.assert_frame_equal(read_scored(exports, manifest), first)
    _publish(project)  # same scores again: unchanged, nothing kept aside
    assert not list(exports.glob(f"{AS_OF}.superseded-*"))
    _score(project, save_rate=0.3)
    with pytest.raises(ChurnError, match="already published.*--force"):
        _publish(project)
    _publish(project, "--force")
    again = pd.read_parquet(project / "data/scores/scores.parquet")
    manifest = read_manifest(exports, str(AS_OF))
    pd.testing.assert_frame_equal(read_scored(exports, manifest), again)
    assert len(list(exports.glob(f"{AS_OF}.superseded-*"))) == 1


def test_publish_records_the_power_check_and_warns_when_the_campaign_cannot_be_measured(project):
    exports = project / "exports/at_risk"
    _score(project)
    result = _publish(project)
    check = read_manifest(exports)["power_check"]
    groups = read_manifest(exports)["groups"]
    assert (check["treated"], check["control"]) == (groups["treatment"], groups["control"])
    # ~10% of a few hundred flagged customers cannot show a 0.1 x base-churn effect
    assert check["measurable"] is False and check["minimum_detectable_effect"] > 0.1
    assert "power check: the campaign cannot be measured" in result.output
    # half held out, every contacted churner assumed kept: the effect to find is large enough
    _score(project, control_share=0.5, save_rate=1.0)
    result = _publish(project, "--force")
    check = read_manifest(exports)["power_check"]
    assert check["control_share"] == 0.5 and check["measurable"] is True
    assert check["minimum_detectable_effect"] < check["expected_effect"]
    assert "power check: the list can detect an effect of" in result.output


def test_publish_refuses_a_failed_drift_gate_unless_accepted(project):
    _score(project)
    (project / "reports").mkdir(exist_ok=True)
    (project / "reports/drift.json").write_text(json.dumps({"passed": False, "detail": "PSI 0.5"}))
    with pytest.raises(DataCheckFailed, match="drift: PSI 0.5"):
        _publish(project)
    assert not (project / "exports/at_risk/LATEST.json").exists()
    _publish(project, "--accept-drift")
    assert (project / "exports/at_risk/LATEST.json").exists()


class _MovedChampion:
    """A registry whose champion alias has moved on to version 12 (e.g. a later retrain)."""

    def alias_version(self, alias: str) -> str | None:
        return "12"


def test_publish_refuses_a_list_not_scored_by_the_champion_unless_overridden_and_recorded(
    project, monkeypatch
):
    _score(project)  # scored by version 11
    monkeypatch.setattr(tracking, "project_registry", lambda names: _MovedChampion())
    exports = project / "exports/at_risk"
    with pytest.raises(
        DataCheckFailed,
        match=r"champion: scored by model version 11, but the "
        r"champion is 12.*--allow-non-champion",
    ):
        _publish(project)
    assert not exports.exists() or not any(exports.iterdir())  # nothing recorded
    result = _publish(project, "--allow-non-champion")
    assert "gate champion: pass" in result.output and "anyway" in result.output
    manifest = read_manifest(exports)
    assert manifest["model_version"] == "11" and manifest["champion_version"] == "12"
    assert manifest["overrides"] == ["non_champion"]
    (event,) = [json.loads(line) for line in (exports / "events.jsonl").read_text().splitlines()]
    assert event["overrides"] == ["non_champion"]  # the override is logged with the publication


def test_a_list_scored_by_the_champion_records_no_override(project):
    _score(project)
    _publish(project, "--allow-non-champion")  # allowed, but not needed: not an override
    assert read_manifest(project / "exports/at_risk")["overrides"] == []


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


def test_at_risk_refuses_a_path_as_date_and_a_folder_as_output(project):
    _score(project)
    _publish(project)
    exports = str(project / "exports/at_risk")
    result = CliRunner().invoke(app, ["at-risk", "--exports", exports, "--date", "../x"])
    assert isinstance(result.exception, ChurnError)
    assert "--date '../x': give an ISO date" in str(result.exception)
    (project / "campaign.csv").mkdir()
    args = ["at-risk", "--exports", exports, "--out", str(project / "campaign.csv")]
    result = CliRunner().invoke(app, args)
    assert isinstance(result.exception, ChurnError)
    assert "campaign.csv: cannot write it: it is a folder; give a file name" in str(
        result.exception
    )


def test_score_uses_the_uplift_policy_only_when_the_gate_switched_and_publish_takes_it(project):
    snapshot = pd.read_parquet(project / "data/features/score.parquet")
    ids = snapshot["customer_id"].astype("string")
    # every third customer a past list covered; uplift falls with the id, some are pushed away
    uplift = pd.DataFrame(
        {
            "customer_id": ids,
            "uplift": [0.3 - 0.0005 * i for i in range(len(ids))],
            "covered": [i % 3 == 0 for i in range(len(ids))],
        }
    )
    uplift.to_parquet(project / "uplift.parquet")
    paths = ("--uplift-report", str(project / "uplift.json"), "--uplift", "uplift.parquet")
    for policy in ("risk_x_value", "uplift"):
        (project / "uplift.json").write_text(
            json.dumps({"policy_in_use": policy, "reason": f"{policy} won"})
        )
        _run(
            project,
            "score",
            *("--snapshot", "data/features/score.parquet", "--model", "models/champion"),
            *("--suppression", "data/suppression.csv", "--out", "data/scores/scores.parquet"),
            *("--report", "reports/score.json", "--profit-curve", "reports/score_profit_curve.csv"),
            *paths,
        )
        scores = pd.read_parquet(project / "data/scores/scores.parquet")
        report = json.loads((project / "reports/score.json").read_text())
        assert report["targeting"]["policy"] == policy
        flagged = scores[scores["at_risk"]].merge(uplift, on="customer_id", suffixes=("", "_t"))
        if policy == "risk_x_value":
            assert "uplift" not in scores.columns
            assert not flagged["covered"].all()  # risk x value ignores who past lists covered
        else:
            assert flagged["covered"].all() and (flagged["uplift"] > 0).all()
            value = flagged["expected_value"] * flagged["uplift"] - 5.0
            assert (value > 0).all()
            assert report["flagged"] == len(flagged) > 0
    published = _publish(project)
    assert published.exit_code == 0
