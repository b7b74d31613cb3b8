"""The champion/challenger gate: both models on the same newest out-of-time rows, rules, alias move."""

from __future__ import annotations

import hashlib
import math
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

from churn.columns import CHURNED, CUSTOMER_ID, CUTOFF, ROLE
from churn.config import DriftParams, PromoteParams
from churn.drift import build_reference
from churn.errors import ChurnError
from churn.logs import get_logger
from churn.model import MODEL_FILE, ChurnModel

log = get_logger("promote")

METRIC_NAMES = ("roc_auc", "pr_auc", "log_loss", "brier", "ece")
_TOLERANCE = 1e-12  # an AUC drop of exactly max_auc_drop passes despite float rounding
_CLIP = 1e-15
_VOLATILE_METADATA = ("files_sha256", "model_version", "registered_model", "run_id")


# --------------------------------------------------------------------------- metrics
def expected_calibration_error(labels: np.ndarray, probabilities: np.ndarray, bins: int) -> float:
    """Return ECE: row-weighted |mean probability - churn rate| over equal-width probability bins."""
    labels = np.asarray(labels, dtype="float64")
    probabilities = np.asarray(probabilities, dtype="float64")
    index = np.minimum((probabilities * bins).astype("int64"), bins - 1)
    total = 0.0
    for b in np.unique(index):
        inside = index == b
        total += inside.sum() * abs(probabilities[inside].mean() - labels[inside].mean())
    return float(total / labels.size)


def measure_scores(
    labels: np.ndarray, probabilities: np.ndarray, ece_bins: int
) -> dict[str, float | None]:
    """Return ROC AUC, PR AUC, log loss, Brier and ECE; None for any that cannot be computed."""
    labels = np.asarray(labels)
    probabilities = np.asarray(probabilities, dtype="float64")
    empty: dict[str, float | None] = dict.fromkeys(METRIC_NAMES)
    if labels.size == 0 or labels.size != probabilities.size:
        return empty
    if (
        not np.isfinite(probabilities).all()
        or (probabilities < 0).any()
        or (probabilities > 1).any()
    ):
        return empty
    both_classes = np.unique(labels).size == 2
    clipped = np.clip(probabilities, _CLIP, 1 - _CLIP)
    return {
        "roc_auc": float(roc_auc_score(labels, probabilities)) if both_classes else None,
        "pr_auc": float(average_precision_score(labels, probabilities)) if both_classes else None,
        "log_loss": float(-np.mean(labels * np.log(clipped) + (1 - labels) * np.log(1 - clipped))),
        "brier": float(np.mean((probabilities - labels) ** 2)),
        "ece": expected_calibration_error(labels, probabilities, ece_bins),
    }


# --------------------------------------------------------------------------- evaluation rows
def select_eval_rows(snapshots: pd.DataFrame, role: str) -> pd.DataFrame:
    """Return the rows of the newest cutoff with the given role, sorted by customer id."""
    missing = [c for c in (CUSTOMER_ID, CUTOFF, ROLE, CHURNED) if c not in snapshots.columns]
    if missing:
        raise ChurnError(
            f"training snapshots: missing column(s) {missing}; rerun `dvc repro features`"
        )
    rows = snapshots[snapshots[ROLE] == role]
    if rows.empty:
        return rows.copy()
    newest = rows[CUTOFF].max()
    return (
        rows[rows[CUTOFF] == newest].sort_values(CUSTOMER_ID, kind="stable").reset_index(drop=True)
    )


def select_reference_rows(snapshots: pd.DataFrame, roles: tuple[str, ...]) -> pd.DataFrame:
    """Return the rows a model learnt from (drift reference): the given roles, in a stable order."""
    rows = snapshots[snapshots[ROLE].isin(list(roles))]
    return rows.sort_values([CUTOFF, CUSTOMER_ID], kind="stable").reset_index(drop=True)


def fingerprint_rows(rows: pd.DataFrame) -> dict[str, Any]:
    """Return a fingerprint of the evaluation rows: counts, cutoff, churn rate and a content sha256."""
    ordered = rows[sorted(rows.columns)].sort_values([CUSTOMER_ID, CUTOFF], kind="stable")
    digest = hashlib.sha256(ordered.to_csv(index=False, lineterminator="\n").encode("utf-8"))
    cutoffs = sorted({str(c) for c in rows[CUTOFF].dropna()}) if CUTOFF in rows else []
    positives = int(rows[CHURNED].sum()) if CHURNED in rows else 0
    return {
        "rows": len(rows),
        "customers": int(rows[CUSTOMER_ID].nunique()) if CUSTOMER_ID in rows else 0,
        "cutoffs": cutoffs,
        "churned": positives,
        "churn_rate": round(positives / len(rows), 6) if len(rows) else None,
        "sha256": digest.hexdigest(),
    }


# --------------------------------------------------------------------------- the gate
@dataclass(frozen=True)
class Candidate:
    """One model in the gate: its registry version, its metrics on the eval rows, any error."""

    version: str | None
    metrics: Mapping[str, float | None] = field(default_factory=lambda: dict.fromkeys(METRIC_NAMES))
    error: str | None = None
    sha256: str | None = None
    ece_source: str = "measured"  # or "out_of_time": recorded at training (see measure_candidate)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "sha256": self.sha256,
            "metrics": {k: _round(v) for k, v in self.metrics.items()},
            "ece_source": self.ece_source,
            "error": self.error,
        }


def calibrated_on_eval_window(model: ChurnModel, rows: pd.DataFrame) -> bool:
    """Return True when the model's calibrator saw labels from the eval rows' label windows.

    A production refit is calibrated on its own test cutoff; measured on that cutoff (or one whose
    label window overlaps it), its calibration error is in-sample and says nothing.
    """
    if rows.empty or CUTOFF not in rows:
        return False
    return model.read_labels_overlapping(rows[CUTOFF], "calibration")


def measure_candidate(
    model: ChurnModel, rows: pd.DataFrame, version: str | None, ece_bins: int
) -> Candidate:
    """Return a candidate with its metrics on `rows`; a model that cannot score them gets an error."""
    sha = model.metadata.get("files_sha256", {}).get(MODEL_FILE)
    if rows.empty:
        return Candidate(version, error="no evaluation rows", sha256=sha)
    try:
        probabilities = model.predict_proba(rows)
    except (ChurnError, ValueError, KeyError) as error:
        return Candidate(version, error=f"cannot score the evaluation rows: {error}", sha256=sha)
    if model.read_labels_overlapping(rows[CUTOFF], "training"):
        oldest, newest = model.metadata["training_cutoffs"]
        return Candidate(
            version,
            error=(
                f"its booster trained on cutoffs {oldest} to {newest}, whose labels overlap the "
                "evaluation rows' window; measure on a newer cutoff (promote.eval_role: test)"
            ),
            sha256=sha,
        )
    labels = rows[CHURNED].to_numpy(dtype="int64")
    metrics = measure_scores(labels, probabilities, ece_bins)
    if calibrated_on_eval_window(model, rows):
        # the ranking is still out-of-time (the booster never saw these labels); for calibration
        # use the out-of-time ECE of the same recipe recorded at training, else none (rejects)
        recorded = model.metadata.get("out_of_time") or {}
        usable = recorded.get("ece_bins") == ece_bins and isinstance(recorded.get("ece"), float)
        metrics = {**metrics, "ece": recorded["ece"] if usable else None}
        if not usable:
            return Candidate(
                version,
                metrics,
                error=(
                    "calibrated on the evaluation rows and no out-of-time ECE with "
                    f"{ece_bins} bins was recorded at training; retrain with the current "
                    "promote.ece_bins (`dvc repro train`)"
                ),
                sha256=sha,
                ece_source="missing",
            )
        return Candidate(version, metrics, sha256=sha, ece_source="out_of_time")
    return Candidate(version, metrics, sha256=sha)


@dataclass(frozen=True)
class Check:
    """One gate rule's outcome with the numbers behind it."""

    rule: str
    passed: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "passed": self.passed, "detail": self.detail}


@dataclass(frozen=True)
class Decision:
    """The gate's verdict: promote the challenger or not, and every check that led there."""

    promote: bool
    checks: tuple[Check, ...]
    note: str = ""

    @property
    def reasons(self) -> list[str]:
        """Return the failed checks' details (or the note) in plain words."""
        failed = [f"{c.rule}: {c.detail}" for c in self.checks if not c.passed]
        return failed or ([self.note] if self.note else [])


def _metric(candidate: Candidate, name: str) -> float | None:
    value = candidate.metrics.get(name)
    if value is None or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _missing(who: str, candidate: Candidate, name: str) -> str:
    why = f" ({candidate.error})" if candidate.error else ""
    return f"{who} {name} is missing{why}; rejecting rather than guessing"


def decide_promotion(
    challenger: Candidate,
    champion: Candidate | None,
    params: PromoteParams,
    rejected_reason: str | None = None,
) -> Decision:
    """Return the gate verdict; with no champion only the floor applies; missing metrics reject."""
    if (
        champion is not None
        and challenger.version is not None
        and (challenger.version == champion.version)
    ):
        return Decision(
            False, (), f"the challenger is already the champion (version {champion.version})"
        )
    checks: list[Check] = []
    if rejected_reason:
        checks.append(
            Check(
                "not_rolled_back",
                False,
                f"version {challenger.version} was rolled back: {rejected_reason}",
            )
        )
    auc = _metric(challenger, "roc_auc")
    if auc is None:
        checks.append(Check("floor", False, _missing("challenger", challenger, "roc_auc")))
    else:
        checks.append(
            Check(
                "floor",
                auc >= params.min_auc - _TOLERANCE,
                f"ROC AUC {auc:.4f} vs floor {params.min_auc}",
            )
        )
    if champion is None:
        return Decision(
            all(c.passed for c in checks), tuple(checks), "no champion yet: only the floor applies"
        )
    champion_auc = _metric(champion, "roc_auc")
    if auc is None or champion_auc is None:
        who, whom = ("challenger", challenger) if auc is None else ("champion", champion)
        checks.append(Check("max_drop", False, _missing(who, whom, "roc_auc")))
    else:
        drop = champion_auc - auc
        checks.append(
            Check(
                "max_drop",
                drop <= params.max_auc_drop + _TOLERANCE,
                f"ROC AUC {auc:.4f} vs champion {champion_auc:.4f} (drop {drop:+.4f}, "
                f"allowed {params.max_auc_drop})",
            )
        )
    ece, champion_ece = _metric(challenger, "ece"), _metric(champion, "ece")
    if ece is None or champion_ece is None:
        who, whom = ("challenger", challenger) if ece is None else ("champion", champion)
        checks.append(Check("calibration", False, _missing(who, whom, "ece")))
    else:
        checks.append(
            Check(
                "calibration",
                ece <= champion_ece + params.max_ece_increase + _TOLERANCE,
                f"ECE {ece:.4f} vs champion {champion_ece:.4f} "
                f"(allowed increase {params.max_ece_increase})",
            )
        )
    return Decision(all(c.passed for c in checks), tuple(checks))


# --------------------------------------------------------------------------- the stage
class Registry(Protocol):
    """What the gate needs from a model registry (churn.tracking.ModelRegistry implements it)."""

    model_name: str

    def alias_version(self, alias: str) -> str | None: ...
    def version_info(self, version: str) -> dict[str, Any] | None: ...
    def find_version(self, sha: str) -> str | None: ...
    def rejected_reason(self, version: str) -> str | None: ...
    def fetch_folder(self, version: str, dest: str | Path) -> Path: ...
    def register_folder(self, folder: str | Path, experiment: str) -> str: ...
    def tag_sha(self, version: str, sha: str) -> None: ...
    def mark_rejected(self, version: str, reason: str) -> None: ...
    def clear_rejected(self, version: str) -> None: ...
    def has_reference(self, version: str) -> bool: ...
    def attach_reference(self, version: str, folder: str | Path) -> bool: ...
    def log_decision(self, experiment: str, report: dict[str, Any], report_path: Path) -> str: ...
    def set_alias(self, alias: str, version: str) -> None: ...


def model_sha(model: ChurnModel) -> str | None:
    """Return the booster's sha256 recorded in the model's metadata."""
    return model.metadata.get("files_sha256", {}).get(MODEL_FILE)


def resolve_version(model: ChurnModel, registry: Registry) -> str | None:
    """Return the registry version of a model folder: its metadata if it matches, else by sha256."""
    sha = model_sha(model)
    claimed = model.metadata.get("model_version")
    if claimed is not None:
        info = registry.version_info(str(claimed))
        if info is not None:
            tagged = info.get("sha256")
            if tagged in (None, sha):
                if tagged is None and sha:
                    registry.tag_sha(str(claimed), sha)
                return str(claimed)
    return registry.find_version(sha) if sha else None


def champion_model(
    model: ChurnModel, version: str, registered_model: str, reference: dict[str, Any] | None
) -> ChurnModel:
    """Return the model as written to models/champion/: version, registry name and drift reference."""
    # keys `churn train` adds after registering differ between the local folder and the registry
    # copy: drop them so the same model always gives byte-identical files (and no rescoring)
    metadata = {k: v for k, v in model.metadata.items() if k not in _VOLATILE_METADATA}
    metadata.update({"model_version": str(version), "registered_model": registered_model})
    return replace(model, metadata=metadata, drift_reference=reference)


def drift_reference_for(
    model: ChurnModel, snapshots: pd.DataFrame, drift: DriftParams
) -> dict[str, Any]:
    """Return the model's drift reference: the frozen one it carries, else built from its training rows."""
    if model.drift_reference is not None:
        return model.drift_reference
    rows = select_reference_rows(snapshots, drift.reference_roles)
    scores = model.predict_proba(rows) if len(rows) else np.zeros(0)
    return build_reference(rows, model.spec.numeric, model.spec.categorical, scores, drift)


def run_promotion(
    challenger_dir: Path,
    snapshots: pd.DataFrame,
    registry: Registry,
    params: PromoteParams,
    drift: DriftParams,
    champion_dir: Path,
    report_path: Path,
    apply: bool = False,
) -> dict[str, Any]:
    """Run the gate, write models/champion/ and the report, and move the alias last when allowed."""
    from churn.io import write_json

    challenger = ChurnModel.load(challenger_dir)
    challenger_version = resolve_version(challenger, registry)
    champion_version = registry.alias_version(params.alias)
    champion, champion_error = _load_champion(
        registry, champion_version, challenger, challenger_version
    )

    rows = select_eval_rows(snapshots, params.eval_role)
    masks = [m.held_out_mask(rows) for m in (challenger, champion) if m is not None]
    masks = [mask for mask in masks if mask is not None]
    if masks:
        # a production refit trained on the other customers of this cutoff (or of one whose label
        # window overlaps it): both models are measured on the customers neither trained on
        rows = rows[np.logical_and.reduce(masks)].reset_index(drop=True)
        log.info("gate measured on the %d eval customers neither model trained on", len(rows))
    challenger_result = measure_candidate(challenger, rows, challenger_version, params.ece_bins)
    champion_result: Candidate | None = None
    if champion is not None:
        champion_result = measure_candidate(champion, rows, champion_version, params.ece_bins)
    elif champion_version is not None:
        champion_result = Candidate(champion_version, error=champion_error)
    rejected = registry.rejected_reason(challenger_version) if challenger_version else None
    decision = decide_promotion(challenger_result, champion_result, params, rejected)

    if decision.promote:
        chosen, chosen_version = challenger, challenger_version
    elif champion is not None and champion_version is not None:
        chosen, chosen_version = champion, champion_version
    else:
        raise ChurnError(
            "promote: no model to put in models/champion/: "
            + ("; ".join(decision.reasons) or "the challenger failed the gate")
            + (
                f" (and champion version {champion_version} cannot be used)"
                if champion_version
                else ""
            )
            + "; fix the training data or params (promote.min_auc), or `churn rollback --to VERSION`"
        )
    reference = drift_reference_for(chosen, snapshots, drift)
    if chosen.drift_reference is None and chosen is not challenger:
        log.warning(
            "champion version %s has no frozen drift reference; built one from the current "
            "training rows and stored it with the version",
            chosen_version,
        )
    if chosen_version is None:
        # a challenger `churn train --no-tracking` did not register: register it (not an alias move)
        with tempfile.TemporaryDirectory(prefix="churn-register-") as tmp:
            replace(chosen, drift_reference=reference).save(tmp)
            chosen_version = registry.register_folder(tmp, params.experiment)
        challenger_result = replace(challenger_result, version=chosen_version)
    final = champion_model(chosen, chosen_version, registry.model_name, reference)
    final.save(champion_dir)
    if not registry.has_reference(chosen_version):
        registry.attach_reference(chosen_version, champion_dir)

    move = (
        decision.promote
        and chosen_version != champion_version
        and (apply or champion_version is None)
    )
    report = build_report(
        decision,
        challenger_result,
        champion_result,
        rows,
        params,
        registry.model_name,
        chosen_version,
        model_sha(chosen),
        champion_version,
        move,
    )
    write_json(report, report_path)
    registry.log_decision(params.experiment, report, report_path)
    if move:
        # the very last step: production changes here, after the folder, report and run exist
        registry.set_alias(params.alias, chosen_version)
        log.info("alias %r moved: version %s -> %s", params.alias, champion_version, chosen_version)
    elif decision.promote and chosen_version != champion_version:
        log.info(
            "challenger %s passes the gate; alias %r stays on %s (experiment: apply with "
            "`churn promote --apply` or `churn retrain`)",
            chosen_version,
            params.alias,
            champion_version,
        )
    return report


def _load_champion(
    registry: Registry,
    version: str | None,
    challenger: ChurnModel,
    challenger_version: str | None,
) -> tuple[ChurnModel | None, str | None]:
    """Return the champion model (or None) and why it could not be loaded, if it could not."""
    if version is None:
        return None, None
    if version == challenger_version:
        return challenger, None
    with tempfile.TemporaryDirectory(prefix="churn-champion-") as tmp:
        try:
            return ChurnModel.load(registry.fetch_folder(version, tmp)), None
        except ChurnError as error:
            log.warning("champion version %s cannot be loaded: %s", version, error)
            return None, str(error)


def build_report(
    decision: Decision,
    challenger: Candidate,
    champion: Candidate | None,
    rows: pd.DataFrame,
    params: PromoteParams,
    registered_model: str,
    chosen_version: str,
    chosen_sha: str | None,
    alias_before: str | None,
    alias_moves: bool,
) -> dict[str, Any]:
    """Return reports/promotion.json: decision, both models' metrics and the eval data fingerprint."""
    return {
        "decision": "promote" if decision.promote else "keep",
        "reasons": decision.reasons,
        "checks": [c.to_dict() for c in decision.checks],
        "rules": {
            "min_auc": params.min_auc,
            "max_auc_drop": params.max_auc_drop,
            "max_ece_increase": params.max_ece_increase,
            "ece_bins": params.ece_bins,
            "eval_role": params.eval_role,
        },
        "registered_model": registered_model,
        "challenger": challenger.to_dict(),
        "champion": None if champion is None else champion.to_dict(),
        "chosen_version": chosen_version,
        "chosen_sha256": chosen_sha,
        "alias": {
            "name": params.alias,
            "before": alias_before,
            "after": chosen_version if alias_moves else alias_before,
            "moved_by_this_run": alias_moves,
        },
        "eval_data": fingerprint_rows(rows),
    }


def apply_decision(
    report: Mapping[str, Any], champion: ChurnModel, registry: Registry, params: PromoteParams
) -> bool:
    """Move the alias to the version `dvc repro` chose (retrain); return True if it moved."""
    chosen = str(report["chosen_version"])
    if champion.version != chosen or model_sha(champion) != report.get("chosen_sha256"):
        raise ChurnError(
            f"models/champion/ holds version {champion.version}, but reports/promotion.json chose "
            f"{chosen}; rerun `dvc repro promote` before applying"
        )
    current = registry.alias_version(params.alias)
    if report["decision"] != "promote" or current == chosen:
        return False
    if report["alias"]["before"] != current:
        raise ChurnError(
            f"alias {params.alias!r} moved to {current} after the gate ran against "
            f"{report['alias']['before']}; rerun `dvc repro promote` to compare with it"
        )
    registry.set_alias(params.alias, chosen)
    log.info("alias %r moved: version %s -> %s", params.alias, current, chosen)
    return True


def rollback_champion(
    version: str,
    registry: Registry,
    params: PromoteParams,
    drift: DriftParams,
    champion_dir: Path,
    snapshots: pd.DataFrame | None,
    reason: str,
) -> dict[str, Any]:
    """Put an earlier registered version back: models/champion/ first, the alias last."""
    version = str(version)
    if registry.version_info(version) is None:
        raise ChurnError(
            f"rollback: model {registry.model_name!r} has no version {version}; "
            "see `churn rollback --list`"
        )
    current = registry.alias_version(params.alias)
    with tempfile.TemporaryDirectory(prefix="churn-rollback-") as tmp:
        model = ChurnModel.load(registry.fetch_folder(version, tmp))
    reference = model.drift_reference
    if reference is None:
        if snapshots is None:
            raise ChurnError(
                f"rollback: version {version} has no frozen drift reference; pass --snapshots "
                "data/features/train.parquet to build one from the current training rows"
            )
        reference = drift_reference_for(model, snapshots, drift)
        log.warning("version %s had no drift reference; built one from the current rows", version)
    champion_model(model, version, registry.model_name, reference).save(champion_dir)
    if not registry.has_reference(version):
        registry.attach_reference(version, champion_dir)
    registry.clear_rejected(version)
    if current is not None and current != version:
        # the gate must not promote the rolled-back version again on the next `dvc repro`
        registry.mark_rejected(current, reason)
    if current != version:
        registry.set_alias(params.alias, version)  # the very last step
    log.info("champion: version %s -> %s (models/champion/ rewritten)", current, version)
    return {
        "before": current,
        "after": version,
        "rejected": current if current != version else None,
    }


def _round(value: Any) -> Any:
    return round(value, 6) if isinstance(value, float) else value
