"""Probabilities computed on Spark executors (mapInPandas with the model shipped to them) equal
the score stage's pandas probabilities, row by row."""

from __future__ import annotations

import numpy as np
import pytest

from churn.columns import CHURN_PROBABILITY, CUSTOMER_ID
from churn.errors import ChurnError
from support.score_data import make_snapshot, train_model
from support.spark_parity import require_spark, spark_engine

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
