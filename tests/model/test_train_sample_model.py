"""train.sample_customers thins only the booster's rows: calibration, stopping and test stay whole."""

from __future__ import annotations

import pandas as pd
import pytest

from churn.cutoffs import customer_share
from churn.files import write_parquet
from churn.train import fit_model
from churn.training_rows import read_snapshots, sample_customers, thin_held_out
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


HELD = 1000  # train.sample_held_out_customers in the tests below (binds: ~2500 customers)


def _held_out_pairs(frame: pd.DataFrame) -> set[tuple[str, object, str]]:
    rows = frame[frame["role"].isin(["calibration", "test"])]
    return set(zip(rows["customer_id"], rows["cutoff"], rows["role"], strict=True))


def test_the_held_out_sample_is_whole_customers_deterministic_and_blind_to_labels(snapshots):
    held = snapshots["role"].isin(["calibration", "test"])
    assert snapshots.loc[held, "customer_id"].nunique() > HELD
    thinned = thin_held_out(snapshots, HELD)
    kept = thinned[thinned["role"].isin(["calibration", "test"])]
    assert kept["customer_id"].nunique() == HELD
    # every calibration and test row of a chosen customer, none of the others'
    chosen = set(kept["customer_id"])
    assert _held_out_pairs(thinned) == _held_out_pairs(
        snapshots[snapshots["customer_id"].isin(chosen)]
    )
    # fit and gap rows are untouched
    pd.testing.assert_frame_equal(
        thinned[~thinned["role"].isin(["calibration", "test"])].reset_index(drop=True),
        snapshots[~held].reset_index(drop=True),
    )
    # the same for any row order and any labels, and a smaller sample is part of a larger one
    shuffled = snapshots.sample(frac=1.0, random_state=5)
    flipped = snapshots.assign(
        churned=(1 - snapshots["churned"]).astype(snapshots["churned"].dtype)
    )
    assert _held_out_pairs(thin_held_out(shuffled, HELD)) == _held_out_pairs(thinned)
    assert _held_out_pairs(thin_held_out(flipped, HELD)) == _held_out_pairs(thinned)
    assert _held_out_pairs(thin_held_out(snapshots, HELD // 2)) < _held_out_pairs(thinned)
    # independent of the fit sample's hash: not the same customers first
    fit_first = sample_customers(snapshots[held], HELD)["customer_id"]
    assert set(fit_first) != chosen
    # no cap, or a cap above the population: the same frame
    assert thin_held_out(snapshots, None) is snapshots
    assert thin_held_out(snapshots, 10**9) is snapshots


def test_reading_a_held_out_sample_gives_the_same_models_and_test_rows(snapshots, tmp_path):
    params = FAST.model_copy(update={"sample_customers": SAMPLE, "sample_held_out_customers": HELD})
    whole = fit_model(snapshots, params, horizon_days=HORIZON)
    expected = thin_held_out(snapshots, HELD)
    calibration_rows = (expected["role"] == "calibration").sum()
    assert calibration_rows < (snapshots["role"] == "calibration").sum()
    assert (
        whole.diagnostics["rows_early_stopping"] + whole.diagnostics["rows_calibration"]
        == calibration_rows
    )
    path = tmp_path / "train.parquet"
    write_parquet(snapshots, path)
    thinned, customers_fit = read_snapshots(path, SAMPLE, HORIZON, HELD)
    assert _held_out_pairs(thinned) == _held_out_pairs(expected)
    again = fit_model(thinned, params, horizon_days=HORIZON, customers_fit=customers_fit)
    assert again.diagnostics == whole.diagnostics
    assert again.model.booster.model_to_string() == whole.model.booster.model_to_string()
    assert again.production.booster.model_to_string() == whole.production.booster.model_to_string()
    # evaluate and promote read without the production refit's rows: the same test rows
    evaluated, _ = read_snapshots(path, SAMPLE, None, HELD)
    assert _held_out_pairs(evaluated) == _held_out_pairs(expected)
    # only the held-out cap set: every fit and gap row, the sampled calibration and test rows
    held_only, _ = read_snapshots(path, None, HORIZON, HELD)
    pd.testing.assert_frame_equal(held_only, expected.reset_index(drop=True))
