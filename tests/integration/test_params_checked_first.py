"""Params are checked before DVC deletes any stage's outputs."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest


# dvc.yaml interpolates no params value (`${...}`), so DVC itself never reads a section: ingest
# (whose sources the `sources` stage fingerprints) and the shared churn definition included
@pytest.mark.parametrize(
    ("section", "typo"),
    [("train", "trian"), ("score", "scroe"), ("ingest", "ingets"), ("churn", "chrun")],
)
def test_a_misspelt_section_stops_dvc_repro_before_any_output_is_deleted(
    tmp_path, project_root, section, typo
):
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(project_root / name, tmp_path / name)
    text = (tmp_path / "params.yaml").read_text().replace(f"\n{section}:", f"\n{typo}:")
    (tmp_path / "params.yaml").write_text(text)
    src = tmp_path / "src"
    shutil.copytree(project_root / "src", src, ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "data" / "suppression.csv").parent.mkdir()
    shutil.copy(project_root / "data" / "suppression.csv", tmp_path / "data" / "suppression.csv")
    kept = tmp_path / "data" / "features" / "train.parquet"
    kept.parent.mkdir(parents=True)
    kept.write_bytes(b"an earlier run's output")
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    dvc = Path(sys.executable).with_name("dvc")
    subprocess.run([str(dvc), "init", "-q"], cwd=tmp_path, check=True)
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(tmp_path)}
    run = subprocess.run(
        [str(dvc), "repro"], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300
    )
    assert run.returncode != 0
    assert f"{typo}: unknown key (did you mean '{section}'?)" in run.stderr + run.stdout
    assert kept.read_bytes() == b"an earlier run's output"
