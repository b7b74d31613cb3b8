"""`dvc repro` with engine.kind: spark (Spark local) on small generated data exported as a typed
Parquet file: the ingest stage runs its row rules on Spark and writes the DuckDB ingest's clean
and quarantine tables, the feature tables equal DuckDB's on the same clean tables, the scores of every customer (probability, tier, value,
priority, flag, control group, reasons, action) equal the DuckDB engine's score stage on the
same snapshot and champion, the report and ledger stages aggregate the transactions on Spark, and
`churn publish` publishes a list."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from churn.config import EngineParams, parse_params
from churn.features import build_snapshots as build_on_duckdb
from churn.ingest import IngestOutputs, run_ingest
from support.dvc_project import pipeline_env
from support.paths import ROOT
from support.snapshot_helper import QUICK_LIGHTGBM
from support.spark_parity import assert_same_snapshots, frame_differences, require_spark

# a full `dvc repro` (about 2-3 minutes here, Spark's JVM start included): opt in locally with
# CHURN_SLOW_TESTS=1; CI sets it
pytestmark = [
    pytest.mark.slow,
    pytest.mark.spark,
    pytest.mark.skipif(
        not os.environ.get("CHURN_SLOW_TESTS"), reason="full pipeline run; set CHURN_SLOW_TESTS=1"
    ),
]


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=1200)


def test_dvc_repro_on_spark_gives_duckdbs_features_and_publishes(tmp_path, _migrated_mlflow_db):
    require_spark()
    # the store a first run creates (its migrations take seconds), made once per test run
    shutil.copyfile(_migrated_mlflow_db, tmp_path / "mlflow.db")
    shutil.copytree(ROOT / "src", tmp_path / "src", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "dvc.yaml", tmp_path / "dvc.yaml")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["generate"].update({"customers": 1500, "days": 730, "dirty_share": 0.002})
    params["evaluate"]["bootstrap"] = 20
    params["train"]["lightgbm"].update(QUICK_LIGHTGBM)
    params["engine"]["kind"] = "spark"
    params["engine"]["spark"]["master"] = "local[1]"
    params["engine"]["spark"]["conf"].update(
        {"spark.driver.memory": "512m", "spark.local.dir": str(tmp_path / "spark-tmp")}
    )
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = pipeline_env(tmp_path)

    # the generated export as a typed Parquet file (the Spark ingest reads typed tables; a text
    # export would go through the DuckDB ingest): ids as text, timestamps, amounts as numbers
    generated = _run(["dvc", "repro", "generate"], tmp_path, env)
    assert generated.returncode == 0, (generated.stdout + generated.stderr)[-4000:]
    typed = tmp_path / "data" / "raw" / "transactions.parquet"
    raw = pd.read_csv(tmp_path / "data" / "raw" / "transactions.csv.gz", dtype=str)
    stamps = pd.to_datetime(raw["ordered_at"], format="%Y-%m-%d %H:%M:%S", errors="coerce")
    pa_table = pa.table(
        {
            "customer": pa.array(raw["customer"].astype(object), pa.string()),
            "order_id": pa.array(raw["order_id"].astype(object), pa.string()),
            "ordered_at": pa.array(stamps.astype("datetime64[us]"), pa.timestamp("us")),
            "amount": pa.array(pd.to_numeric(raw["amount"], errors="coerce"), pa.float64()),
        }
    )
    pq.write_table(pa_table, typed)
    params["ingest"]["source"] = "data/raw/transactions.parquet"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

    repro = _run(["dvc", "repro"], tmp_path, env)
    assert repro.returncode == 0, (repro.stdout + repro.stderr)[-4000:]
    assert "on Spark;" in repro.stdout + repro.stderr  # the ingest stage's row rules ran on Spark
    assert "(Spark)" in repro.stdout + repro.stderr  # the features stage ran on Spark
    # the report stage's aggregates ran on Spark (their parity: test_spark_report.py)
    assert "transactions aggregated on Spark" in repro.stdout + repro.stderr
    # the ledger stage's reads ran on Spark (their parity: test_spark_ledger.py)
    assert "ledger: transactions aggregated on Spark" in repro.stdout + repro.stderr

    # the ingest stage's tables equal the DuckDB ingest's on the same source
    settings = parse_params(params)
    interim = tmp_path / "data" / "interim"
    report = json.loads((tmp_path / "reports" / "ingest.json").read_text())
    assert report["format"] == "parquet" and report["quarantined"] > 0
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path)  # the sources as params.yaml names them (relative paths)
        on_duckdb_ingest, _ = run_ingest(
            settings.ingest,
            EngineParams(),
            IngestOutputs.in_folder(tmp_path / "duckdb_interim"),
            tmp_path,
            {},
            datetime.now(UTC),
            {},
            tmp_path,
        )
    assert on_duckdb_ingest["rows_read"] == report["rows_read"]
    assert on_duckdb_ingest["quarantined_by_reason"] == report["quarantined_by_reason"]
    for name in ("transactions", "quarantine", "customers", "nps"):
        want = pd.read_parquet(tmp_path / "duckdb_interim" / f"{name}.parquet")
        got = pd.read_parquet(interim / f"{name}.parquet")
        assert frame_differences(got, want) == [], name
    on_duckdb = build_on_duckdb(
        *(interim / f"{name}.parquet" for name in ("transactions", "customers", "nps")),
        settings.churn,
        settings.features,
        settings.engine,
    )
    features = tmp_path / "data" / "features"
    on_spark = replace(
        on_duckdb,
        train=pd.read_parquet(features / "train.parquet"),
        score=pd.read_parquet(features / "score.parquet"),
    )
    # the stage's files went through Parquet: compare with DuckDB's frames after the same trip
    for name in ("train", "score"):
        getattr(on_duckdb, name).to_parquet(tmp_path / f"duckdb_{name}.parquet")
    expected = replace(
        on_duckdb,
        train=pd.read_parquet(tmp_path / "duckdb_train.parquet"),
        score=pd.read_parquet(tmp_path / "duckdb_score.parquet"),
    )
    assert_same_snapshots(on_spark, expected)
    report = json.loads((tmp_path / "reports" / "features.json").read_text())
    assert report["as_of"] == on_duckdb.as_of.isoformat()

    # the score stage ran on Spark: its file equals the pandas score stage's on the same inputs
    assert "customers on Spark" in repro.stdout + repro.stderr
    from churn.files import parquet_bytes
    from churn.model import ChurnModel
    from churn.score import build_scores
    from churn.score.suppression import read_suppression
    from churn.score.targeting import choose_save_rates

    # the stage's save rates: measured per tier by the campaign ledger where it could
    ledger = json.loads((tmp_path / "reports" / "ledger.json").read_text())
    expected_scores = build_scores(
        pd.read_parquet(features / "score.parquet"),
        ChurnModel.load(tmp_path / "models" / "champion"),
        settings.score,
        read_suppression(tmp_path / "data" / "suppression.csv"),
        choose_save_rates(ledger, settings.score),
    )
    (tmp_path / "duckdb_scores.parquet").write_bytes(parquet_bytes(expected_scores))
    on_spark_scores = pd.read_parquet(tmp_path / "data" / "scores" / "scores.parquet")
    assert on_spark_scores["at_risk"].sum() > 0
    assert (
        frame_differences(on_spark_scores, pd.read_parquet(tmp_path / "duckdb_scores.parquet"))
        == []
    )

    published = _run([sys.executable, "-m", "churn", "publish"], tmp_path, env)
    assert published.returncode == 0, (published.stdout + published.stderr)[-3000:]
    latest = json.loads((tmp_path / "exports" / "at_risk" / "LATEST.json").read_text())
    assert latest["as_of"] == on_duckdb.as_of.isoformat()
