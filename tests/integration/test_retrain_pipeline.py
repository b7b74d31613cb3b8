"""`churn retrain` end to end: two scheduled runs on data that grew by more than the horizon."""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest
import yaml

from support.dvc_project import pipeline_env, without_contact_log
from support.paths import ROOT
from support.scheduling_examples import cron_examples, make_project
from support.snapshot_helper import QUICK_LIGHTGBM

# two full `dvc repro` runs take minutes on a shared 2-core machine: opt in with CHURN_SLOW_TESTS=1
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not os.environ.get("CHURN_SLOW_TESTS"),
        reason="two full pipeline runs; set CHURN_SLOW_TESTS=1",
    ),
]

HORIZON = 90
GROWTH_DAYS = 120  # more than the horizon: the first run's list can be checked by the second


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


def _cut_raw(full: Path, raw: Path, end: date) -> None:
    """Write the raw export as it looked on `end`: rows dated after it are not there yet."""
    raw.mkdir(parents=True, exist_ok=True)
    with (
        gzip.open(full / "transactions.csv.gz", "rt") as source,
        gzip.open(raw / "transactions.csv.gz", "wt") as target,
    ):
        header = source.readline()
        target.write(header)
        column = header.strip().replace('"', "").split(",").index("ordered_at")
        for line in source:
            stamp = line.split(",")[column].strip('"')[:10]
            if not (len(stamp) == 10 and stamp[4] == "-" and stamp > end.isoformat()):
                target.write(line)  # malformed rows stay: the quarantine must see them
    for name, column in (("customers.csv", "signup_date"), ("nps.csv", "answered_at")):
        lines = (full / name).read_text().splitlines(keepends=True)
        index = lines[0].strip().replace('"', "").split(",").index(column)
        kept = [lines[0]] + [
            line for line in lines[1:] if line.split(",")[index].strip('"')[:10] <= end.isoformat()
        ]
        (raw / name).write_text("".join(kept))


@pytest.fixture(scope="module")
def project(tmp_path_factory, _migrated_mlflow_db):
    """A copy of the project with small generated data; the generate stage is the 'source system'."""
    project_root = ROOT
    root = tmp_path_factory.mktemp("retrain")
    # the store the first run creates (its migrations take seconds), made once per test run
    shutil.copyfile(_migrated_mlflow_db, root / "mlflow.db")
    shutil.copytree(
        project_root / "src", root / "src", ignore=shutil.ignore_patterns("__pycache__")
    )
    params = yaml.safe_load((project_root / "params.yaml").read_text())
    params["generate"].update({"customers": 700, "days": 900, "dirty_share": 0.001})
    params["retrain"]["repro_command"] = ["dvc", "repro", "drift"]  # evaluate is not needed here
    # the raw export is cut by date below; the demo's simulated campaigns are not part of it
    # (their past lists enter the record only through `churn import-lists`, not run here; their
    # contact log is taken out of dvc.yaml below)
    params["train"]["lightgbm"].update(
        QUICK_LIGHTGBM
    )  # what is tested is the pipeline, not the fit
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    stages = yaml.safe_load((project_root / "dvc.yaml").read_text())
    del stages["stages"]["generate"]  # raw data arrive from outside, like a nightly export
    stages = without_contact_log(stages)
    (root / "dvc.yaml").write_text(yaml.safe_dump(stages, sort_keys=False))
    env = pipeline_env(root)
    make_project(root, project_root)  # the venv at .venv, as docs/scheduling.md expects
    generated = _run([sys.executable, "-m", "churn", "generate", "--out", "data/full"], root, env)
    assert generated.returncode == 0, generated.stderr
    return root, env


def test_two_scheduled_runs_publish_lists_and_the_second_backtests_the_first(project):
    root, env = project
    full = root / "data" / "full"
    generated = yaml.safe_load((root / "params.yaml").read_text())["generate"]
    end = date.fromisoformat(generated["start"]) + timedelta(days=generated["days"] - 1)
    first_end = end - timedelta(days=GROWTH_DAYS)

    _cut_raw(full, root / "data" / "raw", first_end)
    # the first run is the doc's first cron line, run as cron does: /bin/sh, PATH=/usr/bin:/bin,
    # no venv on PATH; churn must find dvc, and dvc the stages' churn, in the project's .venv
    cron = cron_examples((ROOT / "docs" / "scheduling.md").read_text())[0].in_project(root)
    home = root.parent / f"{root.name}-home"
    home.mkdir()
    first = cron.run(home)
    log_text = (root / "logs" / "retrain.log").read_text()
    assert first.returncode == 0, (first.stderr + log_text)[-3000:]  # the first champion, published
    assert "not found" not in first.stdout + first.stderr
    first_as_of = json.loads((root / "exports" / "at_risk" / "LATEST.json").read_text())["as_of"]
    assert first_end - timedelta(days=7) <= date.fromisoformat(first_as_of) <= first_end
    # the log file: plain timestamped lines, the pipeline's output relayed, no progress bars
    assert re.search(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d INFO churn.retrain: \| ", log_text, re.M)
    assert re.search(r" INFO churn.retrain: \| Running stage 'train'", log_text, re.M)
    assert re.search(r" INFO churn.retrain: new champion: version 1 \(was none\)$", log_text, re.M)
    assert "\r" not in log_text
    assert " ERROR " not in log_text
    assert " ERROR " not in first.stderr  # with --log-file, stderr holds errors only: none here
    backtest = json.loads((root / "reports" / "backtest.json").read_text())
    assert backtest["runs"] == []
    assert [p["as_of"] for p in backtest["pending"]] == [first_as_of]

    _cut_raw(full, root / "data" / "raw", end)
    second = _run([sys.executable, "-m", "churn", "retrain"], root, env)
    assert second.returncode in (0, 10), second.stderr[-3000:]
    promotion = json.loads((root / "reports" / "promotion.json").read_text())
    assert promotion["champion"] is not None  # the second run was gated against the first
    assert promotion["eval_data"]["rows"] > 0
    second_as_of = json.loads((root / "exports" / "at_risk" / "LATEST.json").read_text())["as_of"]
    assert date.fromisoformat(second_as_of) > date.fromisoformat(first_as_of) + timedelta(HORIZON)
    assert (root / "exports" / "at_risk" / first_as_of).is_dir()  # earlier lists are kept

    backtest = json.loads((root / "reports" / "backtest.json").read_text())
    assert [run["as_of"] for run in backtest["runs"]] == [first_as_of]
    run = backtest["runs"][0]
    assert run["flagged"] > 0
    assert run["churn_rate_flagged"] > run["churn_rate_not_flagged"]
    assert 0 < run["precision"] <= 1 and 0 < run["recall"] <= 1
    comparison = run["flagged_vs_rest"]
    assert comparison["flagged"]["churn_rate"] == run["churn_rate_flagged"]
    assert comparison["flagged"]["ci_low"] <= comparison["flagged"]["churn_rate"]
    assert 0 < comparison["flagged"]["predicted"] < 1
    # no contact log: no campaign is known, so the control comparison is not called an effect
    assert run["campaign"]["known"] is False
    assert "retention_difference" not in run["campaign"]
    assert run["campaign"]["control_comparison"]["control_customers"] > 0
    assert [p["as_of"] for p in backtest["pending"]] == [second_as_of]

    # the ledger is a stage of the second run's `dvc repro`: it measures the first list; the
    # list the second run published enters it on the next run
    ledger = json.loads((root / "reports" / "ledger.json").read_text())
    (measured,) = ledger["lists"]
    assert measured["as_of"] == first_as_of and measured["origin"] == "churn"
    assert measured["status"] in ("inconclusive", "separated")
    overall = measured["slices"][0]
    assert (
        overall["control_customers"] == run["campaign"]["control_comparison"]["control_customers"]
    )
    # the power check made at publish is in each list's manifest, and so in the ledger
    assert measured["power_check"]["treated"] == measured["treated"]
