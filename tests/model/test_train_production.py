"""The production refit: newer cutoffs, calibrated on the test cutoff, honest about what it saw."""

from __future__ import annotations

import dataclasses
import json
import logging

import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from churn.config import EvaluateParams, PromoteParams
from churn.cutoffs import customer_share
from churn.errors import ChurnError
from churn.evaluate import evaluate_model
from churn.metrics import ECE_BINS
from churn.promote import calibrated_on_eval_window, measure_candidate, select_eval_rows
from churn.train import fit_model
from support.snapshot_helper import FAST, build_snapshots

HORIZON = 90


@pytest.fixture(scope="module")
def snapshots(generated_tables):
    tables = generated_tables(customers=2500, seed=11)
    return build_snapshots(tables, horizon=HORIZON, fit_cutoffs=3)


@pytest.fixture(scope="module")
def trained(snapshots):
    return fit_model(snapshots, FAST, horizon_days=HORIZON)


def _test_cutoff(snapshots: pd.DataFrame) -> pd.Timestamp:
    return pd.to_datetime(snapshots.loc[snapshots["role"] == "test", "cutoff"]).min()


def _held_out_test(snapshots: pd.DataFrame) -> pd.DataFrame:
    """The test customers the production refit never trains on (the same hash as early stopping)."""
    test = snapshots[snapshots["role"] == "test"]
    return test[customer_share(test["customer_id"], "early_stopping") >= FAST.early_stopping_share]


def test_production_refit_reads_every_cutoff_labelled_by_the_test_cutoff(snapshots, trained):
    production = trained.production
    assert production is not None and trained.production_model is production
    assert production.metadata["role"] == "production"
    assert trained.model.metadata["role"] == "evaluation"
    test_cutoff = _test_cutoff(snapshots)
    cutoffs = pd.to_datetime(snapshots["cutoff"])
    labelled = snapshots[cutoffs + pd.Timedelta(days=HORIZON) <= test_cutoff]
    test = snapshots[snapshots["role"] == "test"]
    held = _held_out_test(snapshots)
    assert 0.3 < len(held) / len(test) < 0.7
    oldest, newest = production.metadata["training_cutoffs"]
    assert pd.Timestamp(oldest) == pd.to_datetime(labelled["cutoff"]).min()
    assert pd.Timestamp(newest) == pd.to_datetime(labelled["cutoff"]).max()
    # more rows than the evaluation model (gap cutoffs, every calibration-cutoff customer), all
    # labelled by the test cutoff
    evaluation_rows = trained.diagnostics["rows_fit"] + trained.diagnostics["rows_early_stopping"]
    assert trained.diagnostics["production_rows"] > evaluation_rows
    assert pd.Timestamp(newest) + pd.Timedelta(days=HORIZON) <= test_cutoff
    assert trained.diagnostics["production_rows"] == len(labelled) + len(test) - len(held)
    assert trained.diagnostics["production_rows_calibration"] == len(held)
    assert production.metadata["calibration_cutoff"] == str(test_cutoff.date())
    assert production.metadata["held_out"]["cutoff"] == str(test_cutoff.date())
    assert production.calibrator.kind == trained.model.calibrator.kind
    assert production.booster.current_iteration() == trained.rounds


def test_production_booster_never_reads_test_labels_or_labels_past_the_test_cutoff(
    snapshots, trained
):
    test_cutoff = _test_cutoff(snapshots)
    cutoffs = pd.to_datetime(snapshots["cutoff"])
    late_gaps = (snapshots["role"] == "gap") & (cutoffs + pd.Timedelta(days=HORIZON) > test_cutoff)
    assert late_gaps.any(), "the fixture needs gap cutoffs whose windows pass the test cutoff"
    tampered = snapshots.copy()
    tampered.loc[late_gaps, "churned"] = 1 - tampered.loc[late_gaps, "churned"]
    tampered.loc[late_gaps, "recency_days"] = 0
    again = fit_model(tampered, FAST, horizon_days=HORIZON)
    assert again.production.booster.model_to_string() == (
        trained.production.booster.model_to_string()
    )
    assert again.production.calibrator == trained.production.calibrator
    # flipping the held-out test customers' labels changes only the calibrator, never the booster
    flipped = snapshots.copy()
    held = flipped.index.isin(_held_out_test(snapshots).index)
    flipped.loc[held, "churned"] = 1 - flipped.loc[held, "churned"]
    again = fit_model(flipped, FAST, horizon_days=HORIZON)
    assert again.production.booster.model_to_string() == (
        trained.production.booster.model_to_string()
    )
    assert again.production.calibrator != trained.production.calibrator
    # and the evaluation model reads no test label at all
    everything = snapshots.copy()
    test = everything["role"] == "test"
    everything.loc[test, "churned"] = 1 - everything.loc[test, "churned"]
    again = fit_model(everything, FAST, horizon_days=HORIZON)
    assert again.model.booster.model_to_string() == trained.model.booster.model_to_string()
    assert again.model.calibrator == trained.model.calibrator


def test_production_calibration_is_fitted_on_the_held_out_test_customers(snapshots, trained):
    test = _held_out_test(snapshots)
    proba = trained.production.predict_proba(test)
    # a calibrator fitted on these rows matches their churn rate (in-sample, by construction)
    assert proba.mean() == pytest.approx(test["churned"].mean(), abs=0.01)
    # ranking: the production booster never saw these labels and still beats recency
    labels = test["churned"].to_numpy()
    assert roc_auc_score(labels, proba) > roc_auc_score(labels, test["recency_days"])
    assert trained.diagnostics["production_test_roc_auc"] == pytest.approx(
        roc_auc_score(labels, proba), abs=1e-3
    )


def test_the_out_of_time_record_is_the_evaluation_models_test_score(snapshots, trained):
    recorded = trained.production.metadata["out_of_time"]
    test = snapshots[snapshots["role"] == "test"]
    labels = test["churned"].to_numpy()
    assert recorded["roc_auc"] == pytest.approx(
        roc_auc_score(labels, trained.model.predict_proba(test))
    )
    assert recorded["rows"] == len(test)
    assert recorded["ece_bins"] == 10
    assert 0 <= recorded["ece"] < 0.2


def test_same_data_gives_the_same_production_model(snapshots, trained):
    again = fit_model(snapshots.sample(frac=1.0, random_state=3), FAST, horizon_days=HORIZON)
    assert again.production.booster.model_to_string() == (
        trained.production.booster.model_to_string()
    )
    assert again.production.calibrator == trained.production.calibrator


def test_without_production_refit_the_evaluation_model_is_the_challenger(snapshots):
    result = fit_model(snapshots, FAST.model_copy(update={"production_refit": False}), HORIZON)
    assert result.production is None
    assert result.production_model is result.model


def test_a_one_label_test_cutoff_falls_back_to_the_evaluation_model(snapshots, caplog):
    one_label = snapshots.copy()
    one_label.loc[one_label["role"] == "test", "churned"] = 1
    with caplog.at_level(logging.WARNING):
        result = fit_model(one_label, FAST, horizon_days=HORIZON, source="one-label")
    assert result.production is None
    assert "no production refit" in caplog.text and "one-label" in caplog.text


def test_evaluate_refuses_a_production_model_and_reports_its_ranking(snapshots, trained):
    params = EvaluateParams(bootstrap=0)
    with pytest.raises(ChurnError, match="calibration read labels from the test cutoff's window"):
        evaluate_model(snapshots, trained.production, params, HORIZON)
    result = evaluate_model(
        snapshots, trained.model, params, HORIZON, production=trained.production
    )
    ranking = result.metrics["production"]
    assert ranking["roc_auc"] == pytest.approx(trained.diagnostics["production_test_roc_auc"])
    assert ranking["rows"] == len(_held_out_test(snapshots))
    held = _held_out_test(snapshots)
    assert ranking["evaluation_model_roc_auc"] == pytest.approx(
        roc_auc_score(held["churned"], trained.model.predict_proba(held))
    )
    assert "ece" not in ranking and "log_loss" not in ranking
    assert ranking["calibration_cutoff"] == result.metrics["test_cutoff"]


def test_evaluate_refuses_a_production_model_trained_past_the_test_cutoff(snapshots, trained):
    shifted = snapshots.copy()
    test = shifted["role"] == "test"
    # pretend the test cutoff is 60 days older: the production refit's labels now reach past it
    moved = pd.to_datetime(shifted.loc[test, "cutoff"]) - pd.Timedelta(days=60)
    shifted.loc[test, "cutoff"] = moved.dt.date.to_numpy()
    params = EvaluateParams(bootstrap=0)
    # the evaluation model's training (fit + early-stopping rows) now overlaps the test window too
    with pytest.raises(ChurnError, match="training read labels from the test cutoff's window"):
        evaluate_model(shifted, trained.model, params, HORIZON)
    # a production model whose metadata says it trained up to the test cutoff itself
    production = trained.production
    oldest = production.metadata["training_cutoffs"][0]
    too_new = type(production)(
        production.booster,
        production.calibrator,
        production.spec,
        {**production.metadata, "training_cutoffs": [oldest, str(_test_cutoff(snapshots).date())]},
    )
    with pytest.raises(ChurnError, match="reach past the test cutoff"):
        evaluate_model(snapshots, trained.model, params, HORIZON, production=too_new)


def test_promote_judges_a_production_models_calibration_by_its_out_of_time_record(
    snapshots, trained
):
    rows = select_eval_rows(snapshots, "test")
    held = trained.production.held_out_mask(rows)
    assert held is not None and trained.model.held_out_mask(rows) is None
    assert set(rows.loc[held, "customer_id"]) == set(_held_out_test(snapshots)["customer_id"])
    rows = rows[held].reset_index(drop=True)
    assert calibrated_on_eval_window(trained.production, rows)
    assert not calibrated_on_eval_window(trained.model, rows)
    production = measure_candidate(trained.production, rows, "2")
    assert production.ece_source == "out_of_time" and production.error is None
    assert production.metrics["ece"] == trained.production.metadata["out_of_time"]["ece"]
    labels = rows["churned"].to_numpy()
    assert production.metrics["roc_auc"] == pytest.approx(
        roc_auc_score(labels, trained.production.predict_proba(rows))
    )
    evaluation = measure_candidate(trained.model, rows, "1")
    assert evaluation.ece_source == "measured"
    # a record with other bins cannot stand in: the candidate has no ECE, so the gate rejects
    metadata = trained.production.metadata
    recorded = {**metadata["out_of_time"], "ece_bins": ECE_BINS + 5}
    other_bins = dataclasses.replace(
        trained.production, metadata={**metadata, "out_of_time": recorded}
    )
    other = measure_candidate(other_bins, rows, "2")
    assert other.metrics["ece"] is None and "out-of-time ECE" in other.error


def test_rows_from_cutoffs_a_model_trained_on_get_no_metrics(snapshots, trained):
    # the calibration cutoff's rows: the production booster trained on all of them, the
    # evaluation booster on half of them; neither may be judged there
    rows = select_eval_rows(snapshots, "calibration")
    assert trained.production.held_out_mask(rows) is None
    for model in (trained.production, trained.model):
        measured = measure_candidate(model, rows, "2")
        assert measured.metrics["roc_auc"] is None
        assert "overlap the evaluation rows' window" in measured.error
    # a fit cutoff's rows are inside the evaluation model's training range too
    fit = snapshots[snapshots["role"] == "fit"]
    assert trained.model.read_labels_overlapping(fit["cutoff"], "training")
    # and the test cutoff is outside both models' full training ranges
    test = snapshots[snapshots["role"] == "test"]["cutoff"]
    assert not trained.model.read_labels_overlapping(test, "training")
    assert not trained.production.read_labels_overlapping(test, "training")


@pytest.fixture
def promote(snapshots, mlflow_store, tmp_path, monkeypatch):
    """Run `churn promote --apply` on a model against a temporary MLflow registry."""
    import yaml
    from typer.testing import CliRunner

    from churn.cli import app
    from churn.config import ChurnParams
    from churn.definition import describe_definition
    from churn.train import feature_columns

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_store)
    snapshots_path = tmp_path / "train.parquet"
    snapshots.to_parquet(snapshots_path)
    params_path = tmp_path / "params.yaml"
    params_path.write_text(yaml.safe_dump({"promote": PromoteParams().model_dump()}))
    # what `churn train` records: the churn definition of the snapshots the model came from
    definition = describe_definition(ChurnParams(), feature_columns(snapshots, "snapshots"))

    def run(model, name):
        metadata = {**model.metadata, "definition": definition}
        folder = tmp_path / name
        dataclasses.replace(model, metadata=metadata).save(folder)
        args = ["promote", "--challenger", str(folder), "--snapshots", str(snapshots_path)]
        args += ["--out", str(tmp_path / "champion"), "--report", str(tmp_path / f"{name}.json")]
        args += ["--exports", str(tmp_path / "exports" / "at_risk")]
        result = CliRunner().invoke(app, [*args, "--apply", "--params", str(params_path)])
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        assert result.exit_code == 0, result.output
        return json.loads((tmp_path / f"{name}.json").read_text())

    return run


def test_the_gate_compares_both_models_on_the_customers_the_production_refit_never_saw(
    snapshots, trained, promote
):
    first = promote(trained.model, "evaluation")
    assert first["eval_data"]["rows"] == int((snapshots["role"] == "test").sum())
    report = promote(trained.production, "production")
    assert report["eval_data"]["rows"] == len(_held_out_test(snapshots))
    assert report["challenger"]["ece_source"] == "out_of_time"
    assert report["champion"]["ece_source"] == "measured"
    assert report["challenger"]["metrics"]["ece"] == pytest.approx(
        trained.production.metadata["out_of_time"]["ece"], abs=1e-6
    )


def test_a_production_champion_is_also_measured_only_on_customers_it_never_saw(
    snapshots, trained, promote
):
    promote(trained.production, "production")
    # an evaluation-model challenger (train.production_refit off) against that champion: the
    # champion trained on half of the test customers, so only the other half is fair to both
    report = promote(trained.model, "evaluation")
    assert report["eval_data"]["rows"] == len(_held_out_test(snapshots))
    assert report["champion"]["ece_source"] == "out_of_time"
    assert report["challenger"]["ece_source"] == "measured"
