"""`churn uplift`: the gate report from a campaign table, and contacts when the gate passes."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from churn.cli import app
from churn.errors import ChurnError
from churn.uplift.simulate import simulate_uplift_campaigns
from support.paths import ROOT


def _params(tmp_path, **uplift) -> str:
    settings = yaml.safe_load((ROOT / "params.yaml").read_text())
    settings["uplift"].update(uplift)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(settings))
    return str(path)


def test_uplift_command_writes_the_gate_report_and_contacts(tmp_path):
    simulated = simulate_uplift_campaigns("heterogeneous", seed=0)
    campaigns = tmp_path / "campaigns.parquet"
    simulated.rows.to_parquet(campaigns)
    newest = simulated.rows[simulated.rows["campaign_id"] == simulated.rows["campaign_id"].max()]
    candidates = newest.drop(
        columns=[
            "campaign_id",
            "campaign_date",
            "label_end",
            "treated",
            "control_share",
            "retained",
        ]
    ).assign(covered=True)
    candidates.loc[candidates.index[:100], "covered"] = False
    candidates_path = tmp_path / "candidates.parquet"
    candidates.to_parquet(candidates_path)
    report, contacts = tmp_path / "reports" / "uplift.json", tmp_path / "contacts.parquet"
    result = CliRunner().invoke(
        app,
        [
            "uplift",
            "--campaigns",
            str(campaigns),
            "--report",
            str(report),
            "--candidates",
            str(candidates_path),
            "--contacts",
            str(contacts),
            "--params",
            _params(tmp_path, exploration_share=0.05),
        ],
    )
    assert result.exit_code == 0, result.output
    written = json.loads(report.read_text())
    assert written["policy_in_use"] == "uplift"
    policies = written["comparison"]["policies"]
    assert set(policies) == {"uplift", "risk_x_value"}
    assert {"incremental_profit", "qini", "uplift_at_k", "contacts"} <= set(policies["uplift"])
    chosen = pd.read_parquet(contacts)
    contacted = chosen[chosen["contact"] & ~chosen["explore"]]
    assert (contacted["uplift"] > 0).all() and contacted["covered"].all()
    assert (contacted["expected_incremental_profit"] > 0).all()
    explored = chosen[chosen["explore"]]
    assert len(explored) == round(0.05 * len(contacted)) and not explored["covered"].any()


def test_uplift_command_says_not_enough_data_and_writes_no_contacts(tmp_path):
    campaigns = tmp_path / "campaigns.csv"
    simulate_uplift_campaigns("too_few_campaigns", seed=0).rows.to_csv(campaigns, index=False)
    report = tmp_path / "uplift.json"
    result = CliRunner().invoke(
        app,
        [
            "uplift",
            "--campaigns",
            str(campaigns),
            "--report",
            str(report),
            "--params",
            _params(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    written = json.loads(report.read_text())
    assert written["policy_in_use"] == "risk_x_value"
    assert written["reason"].startswith("not enough campaign data yet")
    assert np.isclose(written["contact_cost"], 5.0)


def test_uplift_command_names_a_bad_column(tmp_path):
    campaigns = tmp_path / "campaigns.csv"
    rows = simulate_uplift_campaigns("too_few_campaigns", seed=0).rows
    rows.loc[5, "treated"] = 3
    rows.to_csv(campaigns, index=False)
    result = CliRunner().invoke(
        app,
        [
            "uplift",
            "--campaigns",
            str(campaigns),
            "--report",
            str(tmp_path / "u.json"),
            "--params",
            _params(tmp_path),
        ],
    )
    assert result.exit_code != 0
    assert "column 'treated' must be 0 or 1" in str(result.exception)


def test_random_actions_pick_each_customers_most_profitable_action():
    from churn.config import UpliftParams
    from churn.uplift.plan import plan_uplift

    simulated = simulate_uplift_campaigns("heterogeneous", seed=1)
    rows = simulated.rows.copy()
    rng = np.random.default_rng(0)
    treated = rows["treated"] == 1
    rows["action"] = None
    rows.loc[treated, "action"] = rng.choice(["call", "offer"], size=int(treated.sum()))
    candidates = (
        rows[rows["campaign_id"] == rows["campaign_id"].max()]
        .drop(
            columns=[
                "campaign_id",
                "campaign_date",
                "label_end",
                "treated",
                "control_share",
                "retained",
                "action",
            ]
        )
        .assign(covered=True)
    )
    params = UpliftParams(random_actions=True)
    report, chosen = plan_uplift(rows, params, 5.0, candidates)
    assert report["policy_in_use"] == "uplift"
    assert set(chosen["suggested_action"]) <= {"call", "offer"}
    assert report["contacts"]["actions"].startswith("best expected incremental profit")
    with pytest.raises(ChurnError, match="no 'action' column"):
        plan_uplift(rows.drop(columns="action"), params, 5.0, candidates)


def test_uplift_stage_reads_the_ledger_table_and_writes_the_report_and_todays_uplift(tmp_path):
    from support.uplift_ledger import ledger_inputs

    inputs = ledger_inputs("heterogeneous", seed=0)
    paths = {}
    for name in ("table", "snapshots", "contacted", "snapshot"):
        paths[name] = tmp_path / f"{name}.parquet"
        getattr(inputs, name).to_parquet(paths[name])
    report, out = tmp_path / "reports" / "uplift.json", tmp_path / "data" / "uplift.parquet"
    arguments = [
        "uplift",
        *("--ledger-table", str(paths["table"]), "--snapshots", str(paths["snapshots"])),
        *("--contacted", str(paths["contacted"]), "--snapshot", str(paths["snapshot"])),
        *("--out", str(out), "--report", str(report), "--params", _params(tmp_path)),
    ]
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 0, result.output
    written = json.loads(report.read_text())
    assert written["policy_in_use"] == "uplift"
    assert written["risk_model"]["labels_end_by"] <= min(written["data"]["holdout_campaigns"])[5:]
    uplift = pd.read_parquet(out)
    assert list(uplift.columns) == ["customer_id", "uplift", "covered"]
    assert len(uplift) == len(inputs.snapshot)
    # the stage needs its other inputs, and one source of campaigns
    missing = CliRunner().invoke(app, [a for a in arguments if a != str(out) and a != "--out"])
    assert "--ledger-table also needs --out" in str(missing.exception)
    both = CliRunner().invoke(app, [*arguments, "--campaigns", str(paths["table"])])
    assert "exactly one of --ledger-table" in str(both.exception)
