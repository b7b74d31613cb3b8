"""Scoring on Spark executors (mapInPandas with the model shipped to them) equals the score
stage's pandas scoring: probabilities row by row, and the whole scores table (tiers, value,
priority, targeting, control group, reasons and actions) of every customer."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churn.columns import AT_RISK, CHURN_PROBABILITY, CUSTOMER_ID, GROUP
from churn.config import ScoreParams, TargetParams
from churn.errors import ChurnError
from support.score_data import make_snapshot, train_model
from support.spark_parity import frame_differences, require_spark, spark_engine

pytestmark = [pytest.mark.slow, pytest.mark.spark]


@pytest.fixture(scope="module")
def spark(tmp_path_factory):
    require_spark()
    from churn.spark.session import open_spark

    session = open_spark(spark_engine(tmp_path_factory.mktemp("spark-score")))
    yield session
    session.stop()


def test_spark_probabilities_equal_the_pandas_model(spark):
    from churn.spark.score import predict_on_spark

    model = train_model(customers=1500, trees=25)
    snapshot = make_snapshot(3000, seed=11, labelled=False)
    expected = model.predict_proba(snapshot)
    frame = spark.createDataFrame(snapshot).repartition(3)  # several batches and executors' tasks
    result = predict_on_spark(frame, model).toPandas()
    by_id = result.set_index(CUSTOMER_ID)[CHURN_PROBABILITY]
    got = by_id.loc[snapshot[CUSTOMER_ID].astype(str)].to_numpy()
    assert len(result) == len(snapshot)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=0)


def test_a_snapshot_missing_a_feature_is_refused_before_any_job(spark):
    from churn.spark.score import predict_on_spark

    model = train_model(customers=500, trees=5)
    snapshot = make_snapshot(50, seed=2, labelled=False).drop(columns=[model.spec.names[0]])
    with pytest.raises(ChurnError, match=model.spec.names[0]):
        predict_on_spark(spark.createDataFrame(snapshot), model)


@pytest.mark.parametrize(
    "target",
    [
        TargetParams(),  # net benefit above the floor
        # a list size and a capacity cap counted across the sorted partitions
        TargetParams(rule="top_n", top_n=700, max_customers=650, min_probability_floor=None),
    ],
    ids=["net_benefit", "top_n_capped"],
)
def test_spark_scores_equal_the_pandas_score_stage(spark, tmp_path, target):
    from churn.score import build_scores
    from churn.spark.score import score_on_spark

    model = train_model(customers=1500, trees=25)
    path = tmp_path / "score.parquet"
    make_snapshot(3000, seed=11, labelled=False).to_parquet(path, index=False)
    snapshot = pd.read_parquet(path)  # as the score stage reads it
    suppressed = snapshot[CUSTOMER_ID].astype(str).iloc[::37].tolist()
    params = ScoreParams(target=target, control_share=0.2)
    expected = build_scores(snapshot, model, params, suppressed)
    frame = spark.read.parquet(str(path)).repartition(3)  # several tasks and sorted partitions
    result = score_on_spark(frame, model, params, suppressed)
    scores = result.all_scores()
    assert result.customers == len(expected) == len(scores)
    assert result.flagged == int(expected[AT_RISK].sum()) > 100
    assert result.targeting == expected.attrs["targeting"]
    listed = result.published_list()
    want = expected[expected[AT_RISK]].reset_index(drop=True)
    assert (listed[GROUP] == "control").any() and (listed[GROUP] == "treatment").any()
    assert frame_differences(listed, want) == []
    # every customer, not only the list: same priority order and values
    assert frame_differences(scores, expected.reset_index(drop=True)) == []
