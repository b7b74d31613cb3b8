"""Short histories end to end: from horizon + 60 days of data, `dvc repro` trains, evaluates
(labelled by how it was measured) and `churn publish` publishes a list."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from support.dvc_project import pipeline_env
from support.paths import ROOT
from support.snapshot_helper import QUICK_LIGHTGBM

# full `dvc repro` runs take a minute each on a shared 2-core machine: opt in with CHURN_SLOW_TESTS=1
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not os.environ.get("CHURN_SLOW_TESTS"), reason="full pipeline runs; set CHURN_SLOW_TESTS=1"
    ),
]


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


def _project(root: Path, days: int, horizon: int, mlflow_db: Path) -> dict[str, str]:
    # the store a first run creates (its migrations take seconds), made once per test run
    shutil.copyfile(mlflow_db, root / "mlflow.db")
    shutil.copytree(ROOT / "src", root / "src", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "dvc.yaml", root / "dvc.yaml")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["generate"].update({"customers": 3000, "days": days, "dirty_share": 0.001})
    params["churn"]["horizon_days"] = horizon
    params["evaluate"]["bootstrap"] = 20
    params["train"]["lightgbm"].update(
        QUICK_LIGHTGBM
    )  # what is tested is the pipeline, not the fit
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return pipeline_env(root)


@pytest.mark.parametrize(
    ("days", "horizon", "evaluation", "calibration"),
    [
        (90, 30, "in_time_holdout", "held_out_customers"),
        (150, 90, "in_time_holdout", "held_out_customers"),
        (240, 90, "out_of_time", "held_out_customers"),
    ],
)
def test_a_short_history_trains_evaluates_and_publishes(
    tmp_path, days, horizon, evaluation, calibration, _migrated_mlflow_db
):
    env = _project(tmp_path, days, horizon, _migrated_mlflow_db)
    repro = _run(["dvc", "repro"], tmp_path, env)
    assert repro.returncode == 0, (repro.stdout + repro.stderr)[-4000:]
    features = json.loads((tmp_path / "reports" / "features.json").read_text())
    plan = features["plan"]
    assert (plan["evaluation"], plan["calibration"]) == (evaluation, calibration)
    history = plan["history_days_at_earliest_cutoff"]
    assert all(w <= history for w in plan["windows"])
    # the scored snapshot has no feature the training rows lacked
    import pandas as pd

    train = pd.read_parquet(tmp_path / "data" / "features" / "train.parquet")
    score = pd.read_parquet(tmp_path / "data" / "features" / "score.parquet")
    assert set(score.columns) <= set(train.columns)
    assert not set(features["dropped_features"]) & set(train.columns)

    metrics = json.loads((tmp_path / "reports" / "metrics.json").read_text())
    assert metrics["evaluation"] == evaluation
    assert 0.5 < metrics["model"]["roc_auc"] <= 1
    promotion = json.loads((tmp_path / "reports" / "promotion.json").read_text())
    assert promotion["evaluation"] == evaluation
    assert promotion["decision"] == "promote"  # first run: the floor only
    page = (tmp_path / "reports" / "retention.html").read_text()
    if evaluation == "in_time_holdout":
        assert "in-time holdout" in page
        test = train[train["role"] == "test"]
        fitted = train[train["role"].isin(["fit", "calibration"])]
        assert not set(test["customer_id"]) & set(fitted["customer_id"])

    published = _run([sys.executable, "-m", "churn", "publish"], tmp_path, env)
    assert published.returncode == 0, (published.stdout + published.stderr)[-3000:]
    latest = json.loads((tmp_path / "exports" / "at_risk" / "LATEST.json").read_text())
    assert latest["as_of"]
