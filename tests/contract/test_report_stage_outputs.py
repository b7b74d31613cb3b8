"""dvc.yaml's report stage declares exactly the files `churn report` writes."""

from __future__ import annotations

import yaml

from support.report_data import OUTPUTS


def test_stage_declares_outputs_the_command_writes(project_root):
    stage = yaml.safe_load((project_root / "dvc.yaml").read_text())["stages"]["report"]
    declared = [next(iter(entry)) for key in ("outs", "metrics", "plots") for entry in stage[key]]
    assert sorted(declared) == sorted(f"reports/{name}" for name in OUTPUTS)
    plots = {next(iter(entry)): entry[next(iter(entry))] for entry in stage["plots"]}
    assert plots["reports/retention_monthly.csv"]["x"] == "period_start"
    assert plots["reports/cohorts.csv"]["y"] == "retention_pct"
