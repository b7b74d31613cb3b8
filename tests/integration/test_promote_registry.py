"""The promote stage against a real (temporary SQLite) MLflow registry: alias moves, faults, rollback.

Runs `churn promote` itself: the gate decides (churn.promote.run_gate) and the command saves the
champion folder and the report, logs the decision and moves the alias last.
"""

from __future__ import annotations

import json

import pytest
import yaml
from typer.testing import CliRunner

import churn.files
from churn.cli import app
from churn.config import PromoteParams, RegistryParams
from churn.errors import ChurnError
from churn.model import DRIFT_REFERENCE_FILE, ChurnModel
from churn.promote import rollback_to
from churn.tracking import ModelRegistry
from support.promote_helpers import make_snapshots, save_challenger, train_model

PARAMS = PromoteParams()
NAMES = RegistryParams()
NAME = NAMES.model


@pytest.fixture
def snapshots():
    return make_snapshots(seed=3)


@pytest.fixture
def registry(mlflow_store, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_store)  # what `churn promote` opens
    monkeypatch.delenv("CHURN_PROMOTE_APPLY", raising=False)
    monkeypatch.delenv("CHURN_PROMOTE_NEW_DEFINITION", raising=False)
    return ModelRegistry(mlflow_store, NAME)


@pytest.fixture
def models(snapshots):
    """A weak model (recency only), a better one (recency and channel), a useless one."""
    return {
        "weak": train_model(snapshots, ["recency_days"], seed=1),
        "strong": train_model(snapshots, ["recency_days", "channel"], seed=1),
        "useless": train_model(snapshots, ["tenure_days"], seed=1),
    }


def _promote(
    tmp_path, snapshots, registry, model, apply=False, version=None, params=PARAMS, env=None
):
    """Run `churn promote` on the challenger; return the written report and champion folder."""
    challenger = save_challenger(model, tmp_path / "challenger", version)
    snapshots_path = tmp_path / "train.parquet"
    snapshots.to_parquet(snapshots_path)
    params_path = tmp_path / "params.yaml"
    params_path.write_text(yaml.safe_dump({"promote": params.model_dump()}))
    args = ["promote", "--challenger", str(challenger), "--snapshots", str(snapshots_path)]
    args += ["--out", str(tmp_path / "champion")]
    args += ["--report", str(tmp_path / "reports" / "promotion.json")]
    args += ["--exports", str(tmp_path / "exports" / "at_risk")]
    args += ["--params", str(params_path)] + (["--apply"] if apply else [])
    result = CliRunner().invoke(app, args, env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "reports" / "promotion.json").read_text())
    return report, ChurnModel.load(tmp_path / "champion")


def test_the_first_passing_challenger_becomes_champion_even_without_apply(
    tmp_path, snapshots, registry, models
):
    report, champion = _promote(tmp_path, snapshots, registry, models["weak"])
    assert report["decision"] == "promote"
    assert report["champion"] is None
    assert [c["rule"] for c in report["checks"]] == ["floor"]
    assert registry.alias_version("champion") == "1"
    assert champion.version == "1"
    assert champion.drift_reference is not None
    assert (tmp_path / "champion" / DRIFT_REFERENCE_FILE).is_file()
    written = json.loads((tmp_path / "reports" / "promotion.json").read_text())
    assert written["alias"] == {
        "name": "champion",
        "before": None,
        "after": "1",
        "moved_by_this_run": True,
        "pending_apply": False,
    }
    assert written["eval_data"]["cutoffs"] == ["2023-12-01"]


def test_an_experiment_never_moves_the_alias_and_apply_does(tmp_path, snapshots, registry, models):
    _promote(tmp_path, snapshots, registry, models["weak"])
    report, champion = _promote(tmp_path, snapshots, registry, models["strong"])
    assert report["decision"] == "promote"
    assert report["challenger"]["metrics"]["roc_auc"] > report["champion"]["metrics"]["roc_auc"]
    # the folder holds what the alias points to: production (and `score`) stay on version 1
    assert champion.version == "1"
    assert registry.alias_version("champion") == "1"
    assert report["alias"]["moved_by_this_run"] is False
    assert report["alias"]["pending_apply"] is True

    applied, champion = _promote(tmp_path, snapshots, registry, models["strong"], apply=True)
    assert applied["decision"] == "promote"
    assert registry.alias_version("champion") == "2"
    assert champion.version == "2" and applied["alias"]["pending_apply"] is False


def test_a_worse_challenger_leaves_the_champion_in_the_folder_with_its_frozen_reference(
    tmp_path, snapshots, registry, models
):
    _, first = _promote(tmp_path, snapshots, registry, models["strong"])
    report, champion = _promote(tmp_path, snapshots, registry, models["useless"], apply=True)
    assert report["decision"] == "keep"
    assert any(reason.startswith("floor") for reason in report["reasons"])
    assert registry.alias_version("champion") == "1"
    assert champion.version == "1"
    assert champion.booster.model_to_string() == first.booster.model_to_string()
    assert champion.drift_reference == first.drift_reference


def test_a_rerun_with_nothing_changed_writes_byte_identical_champion_files(
    tmp_path, snapshots, registry, models
):
    _promote(tmp_path, snapshots, registry, models["strong"])
    folder = tmp_path / "champion"
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    report_before = (tmp_path / "reports" / "promotion.json").read_bytes()
    _promote(tmp_path, snapshots, registry, models["strong"])
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    again = json.loads((tmp_path / "reports" / "promotion.json").read_text())
    assert again["decision"] == "keep"
    assert again["reasons"] == ["the challenger is already the champion (version 1)"]
    assert report_before != (tmp_path / "reports" / "promotion.json").read_bytes()


class _Injected(RuntimeError):
    pass


@pytest.mark.parametrize("step", ["has_reference", "log_decision", "write_json", "save"])
def test_a_fault_between_registering_and_aliasing_leaves_the_champion_unchanged(
    tmp_path, snapshots, registry, models, monkeypatch, step
):
    _promote(tmp_path, snapshots, registry, models["weak"])
    registered_before = len(registry.versions())

    def boom(*args, **kwargs):
        raise _Injected(f"fault injected at {step}")

    with monkeypatch.context() as patch:
        if step == "write_json":
            patch.setattr(churn.files, "write_json", boom)
        elif step == "save":
            original = ChurnModel.save

            def save_fails_for_the_champion(model, folder):
                if folder == tmp_path / "champion":
                    boom()
                return original(model, folder)

            patch.setattr(ChurnModel, "save", save_fails_for_the_champion)
        else:
            patch.setattr(ModelRegistry, step, boom)
        with pytest.raises(_Injected):
            _promote(tmp_path, snapshots, registry, models["strong"], apply=True)
    assert len(registry.versions()) == registered_before + 1  # registered ...
    assert registry.alias_version("champion") == "1"  # ... but production is untouched

    report, champion = _promote(tmp_path, snapshots, registry, models["strong"], apply=True)
    assert len(registry.versions()) == registered_before + 1  # the retry finds it by sha256
    assert registry.alias_version("champion") == "2"
    assert champion.version == "2"
    assert report["alias"]["before"] == "1"


def test_a_test_cutoff_with_one_class_rejects_the_challenger_instead_of_crashing(
    tmp_path, registry, models, snapshots
):
    _promote(tmp_path, snapshots, registry, models["weak"])
    no_churners = make_snapshots(seed=3, test_churn=False)
    report, champion = _promote(tmp_path, no_churners, registry, models["strong"], apply=True)
    assert report["decision"] == "keep"
    assert report["challenger"]["metrics"]["roc_auc"] is None
    assert any("missing" in reason for reason in report["reasons"])
    assert champion.version == "1"


def test_no_champion_and_a_failing_challenger_is_a_clear_error(
    tmp_path, snapshots, registry, models
):
    with pytest.raises(ChurnError, match="no model to put in models/champion"):
        _promote(tmp_path, snapshots, registry, models["weak"], params=PromoteParams(min_auc=0.99))
    assert registry.alias_version("champion") is None


def test_a_first_challenger_below_the_best_baseline_leaves_the_baseline_then_a_model_replaces_it(
    tmp_path, snapshots, registry, models
):
    """promote.fallback: no champion yet and the first model ranks worse than recency: the
    champion folder holds recency as a one-feature model, labelled, with the alias unset; the
    next run's passing model replaces it (a fallback folder is no lost registry)."""
    weak = train_model(snapshots, ["channel"], seed=1)
    report, folder = _promote(
        tmp_path, snapshots, registry, weak, params=PromoteParams(min_auc=0.55)
    )
    assert report["decision"] == "keep" and report["fallback"]["baseline"] == "recency"
    assert folder.version == "baseline-recency" and folder.metadata["fallback"]["column"] == (
        "recency_days"
    )
    assert folder.spec.names == ["recency_days"]
    assert registry.alias_version("champion") is None

    report, folder = _promote(tmp_path, snapshots, registry, models["strong"])
    assert report["decision"] == "promote" and report["fallback"] is None
    assert registry.alias_version("champion") == folder.version != "baseline-recency"
    assert "fallback" not in folder.metadata


def test_a_challenger_registered_by_train_is_recognised_not_registered_again(
    tmp_path, snapshots, registry, models
):
    folder = save_challenger(models["strong"], tmp_path / "trained")
    version = registry.register_folder(folder, "churn")
    report, champion = _promote(tmp_path, snapshots, registry, models["strong"], version=version)
    assert len(registry.versions()) == 1
    assert champion.version == version == report["chosen_version"]


def test_applying_a_passed_gate_moves_the_alias_once_and_the_folder_follows(
    tmp_path, snapshots, registry, models
):
    """Replaces apply_decision (gone): the applied gate run moves the alias itself."""
    _promote(tmp_path, snapshots, registry, models["weak"])
    report, champion = _promote(tmp_path, snapshots, registry, models["strong"])
    assert registry.alias_version("champion") == "1" and champion.version == "1"
    assert report["alias"]["pending_apply"] is True
    applied, champion = _promote(tmp_path, snapshots, registry, models["strong"], apply=True)
    assert applied["alias"] == {
        "name": "champion",
        "before": "1",
        "after": "2",
        "moved_by_this_run": True,
        "pending_apply": False,
    }
    assert registry.alias_version("champion") == "2" and champion.version == "2"
    again, champion = _promote(tmp_path, snapshots, registry, models["strong"], apply=True)
    assert again["alias"]["moved_by_this_run"] is False  # already applied
    assert again["reasons"] == ["the challenger is already the champion (version 2)"]
    assert champion.version == "2"


def test_the_apply_environment_variable_applies_the_gate_as_retrain_does(
    tmp_path, snapshots, registry, models
):
    """Replaces apply_decision's stale-folder check: `churn retrain` applies through the env."""
    _promote(tmp_path, snapshots, registry, models["weak"])
    report, champion = _promote(
        tmp_path, snapshots, registry, models["strong"], env={"CHURN_PROMOTE_APPLY": "1"}
    )
    assert report["alias"]["moved_by_this_run"] is True
    assert registry.alias_version("champion") == "2" and champion.version == "2"


def test_rollback_puts_an_earlier_version_back_and_the_gate_does_not_repromote_it(
    tmp_path, snapshots, registry, models
):
    _, first = _promote(tmp_path, snapshots, registry, models["weak"])
    _promote(tmp_path, snapshots, registry, models["strong"], apply=True)
    assert registry.alias_version("champion") == "2"

    result = rollback_to("1", registry, NAMES, "bad lists in May")
    assert result == {"before": "2", "after": "1", "rejected": "2"}
    assert registry.alias_version("champion") == "1"  # rollback moves the registry only

    # the next pipeline run's promote stage writes the restored champion to the folder
    report, champion = _promote(tmp_path, snapshots, registry, models["strong"], apply=True)
    assert report["decision"] == "keep"
    assert [c["rule"] for c in report["checks"] if not c["passed"]] == ["not_rolled_back"]
    assert champion.version == "1"
    assert champion.booster.model_to_string() == first.booster.model_to_string()
    assert champion.drift_reference == first.drift_reference


def test_rollback_to_an_unknown_version_names_the_fix(tmp_path, registry, models, snapshots):
    _promote(tmp_path, snapshots, registry, models["weak"])
    with pytest.raises(ChurnError, match="no version 7"):
        rollback_to("7", registry, NAMES, "x")


def test_small_drops_cannot_add_up_the_earlier_champion_is_rescored_on_the_same_rows(
    tmp_path, snapshots, registry
):
    """Each challenger is within max_auc_drop of the champion it meets, but the third is more
    than that below the first: the first, read from the alias history and rescored on today's
    rows, keeps it out."""
    params = PromoteParams(max_auc_drop=0.01, max_ece_increase=1.0)
    first = train_model(snapshots, ["recency_days", "channel"], rounds=30)
    second = train_model(snapshots, ["recency_days", "channel", "tenure_days"], rounds=30)
    third = train_model(snapshots, ["recency_days", "channel", "tenure_days"], rounds=60)
    _promote(tmp_path, snapshots, registry, first, params=params)
    report, _ = _promote(tmp_path, snapshots, registry, second, apply=True, params=params)
    assert report["alias"]["after"] == "2"
    assert registry.alias_history("champion", 5) == ["2", "1"]
    report, champion = _promote(tmp_path, snapshots, registry, third, apply=True, params=params)
    auc = {
        c["version"]: c["metrics"]["roc_auc"]
        for c in [report["challenger"], report["champion"], *report["history"]]
    }
    assert auc["2"] - auc["3"] <= params.max_auc_drop < auc["1"] - auc["3"]
    assert report["decision"] == "keep" and champion.version == "2"
    assert any("earlier champion version 1" in reason for reason in report["reasons"])
    assert report["baseline_floor"]["baseline"] == "recency"


def test_the_alias_history_follows_rollbacks_and_leaves_rolled_back_versions_out(
    tmp_path, snapshots, registry, models
):
    _promote(tmp_path, snapshots, registry, models["weak"])
    _promote(tmp_path, snapshots, registry, models["strong"], apply=True)
    rollback_to("1", registry, NAMES, "bad lists in May")
    assert registry.alias_history("champion", 5) == ["1", "2"]
    report, _ = _promote(
        tmp_path, snapshots, registry, train_model(snapshots, ["recency_days"], seed=2), apply=True
    )
    assert [h["version"] for h in report["history"]] == ["2"]
    assert report["history"][0]["error"].startswith("left out: rolled back")


# --------------------------------------------------------------------------- a lost registry
def _new_store(tmp_path, monkeypatch, name, content=None):
    """Point `churn promote` at another SQLite store: a fresh migrated copy, or raw bytes."""
    import shutil

    path = tmp_path / name
    if content is None:
        shutil.copyfile(tmp_path / "mlflow" / "mlflow.db", path)
        ModelRegistry(f"sqlite:///{path}", NAME)  # readable
    else:
        path.write_bytes(content)
    uri = f"sqlite:///{path}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


@pytest.fixture
def pristine_store(tmp_path):
    """A copy of the still-empty store, taken before any test step writes to it."""
    import shutil

    shutil.copyfile(tmp_path / "mlflow" / "mlflow.db", tmp_path / "pristine.db")
    return tmp_path / "pristine.db"


def _lost(tmp_path, monkeypatch, pristine_store):
    import shutil

    shutil.copyfile(pristine_store, tmp_path / "lost.db")
    uri = f"sqlite:///{tmp_path / 'lost.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return ModelRegistry(uri, NAME)


def test_a_lost_registry_with_a_champion_folder_is_an_error_never_a_fresh_start(
    tmp_path, snapshots, registry, models, monkeypatch, pristine_store
):
    """Losing mlflow.db let a plain `churn promote` see "no champion yet", promote a weak model
    and overwrite models/champion; now it stops, names the recovery and changes nothing."""
    _, strong = _promote(tmp_path, snapshots, registry, models["strong"])
    before = {p.name: p.read_bytes() for p in (tmp_path / "champion").iterdir()}
    fresh = _lost(tmp_path, monkeypatch, pristine_store)
    with pytest.raises(ChurnError) as raised:
        _promote(tmp_path, snapshots, fresh, models["weak"])
    message = str(raised.value)
    assert "has no 'champion'" in message and "holds version 1" in message
    assert "copy mlflow.db back" in message and "--new-registry" in message
    assert {p.name: p.read_bytes() for p in (tmp_path / "champion").iterdir()} == before
    assert fresh.alias_version("champion") is None


def test_published_lists_alone_also_stop_a_fresh_start(tmp_path, snapshots, registry, models):
    listed = tmp_path / "exports" / "at_risk" / "2024-01-01"
    listed.mkdir(parents=True)
    (listed / "manifest.json").write_text('{"as_of": "2024-01-01", "model_version": "1"}')
    with pytest.raises(
        ChurnError, match=r"1 at-risk list\(s\) are published \(latest 2024-01-01\)"
    ):
        _promote(tmp_path, snapshots, registry, models["strong"])
    assert registry.alias_version("champion") is None
    assert not (tmp_path / "champion").exists()


def test_new_registry_registers_the_champion_again_and_the_gate_still_compares(
    tmp_path, snapshots, registry, models, monkeypatch, pristine_store
):
    _, strong = _promote(tmp_path, snapshots, registry, models["strong"])
    fresh = _lost(tmp_path, monkeypatch, pristine_store)
    report, champion = _promote(
        tmp_path,
        snapshots,
        fresh,
        models["weak"],
        apply=True,
        env={"CHURN_PROMOTE_NEW_REGISTRY": "1"},
    )
    restored = fresh.alias_version("champion")
    assert restored is not None and report["champion"]["version"] == restored
    assert report["decision"] == "keep"  # the weak challenger met the restored champion
    assert champion.booster.model_to_string() == strong.booster.model_to_string()
    tags = fresh.version_info(restored)["tags"]
    assert "version 1 of 'churn-classifier' in a lost registry" in tags["churn.restored_from"]


def test_restarted_version_numbers_are_caught_when_the_folder_names_another_model(
    tmp_path, snapshots, registry, models, monkeypatch, pristine_store
):
    _promote(tmp_path, snapshots, registry, models["strong"])
    fresh = _lost(tmp_path, monkeypatch, pristine_store)
    other = save_challenger(models["useless"], tmp_path / "other")
    fresh.set_alias("champion", fresh.register_folder(other, "churn"))  # "version 1", another model
    with pytest.raises(ChurnError, match="version numbers restarted"):
        _promote(tmp_path, snapshots, fresh, models["weak"])


@pytest.mark.parametrize(
    "content", [b"", b"not a database" * 300, b"SQLite format 3\x00" + bytes(range(256)) * 40]
)
def test_a_damaged_registry_file_is_a_clear_error(
    tmp_path, snapshots, registry, models, monkeypatch, content
):
    _promote(tmp_path, snapshots, registry, models["strong"])
    path = tmp_path / "damaged.db"
    path.write_bytes(content)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{path}")
    with pytest.raises(ChurnError) as raised:
        _promote(tmp_path, snapshots, registry, models["weak"])
    message = str(raised.value)
    # an empty file reads as an empty registry; bytes that are no database cannot be read
    assert ("cannot be read" in message) or ("has no 'champion'" in message)
    assert "copy mlflow.db back" in message
