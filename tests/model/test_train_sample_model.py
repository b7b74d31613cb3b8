"""train.sample_customers thins only the booster's rows: calibration, stopping and test stay whole."""

from __future__ import annotations

import pandas as pd
import pytest

from churn.cutoffs import customer_share
from churn.files import write_parquet
from churn.train import fit_model, read_snapshots, sample_customers
from support.snapshot_helper import FAST, build_snapshots

HORIZON = 90
SAMPLE = 600


@pytest.fixture(scope="module")
def snapshots(generated_tables):
    # the production tests' population (one generation per session)
    return build_snapshots(
        generated_tables(customers=2500, seed=11), horizon=HORIZON, fit_cutoffs=3
    )


@pytest.fixture(scope="module")
def sampled(snapshots):
    return fit_model(
        snapshots, FAST.model_copy(update={"sample_customers": SAMPLE}), horizon_days=HORIZON
    )


def test_the_booster_fits_on_the_sampled_customers_only(snapshots, sampled):
    fit = snapshots[snapshots["role"] == "fit"]
    assert fit["customer_id"].nunique() > SAMPLE
    expected = sample_customers(fit, SAMPLE)
    assert sampled.diagnostics["customers_fit"] == SAMPLE
    assert sampled.diagnostics["customers_fit_available"] == fit["customer_id"].nunique()
    assert sampled.diagnostics["rows_fit"] == len(expected) < len(fit)
    assert sampled.model.metadata["sample_customers"] == SAMPLE


def test_calibration_early_stopping_and_test_rows_are_never_sampled(snapshots, sampled):
    calibration = snapshots[snapshots["role"] == "calibration"]
    assert sampled.diagnostics["rows_early_stopping"] + sampled.diagnostics[
        "rows_calibration"
    ] == len(calibration)
    test = snapshots[snapshots["role"] == "test"]
    held = customer_share(test["customer_id"], "early_stopping") >= FAST.early_stopping_share
    assert sampled.diagnostics["production_rows_calibration"] == held.sum()


def test_the_production_refit_samples_the_same_way(snapshots, sampled):
    cutoffs = pd.to_datetime(snapshots["cutoff"])
    test = snapshots[snapshots["role"] == "test"]
    test_cutoff = pd.to_datetime(test["cutoff"]).min()
    labelled = snapshots[
        snapshots["role"].isin(["fit", "calibration", "gap"])
        & (cutoffs + pd.Timedelta(days=HORIZON) <= test_cutoff)
    ]
    trained_on = customer_share(test["customer_id"], "early_stopping") < FAST.early_stopping_share
    older = sample_customers(labelled, SAMPLE)
    assert older["customer_id"].nunique() == SAMPLE
    assert sampled.diagnostics["production_rows"] == len(older) + trained_on.sum()


def test_reading_only_the_sampled_rows_gives_the_same_models(snapshots, sampled, tmp_path):
    path = tmp_path / "train.parquet"
    write_parquet(snapshots, path)
    thinned, customers_fit = read_snapshots(path, SAMPLE, HORIZON)
    fit = snapshots[snapshots["role"] == "fit"]
    assert customers_fit == fit["customer_id"].nunique()
    # fit and gap rows of customers outside both samples are never read; the rest are whole
    assert len(thinned) < len(snapshots)
    for role in ("calibration", "test"):
        assert (thinned["role"] == role).sum() == (snapshots["role"] == role).sum()
    assert list(thinned.dtypes) == list(snapshots.dtypes)
    again = fit_model(
        thinned,
        FAST.model_copy(update={"sample_customers": SAMPLE}),
        horizon_days=HORIZON,
        customers_fit=customers_fit,
    )
    assert again.diagnostics == sampled.diagnostics
    assert again.model.booster.model_to_string() == sampled.model.booster.model_to_string()
    assert (
        again.production.booster.model_to_string() == sampled.production.booster.model_to_string()
    )


def test_reading_without_a_sample_reads_every_row(snapshots, tmp_path):
    path = tmp_path / "train.parquet"
    write_parquet(snapshots, path)
    whole, customers_fit = read_snapshots(path, None, HORIZON)
    assert customers_fit is None
    pd.testing.assert_frame_equal(whole, snapshots.reset_index(drop=True))
    big, _ = read_snapshots(path, 10**9, HORIZON)
    pd.testing.assert_frame_equal(big, snapshots.reset_index(drop=True))
