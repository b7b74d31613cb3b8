"""The `uplift` stage's inputs: the ledger's table as campaign rows, the baseline's risk model
rows, and the stage end to end on simulated campaigns in the ledger's format."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from churn.config import ChurnParams, ScoreParams, UpliftParams
from churn.errors import ChurnError
from churn.uplift.from_ledger import (
    campaign_rows_from_ledger,
    read_labelled_snapshots,
    risk_training_rows,
)
from churn.uplift.gate import NOT_ENOUGH, USE_RISK_VALUE, USE_UPLIFT
from churn.uplift.stage import UPLIFT_COLUMNS, run_uplift_stage
from support.uplift_ledger import ledger_inputs


def _table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "list_id": ["a", "a", "a", "a", "b", "b"],
            "list_date": [dt.date(2025, 1, 1)] * 4 + [dt.date(2025, 2, 1)] * 2,
            "origin": "imported",
            "horizon_days": 90,
            "customer_id": ["1", "2", "3", "4", "1", "5"],
            "group": ["treatment", "treatment", "treatment", "control", "treatment", "treatment"],
            "treated": [1, 1, 1, 0, 1, 1],
            "suggested_action": "win-back offer",
            "risk_tier": "high",
            "churned": [0, 1, 1, 0, 1, 0],
            "retained": [1, 0, 0, 1, 0, 1],
            "value": [10.0, 20.0, 30.0, 40.0, 50.0, 60.0],
            "contacted": pd.array([True, False, True, None, True, True], dtype="boolean"),
            "has_features": [True, True, False, True, True, True],
            "recency_days": [5.0, 50.0, np.nan, 7.0, 9.0, 1.0],
            "channel": ["web", "shop", None, "web", "web", "shop"],
        }
    )


def test_ledger_table_becomes_campaign_rows_with_each_lists_realised_control_share():
    campaigns = campaign_rows_from_ledger(_table(), "uplift.parquet")
    rows = campaigns.rows
    # customer 3 had no features; list b has no control group: both left out, and counted
    assert rows["customer_id"].tolist() == ["1", "2", "4"]
    assert rows["campaign_id"].unique().tolist() == ["a"]
    assert np.allclose(rows["control_share"], 0.25)  # 1 of list a's 4 customers
    assert rows["label_end"].iloc[0] == pd.Timestamp("2025-04-01")
    assert rows["expected_value"].tolist() == [10.0, 20.0, 40.0]
    assert rows["action"].tolist() == ["win-back offer"] * 3
    # post-treatment columns (contacted), labels and list metadata are never features
    assert campaigns.features == ["recency_days", "channel"]
    assert campaigns.notes["rows_without_features"] == 1
    assert campaigns.notes["lists_without_both_groups"] == ["b"]


def test_a_table_that_is_not_the_ledgers_names_the_missing_column():
    with pytest.raises(ChurnError, match=r"uplift.parquet: column\(s\) \['has_features'\] missing"):
        campaign_rows_from_ledger(_table().drop(columns="has_features"), "uplift.parquet")


def test_risk_rows_end_their_label_window_by_the_holdout_and_leave_out_treated_customers():
    snapshots = pd.DataFrame(
        {
            "customer_id": ["1", "2", "1", "2", "1"],
            "cutoff": [dt.date(2025, 1, 1)] * 2 + [dt.date(2025, 3, 1)] * 2 + [dt.date(2025, 6, 1)],
            "role": "fit",
            "churned": [0, 1, 0, 1, 0],
        }
    )
    contacted = pd.DataFrame(
        {
            "customer_id": ["2"],
            "list_id": ["a"],
            "list_date": [dt.date(2025, 2, 1)],
            "horizon_days": [90],
        }
    )
    rows = risk_training_rows(snapshots, contacted, 90, dt.date(2025, 6, 1))
    # 2025-06-01 + 90 is after the holdout date; customer 2 was treated from 2025-02-01, which
    # overlaps both of their label windows
    assert list(zip(rows["customer_id"], rows["cutoff"], strict=True)) == [
        ("1", dt.date(2025, 1, 1)),
        ("1", dt.date(2025, 3, 1)),
    ]


@pytest.mark.parametrize("sample", [None, 150], ids=["all", "sampled"])
def test_risk_rows_read_from_the_file_equal_the_rows_from_the_whole_table(tmp_path, sample):
    inputs = ledger_inputs("heterogeneous", seed=1)
    path = tmp_path / "train.parquet"
    # a column the campaign rows lack: never read for the risk model
    inputs.snapshots.assign(unrelated=1.0).to_parquet(path, index=False)
    features = campaign_rows_from_ledger(inputs.table, "uplift.parquet").features
    end = dt.date(2025, 1, 1) + dt.timedelta(days=400)
    whole = risk_training_rows(inputs.snapshots, inputs.contacted, 90, end, sample)
    read = read_labelled_snapshots(path, 90, end, features, sample)
    assert "unrelated" not in read.columns
    assert not read.empty and read["cutoff"].max() + dt.timedelta(days=90) <= end
    from_file = risk_training_rows(read, inputs.contacted, 90, end, sample)
    pd.testing.assert_frame_equal(
        from_file.reset_index(drop=True), whole[list(from_file.columns)].reset_index(drop=True)
    )
    labelled = inputs.snapshots[
        pd.to_datetime(inputs.snapshots["cutoff"]) + pd.Timedelta(days=90) <= pd.Timestamp(end)
    ]
    if sample is None:  # reading leaves out no labelled row
        assert len(read) == len(labelled)
    else:
        # at most `sample` customers, each with every one of their labelled rows
        assert 0 < read["customer_id"].nunique() <= sample
        kept = labelled[labelled["customer_id"].isin(read["customer_id"])]
        assert len(read) == len(kept)


def test_training_snapshots_without_key_columns_are_refused_with_the_fix(tmp_path):
    path = tmp_path / "train.parquet"
    pd.DataFrame({"customer_id": ["1"], "cutoff": [dt.date(2025, 1, 1)]}).to_parquet(path)
    with pytest.raises(
        ChurnError,
        match=r"train.parquet: column\(s\) \['churned'\] missing.*"
        r"dvc repro features",
    ):
        read_labelled_snapshots(path, 90, dt.date(2026, 1, 1), ["x"], None)


def _run(regime: str, seed: int, campaigns: int | None = None, **uplift):
    inputs = ledger_inputs(regime, seed, campaigns)
    return run_uplift_stage(
        inputs.table,
        inputs.snapshots,
        inputs.contacted,
        inputs.snapshot,
        ChurnParams(),
        ScoreParams(),
        UpliftParams(**uplift),
    ), inputs


def test_stage_switches_to_uplift_when_effects_vary_and_scores_todays_customers():
    result, inputs = _run("heterogeneous", seed=0)
    report = result.report
    assert report["policy_in_use"] == USE_UPLIFT, report["reason"]
    policies = report["comparison"]["policies"]
    for name in ("uplift", "risk_x_value"):
        assert {"qini", "uplift_at_k", "incremental_profit"} <= set(policies[name])
    # the baseline's risk model learnt only from labels observed before the held-out campaigns
    first = min(pd.Timestamp(c.removeprefix("list-")) for c in report["data"]["holdout_campaigns"])
    assert (
        max(pd.Timestamp(d) for d in report["risk_model"]["training_cutoffs"])
        + pd.Timedelta(days=90)
        <= first
    )
    assert report["risk_model"]["holdout_control_roc_auc"] > 0.6
    uplift = result.uplift
    assert list(uplift.columns) == list(UPLIFT_COLUMNS)
    assert len(uplift) == len(inputs.snapshot)
    covered = uplift.set_index("customer_id")["covered"]
    assert not covered[covered.index.str.startswith("new")].any()
    assert covered[~covered.index.str.startswith("new")].all()


def test_stage_reading_the_snapshot_files_gives_the_same_report_and_uplift(tmp_path):
    inputs = ledger_inputs("heterogeneous", seed=0)
    path, today = tmp_path / "train.parquet", tmp_path / "score.parquet"
    inputs.snapshots.to_parquet(path, index=False)
    inputs.snapshot.to_parquet(today, index=False)
    results = [
        run_uplift_stage(
            inputs.table,
            snapshots,
            inputs.contacted,
            snapshot,
            ChurnParams(),
            ScoreParams(),
            UpliftParams(),
        )
        for snapshots, snapshot in (
            (inputs.snapshots, pd.read_parquet(today)),
            (path, pd.read_parquet(today)),
            (path, today),  # the as-of snapshot read by the stage once the gate switched
        )
    ]
    assert results[0].report["policy_in_use"] == USE_UPLIFT
    for result in results[1:]:
        assert result.report == results[0].report
        pd.testing.assert_frame_equal(result.uplift, results[0].uplift)
    assert len(results[2].uplift) == len(inputs.snapshot)


def test_stage_that_keeps_risk_value_never_reads_todays_customers(tmp_path):
    inputs = ledger_inputs("no_effect", seed=3)
    result = run_uplift_stage(
        inputs.table,
        inputs.snapshots,
        inputs.contacted,
        tmp_path / "score.parquet",  # no such file: reading it would fail
        ChurnParams(),
        ScoreParams(),
        UpliftParams(),
    )
    assert result.report["policy_in_use"] == USE_RISK_VALUE
    assert result.uplift.empty


def test_the_risk_model_sample_keeps_whole_customers_and_still_ranks_churn():
    result, _ = _run("heterogeneous", seed=0, sample_customers=5000)
    model = result.report["risk_model"]
    full, _ = _run("heterogeneous", seed=0)
    assert model["training_rows"] < full.report["risk_model"]["training_rows"]
    assert model["holdout_control_roc_auc"] > 0.6


def test_stage_keeps_risk_value_when_contacts_do_nothing():
    result, _ = _run("no_effect", seed=3)
    assert result.report["policy_in_use"] == USE_RISK_VALUE
    assert result.report["comparison"] is not None
    assert result.uplift.empty and list(result.uplift.columns) == list(UPLIFT_COLUMNS)


def test_stage_says_not_enough_campaign_data_yet_with_few_campaigns():
    result, _ = _run("too_few_campaigns", seed=0)
    assert result.report["policy_in_use"] == USE_RISK_VALUE
    assert result.report["reason"].startswith(NOT_ENOUGH)
    assert result.uplift.empty


def test_stage_on_an_empty_ledger_table_says_not_enough_campaign_data_yet():
    from churn.ledger import UPLIFT_KEYS

    inputs = ledger_inputs("too_few_campaigns", 0)
    # what the ledger stage writes when no list has matured
    empty = pd.DataFrame({name: pd.Series(dtype="object") for name in UPLIFT_KEYS})
    result = run_uplift_stage(
        empty,
        inputs.snapshots,
        inputs.contacted,
        inputs.snapshot,
        ChurnParams(),
        ScoreParams(),
        UpliftParams(),
    )
    assert result.report["reason"].startswith(f"{NOT_ENOUGH}: 0 matured")
    assert result.uplift.empty


def test_stage_without_labels_before_the_holdout_keeps_risk_value_and_says_why():
    inputs = ledger_inputs("heterogeneous", 0)
    late = inputs.snapshots.assign(cutoff=dt.date(2030, 1, 1))
    result = run_uplift_stage(
        inputs.table,
        late,
        inputs.contacted,
        inputs.snapshot,
        ChurnParams(),
        ScoreParams(),
        UpliftParams(),
    )
    assert result.report["policy_in_use"] == USE_RISK_VALUE
    assert "no labelled training snapshot" in result.report["reason"]
