"""Under `dvc repro`, an ingest stage stopped by a data gate leaves the last clean tables as they were."""

from __future__ import annotations

import json
import shutil
import subprocess

import yaml

from support.dvc_project import pipeline_env
from support.paths import ROOT

TABLES = ("transactions", "quarantine", "customers", "nps")


def _set_params(root, **ingest) -> None:
    path = root / "params.yaml"
    params = yaml.safe_load(path.read_text(encoding="utf-8"))
    params["generate"]["customers"] = 300
    params["ingest"].update(ingest)
    path.write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")


def test_a_failed_data_gate_under_dvc_repro_keeps_the_previous_clean_tables(tmp_path):
    root = tmp_path / "project"
    root.mkdir()
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(ROOT / name, root / name)
    shutil.copytree(ROOT / "src", root / "src", ignore=shutil.ignore_patterns("__pycache__"))
    env = pipeline_env(root)
    _set_params(root)

    def repro():
        return subprocess.run(
            ["dvc", "repro", "ingest"], cwd=root, env=env, capture_output=True, text=True,
            timeout=300,
        )  # fmt: skip

    first = repro()
    assert first.returncode == 0, first.stderr + first.stdout
    report = json.loads((root / "reports" / "ingest.json").read_text())
    assert report["quarantined"] > 0  # the generated export carries a few broken rows
    before = {t: (root / "data" / "interim" / f"{t}.parquet").read_bytes() for t in TABLES}

    _set_params(root, max_quarantine_share=0.0)  # the same export now fails the gate
    failed = repro()
    assert failed.returncode != 0
    assert "max_quarantine_share" in failed.stderr + failed.stdout
    after = {t: (root / "data" / "interim" / f"{t}.parquet").read_bytes() for t in TABLES}
    assert after == before
