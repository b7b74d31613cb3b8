"""The score stage's reports on Spark (reports/score.json's metrics, the profit curve, the
suppression list's match counts) are aggregates of the scored Spark DataFrame equal to the pandas
functions' on the same customers: on generated data and on edge cases (nobody flagged, everyone
suppressed, no control group, one customer), and the stage writes the same files on both engines
without reading the scores back."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from churn.columns import AT_RISK, CUSTOMER_ID, EXPECTED_NET_BENEFIT, GROUP, SUPPRESSED
from churn.config import ScoreParams, TargetParams
from churn.score import build_profit_curve, build_scores, summarise_scores
from churn.score.suppression import check_suppression
from support.score_data import make_snapshot, train_model

pytestmark = [pytest.mark.slow, pytest.mark.spark]

REL = 1e-9


@pytest.fixture(scope="module")
def model():
    return train_model(customers=1500, trees=25)


def _differences(got: object, want: object, where: str = "") -> list[str]:
    """Return where two JSON-like values differ (floats within 1e-9 relative)."""
    if isinstance(want, dict):
        if not isinstance(got, dict) or set(got) != set(want):
            return [
                f"{where}: keys {sorted(got) if isinstance(got, dict) else got} != {sorted(want)}"
            ]
        return [d for key in want for d in _differences(got[key], want[key], f"{where}.{key}")]
    if isinstance(want, float) and isinstance(got, float):
        same = math.isclose(got, want, rel_tol=REL, abs_tol=0.0) or (got == want)
        return [] if same else [f"{where}: {got!r} != {want!r}"]
    if type(got) is not type(want) or got != want:
        return [f"{where}: {got!r} ({type(got).__name__}) != {want!r} ({type(want).__name__})"]
    return []


def _curve_differences(got: pd.DataFrame, want: pd.DataFrame) -> list[str]:
    if list(got.columns) != list(want.columns) or list(got.dtypes) != list(want.dtypes):
        return [f"columns {got.dtypes.to_dict()} != {want.dtypes.to_dict()}"]
    if got["list_size"].tolist() != want["list_size"].tolist():
        return [f"sizes {got['list_size'].tolist()} != {want['list_size'].tolist()}"]
    return [
        f"net at {size}: {a!r} != {b!r}"
        for size, a, b in zip(
            want["list_size"], got[EXPECTED_NET_BENEFIT], want[EXPECTED_NET_BENEFIT], strict=True
        )
        if not (a == b or math.isclose(a, b, rel_tol=REL, abs_tol=0.0))
    ]


def _reports_on_both(spark, tmp_path, model, snapshot, params, suppressed, partitions=3):
    """Return (Spark's, pandas') score.json metrics, profit curve and suppression check."""
    from churn.spark.score import score_on_spark
    from churn.spark.score_reports import (
        check_suppression_on_spark,
        profit_curve_on_spark,
        summarise_on_spark,
    )

    path = tmp_path / "score.parquet"
    snapshot.to_parquet(path, index=False)
    rows = pd.read_parquet(path)  # as the score stage reads it
    expected = build_scores(rows, model, params, suppressed)
    want = (
        summarise_scores(expected, len(suppressed)),
        build_profit_curve(expected, params),
        check_suppression(suppressed, expected[CUSTOMER_ID], "suppression.csv"),
    )
    frame = spark.read.parquet(str(path)).repartition(partitions)
    result = score_on_spark(frame, model, params, suppressed)
    got = (
        summarise_on_spark(result, len(suppressed)),
        profit_curve_on_spark(result, params),
        check_suppression_on_spark(suppressed, result, "suppression.csv"),
    )
    return got, want, expected


def _assert_same(got, want) -> None:
    assert _differences(got[0], want[0]) == []
    assert _curve_differences(got[1], want[1]) == []
    assert got[2] == want[2]


@pytest.mark.parametrize(
    "target",
    [
        TargetParams(),  # net benefit above the floor
        TargetParams(rule="top_n", top_n=700, max_customers=650, min_probability_floor=None),
        TargetParams(rule="probability", min_probability=0.3, max_customers=400),
    ],
    ids=["net_benefit", "top_n_capped", "probability"],
)
def test_spark_score_reports_equal_the_pandas_ones(spark, tmp_path, model, target):
    snapshot = make_snapshot(3000, seed=11, labelled=False)
    ids = snapshot[CUSTOMER_ID].astype(str)
    # every 37th customer, two ids that lost their leading zeros, and ids nobody has
    suppressed = [*ids.iloc[::37], ids.iloc[5].lstrip("0"), ids.iloc[8].lstrip("0"), "gone", "x"]
    params = ScoreParams(target=target, control_share=0.2, profit_curve_points=37)
    got, want, expected = _reports_on_both(spark, tmp_path, model, snapshot, params, suppressed)
    _assert_same(got, want)
    # the cases hold what they claim: flagged in both groups, a curve past its best size
    assert want[0]["flagged_control"] > 0 and want[0]["flagged_treatment"] > 0
    assert want[0]["suppressed"] > 0 and want[2][0]["match_after_zero_padding"] == 2
    curve = want[1][EXPECTED_NET_BENEFIT]
    assert len(want[1]) > 30 and want[1]["list_size"].iloc[-1] > 500
    assert 0 < curve.idxmax() < len(curve) - 1


def test_spark_score_reports_when_nobody_is_flagged(spark, tmp_path, model):
    snapshot = make_snapshot(800, seed=3, labelled=False)
    params = ScoreParams(contact_cost=1e6, control_share=0.2)  # no contact pays
    got, want, expected = _reports_on_both(spark, tmp_path, model, snapshot, params, [])
    _assert_same(got, want)
    assert want[0]["flagged"] == 0 and want[0]["lowest_flagged_probability"] is None
    assert want[1]["list_size"].iloc[-1] > 0 and (want[1][EXPECTED_NET_BENEFIT] <= 0).all()


def test_spark_score_reports_when_everyone_is_suppressed(spark, tmp_path, model):
    snapshot = make_snapshot(600, seed=4, labelled=False)
    suppressed = snapshot[CUSTOMER_ID].astype(str).tolist()
    params = ScoreParams(control_share=0.2)
    got, want, expected = _reports_on_both(spark, tmp_path, model, snapshot, params, suppressed)
    _assert_same(got, want)
    assert want[0]["suppressed"] == 600 and want[0]["flagged"] == 0
    assert want[1]["list_size"].tolist() == [0]
    assert want[2][0]["matched"] == 600


def test_spark_score_reports_without_a_control_group(spark, tmp_path, model):
    snapshot = make_snapshot(900, seed=5, labelled=False)
    params = ScoreParams(control_share=0.0)
    got, want, expected = _reports_on_both(spark, tmp_path, model, snapshot, params, ["0000003"])
    _assert_same(got, want)
    assert want[0]["control_share"] == 0.0 and want[0]["flagged_control"] == 0
    assert want[0]["flagged"] > 0 and not (expected[GROUP] == "control").any()


def test_spark_score_reports_of_a_single_customer(spark, tmp_path, model):
    snapshot = make_snapshot(1, seed=6, labelled=False)
    params = ScoreParams(
        target=TargetParams(min_probability_floor=None, above_average=False), contact_cost=0.0
    )
    got, want, expected = _reports_on_both(spark, tmp_path, model, snapshot, params, ["1"], 1)
    _assert_same(got, want)
    assert want[0]["customers"] == 1 and want[0]["flagged"] == 1
    assert want[1]["list_size"].tolist() == [0, 1]
    assert want[2][0]["match_after_zero_padding"] == 0  # "1" pads to "0000001", not "0000000"


def test_spark_score_stage_writes_the_duckdb_stages_reports(spark, tmp_path, model, monkeypatch):
    """`churn.score.stage.run` on Spark writes score.json and the profit curve the pandas
    engine writes, and never reads the scores file back."""
    from churn import files
    from churn.config import EngineParams, StageParams, UpliftParams
    from churn.score import stage as score_stage
    from support.spark_parity import spark_engine

    snapshot = make_snapshot(1500, seed=12, labelled=False)
    snapshot_path = tmp_path / "score.parquet"
    snapshot.to_parquet(snapshot_path, index=False)
    model.save(tmp_path / "champion")
    suppression = tmp_path / "suppression.csv"
    ids = snapshot[CUSTOMER_ID].astype(str)
    suppression.write_text("customer_id\n" + "\n".join([*ids.iloc[::50], "12", "gone"]) + "\n")
    outputs = {}
    read = files.read_input_parquet
    for engine in (EngineParams(), spark_engine(tmp_path / "spark-local")):
        out = tmp_path / engine.kind
        out.mkdir()
        reads = []

        def reading(path, *args, _reads=reads, **kwargs):
            _reads.append(str(path))
            return read(path, *args, **kwargs)

        monkeypatch.setattr(score_stage, "read_input_parquet", reading)
        stage = StageParams(
            {"score": ScoreParams(control_share=0.2), "engine": engine, "uplift": UpliftParams()}
        )
        score_stage.run(
            stage, snapshot_path, tmp_path / "champion", suppression, out / "scores.parquet",
            out / "score.json", out / "curve.csv", None, None, None,
        )  # fmt: skip
        outputs[engine.kind] = (
            json.loads((out / "score.json").read_text()),
            pd.read_csv(out / "curve.csv"),
            pd.read_parquet(out / "scores.parquet"),
            reads,
        )
    spark_out, duck_out = outputs["spark"], outputs["duckdb"]
    assert _differences(spark_out[0], duck_out[0]) == []
    assert _curve_differences(spark_out[1], duck_out[1]) == []
    assert spark_out[0]["suppression"]["match_after_zero_padding"] == 1
    assert spark_out[0]["flagged"] == int(duck_out[2][AT_RISK].sum()) > 0
    assert int(duck_out[2][SUPPRESSED].sum()) == spark_out[0]["suppressed"] > 0
    assert spark_out[3] == [] and duck_out[3] == [str(tmp_path / "score.parquet")]
    np.testing.assert_array_equal(spark_out[2][CUSTOMER_ID], duck_out[2][CUSTOMER_ID])
