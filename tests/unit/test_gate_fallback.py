"""The gate's fallback: with no champion, a first model that ranks worse than a simple baseline
leaves marketing a list scored by that baseline, labelled as such, instead of no list at all."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from churn.config import DriftParams, PromoteParams, RegistryParams
from churn.errors import ChurnError
from churn.promote import FALLBACK_PREFIX, Production, is_fallback, registry_gap, run_gate
from churn.publish.gates import check_champion
from churn.train import fit_baseline_model
from support.promote_helpers import make_snapshots, train_model


class EmptyRegistry:
    """A registry with no champion yet (a first run)."""

    model_name = "churn-classifier"

    def alias_version(self, alias: str) -> str | None:
        return None

    def alias_history(self, alias: str, limit: int) -> list[str]:
        return []

    def rejected_reason(self, version: str) -> str | None:
        return None


def _gate(challenger, snapshots, **promote):
    params = PromoteParams(**{"min_auc": 0.55, **promote})
    return run_gate(
        challenger, "1", snapshots, EmptyRegistry(), params, DriftParams(), RegistryParams()
    )


def _weak_challenger(snapshots):
    # channel alone: better than chance, clearly worse than recency (which drives churn here)
    return train_model(snapshots, ["channel"], seed=1)


def test_a_first_model_below_the_baseline_floor_leaves_a_list_scored_by_the_baseline():
    snapshots = make_snapshots(seed=5, customers=1500)
    outcome = _gate(_weak_challenger(snapshots), snapshots)

    assert outcome.report["decision"] == "keep"
    assert [c["rule"] for c in outcome.report["checks"] if not c["passed"]] == ["floor"]
    assert outcome.champion_version == FALLBACK_PREFIX + "recency"
    assert not outcome.move_alias and outcome.report["alias"]["after"] is None
    fallback = outcome.report["fallback"]
    assert fallback["baseline"] == "recency"
    assert fallback["roc_auc"] > outcome.report["challenger"]["metrics"]["roc_auc"]
    model = outcome.champion
    assert is_fallback(model) and model.version == "baseline-recency"
    assert model.spec.names == ["recency_days"]
    # it ranks the gate's rows as the baseline does (ties of the step function aside)
    test = snapshots[snapshots["role"] == "test"]
    labels = test["churned"].to_numpy()
    model_auc = roc_auc_score(labels, model.predict_proba(test))
    assert model_auc == pytest.approx(roc_auc_score(labels, test["recency_days"]), abs=0.01)
    assert outcome.report["chosen_version"] == "baseline-recency"


def test_without_the_fallback_a_refused_first_model_still_stops_the_run():
    snapshots = make_snapshots(seed=5, customers=1500)
    with pytest.raises(ChurnError, match="promote.fallback: baseline"):
        _gate(_weak_challenger(snapshots), snapshots, fallback="none")


def test_a_model_below_min_auc_gets_no_fallback():
    """The floor failed on min_auc itself, not on the baseline: something is wrong with the
    data, and a baseline list would hide it."""
    snapshots = make_snapshots(seed=5, customers=1500)
    with pytest.raises(ChurnError, match="no model to put in models/champion/"):
        _gate(_weak_challenger(snapshots), snapshots, min_auc=0.99)


def test_a_model_that_passes_is_the_champion_not_the_fallback():
    snapshots = make_snapshots(seed=5, customers=1500)
    good = train_model(snapshots, ["recency_days", "channel"], seed=1)
    outcome = _gate(good, snapshots)
    assert outcome.report["decision"] == "promote" and outcome.report["fallback"] is None
    assert outcome.champion_version == "1" and not is_fallback(outcome.champion)


def test_the_baseline_model_ranks_like_its_baseline_and_names_a_missing_column():
    snapshots = make_snapshots(seed=6, customers=1500)
    model = fit_baseline_model(snapshots, "recency", 90, seed=0)
    assert model.metadata["fallback"] == {
        "baseline": "recency",
        "column": "recency_days",
        "direction": 1,
    }
    rows = snapshots[snapshots["role"] == "test"].sort_values("recency_days")
    proba = model.predict_proba(rows)
    assert (np.diff(proba) >= -1e-12).all()  # never less risk for a longer silence
    with pytest.raises(ChurnError, match="bgnbd_p_no_purchase.*features.bgnbd"):
        fit_baseline_model(snapshots, "bgnbd_no_purchase", 90)
    with pytest.raises(ChurnError, match="known"):
        fit_baseline_model(snapshots, "rfm_logistic", 90)


def test_a_fallback_list_publishes_labelled_and_only_while_there_is_no_champion():
    scores = pd.DataFrame({"model_version": pd.array(["baseline-recency"], dtype="string")})
    passed = check_champion(scores, None, fallback_version="baseline-recency")
    assert passed.passed and "fallback baseline-recency" in passed.detail
    assert not check_champion(scores, "3", fallback_version="baseline-recency").passed
    assert not check_champion(scores, None).passed


def test_a_fallback_in_the_champion_folder_is_no_lost_registry(tmp_path):
    snapshots = make_snapshots(seed=5, customers=1500)
    outcome = _gate(_weak_challenger(snapshots), snapshots)
    production = Production(tmp_path, outcome.champion, published=("2024-01-01",))
    assert registry_gap(production, EmptyRegistry(), "champion", "mlflow.db") is None
    trained = train_model(snapshots, ["recency_days"], seed=1)
    lost = Production(tmp_path, trained, published=("2024-01-01",))
    assert "lost" in registry_gap(lost, EmptyRegistry(), "champion", "mlflow.db")
