"""Population stability (PSI) of features and score: reference bins frozen at training, drift report."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from churn.columns import CALENDAR_FEATURES
from churn.config import DriftParams
from churn.errors import ChurnError

REFERENCE_FORMAT = 1
SCORE = "score"  # the report's name for the model's churn probability
MISSING = "(missing)"
OTHER = "(other/unseen)"


# --------------------------------------------------------------------------- reference (training time)
def numeric_edges(values: np.ndarray, bins: int) -> list[float]:
    """Return interior quantile edges of `values` with tied edges merged and no empty bin."""
    finite = values[~np.isnan(values)]
    if finite.size == 0:
        return []
    quantiles = np.quantile(finite, np.arange(1, bins) / bins)
    edges = np.unique(quantiles)
    # merge bins the reference leaves empty (an edge at the maximum, interpolated edges between
    # two heavy values): an empty reference bin would make any current share there look like drift
    counts = np.bincount(np.searchsorted(edges, finite, side="left"), minlength=edges.size + 1)
    kept: list[float] = []
    pending = 0
    for index, edge in enumerate(edges):
        pending += int(counts[index])
        if pending > 0:
            kept.append(float(edge))
            pending = 0
    if kept and pending + int(counts[-1]) == 0:
        kept.pop()
    return kept


def _numeric_values(column: pd.Series, name: str, source: str) -> np.ndarray:
    try:
        return pd.to_numeric(column, errors="raise").astype("float64").to_numpy()
    except (TypeError, ValueError) as error:
        raise ChurnError(
            f"{source}: column {name!r} should be numeric for drift but is not ({error}); "
            "rebuild the features with the code version the model was trained with"
        ) from None


def _text_values(column: pd.Series) -> pd.Series:
    text = column.astype("object").where(column.notna(), None)
    return pd.Series([None if v is None else str(v) for v in text], dtype="object")


def reference_numeric(values: np.ndarray, bins: int) -> dict[str, Any]:
    """Return a numeric reference: frozen edges and the share of rows per bin and missing."""
    edges = numeric_edges(values, bins)
    return {"kind": "numeric", "edges": edges, **_shares_dict(_numeric_counts(values, edges))}


def reference_categorical(column: pd.Series, max_levels: int) -> dict[str, Any]:
    """Return a categorical reference: the most frequent levels, an other/unseen bin, missing."""
    text = _text_values(column)
    counts = text.dropna().value_counts()
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    levels = [level for level, _ in ordered[:max_levels]]
    return {
        "kind": "categorical",
        "levels": levels,
        **_shares_dict(_categorical_counts(text, levels)),
    }


def build_reference(
    frame: pd.DataFrame,
    numeric: Sequence[str],
    categorical: Sequence[str],
    scores: np.ndarray,
    params: DriftParams,
) -> dict[str, Any]:
    """Return the drift reference (JSON-ready) of the rows a model learnt from, and its scores."""
    if len(frame) == 0:
        raise ChurnError(
            "drift reference: no training rows with roles "
            f"{list(params.reference_roles)}; check drift.reference_roles in params.yaml"
        )
    features: dict[str, Any] = {}
    for name in numeric:
        if name in CALENDAR_FEATURES:
            continue  # one value per snapshot: it "drifts" by construction and says nothing
        features[name] = reference_numeric(
            _numeric_values(frame[name], name, "training rows"), params.bins
        )
    for name in categorical:
        features[name] = reference_categorical(frame[name], params.max_levels)
    score = reference_numeric(np.asarray(scores, dtype="float64"), params.bins)
    return {
        "format": REFERENCE_FORMAT,
        "rows": len(frame),
        "roles": list(params.reference_roles),
        "bins": params.bins,
        "max_levels": params.max_levels,
        "features": features,
        SCORE: score,
    }


# --------------------------------------------------------------------------- counting
def _numeric_counts(values: np.ndarray, edges: Sequence[float]) -> np.ndarray:
    """Return counts per bin ((-inf, e1], (e1, e2], ..., (ek, inf)) then the missing count."""
    missing = np.isnan(values)
    index = np.searchsorted(np.asarray(edges, dtype="float64"), values[~missing], side="left")
    counts = np.bincount(index, minlength=len(edges) + 1)
    return np.append(counts, missing.sum()).astype("int64")


def _categorical_counts(text: pd.Series, levels: Sequence[str]) -> np.ndarray:
    """Return counts per level, then other/unseen, then missing."""
    missing = text.isna()
    present = text[~missing]
    known = present.isin(list(levels))
    per_level = present[known].value_counts()
    counts = [int(per_level.get(level, 0)) for level in levels]
    return np.asarray([*counts, int((~known).sum()), int(missing.sum())], dtype="int64")


def _shares_dict(counts: np.ndarray) -> dict[str, Any]:
    total = int(counts.sum())
    shares = counts / total if total else np.zeros(counts.size)
    return {"shares": [float(s) for s in shares[:-1]], "missing_share": float(shares[-1])}


def bin_labels(entry: Mapping[str, Any]) -> list[str]:
    """Return readable labels of a reference entry's bins, missing last."""
    if entry["kind"] == "categorical":
        return [*entry["levels"], OTHER, MISSING]
    bounds = [-math.inf, *entry["edges"], math.inf]
    labels = [f"({_fmt(lo)}, {_fmt(hi)}]" for lo, hi in zip(bounds, bounds[1:], strict=False)]
    return [*labels, MISSING]


def _fmt(value: float) -> str:
    return f"{value:.6g}"


def current_shares(entry: Mapping[str, Any], column: pd.Series, name: str) -> np.ndarray:
    """Return the current column's shares in the reference entry's bins (missing last)."""
    if entry["kind"] == "categorical":
        counts = _categorical_counts(_text_values(column), entry["levels"])
    else:
        counts = _numeric_counts(_numeric_values(column, name, "scoring snapshot"), entry["edges"])
    total = counts.sum()
    return counts / total if total else np.zeros(counts.size)


def reference_shares(entry: Mapping[str, Any]) -> np.ndarray:
    """Return the reference shares of an entry, missing last."""
    return np.asarray([*entry["shares"], entry["missing_share"]], dtype="float64")


# --------------------------------------------------------------------------- PSI
def population_stability(expected: np.ndarray, actual: np.ndarray, epsilon: float = 1e-4) -> float:
    """Return PSI = sum((a - e) * ln(a / e)) over bins, shares floored at `epsilon`."""
    expected = np.maximum(np.asarray(expected, dtype="float64"), epsilon)
    actual = np.maximum(np.asarray(actual, dtype="float64"), epsilon)
    if expected.shape != actual.shape:
        raise ValueError(f"bins differ: {expected.shape} vs {actual.shape}")
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def drift_status(psi: float, params: DriftParams) -> str:
    """Return ok / warn / fail for a PSI value under the params thresholds."""
    if psi >= params.fail:
        return "fail"
    if psi >= params.warn:
        return "warn"
    return "ok"


@dataclass(frozen=True)
class DriftEntry:
    """PSI of one feature (or the score) with its status and where it moved most."""

    name: str
    psi: float
    status: str
    blocking: bool
    missing_share_reference: float
    missing_share_current: float
    largest_shift: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "psi": round(self.psi, 6),
            "status": self.status,
            "blocking": self.blocking,
            "missing_share_reference": round(self.missing_share_reference, 6),
            "missing_share_current": round(self.missing_share_current, 6),
            "largest_shift": self.largest_shift,
        }


def compare_entry(
    name: str,
    entry: Mapping[str, Any],
    column: pd.Series,
    params: DriftParams,
    blocking: bool,
) -> DriftEntry:
    """Return the drift of one column against its reference entry."""
    expected = reference_shares(entry)
    actual = current_shares(entry, column, name)
    psi = population_stability(expected, actual, params.epsilon)
    labels = bin_labels(entry)
    worst = int(np.argmax(np.abs(actual - expected)))
    shift = f"bin {labels[worst]}: {expected[worst]:.1%} -> {actual[worst]:.1%}"
    return DriftEntry(
        name,
        psi,
        drift_status(psi, params),
        blocking,
        float(expected[-1]),
        float(actual[-1]),
        shift,
    )


def measure_drift(
    reference: Mapping[str, Any],
    snapshot: pd.DataFrame,
    scores: np.ndarray | pd.Series,
    params: DriftParams,
) -> dict[str, Any]:
    """Return the drift report (JSON-ready): PSI per feature and for the score, and what blocks."""
    if reference.get("format") != REFERENCE_FORMAT:
        raise ChurnError(
            f"drift reference format {reference.get('format')!r} is not {REFERENCE_FORMAT}; "
            "rerun `dvc repro promote` to rebuild the model folder"
        )
    if len(snapshot) == 0:
        raise ChurnError("scoring snapshot: no rows to measure drift on; check the features stage")
    missing = [name for name in reference["features"] if name not in snapshot.columns]
    if missing:
        raise ChurnError(
            f"scoring snapshot: missing feature column(s) {missing} that the champion was trained "
            "with; rebuild features with the same code version or retrain"
        )
    blocking = set(params.blocking_features)
    entries = [
        compare_entry(name, entry, snapshot[name], params, name in blocking)
        for name, entry in sorted(reference["features"].items())
    ]
    score = compare_entry(
        SCORE,
        reference[SCORE],
        pd.Series(np.asarray(scores, dtype="float64")),
        params,
        params.score_blocks,
    )
    everything = [score, *entries]
    failing = [e.name for e in everything if e.status == "fail" and e.blocking]
    report = {
        "status": _worst(e.status for e in everything),
        "passed": not failing,  # what the publish gate reads
        "publish_blocked": bool(failing),
        "blocking_failures": failing,
        "failures": [e.name for e in everything if e.status == "fail"],
        "warnings": [e.name for e in everything if e.status == "warn"],
        "unknown_blocking_features": sorted(blocking - set(reference["features"])),
        "thresholds": {"warn": params.warn, "fail": params.fail},
        "reference_rows": int(reference["rows"]),
        "current_rows": len(snapshot),
        SCORE: score.to_dict(),
        "features": {e.name: e.to_dict() for e in entries},
    }
    report["detail"] = "; ".join(drift_problems(report)) or _summary(report)
    return report


def _summary(report: Mapping[str, Any]) -> str:
    moved = report["failures"] + report["warnings"]
    if not moved:
        return "no feature or score moved beyond the warning threshold"
    return "moved but not blocking: " + ", ".join(
        f"{name} ({(report[SCORE] if name == SCORE else report['features'][name])['psi']:.3f})"
        for name in moved
    )


def _worst(statuses: Any) -> str:
    order = {"ok": 0, "warn": 1, "fail": 2}
    return max(statuses, key=order.__getitem__, default="ok")


# --------------------------------------------------------------------------- publish gate
def drift_problems(report: Mapping[str, Any]) -> list[str]:
    """Return one line per blocking failure: which feature (or the score) moved, how far, where."""
    lines = []
    for name in report.get("blocking_failures", []):
        entry = report[SCORE] if name == SCORE else report["features"][name]
        lines.append(
            f"{name}: PSI {entry['psi']:.3f} >= fail {report['thresholds']['fail']} "
            f"({entry['largest_shift']})"
        )
    return lines
