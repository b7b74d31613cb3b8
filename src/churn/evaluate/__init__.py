"""The `evaluate` stage: metrics, curves and segment tables on the test cutoff, model vs baselines."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from churn.columns import CHANNEL, CHURNED, CUSTOMER_ID, CUTOFF, ROLE
from churn.config import EvaluateParams
from churn.errors import ChurnError
from churn.evaluate.baselines import TENURE, score_baselines
from churn.metrics import (
    MODEL,
    bootstrap_differences,
    calibration_table,
    gains_table,
    pr_table,
    roc_table,
    score_metrics,
)
from churn.model import ChurnModel


@dataclass(frozen=True)
class Evaluation:
    """Everything `evaluate` reports: headline metrics, per-segment metrics and the plot tables."""

    metrics: dict[str, Any]
    segments: dict[str, Any]
    curves: dict[str, pd.DataFrame]


def tenure_band(tenure_days: pd.Series, edges: tuple[int, ...]) -> pd.Series:
    """Return a label per row: 'under_90d', '90-365d', ..., '730d_or_more' for edges (90, 365, 730)."""
    labels = [f"under_{edges[0]}d"]
    labels += [f"{lo}-{hi}d" for lo, hi in zip(edges, edges[1:], strict=False)]
    labels += [f"{edges[-1]}d_or_more"]
    values = tenure_days.to_numpy("float64", na_value=np.nan)
    index = np.searchsorted(np.asarray(edges, dtype="float64"), np.nan_to_num(values), side="right")
    out = pd.Series(
        np.asarray(labels, dtype=object)[index], index=tenure_days.index, dtype="string"
    )
    return out.mask(tenure_days.isna(), "unknown")


def segment_metrics(
    test_rows: pd.DataFrame, proba: np.ndarray, params: EvaluateParams
) -> dict[str, dict[str, dict[str, float]]]:
    """Return model metrics per tenure band and, when the column is filled, per channel."""
    labels = test_rows[CHURNED].to_numpy("int64")
    segmentations: dict[str, pd.Series] = {}
    if TENURE in test_rows.columns:
        segmentations["tenure"] = tenure_band(test_rows[TENURE], params.tenure_bands_days)
    if CHANNEL in test_rows.columns and test_rows[CHANNEL].notna().any():
        segmentations["channel"] = test_rows[CHANNEL].astype("string").fillna("unknown")
    out: dict[str, dict[str, dict[str, float]]] = {}
    for name, segment in segmentations.items():
        table: dict[str, dict[str, float]] = {}
        values = segment.to_numpy()
        for value in sorted(set(values)):
            mask = values == value
            if mask.sum() < params.min_segment_rows:
                table[str(value)] = {
                    "rows": float(mask.sum()),
                    "base_churn_rate": float(labels[mask].mean()),
                }
                continue
            table[str(value)] = score_metrics(labels[mask], proba[mask], True, params.top_fractions)
        out[name] = table
    return out


def importance_table(model: ChurnModel) -> pd.DataFrame:
    """Return each feature's share of total split gain and its split count, largest first."""
    gain = model.booster.feature_importance(importance_type="gain")
    splits = model.booster.feature_importance(importance_type="split")
    total = gain.sum() if gain.sum() > 0 else 1.0
    table = pd.DataFrame(
        {
            "feature": model.booster.feature_name(),
            "gain": np.round(gain / total, 6),
            "splits": splits,
        }
    )
    return table.sort_values(["gain", "feature"], ascending=[False, True], ignore_index=True)


def production_metrics(
    production: ChurnModel,
    test_rows: pd.DataFrame,
    labels: np.ndarray,
    horizon_days: int,
    fractions: tuple[float, ...],
    source: str,
    evaluation_proba: np.ndarray,
) -> dict[str, Any]:
    """Return the production refit's ranking metrics on the test customers it never trained on
    (no calibration metrics), with the evaluation model's on the same rows to compare."""
    if production.read_labels_overlapping(test_rows[CUTOFF], "training"):
        newest = production.metadata["training_cutoffs"][1]
        raise ChurnError(
            f"{source}: the production model was trained on cutoffs up to {newest}, whose labels "
            f"reach past the test cutoff {test_rows[CUTOFF].min()}; retrain on these snapshots"
        )
    held_out = production.held_out_mask(test_rows)
    if held_out is not None:
        # it trained on the other customers of the test cutoff: rank only the ones it never saw
        test_rows, labels = test_rows[held_out], labels[held_out]
        evaluation_proba = evaluation_proba[held_out]
    # a stacked calibrator changes the order (it adds BG/NBD's probability): rank by its output;
    # its three weights were fitted on these customers, far too few to flatter a ranking
    ranked = (
        production.predict_proba(test_rows)
        if production.calibrator.kind == "stack"
        else production.predict_raw(test_rows)
    )
    out = score_metrics(labels, ranked, False, fractions)
    out["rows"] = int(len(test_rows))
    same_rows = score_metrics(labels, evaluation_proba, False, fractions)
    out["evaluation_model_roc_auc"] = same_rows["roc_auc"]
    out["evaluation_model_pr_auc"] = same_rows["pr_auc"]
    out["training_cutoffs"] = production.metadata.get("training_cutoffs")
    out["calibration_cutoff"] = production.metadata.get("calibration_cutoff")
    # training rows left out because a campaign treated the customer during their label window
    out["campaign_rows_excluded"] = production.metadata.get("campaigns")
    return out


def evaluate_model(
    snapshots: pd.DataFrame,
    model: ChurnModel,
    params: EvaluateParams,
    horizon_days: int,
    source: str = "snapshots",
    production: ChurnModel | None = None,
    model_source: str = "the model",
) -> Evaluation:
    """Return metrics and plot tables for the model and every baseline on the test cutoff.

    `model` must be one that never saw the test cutoff (the train stage's evaluation model). A
    production refit, when given, is measured for ranking only: its booster never saw the test
    labels, but its calibrator was fitted on them.
    """
    roles = snapshots[ROLE].astype("string")
    test_cutoffs = snapshots.loc[roles == "test", CUTOFF]
    in_time = model.holdout_mask(snapshots[roles == "test"])
    if in_time is not None and not in_time.all():
        raise ChurnError(
            f"{model_source}: measured on an in-time holdout, but {int((~in_time).sum())} test "
            f"row(s) in {source} are customers it may have trained on; rebuild features and "
            "retrain (`dvc repro train`) so both use the same holdout"
        )
    for part in ("training", "calibration") if in_time is None else ():
        if model.read_labels_overlapping(test_cutoffs, part):
            raise ChurnError(
                f"{model_source}: its {part} read labels from the test cutoff's window in "
                f"{source}, so its metrics there would not be out-of-time; evaluate the model "
                "that never saw the test cutoff (models/evaluation; pass a production refit as "
                "--production)"
            )
    test_rows = snapshots[roles == "test"].sort_values([CUTOFF, CUSTOMER_ID], ignore_index=True)
    fit_rows = snapshots[roles == "fit"]
    if test_rows.empty:
        raise ChurnError(
            f"{source}: no rows with role 'test'; the newest labelled cutoff is needed to measure "
            "the model — check features.cutoffs"
        )
    labels = test_rows[CHURNED].to_numpy("int64")
    proba = model.predict_proba(test_rows)
    baselines, bgnbd = score_baselines(test_rows, fit_rows, horizon_days, params.seed, source)
    fractions = params.top_fractions
    metrics: dict[str, Any] = {
        # out_of_time: a later cutoff than any trained on; in_time_holdout: customers held out
        # by a stable id hash at the newest cutoff (history too short for an out-of-time test)
        "evaluation": model.evaluation,
        "base_churn_rate": float(labels.mean()),
        "rows": int(labels.size),
        "test_cutoff": str(pd.to_datetime(test_rows[CUTOFF]).max().date()),
        MODEL: score_metrics(labels, proba, True, fractions),
        "baselines": {
            b.name: score_metrics(labels, b.score, b.is_probability, fractions) for b in baselines
        },
    }
    if production is not None:
        metrics["production"] = production_metrics(
            production, test_rows, labels, horizon_days, fractions, source, proba
        )
    metrics["comparison"] = bootstrap_differences(
        labels,
        proba,
        {b.name: b.score for b in baselines},
        test_rows[CUSTOMER_ID].astype("string").to_numpy(),
        params.bootstrap,
        params.seed,
    )
    segments = {
        "test_cutoff": metrics["test_cutoff"],
        **segment_metrics(test_rows, proba, params),
        "bgnbd_params": {"r": bgnbd.r, "alpha_weeks": bgnbd.alpha, "a": bgnbd.a, "b": bgnbd.b},
    }
    scores = {MODEL: proba, **{b.name: b.score for b in baselines}}
    curves = {
        "roc": roc_table(labels, scores),
        "pr": pr_table(labels, scores),
        "gains": gains_table(labels, scores),
        "calibration": calibration_table(labels, proba),
        "importance": importance_table(model),
    }
    return Evaluation(_finite(metrics), _finite(segments), curves)


def _finite(tree: Any) -> Any:
    """Return the metrics tree without NaN/inf leaves (JSON and DVC cannot show them)."""
    if isinstance(tree, dict):
        return {k: _finite(v) for k, v in tree.items() if not _is_bad(v)}
    return tree


def _is_bad(value: Any) -> bool:
    return isinstance(value, float) and not math.isfinite(value)
