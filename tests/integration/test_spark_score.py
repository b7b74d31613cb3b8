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
from support.spark_parity import frame_differences, spark_all_scores, spark_published_list

pytestmark = [pytest.mark.slow, pytest.mark.spark]


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
    scores = spark_all_scores(result)
    assert result.customers == len(expected) == len(scores)
    assert result.flagged == int(expected[AT_RISK].sum()) > 100
    assert result.targeting == expected.attrs["targeting"]
    listed = spark_published_list(result)
    want = expected[expected[AT_RISK]].reset_index(drop=True)
    assert (listed[GROUP] == "control").any() and (listed[GROUP] == "treatment").any()
    assert frame_differences(listed, want) == []
    # every customer, not only the list: same priority order and values
    assert frame_differences(scores, expected.reset_index(drop=True)) == []


def _uplift_table(ids: pd.Series, seed: int) -> pd.DataFrame:
    """A hand-made per-customer uplift table over the snapshot's customers: positive, zero and
    negative estimates (some too small to pay the contact), customers past lists did not cover,
    missing estimates (NaN, and customers absent from the table), a repeated id (the first row
    counts) and an id the snapshot lacks."""
    rng = np.random.default_rng(seed)
    ids = ids.astype(str).to_numpy()
    kept = ids[rng.random(len(ids)) > 0.15]  # about 15% have no row: no effect, never contacted
    uplift = rng.normal(0.02, 0.06, len(kept))
    uplift[::23] = 0.0
    uplift[::29] = np.nan
    covered = rng.random(len(kept)) > 0.3
    table = pd.DataFrame({"customer_id": kept, "uplift": uplift, "covered": covered})
    first = table.iloc[:1].assign(uplift=-0.5, covered=True)  # a repeat after the first row
    extra = pd.DataFrame({"customer_id": ["not-scored"], "uplift": [0.9], "covered": [True]})
    return pd.concat([table, first, extra], ignore_index=True)


@pytest.mark.parametrize(
    ("max_customers", "exploration_share"),
    [(None, 0.0), (150, 0.0), (None, 0.25)],
    ids=["uncapped", "capped_across_tasks", "exploration"],
)
def test_spark_scores_by_uplift_equal_the_pandas_score_stage(
    spark, tmp_path, max_customers, exploration_share
):
    from churn.columns import UPLIFT
    from churn.score import build_scores
    from churn.score.targeting import UpliftTargeting
    from churn.spark.score import score_on_spark

    model = train_model(customers=1500, trees=25)
    path = tmp_path / "score.parquet"
    make_snapshot(3000, seed=11, labelled=False).to_parquet(path, index=False)
    snapshot = pd.read_parquet(path)
    suppressed = snapshot[CUSTOMER_ID].astype(str).iloc[::37].tolist()
    table_path = tmp_path / "uplift.parquet"
    _uplift_table(snapshot[CUSTOMER_ID], seed=5).to_parquet(table_path, index=False)
    table = pd.read_parquet(table_path)  # as the score stage reads it
    policy = UpliftTargeting(table, exploration_share, 17, "the gate switched (test)")
    params = ScoreParams(
        target=TargetParams(max_customers=max_customers), control_share=0.2, contact_cost=2.0
    )
    expected = build_scores(snapshot, model, params, suppressed, uplift=policy)
    frame = spark.read.parquet(str(path)).repartition(3)  # several tasks and sorted partitions
    on_spark = UpliftTargeting(
        spark.read.parquet(str(table_path)), exploration_share, 17, "the gate switched (test)"
    )
    result = score_on_spark(frame, model, params, suppressed, uplift=on_spark)
    scores = spark_all_scores(result)
    flagged = expected[AT_RISK].to_numpy()
    assert result.customers == len(expected) == len(scores)
    assert result.flagged == int(flagged.sum()) > 50
    if max_customers is not None:
        assert result.flagged == max_customers
    assert result.targeting == expected.attrs["targeting"]
    assert (result.targeting["explored"] > 0) == (exploration_share > 0)
    # the policy's rules hold on the expected side: nobody a contact pushes away, nobody without
    # an estimate, and the risk x value list would differ
    contacted = expected[flagged & ~expected["customer_id"].isin(_explored(expected, table))]
    assert (contacted[UPLIFT] > 0).all()
    risk_list = build_scores(snapshot, model, params, suppressed)
    assert set(risk_list.loc[risk_list[AT_RISK], CUSTOMER_ID]) != set(
        expected.loc[flagged, CUSTOMER_ID]
    )
    assert (
        frame_differences(spark_published_list(result), expected[flagged].reset_index(drop=True))
        == []
    )
    assert frame_differences(scores, expected.reset_index(drop=True)) == []


def _explored(scores: pd.DataFrame, table: pd.DataFrame) -> set[str]:
    """Return the flagged customers outside the covered population (contacted by exploration)."""
    first = table.drop_duplicates("customer_id").set_index("customer_id")
    covered = first["covered"] & first["uplift"].notna()
    inside = set(covered[covered].index)
    return set(scores.loc[scores[AT_RISK], CUSTOMER_ID]) - inside
