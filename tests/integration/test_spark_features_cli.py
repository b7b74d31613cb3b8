"""`churn features` with engine.kind: spark (Spark local, from params.yaml) writes the same
training and scoring tables and report as with DuckDB (plus how many training rows it wrote)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from churn.cli import app
from support.paths import ROOT
from support.spark_parity import frame_differences, require_spark

pytestmark = [pytest.mark.slow, pytest.mark.spark]


def _features_cli(interim: Path, out: Path, params: Path):
    argv = ["features", "--params", str(params), "--out", str(out), "--report", str(out / "r.json")]
    for name in ("transactions", "customers", "nps"):
        argv += [f"--{name}", str(interim / f"{name}.parquet")]
    return CliRunner().invoke(app, argv)


def test_features_command_on_spark_writes_duckdbs_files(generated_interim, tmp_path):
    require_spark()
    interim = generated_interim(customers=400, seed=5, days=1095)
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    duckdb_params = tmp_path / "duckdb.yaml"
    duckdb_params.write_text(yaml.safe_dump(params), encoding="utf-8")
    params["engine"]["kind"] = "spark"
    params["engine"]["spark"]["master"] = "local[1]"
    params["engine"]["spark"]["conf"].update(
        {"spark.driver.memory": "512m", "spark.local.dir": str(tmp_path)}
    )
    spark_params = tmp_path / "spark.yaml"
    spark_params.write_text(yaml.safe_dump(params), encoding="utf-8")
    for name, path in (("duckdb", duckdb_params), ("spark", spark_params)):
        result = _features_cli(interim, tmp_path / name, path)
        assert result.exit_code == 0, result.output
    for table in ("train", "score"):
        on_spark = pd.read_parquet(tmp_path / "spark" / f"{table}.parquet")
        on_duckdb = pd.read_parquet(tmp_path / "duckdb" / f"{table}.parquet")
        assert frame_differences(on_spark, on_duckdb) == []
    report = json.loads((tmp_path / "spark" / "r.json").read_text())
    # params.yaml's sample caps exceed the 400 customers: every row is read, so every row is
    # written (tests/integration/test_spark_training_sample.py draws a binding sample)
    written = report.pop("train_rows_written")
    assert written["rows"] == report["train_rows"] and written["sample"] is False
    assert report == json.loads((tmp_path / "duckdb" / "r.json").read_text())
