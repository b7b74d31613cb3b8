"""`dvc exp run` never writes what the backtest, the campaign ledger and the page read: the
published-lists record is byte-identical after an experiment, even with past lists lying around."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pandas as pd
import pytest
import yaml

from support.dvc_project import copy_pipeline, pipeline_env

# a real `dvc exp run` (generate, ingest and the ledger on 300 customers): about 2 minutes
pytestmark = pytest.mark.slow


def _run(args, root, env):
    return subprocess.run(args, cwd=root, env=env, capture_output=True, text=True, timeout=600)


def _record_bytes(exports):
    return {
        path.relative_to(exports).as_posix(): path.read_bytes()
        for path in sorted(exports.rglob("*"))
        if path.is_file()
    }


def test_dvc_exp_run_with_other_params_leaves_the_published_lists_record_byte_identical(
    tmp_path, project_root
):
    root = tmp_path / "project"
    params = copy_pipeline(project_root, root)
    params["generate"].update({"customers": 300, "dirty_share": 0.001})
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = pipeline_env(root)
    dvc = str(shutil.which("dvc", path=env["PATH"]))
    churn = [sys.executable, "-m", "churn"]

    # the data up to the ledger; the record holds one imported list (not the demo's four)
    first = _run([dvc, "repro", "ledger"], root, env)
    assert first.returncode == 0, (first.stdout + first.stderr)[-3000:]
    demo_lists = root / "data" / "raw" / "campaign_lists.csv"
    demo = pd.read_csv(demo_lists, dtype="string")
    assert demo["list_id"].nunique() >= 2  # an importing stage would have something to import
    earlier = demo.loc[demo["list_id"] == demo["list_id"].min()]
    earlier.to_csv(root / "earlier.csv", index=False)
    imported = _run([*churn, "import-lists", "earlier.csv"], root, env)
    assert imported.returncode == 0, imported.stderr
    again = _run([dvc, "repro", "ledger"], root, env)
    assert again.returncode == 0, (again.stdout + again.stderr)[-3000:]
    (root / ".gitignore").write_text("/exports/\n/data/\n/mlflow.db\n/mlartifacts/\n/.churn/\n")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    for command in ([*git, "add", "-A"], [*git, "commit", "-q", "-m", "baseline"]):
        done = _run(command, root, env)
        assert done.returncode == 0, done.stderr
    exports = root / "exports" / "at_risk"
    before = _record_bytes(exports)
    assert "events.jsonl" in before and len(before) > 4

    experiment = _run(
        [dvc, "exp", "run", "ledger", "-S", "score.save_rate=0.2", "-S", "backtest.confidence=0.9"],
        root,
        env,
    )
    output = experiment.stdout + experiment.stderr
    assert experiment.returncode == 0, output[-3000:]
    assert "Running stage 'ledger'" in output
    assert _record_bytes(exports) == before  # every file, events.jsonl included
    ledger = yaml.safe_load((root / "reports" / "ledger.json").read_text())
    assert [entry["list_id"] for entry in ledger["lists"]] == [demo["list_id"].min()]
    assert ledger["confidence"] == 0.9  # the experiment's params were used
