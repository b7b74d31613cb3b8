"""`dvc repro` reruns ingest exactly when a source's content changes: the `sources` stage runs on
every repro and its fingerprints stay byte-identical while the export is unchanged (a touched
file included); new rows rerun ingest. The project is the user's pipeline as `churn init` leaves it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from churn.init.project import edit_pipeline
from support.dvc_project import pipeline_env, write_params
from support.paths import ROOT

HEADER = "customer,order_id,ordered_at,amount\n"
ROWS = [
    f"{i % 7:05d},o{i},2024-0{1 + i % 6}-{10 + i % 15} 12:00:00,{5 + i}.50\n" for i in range(30)
]


def _repro(root, env) -> str:
    run = subprocess.run(
        ["dvc", "repro", "ingest"], cwd=root, env=env, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    return run.stdout


@pytest.mark.slow
def test_ingest_reruns_when_the_export_changes_and_only_then(tmp_path):
    root = tmp_path
    shutil.copytree(ROOT / "src", root / "src", ignore=shutil.ignore_patterns("__pycache__"))
    pipeline, _ = edit_pipeline((ROOT / "dvc.yaml").read_text(), "dvc.yaml")
    (root / "dvc.yaml").write_text(pipeline)
    write_params(root, ingest={"source": "exports/tx.csv", "customers": None, "nps": None})
    export = root / "exports" / "tx.csv"
    export.parent.mkdir()
    export.write_text(HEADER + "".join(ROWS[:20]))
    env = pipeline_env(root)

    first = _repro(root, env)
    assert "Running stage 'sources'" in first and "Running stage 'ingest'" in first
    fingerprints = (root / "reports" / "sources.json").read_bytes()
    assert json.loads((root / "reports" / "ingest.json").read_bytes())["rows_read"] == 20

    os.utime(export)  # touched, same bytes
    second = _repro(root, env)
    assert "Running stage 'sources'" in second  # always re-reads the sources
    assert "Running stage 'ingest'" not in second, second
    assert (root / "reports" / "sources.json").read_bytes() == fingerprints

    with export.open("a") as handle:
        handle.writelines(ROWS[20:])  # the next export: new rows
    third = _repro(root, env)
    assert "Running stage 'ingest'" in third
    assert json.loads((root / "reports" / "ingest.json").read_bytes())["rows_read"] == 30
