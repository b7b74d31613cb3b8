"""The Spark features stage writes only the training sample to train.parquet: every reader of the
file (train, evaluate, promote, uplift, drift) gets from it exactly what it gets from the whole
table the DuckDB features stage writes, and the report still counts the whole table."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from churn.cli import app
from churn.columns import CHURN_PROBABILITY, CUSTOMER_ID, CUTOFF, ROLE
from churn.config import (
    ChurnParams,
    CutoffsParams,
    EngineParams,
    EvaluateParams,
    FeaturesParams,
    RolesParams,
)
from churn.errors import ChurnError
from churn.evaluate import evaluate_model
from churn.features.build import write_snapshots as write_on_duckdb
from churn.train import fit_model
from churn.training_rows import read_snapshots
from churn.uplift.from_ledger import read_labelled_snapshots
from support.paths import ROOT
from support.snapshot_helper import FAST
from support.spark_parity import frame_differences, require_spark

pytestmark = [pytest.mark.slow, pytest.mark.spark]

HORIZON = 90
FIT_CAP, HELD_CAP, UPLIFT_CAP = 60, 50, 70  # far below the 400 customers: the samples bind
TRAIN = FAST.model_copy(update={"sample_customers": FIT_CAP, "sample_held_out_customers": HELD_CAP})


@pytest.fixture(scope="module")
def tables(generated_interim, spark_session, tmp_path_factory):
    """(whole table written by DuckDB, sample written by Spark, both reports, work folder)."""
    require_spark()
    from churn.spark.features import write_snapshots as write_on_spark
    from churn.spark.sample import SampleParams

    source = generated_interim(customers=400, seed=5, days=1095)
    inputs = [source / f"{name}.parquet" for name in ("transactions", "customers", "nps")]
    work = tmp_path_factory.mktemp("spark-sample")
    # eight cutoffs (the sample's queries per cutoff stay few); more calibration cutoffs than fit
    # in: calibration on customers held out by id hash, so the roles are assigned per customer
    # on Spark before the samples are drawn (assign_customer_roles)
    churn = ChurnParams(horizon_days=HORIZON)
    features = FeaturesParams(
        cutoffs=CutoffsParams(count=8), roles=RolesParams(calibration_cutoffs=5)
    )
    whole = work / "duckdb" / "train.parquet"
    duckdb_report = write_on_duckdb(
        *inputs, churn, features, EngineParams(threads=1), whole, work / "duckdb" / "score.parquet"
    )
    sampled = work / "spark" / "train.parquet"
    spark_report = write_on_spark(
        spark_session(), *inputs, churn, features, sampled, work / "spark" / "score.parquet",
        work / "parts", SampleParams(FIT_CAP, HELD_CAP, UPLIFT_CAP, "test"),
    )  # fmt: skip
    return whole, sampled, duckdb_report, spark_report, work


def test_only_the_sample_is_written_and_the_report_counts_the_whole_table(tables):
    whole, sampled, duckdb_report, spark_report, _ = tables
    written = pd.read_parquet(sampled)
    every = pd.read_parquet(whole)
    # sampling really happens: fewer rows, and fit cutoffs hold fewer customers
    assert len(written) < len(every)
    fit = every[every[ROLE] == "fit"]
    assert written.loc[written[ROLE] == "fit", CUSTOMER_ID].nunique() < fit[CUSTOMER_ID].nunique()
    assert list(written.dtypes) == list(every.dtypes)
    assert set(every[ROLE]) == {"fit", "calibration", "gap", "test"}
    # the written rows are the whole table's rows, in its order
    keys = [CUSTOMER_ID, CUTOFF]
    inner = every.merge(written[keys], on=keys, how="inner")
    assert frame_differences(written, inner) == []
    extra = spark_report.pop("train_rows_written")
    assert spark_report == duckdb_report  # the whole table's counts, rows and null rates
    assert extra["rows"] == len(written) and extra["sample"] is True


def test_train_reads_the_same_rows_and_fits_the_same_models(tables):
    whole, sampled, *_ = tables
    frame, customers = read_snapshots(whole, FIT_CAP, HORIZON, HELD_CAP)
    again, customers_again = read_snapshots(sampled, FIT_CAP, HORIZON, HELD_CAP)
    assert customers_again == customers  # the whole table's count, from the file's metadata
    assert frame_differences(again, frame) == []
    first = fit_model(frame, TRAIN, HORIZON, customers_fit=customers)
    second = fit_model(again, TRAIN, HORIZON, customers_fit=customers_again)
    for one, other in ((first.model, second.model), (first.production, second.production)):
        assert other.booster.model_to_string() == one.booster.model_to_string()
        assert np.array_equal(other.predict_proba(frame), one.predict_proba(frame))
    assert second.diagnostics == first.diagnostics
    # smaller caps choose within the written sample too; larger ones (or none) are refused
    smaller = read_snapshots(whole, FIT_CAP // 2, HORIZON, HELD_CAP // 2)[0]
    assert (
        frame_differences(read_snapshots(sampled, FIT_CAP // 2, HORIZON, HELD_CAP // 2)[0], smaller)
        == []
    )
    for caps in ((FIT_CAP + 1, HELD_CAP), (FIT_CAP, None)):
        with pytest.raises(ChurnError, match="rerun the features stage"):
            read_snapshots(sampled, caps[0], HORIZON, caps[1])
    evaluation = [
        evaluate_model(read_snapshots(path, FIT_CAP, None, HELD_CAP)[0], first.model,
                       EvaluateParams(min_segment_rows=5, bootstrap=0), HORIZON, "snapshots", first.production)
        for path in (whole, sampled)
    ]  # fmt: skip
    assert json.dumps(evaluation[1].metrics, sort_keys=True, default=str) == json.dumps(
        evaluation[0].metrics, sort_keys=True, default=str
    )
    assert evaluation[1].segments == evaluation[0].segments
    for name, table in evaluation[0].curves.items():
        assert evaluation[1].curves[name].equals(table)


def test_the_uplift_risk_model_reads_the_same_rows_for_any_first_campaign(tables):
    whole, sampled, *_ = tables
    features = [name for name in pq.read_schema(whole).names if name.startswith("recency")]
    cutoffs = sorted(pd.read_parquet(whole, columns=[CUTOFF])[CUTOFF].unique())
    days = [cutoffs[0] - dt.timedelta(days=1), cutoffs[0], cutoffs[2] + dt.timedelta(days=9)]
    for last in [*days, cutoffs[-1]]:
        labels_end_by = last + dt.timedelta(days=HORIZON)
        for cap in (UPLIFT_CAP, UPLIFT_CAP // 2):
            want = read_labelled_snapshots(whole, HORIZON, labels_end_by, features, cap)
            got = read_labelled_snapshots(sampled, HORIZON, labels_end_by, features, cap)
            assert frame_differences(got, want) == [], (last, cap)


def test_drift_reports_the_same_on_the_sample(tables):
    whole, sampled, _, _, work = tables
    frame, customers = read_snapshots(whole, FIT_CAP, HORIZON, HELD_CAP)
    model = fit_model(frame, TRAIN, HORIZON, customers_fit=customers).production_model
    model.save(work / "champion")
    snapshot = work / "duckdb" / "score.parquet"
    rows = pd.read_parquet(snapshot)
    scores = pd.DataFrame(
        {CUSTOMER_ID: rows[CUSTOMER_ID], CHURN_PROBABILITY: model.predict_proba(rows)}
    )
    scores.to_parquet(work / "scores.parquet")
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    (work / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    reports = []
    for path in (whole, sampled):
        report = work / f"drift-{path.parent.name}.json"
        result = CliRunner().invoke(
            app,
            ["drift", "--champion", str(work / "champion"), "--training", str(path),
             "--snapshot", str(snapshot), "--scores", str(work / "scores.parquet"),
             "--report", str(report), "--params", str(work / "params.yaml")],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        reports.append(report.read_text(encoding="utf-8"))
    assert reports[1] == reports[0]
