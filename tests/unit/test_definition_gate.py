"""One churn definition and a gate that compares like with like; the champion folder holds the
champion; a list scored by any other model is refused."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from churn.config import ChurnParams, DriftParams, PromoteParams, RegistryParams
from churn.definition import definition_changes, describe_definition, recorded_definition
from churn.model import ChurnModel
from churn.promote import Candidate, decide_promotion, run_gate
from churn.publish.gates import check_champion
from support.promote_helpers import make_snapshots, train_model

SRC = Path(__file__).resolve().parents[1] / "src" / "churn"
FEATURES = ["recency_days", "tenure_days", "channel"]


def _with_definition(model: ChurnModel, horizon: int, features=FEATURES) -> ChurnModel:
    definition = describe_definition(ChurnParams(horizon_days=horizon), features)
    return ChurnModel(
        model.booster,
        model.calibrator,
        model.spec,
        {**model.metadata, "definition": definition, "horizon_days": horizon},
    )


class FakeRegistry:
    """Versions held in memory; the champion alias points at one of them."""

    model_name = "churn-classifier"

    def __init__(self, versions: dict[str, ChurnModel], champion: str | None) -> None:
        self.versions, self.champion = versions, champion

    def alias_version(self, alias: str) -> str | None:
        return self.champion

    def alias_history(self, alias: str, limit: int) -> list[str]:
        return [self.champion][:limit] if self.champion else []

    def fetch_folder(self, version: str, dest) -> Path:
        self.versions[version].save(dest)
        return Path(dest)

    def rejected_reason(self, version: str) -> str | None:
        return None


# --------------------------------------------------------------------------- definition
def test_the_fingerprint_changes_with_every_part_of_the_definition():
    base = describe_definition(ChurnParams(), FEATURES)
    assert base == describe_definition(ChurnParams(), list(reversed(FEATURES)))
    for other in (
        describe_definition(ChurnParams(horizon_days=60), FEATURES),
        describe_definition(ChurnParams(active_within_days=180), FEATURES),
        describe_definition(ChurnParams(), FEATURES[:-1]),
    ):
        assert other["fingerprint"] != base["fingerprint"]
        assert definition_changes(base, other)
    assert definition_changes(base, base) == []


def test_features_added_as_a_short_history_grows_keep_models_comparable():
    base = describe_definition(ChurnParams(), FEATURES)
    grown = describe_definition(ChurnParams(), [*FEATURES, "spend_365d", "purchases_365d"])
    assert grown["fingerprint"] != base["fingerprint"]
    assert definition_changes(base, grown) == []
    assert definition_changes(grown, base) == ["feature set removed purchases_365d, spend_365d"]


def test_a_champion_from_before_definitions_is_compared_by_its_recorded_horizon():
    """The upgrade path: the first retrain after upgrading needs no --new-definition."""
    legacy = recorded_definition({"horizon_days": 90})
    assert legacy == {"horizon_days": 90, "legacy": True}
    assert definition_changes(legacy, describe_definition(ChurnParams(), FEATURES)) == []
    shorter = describe_definition(ChurnParams(horizon_days=60), FEATURES)
    assert definition_changes(legacy, shorter) == ["horizon_days 90 -> 60"]
    assert recorded_definition({}) is None
    assert definition_changes(None, shorter)


def test_the_gate_refuses_a_challenger_trained_under_another_horizon():
    """The reported bug: a 60-day challenger passed the gate against a 90-day champion."""
    challenger = Candidate("2", {"roc_auc": 0.99, "ece": 0.01})
    champion = Candidate("1", {"roc_auc": 0.80, "ece": 0.02})
    change = definition_changes(
        describe_definition(ChurnParams(horizon_days=90), FEATURES),
        describe_definition(ChurnParams(horizon_days=60), FEATURES),
    )
    decision = decide_promotion(challenger, champion, PromoteParams(), None, change)
    assert not decision.promote
    assert [c.rule for c in decision.checks if not c.passed] == ["same_definition"]
    assert "horizon_days 90 -> 60" in decision.reasons[0]
    assert "--new-definition" in decision.reasons[0]


def test_a_new_definition_line_is_explicit_and_applies_only_the_floor():
    change = ["horizon_days 90 -> 60"]
    good = Candidate("2", {"roc_auc": 0.70, "ece": 0.30})
    champion = Candidate("1", {"roc_auc": 0.95, "ece": 0.01})
    decision = decide_promotion(good, champion, PromoteParams(), None, change, new_definition=True)
    assert decision.promote and "new definition line" in decision.note
    weak = Candidate("3", {"roc_auc": 0.60, "ece": 0.01})
    assert not decide_promotion(weak, champion, PromoteParams(), None, change, True).promote


def _gate(challenger, registry, snapshots, **kwargs):
    return run_gate(
        challenger,
        "2",
        snapshots,
        registry,
        PromoteParams(min_auc=0.5, max_auc_drop=1.0, max_ece_increase=1.0),
        DriftParams(),
        RegistryParams(),
        **kwargs,
    )


def test_the_champion_folder_holds_the_champion_until_the_gate_is_applied():
    snapshots = make_snapshots(seed=3)
    champion = _with_definition(train_model(snapshots, FEATURES, seed=1), 90)
    challenger = _with_definition(train_model(snapshots, FEATURES, seed=2, rounds=40), 90)
    registry = FakeRegistry({"1": champion}, "1")

    pending = _gate(challenger, registry, snapshots)
    assert pending.report["decision"] == "promote"
    assert pending.champion_version == "1" and not pending.move_alias
    assert pending.report["alias"]["pending_apply"] is True
    assert pending.champion.metadata["model_version"] == "1"

    applied = _gate(challenger, registry, snapshots, apply=True)
    assert applied.champion_version == "2" and applied.move_alias
    assert applied.champion.metadata["model_version"] == "2"


def test_the_gate_never_measures_a_champion_under_labels_it_was_not_trained_for():
    snapshots = make_snapshots(seed=4)
    champion = _with_definition(train_model(snapshots, FEATURES, seed=1), 90)
    challenger = _with_definition(train_model(snapshots, FEATURES, seed=2), 60)
    registry = FakeRegistry({"1": champion}, "1")
    refused = _gate(challenger, registry, snapshots, apply=True)
    assert refused.report["decision"] == "keep" and refused.champion_version == "1"
    assert refused.report["champion"]["metrics"]["roc_auc"] is None  # not compared
    assert refused.report["definition"]["changes"] == ["horizon_days 90 -> 60"]

    started = _gate(challenger, registry, snapshots, apply=True, new_definition=True)
    assert started.move_alias and started.champion_version == "2"
    assert started.report["definition"]["new_line"] is True


# --------------------------------------------------------------------------- publishing
def _scores(version: str) -> pd.DataFrame:
    return pd.DataFrame({"model_version": pd.array([version], dtype="string")})


def test_a_list_scored_by_a_model_that_is_not_the_champion_is_refused():
    assert check_champion(_scores("3"), "3").passed
    refused = check_champion(_scores("2"), "3")
    assert not refused.passed and "--allow-non-champion" in refused.detail
    assert not check_champion(_scores("2"), None).passed
    overridden = check_champion(_scores("2"), "3", allow_other=True)
    assert overridden.passed and "anyway" in overridden.detail


def test_an_in_time_holdout_applies_only_the_floor_and_is_never_compared_with_the_champion():
    champion = Candidate("1", {"roc_auc": 0.95, "ece": 0.01})
    weaker = Candidate("2", {"roc_auc": 0.70, "ece": 0.30}, evaluation="in_time_holdout")
    decision = decide_promotion(weaker, champion, PromoteParams(), None, [])
    assert decision.promote and [c.rule for c in decision.checks] == ["floor"]
    assert "in-time holdout" in decision.note
    below = Candidate("3", {"roc_auc": 0.60, "ece": 0.01}, evaluation="in_time_holdout")
    assert not decide_promotion(below, champion, PromoteParams(), None, []).promote
