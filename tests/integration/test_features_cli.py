"""`churn features` end to end on small seeded data: files, schema, report, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from churn.cli import app


@pytest.fixture(scope="module")
def interim(generated_interim):
    return generated_interim(customers=400, seed=5, days=1095)


def run_features(interim: Path, out: Path, params: Path | None = None):
    argv = ["features", "--transactions", str(interim / "transactions.parquet")]
    argv += [
        "--customers",
        str(interim / "customers.parquet"),
        "--nps",
        str(interim / "nps.parquet"),
    ]
    argv += ["--out", str(out / "features"), "--report", str(out / "features.json")]
    if params is not None:
        argv += ["--params", str(params)]
    return CliRunner().invoke(app, argv)


def test_features_command_writes_snapshots_and_report(interim, tmp_path, project_root):
    result = run_features(interim, tmp_path, project_root / "params.yaml")
    assert result.exit_code == 0, result.output
    train = pq.read_table(tmp_path / "features" / "train.parquet")
    score = pq.read_table(tmp_path / "features" / "score.parquet")
    assert str(train.schema.field("cutoff").type) == "date32[day]"
    assert str(train.schema.field("churned").type) == "int8"
    assert str(train.schema.field("customer_id").type) in ("string", "large_string")
    assert score.schema.names == [n for n in train.schema.names if n != "churned"]
    report = json.loads((tmp_path / "features.json").read_text())
    assert len(report["cutoffs"]) == 12
    assert sum(item["rows"] for item in report["cutoffs"].values()) == train.num_rows
    assert report["score_rows"] == score.num_rows
    roles = [item["role"] for _, item in sorted(report["cutoffs"].items())]
    assert roles[-1] == "test" and "calibration" in roles and roles[0] == "fit"
    assert set(report["null_rates"]["train"]) >= {"recency_days", "channel", "nps_latest"}
    frame = train.to_pandas()
    test_cutoff = max(report["cutoffs"])
    test_rows = frame[frame["cutoff"].astype(str) == test_cutoff]
    assert report["cutoffs"][test_cutoff]["churn_rate"] == round(test_rows["churned"].mean(), 6)
    assert report["null_rates"]["score"]["gap_mean_days"] == round(
        score.to_pandas()["gap_mean_days"].isna().mean(), 6
    )


def test_missing_input_is_a_clear_error(tmp_path, project_root):
    result = run_features(tmp_path, tmp_path, project_root / "params.yaml")
    assert result.exit_code != 0
    assert "not found; run `churn ingest` first" in str(result.exception)


def test_as_of_after_the_data_is_a_clear_error(interim, tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text("churn:\n  as_of: 2099-01-01\n")
    result = run_features(interim, tmp_path, params)
    assert "churn.as_of = 2099-01-01 is after the last transaction date" in str(result.exception)
