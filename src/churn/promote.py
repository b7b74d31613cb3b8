"""The champion/challenger gate: both models on the same newest out-of-time rows, under the same
churn definition; the gate decides and returns what production should be, and `run` (the
`promote` stage) saves it, writes the report and moves the alias last. `rollback` moves it back."""

from __future__ import annotations

import hashlib
import math
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from churn.columns import CHURNED, CUSTOMER_ID, CUTOFF, ROLE
from churn.config import DriftParams, PromoteParams, RegistryParams
from churn.cutoffs import IN_TIME, OUT_OF_TIME
from churn.definition import definition_changes, recorded_definition
from churn.drift import build_reference
from churn.errors import ChurnError
from churn.logs import get_logger
from churn.metrics import ECE_BINS, GATE_METRICS, bootstrap_auc_interval, probability_metrics
from churn.model import MODEL_FILE, ChurnModel

log = get_logger("promote")

METRIC_NAMES = GATE_METRICS
_TOLERANCE = 1e-12  # an AUC drop of exactly max_auc_drop passes despite float rounding


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
    evaluation: str = OUT_OF_TIME  # or IN_TIME: measured on customers held out by id, not dates

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "evaluation": self.evaluation,
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


def measure_candidate(model: ChurnModel, rows: pd.DataFrame, version: str | None) -> Candidate:
    """Return a candidate with its metrics on `rows`; a model that cannot score them gets an error."""
    sha = model.metadata.get("files_sha256", {}).get(MODEL_FILE)
    if rows.empty:
        return Candidate(version, error="no evaluation rows", sha256=sha)
    try:
        probabilities = model.predict_proba(rows)
    except (ChurnError, ValueError, KeyError) as error:
        return Candidate(version, error=f"cannot score the evaluation rows: {error}", sha256=sha)
    # in-time holdout: the customers, not the dates, are what the model never saw
    holdout = model.holdout_mask(rows)
    if holdout is not None and not holdout.all():
        return Candidate(
            version,
            error=(
                f"measured on an in-time holdout, but {int((~holdout).sum())} evaluation "
                "row(s) are customers it may have trained on; rebuild features and retrain"
            ),
            sha256=sha,
        )
    if holdout is None and model.read_labels_overlapping(rows[CUTOFF], "training"):
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
    metrics = probability_metrics(labels, probabilities)
    if holdout is not None:
        return Candidate(version, metrics, sha256=sha, evaluation=IN_TIME)
    if calibrated_on_eval_window(model, rows):
        # the ranking is still out-of-time (the booster never saw these labels); for calibration
        # use the out-of-time ECE of the same recipe recorded at training, else none (rejects)
        recorded = model.metadata.get("out_of_time") or {}
        usable = recorded.get("ece_bins") == ECE_BINS and isinstance(recorded.get("ece"), float)
        metrics = {**metrics, "ece": recorded["ece"] if usable else None}
        if not usable:
            return Candidate(
                version,
                metrics,
                error=(
                    "calibrated on the evaluation rows and no out-of-time ECE with "
                    f"{ECE_BINS} bins was recorded at training; retrain (`dvc repro train`)"
                ),
                sha256=sha,
                ece_source="missing",
            )
        return Candidate(version, metrics, sha256=sha, ece_source="out_of_time")
    return Candidate(version, metrics, sha256=sha)


@dataclass(frozen=True)
class BaselineFloor:
    """The floor that moves with the data: the best simple baseline's ROC AUC on the gate's rows
    less its bootstrap half-width (a model that cannot beat sorting by recency is no model)."""

    floor: float | None  # None: no baseline could be measured (see note)
    baseline: str | None = None
    roc_auc: float | None = None
    half_width: float | None = None
    baselines: Mapping[str, float] = field(default_factory=dict)  # every baseline's ROC AUC
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "floor": _round(self.floor),
            "baseline": self.baseline,
            "roc_auc": _round(self.roc_auc),
            "half_width": _round(self.half_width),
            "baselines": {k: _round(v) for k, v in sorted(self.baselines.items())},
            "note": self.note,
        }


def measure_baseline_floor(
    rows: pd.DataFrame,
    fit_rows: pd.DataFrame,
    horizon_days: int | None,
    resamples: int,
    seed: int,
) -> BaselineFloor:
    """Return the floor from the simple baselines of churn.evaluate on `rows` (the gate's rows):
    the largest baseline ROC AUC minus its 95% bootstrap half-width, customers resampled."""
    from churn.evaluate.baselines import RECENCY, BaselineScores, score_baselines

    if rows.empty or rows[CHURNED].nunique() < 2:
        return BaselineFloor(None, note="the gate's rows hold one class: no baseline AUC")
    note = ""
    try:
        if horizon_days is None:
            raise ChurnError("the challenger records no horizon_days")
        scored, _ = score_baselines(rows, fit_rows, int(horizon_days), seed, "gate rows")
    except (ChurnError, ValueError) as error:
        # the snapshot contract holds every baseline column; a partial one keeps recency if it can
        if RECENCY not in rows.columns:
            return BaselineFloor(None, note=f"no baseline could be scored ({error})")
        scored = [BaselineScores("recency", rows[RECENCY].astype("float64").to_numpy(), False)]
        note = f"recency only ({error})"
    labels = rows[CHURNED].to_numpy(dtype="int64")
    customers = rows[CUSTOMER_ID].astype("string").to_numpy()
    best: BaselineFloor | None = None
    aucs: dict[str, float] = {}
    for baseline in scored:
        if not np.isfinite(baseline.score).all():
            continue
        auc, lo, hi = bootstrap_auc_interval(labels, baseline.score, customers, resamples, seed)
        if not math.isfinite(auc):
            continue
        aucs[baseline.name] = auc
        half = (hi - lo) / 2 if math.isfinite(hi - lo) else 0.0
        if best is None or auc - half > best.floor:
            best = BaselineFloor(auc - half, baseline.name, auc, half)
    if best is None:
        return BaselineFloor(None, note="no baseline gave a finite ROC AUC")
    return replace(best, baselines=aucs, note=note)


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
    definition_change: list[str] | None = None,
    new_definition: bool = False,
    history: Sequence[Candidate] = (),
    baseline: BaselineFloor | None = None,
) -> Decision:
    """Return the gate verdict; with no champion only the floor applies; missing metrics reject.

    The floor is `params.min_auc` raised to the best simple baseline on the same rows less its
    bootstrap half-width (`baseline`). The drop is measured against the best of the champion and
    the earlier champions in `history` (same definition, measured on the same rows), so drops each
    within `max_auc_drop` cannot add up over successive promotions; a history model that could not
    be measured is left out of that bar, never a reason to reject.

    `definition_change` lists how the challenger's churn definition differs from the champion's:
    numbers under different labels are never compared, so the challenger is refused unless
    `new_definition` starts a new line of models, where only the floor applies.
    """
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
    floor, floor_why = float(params.min_auc), f"params min_auc {params.min_auc}"
    if baseline is not None and baseline.floor is not None and baseline.floor > floor:
        floor = baseline.floor
        floor_why = (
            f"best baseline {baseline.baseline} {baseline.roc_auc:.4f} on the same rows less its "
            f"bootstrap half-width {baseline.half_width:.4f}; min_auc {params.min_auc}"
        )
    if auc is None:
        checks.append(Check("floor", False, _missing("challenger", challenger, "roc_auc")))
    else:
        checks.append(
            Check(
                "floor",
                auc >= floor - _TOLERANCE,
                f"ROC AUC {auc:.4f} vs floor {floor:.4f} ({floor_why})",
            )
        )
    if champion is None:
        return Decision(
            all(c.passed for c in checks), tuple(checks), "no champion yet: only the floor applies"
        )
    if challenger.evaluation == IN_TIME:
        note = (
            "in-time holdout (history too short for an out-of-time test): only the floor "
            "applies; the challenger is not compared with the champion"
        )
        return Decision(all(c.passed for c in checks), tuple(checks), note)
    if definition_change:
        if new_definition:
            note = (
                "new definition line (--new-definition): the champion was trained under another "
                f"churn definition ({'; '.join(definition_change)}); only the floor applies"
            )
            return Decision(all(c.passed for c in checks), tuple(checks), note)
        checks.append(
            Check(
                "same_definition",
                False,
                "the challenger's churn definition differs from the champion's ("
                + "; ".join(definition_change)
                + "), so their numbers are not comparable; to start a new line of models under "
                "the new definition run `churn retrain --new-definition` (or "
                "`CHURN_PROMOTE_NEW_DEFINITION=1 CHURN_PROMOTE_APPLY=1 dvc repro`), or restore "
                "the champion's params",
            )
        )
        return Decision(False, tuple(checks))
    champion_auc = _metric(champion, "roc_auc")
    if auc is None or champion_auc is None:
        who, whom = ("challenger", challenger) if auc is None else ("champion", champion)
        checks.append(Check("max_drop", False, _missing(who, whom, "roc_auc")))
    else:
        # the bar: the best of the champion and the earlier champions, all on today's rows
        bar, bar_version = champion_auc, champion.version
        for earlier in history:
            earlier_auc = _metric(earlier, "roc_auc")
            if earlier.error is None and earlier_auc is not None and earlier_auc > bar:
                bar, bar_version = earlier_auc, earlier.version
        drop = bar - auc
        against = (
            f"champion {champion_auc:.4f}"
            if bar_version == champion.version
            else f"earlier champion version {bar_version} {bar:.4f} rescored on the same rows "
            f"(champion {champion_auc:.4f})"
        )
        checks.append(
            Check(
                "max_drop",
                drop <= params.max_auc_drop + _TOLERANCE,
                f"ROC AUC {auc:.4f} vs {against} (drop {drop:+.4f}, allowed {params.max_auc_drop})",
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
    def tag_sha(self, version: str, sha: str) -> None: ...
    def alias_history(self, alias: str, limit: int) -> list[str]: ...


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
    metadata = {k: v for k, v in model.metadata.items() if k != "files_sha256"}
    metadata.update({"model_version": str(version), "registered_model": registered_model})
    return replace(model, metadata=metadata, drift_reference=reference)


def drift_reference_for(
    model: ChurnModel, snapshots: pd.DataFrame, drift: DriftParams
) -> dict[str, Any]:
    """Return the model's drift reference: the frozen one it carries, else built from its training rows."""
    if model.drift_reference is not None:
        return model.drift_reference
    rows = select_reference_rows(snapshots, (drift.reference_role,))
    scores = model.predict_proba(rows) if len(rows) else np.zeros(0)
    return build_reference(rows, model.spec.numeric, model.spec.categorical, scores, drift)


@dataclass(frozen=True)
class GateOutcome:
    """What the gate decided, for `run` to save: the report, the model that production
    (the champion alias) holds after this run, and whether the alias must move to it."""

    report: dict[str, Any]
    champion: ChurnModel  # what models/champion/ must hold: the alias target after this run
    champion_version: str
    move_alias: bool  # move the champion alias to champion_version (the command's last step)


def run_gate(
    challenger: ChurnModel,
    challenger_version: str,
    snapshots: pd.DataFrame,
    registry: Registry,
    params: PromoteParams,
    drift: DriftParams,
    names: RegistryParams,
    apply: bool = False,
    new_definition: bool = False,
) -> GateOutcome:
    """Measure challenger and champion on the same rows and decide; change nothing.

    The alias moves only when the challenger passes and either `apply` is set (`churn retrain`,
    `churn promote --apply`) or there is no champion yet. `models/champion/` always holds what
    the alias points to after the run, so `score` never scores a model that is not production.
    """
    champion_version = registry.alias_version(names.champion_alias)
    champion, champion_error = _load_champion(
        registry, champion_version, challenger, challenger_version
    )
    earlier = _load_history(
        registry, names, params, challenger, challenger_version, champion_version
    )
    rows = select_eval_rows(snapshots, params.eval_role)
    measured = [challenger, champion, *(model for _, model, _ in earlier if model is not None)]
    masks = [m.held_out_mask(rows) for m in measured if m is not None]
    masks = [mask for mask in masks if mask is not None]
    if masks:
        # a production refit trained on the other customers of this cutoff (or of one whose label
        # window overlaps it): both models are measured on the customers neither trained on
        rows = rows[np.logical_and.reduce(masks)].reset_index(drop=True)
        log.info("gate measured on the %d eval customers neither model trained on", len(rows))
    challenger_result = measure_candidate(challenger, rows, challenger_version)
    champion_result: Candidate | None = None
    change: list[str] = []
    if champion is not None:
        change = definition_changes(
            recorded_definition(champion.metadata), recorded_definition(challenger.metadata)
        )
        if champion is not challenger and not change and challenger.evaluation != IN_TIME:
            champion_result = measure_candidate(champion, rows, champion_version)
        else:
            # never measured under labels it was not trained for: its numbers are not comparable
            champion_result = Candidate(champion_version)
    elif champion_version is not None:
        champion_result = Candidate(champion_version, error=champion_error)
    history = [
        Candidate(version, error=why) if model is None else measure_candidate(model, rows, version)
        for version, model, why in earlier
    ]
    horizon = (recorded_definition(challenger.metadata) or {}).get("horizon_days")
    baseline = (
        measure_baseline_floor(
            rows,
            snapshots[snapshots[ROLE] == "fit"],
            horizon,
            params.baseline_bootstrap,
            params.seed,
        )
        if params.baseline_floor
        else BaselineFloor(None, note="promote.baseline_floor is off: min_auc alone")
    )
    if baseline.note:
        log.warning("gate floor: %s", baseline.note)
    rejected = registry.rejected_reason(challenger_version)
    decision = decide_promotion(
        challenger_result,
        champion_result,
        params,
        rejected,
        change,
        new_definition,
        history=history if champion_result is not None and not change else (),
        baseline=baseline,
    )
    move = (
        decision.promote
        and challenger_version != champion_version
        and (apply or champion_version is None)
    )
    fallback: dict[str, Any] | None = None
    if move or (champion_version is None and decision.promote):
        chosen, chosen_version = challenger, challenger_version
    elif champion is not None and champion_version is not None:
        chosen, chosen_version = champion, champion_version
    elif (
        picked := choose_fallback(
            challenger_result,
            champion_version,
            decision,
            baseline,
            snapshots,
            rows,
            params,
            horizon,
        )
    ) is not None:
        # no production yet and the first model ranks worse than a simple baseline: marketing
        # still gets a list, scored by that baseline and labelled as such; the alias stays unset
        chosen, chosen_version, fallback = picked
        log.warning(
            "gate: no model passed; the list is scored by the fallback %s (%s); the champion "
            "alias stays unset until a model passes",
            chosen_version,
            fallback["why"],
        )
    else:
        raise ChurnError(
            "promote: no model to put in models/champion/: "
            + ("; ".join(decision.reasons) or "the challenger failed the gate")
            + (
                f" (and champion version {champion_version} cannot be used)"
                if champion_version
                else ""
            )
            + "; fix the training data or params (promote.min_auc; a model that cannot beat the "
            "simple baselines should not score customers, but promote.baseline_floor: false "
            "waives that rule, and promote.fallback: baseline scores the list with the best "
            "baseline instead), or `churn rollback --to VERSION`"
        )
    reference = drift_reference_for(chosen, snapshots, drift)
    if chosen.drift_reference is None and chosen is not challenger:
        log.warning(
            "champion version %s has no frozen drift reference; built one from the current "
            "training rows",
            chosen_version,
        )
    final = champion_model(chosen, chosen_version, registry.model_name, reference)
    report = build_gate_report(
        decision,
        challenger_result,
        champion_result,
        rows,
        params,
        names,
        registry.model_name,
        chosen_version,
        model_sha(chosen),
        champion_version,
        move,
        pending=decision.promote and not move and challenger_version != champion_version,
        history=history,
        baseline=baseline,
        fallback=fallback,
        definition={
            "challenger": (challenger.metadata.get("definition") or {}).get("fingerprint"),
            "champion": None
            if champion is None
            else (champion.metadata.get("definition") or {}).get("fingerprint"),
            "changes": change,
            "new_line": bool(change) and new_definition and decision.promote,
        },
    )
    return GateOutcome(report, final, chosen_version, move)


def _load_history(
    registry: Registry,
    names: RegistryParams,
    params: PromoteParams,
    challenger: ChurnModel,
    challenger_version: str | None,
    champion_version: str | None,
) -> list[tuple[str, ChurnModel | None, str | None]]:
    """Return the earlier champions to rescore (the last `params.history` holders of the alias,
    the current one aside) as (version, model, None), or (version, None, why it is left out):
    rolled back, unreadable, or trained under another churn definition than the challenger."""
    out: list[tuple[str, ChurnModel | None, str | None]] = []
    for version in registry.alias_history(names.champion_alias, params.history):
        if version in (champion_version, challenger_version):
            continue
        rejected = registry.rejected_reason(version)
        if rejected:
            out.append((version, None, f"left out: rolled back ({rejected})"))
            continue
        with tempfile.TemporaryDirectory(prefix="churn-earlier-") as tmp:
            try:
                model = ChurnModel.load(registry.fetch_folder(version, tmp))
            except ChurnError as error:
                out.append((version, None, f"left out: cannot be loaded ({error})"))
                continue
        change = definition_changes(
            recorded_definition(model.metadata), recorded_definition(challenger.metadata)
        )
        if change:
            out.append((version, None, f"left out: another churn definition ({'; '.join(change)})"))
            continue
        out.append((version, model, None))
    return out


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


def build_gate_report(
    decision: Decision,
    challenger: Candidate,
    champion: Candidate | None,
    rows: pd.DataFrame,
    params: PromoteParams,
    names: RegistryParams,
    registered_model: str,
    chosen_version: str,
    chosen_sha: str | None,
    alias_before: str | None,
    alias_moves: bool,
    pending: bool = False,
    definition: dict[str, Any] | None = None,
    history: Sequence[Candidate] = (),
    baseline: BaselineFloor | None = None,
    fallback: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Return reports/promotion.json: decision, both models' metrics and the eval data fingerprint."""
    return {
        "decision": "promote" if decision.promote else "keep",
        # not None: no model passed and models/champion/ holds the best baseline (the list's
        # model_version is FALLBACK_PREFIX + its name); the champion alias is not set
        "fallback": fallback,
        "reasons": decision.reasons,
        # out_of_time, or in_time_holdout (short history: floor only, no champion comparison)
        "evaluation": challenger.evaluation,
        "checks": [c.to_dict() for c in decision.checks],
        "rules": {
            "min_auc": params.min_auc,
            "max_auc_drop": params.max_auc_drop,
            "max_ece_increase": params.max_ece_increase,
            "ece_bins": ECE_BINS,
            "eval_role": params.eval_role,
            "baseline_floor": params.baseline_floor,
            "baseline_bootstrap": params.baseline_bootstrap,
            "history": params.history,
        },
        "registered_model": registered_model,
        "challenger": challenger.to_dict(),
        "champion": None if champion is None else champion.to_dict(),
        # earlier champions rescored on the same rows: the drop is measured against the best
        "history": [candidate.to_dict() for candidate in history],
        "baseline_floor": None if baseline is None else baseline.to_dict(),
        "definition": definition or {},
        "chosen_version": chosen_version,
        "chosen_sha256": chosen_sha,
        "alias": {
            "name": names.champion_alias,
            "before": alias_before,
            "after": chosen_version if alias_moves else alias_before,
            "moved_by_this_run": alias_moves,
            # passed the gate but production stays: apply with `churn retrain` or --apply
            "pending_apply": pending,
        },
        "eval_data": fingerprint_rows(rows),
    }


# --------------------------------------------------------------------------- fallback
FALLBACK_PREFIX = "baseline-"  # model_version of a fallback: baseline-recency, baseline-bgnbd, ...


def is_fallback(model: ChurnModel | None) -> bool:
    """Return True when the model is the gate's fallback (a simple baseline, not a trained model)."""
    return model is not None and bool(model.metadata.get("fallback"))


def choose_fallback(
    challenger: Candidate,
    champion_version: str | None,
    decision: Decision,
    baseline: BaselineFloor | None,
    snapshots: pd.DataFrame,
    rows: pd.DataFrame,
    params: PromoteParams,
    horizon_days: int | None,
) -> tuple[ChurnModel, str, dict[str, Any]] | None:
    """Return (model, version, record) of the list's fallback scorer, or None for no fallback.

    Only with `promote.fallback: baseline`, no champion at all (a first run), and a challenger
    refused by nothing but the baseline floor (it reaches min_auc): then the best simple
    baseline by ROC AUC on the gate's rows whose column the snapshots hold is fitted as a
    one-feature model (churn.train.fit_baseline_model), measured on the same rows, and used
    when it reaches min_auc and ranks better than the challenger there.
    """
    from churn.train import BASELINE_COLUMNS, fit_baseline_model

    if params.fallback != "baseline" or champion_version is not None or baseline is None:
        return None
    failed = [check.rule for check in decision.checks if not check.passed]
    auc = _metric(challenger, "roc_auc")
    if failed != ["floor"] or auc is None or auc < params.min_auc or baseline.floor is None:
        return None
    usable = [
        name
        for name, _ in sorted(baseline.baselines.items(), key=lambda item: -item[1])
        if name in BASELINE_COLUMNS and BASELINE_COLUMNS[name][0] in snapshots.columns
    ]
    if not usable:
        log.warning(
            "gate: no fallback: no baseline column of %s in the snapshots", baseline.baselines
        )
        return None
    name = usable[0]
    version = FALLBACK_PREFIX + name
    model = fit_baseline_model(snapshots, name, horizon_days, params.seed, "gate fallback")
    measured = measure_candidate(model, rows, version)
    fallback_auc = _metric(measured, "roc_auc")
    if fallback_auc is None or fallback_auc < params.min_auc or fallback_auc <= auc:
        log.warning(
            "gate: no fallback: baseline %s fitted as a model has ROC AUC %s on the gate's rows "
            "(challenger %.4f, min_auc %s)",
            name,
            "unknown" if fallback_auc is None else f"{fallback_auc:.4f}",
            auc,
            params.min_auc,
        )
        return None
    metadata = {**model.metadata, "model_version": version}
    record = {
        "baseline": name,
        "model_version": version,
        "roc_auc": _round(fallback_auc),
        "metrics": measured.to_dict().get("metrics"),
        "challenger_roc_auc": _round(auc),
        "why": (
            f"challenger ROC AUC {auc:.4f} is below the baseline floor; baseline {name} as a "
            f"model ranks at {fallback_auc:.4f} on the same rows"
        ),
    }
    return replace(model, metadata=metadata), version, record


# --------------------------------------------------------------------------- a lost registry
@dataclass(frozen=True)
class Production:
    """What production is outside the registry: the champion folder and the published lists."""

    folder: Path
    model: ChurnModel | None  # models/champion/ as loaded, None when absent or unreadable
    folder_error: str | None = None  # why the folder exists but could not be loaded
    published: tuple[str, ...] = ()  # as-of dates of the published lists

    @property
    def exists(self) -> bool:
        return self.model is not None or self.folder_error is not None or bool(self.published)

    def describe(self) -> str:
        parts = []
        if self.model is not None:
            sha = (model_sha(self.model) or "?")[:12]
            parts.append(
                f"{self.folder} holds version {self.model.metadata.get('model_version')} of "
                f"{self.model.metadata.get('registered_model')!r} (model.txt sha256 {sha})"
            )
        elif self.folder_error is not None:
            parts.append(f"{self.folder} exists but cannot be read ({self.folder_error})")
        if self.published:
            parts.append(
                f"{len(self.published)} at-risk list(s) are published (latest {self.published[-1]})"
            )
        return " and ".join(parts)


def registry_gap(
    production: Production, registry: Registry, champion_alias: str, location: str
) -> str | None:
    """Return why the registry does not hold the production that exists (it was lost, emptied or
    replaced, so its version numbers restarted), or None when it does.

    A fresh start is only right for a project that has never had a champion: otherwise the next
    challenger would meet no champion (only the floor), and "model 1" in published manifests
    would name another model.
    """
    if not production.exists:
        return None
    champion = registry.alias_version(champion_alias)
    if champion is None and is_fallback(production.model):
        return None  # a fallback scored the lists: no champion was ever set, nothing was lost
    if champion is None:
        return (
            f"the MLflow registry {location} has no {champion_alias!r} for "
            f"{registry.model_name!r}, but {production.describe()}: the registry was lost, "
            "emptied or replaced"
        )
    model = production.model
    if model is None or model.metadata.get("registered_model") != registry.model_name:
        return None
    if is_fallback(model):
        return None  # not a registered version: the gate replaces it
    claimed = str(model.metadata.get("model_version"))
    info = registry.version_info(claimed)
    tagged = None if info is None else info.get("sha256")
    if info is None or (tagged and model_sha(model) and tagged != model_sha(model)):
        return (
            f"{production.describe()}, but version {claimed} of {registry.model_name!r} in the "
            f"MLflow registry {location} is "
            + ("missing" if info is None else f"another model (sha256 {str(tagged)[:12]})")
            + ": the registry was replaced and its version numbers restarted"
        )
    return None


def registry_gap_error(gap: str, production: Production) -> ChurnError:
    """Return the error for a registry gap, naming the ways to recover (never a fresh start)."""
    restore = (
        "Restore the registry (copy mlflow.db back from a backup, or set MLFLOW_TRACKING_URI "
        "to the registry that made them)"
    )
    if production.model is not None:
        carry_on = (
            "; or, to go on with this registry, rerun with `churn promote --new-registry` "
            "(`churn retrain --new-registry`): it registers the champion in "
            f"{production.folder} again first, so every challenger still has to beat it"
        )
    else:
        carry_on = (
            f"; or restore {production.folder} (`dvc checkout {production.folder}`) and rerun "
            "with --new-registry to register it again"
        )
    return ChurnError(f"promote: {gap}. Nothing was changed. {restore}{carry_on}")


def rollback_to(version: str, registry: Any, names: RegistryParams, reason: str) -> dict[str, Any]:
    """Point the champion alias at an earlier registered version (the registry only): the next
    `dvc repro` writes it to models/champion/ and rescores. The version rolled back from is
    tagged so the gate never promotes it again."""
    version = str(version)
    if registry.version_info(version) is None:
        raise ChurnError(
            f"rollback: model {registry.model_name!r} has no version {version}; "
            "see `churn rollback --list`"
        )
    current = registry.alias_version(names.champion_alias)
    registry.clear_rejected(version)
    if current is not None and current != version:
        registry.mark_rejected(current, reason)
    if current != version:
        registry.set_alias(names.champion_alias, version)  # the very last step
    log.info("champion: version %s -> %s", current, version)
    return {
        "before": current,
        "after": version,
        "rejected": current if current != version else None,
    }


def _round(value: Any) -> Any:
    return round(value, 6) if isinstance(value, float) else value


# --------------------------------------------------------------------------- the stage
def read_production(folder: Path, exports: Path) -> Production:
    """Read what production is outside the registry: the champion folder and published lists."""
    from churn.publish.record import published_dates

    published = tuple(published_dates(exports))
    if not folder.is_dir() or not any(folder.iterdir()):
        return Production(folder, None, published=published)
    try:
        return Production(folder, ChurnModel.load(folder), published=published)
    except ChurnError as error:
        return Production(folder, None, folder_error=str(error), published=published)


def restore_champion(registry: Any, production: Production, names: RegistryParams) -> str:
    """Register the champion folder in a new registry (once) and point the alias at it."""
    import datetime as dt

    from churn.tracking import RESTORED_TAG

    model = production.model
    sha = model_sha(model)
    version = registry.find_version(sha) if sha else None
    if version is None:
        stamp = dt.datetime.now().astimezone().isoformat(timespec="seconds")
        note = (
            f"version {model.metadata.get('model_version')} of "
            f"{model.metadata.get('registered_model')!r} in a lost registry, re-registered from "
            f"{production.folder} at {stamp}"
        )
        with tempfile.TemporaryDirectory(prefix="churn-restore-") as tmp:
            model.save(tmp)
            version = registry.register_folder(tmp, names.gate_experiment, {RESTORED_TAG: note})
    registry.set_alias(names.champion_alias, version)
    log.warning(
        "--new-registry: the champion in %s (was version %s) is version %s of %r in this "
        "registry; published manifests name its old number",
        production.folder,
        model.metadata.get("model_version"),
        version,
        names.model,
    )
    return version


def run(
    settings: Any,  # churn.config.StageParams: promote, drift, registry, train
    challenger: Path,
    snapshots: Path,
    out: Path,
    report: Path,
    exports: Path,
    *,
    apply: bool,
    new_definition: bool,
    new_registry: bool,
    apply_env: str,
) -> None:
    """The `promote` stage: check the registry still holds production (with `new_registry`,
    register the champion folder again), gate the challenger on the snapshots' rows, write the
    champion folder and the report, log the decision, and move the alias last (`apply_env`: the
    variable that applies the gate under `dvc repro`, named in the log)."""
    from churn.files import write_json
    from churn.tracking import project_registry
    from churn.training_rows import read_training_snapshots

    names = settings.registry
    registry = project_registry(names)
    production = read_production(out, exports)
    location = registry.tracking_uri.removeprefix("sqlite:///")
    gap = registry_gap(production, registry, names.champion_alias, location)
    if gap is not None:
        if not new_registry or production.model is None:
            raise registry_gap_error(gap, production)
        restore_champion(registry, production, names)
    elif new_registry:
        log.info("--new-registry: the registry already holds the champion; nothing to restore")
    model = ChurnModel.load(challenger)
    version = resolve_version(model, registry)
    if version is None:
        # trained with --no-tracking: register it (a new version, not an alias move)
        with tempfile.TemporaryDirectory(prefix="churn-register-") as tmp:
            model.save(tmp)
            version = registry.register_folder(tmp, names.gate_experiment)
    outcome = run_gate(
        model,
        version,
        read_training_snapshots(snapshots, settings.train)[0],
        registry,
        settings.promote,
        settings.drift,
        names,
        apply=apply,
        new_definition=new_definition,
    )
    outcome.champion.save(out)
    if outcome.report.get("fallback"):
        log.warning(
            "%s holds the fallback %s, not a registered model: %s",
            out,
            outcome.champion_version,
            outcome.report["fallback"]["why"],
        )
    elif not registry.has_reference(outcome.champion_version):
        registry.attach_reference(outcome.champion_version, out)
    write_json(outcome.report, report)
    registry.log_decision(names.gate_experiment, outcome.report, report)
    if outcome.move_alias:
        # the very last step: production changes only after the folder and the report exist
        registry.set_alias(names.champion_alias, outcome.champion_version)
    alias = outcome.report["alias"]
    log.info(
        "gate: %s; %s holds version %s; alias %r %s",
        outcome.report["decision"],
        out,
        outcome.champion_version,
        alias["name"],
        f"moved {alias['before']} -> {alias['after']}" if outcome.move_alias else "unchanged",
    )
    for reason in outcome.report["reasons"]:
        log.info("  %s", reason)
    if alias["pending_apply"]:
        log.info(
            "challenger %s passes the gate; production stays on %s until applied "
            "(`churn retrain`, or %s=1 dvc repro)",
            version,
            alias["before"],
            apply_env,
        )


def rollback(names: RegistryParams, to: str | None, list_versions: bool) -> None:
    """`churn rollback`: list the registered versions (`list_versions`, or without `to`), or
    point the champion alias back at version `to`."""
    import datetime as dt

    from churn.tracking import project_registry

    registry = project_registry(names)
    if list_versions or to is None:
        for row in registry.versions():
            rejected = row["tags"].get("churn.rejected")
            print(
                f"{row['version']:>5}  {', '.join(row['aliases']) or '-':<22} "
                f"{dt.datetime.fromtimestamp(row['created'] / 1000):%Y-%m-%d %H:%M}"
                + (f"  rolled back: {rejected}" if rejected else "")
            )
        if to is None and not list_versions:
            raise ChurnError("rollback: pass --to VERSION (versions listed above)")
        return
    stamp = dt.datetime.now().astimezone().isoformat(timespec="seconds")
    result = rollback_to(to, registry, names, f"rolled back to {to} at {stamp}")
    log.info("champion is version %s again (was %s)", result["after"], result["before"])
    log.info("run `dvc repro` (or `churn retrain`) so models/champion/ and the list follow")
