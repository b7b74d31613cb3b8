"""Drift of features and score (PSI against the newest labelled cutoff, warnings by default) and
the features whose as-of values lie outside the training range."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from churn.columns import CALENDAR_FEATURES, CUSTOMER_ID, CUTOFF, ROLE
from churn.config import DriftParams
from churn.errors import ChurnError

REFERENCE_FORMAT = 1
SCORE = "score"  # the report's name for the model's churn probability
MISSING = "(missing)"
OTHER = "(other/unseen)"
NO_ROWS = "scoring snapshot: no rows to measure drift on; check the features stage"


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
            f"drift reference: no training rows with role {params.reference_role!r}; check "
            "drift.reference_role in params.yaml (fit, calibration or test)"
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
        "roles": [params.reference_role],
        "bins": params.bins,
        "max_levels": params.max_levels,
        "features": features,
        SCORE: score,
    }


def select_newest_labelled(training: pd.DataFrame, role: str) -> pd.DataFrame:
    """Return the rows of the newest cutoff with `role` (else the newest cutoff), by customer id.

    The newest labelled cutoff is the closest in time to as_of: a closed customer base ages between
    cutoffs, so an older reference would report that ageing as drift.
    """
    missing = [c for c in (CUSTOMER_ID, CUTOFF, ROLE) if c not in training.columns]
    if missing:
        raise ChurnError(
            f"training snapshots: missing column(s) {missing}; rerun `dvc repro features`"
        )
    if len(training) == 0:
        raise ChurnError("training snapshots: no rows to build the drift reference from")
    newest, of_role = reference_cutoff(training[CUTOFF], training[ROLE], role)
    mask = (training[CUTOFF] == newest).to_numpy(bool, na_value=False)
    if of_role:
        mask = mask & (training[ROLE] == role).to_numpy(bool, na_value=False)
    chosen = training[mask]
    return chosen.sort_values(CUSTOMER_ID, kind="stable").reset_index(drop=True)


def reference_cutoff(cutoffs: pd.Series, roles: pd.Series, role: str) -> tuple[Any, bool]:
    """Return (the newest cutoff with `role`, True), else (the newest cutoff, False): the drift
    reference's rows are that cutoff's rows of `role` (all of its rows when False). The one
    rule for select_newest_labelled and the Spark features stage's sample (churn.spark.sample).
    """
    of_role = (roles == role).to_numpy(bool, na_value=False)
    if of_role.any():
        return cutoffs[of_role].max(), True
    # short histories may have no such role: the newest cutoff still is closest
    return cutoffs.max(), False


def reference_from_training(
    training: pd.DataFrame,
    numeric: Sequence[str],
    categorical: Sequence[str],
    predict: Callable[[pd.DataFrame], np.ndarray],
    params: DriftParams,
) -> tuple[dict[str, Any], dict[str, list[float]]]:
    """Return the PSI reference (the newest labelled cutoff, scored by `predict`) and the
    training range of every numeric feature."""
    rows = select_newest_labelled(training, params.reference_role)
    reference = build_reference(rows, numeric, categorical, np.asarray(predict(rows)), params)
    reference["roles"] = sorted({str(r) for r in rows[ROLE]})
    reference["cutoff"] = str(rows[CUTOFF].iloc[0])
    return reference, training_ranges(training, numeric)


def training_ranges(training: pd.DataFrame, numeric: Sequence[str]) -> dict[str, list[float]]:
    """Return [min, max] of each numeric feature over the training snapshots (calendar ones left out)."""
    ranges: dict[str, list[float]] = {}
    for name in numeric:
        if name in CALENDAR_FEATURES or name not in training.columns:
            continue
        values = _numeric_values(training[name], name, "training snapshots")
        finite = values[~np.isnan(values)]
        if finite.size:
            ranges[name] = [float(finite.min()), float(finite.max())]
    return ranges


# train.parquet's Parquet key-value metadata when the Spark features stage wrote only the training
# sample: training_ranges of the whole table, as Spark aggregates (churn.spark.sample)
RANGES_KEY = b"churn.training_ranges"


def training_ranges_in_file(path: str | Path, numeric: Sequence[str]) -> dict[str, list[float]]:
    """Return training_ranges of the snapshots in a Parquet file, one column in memory at a time
    (those of the whole table the features stage recorded, when the file holds a sample)."""
    import json

    import pyarrow.parquet as pq

    schema = pq.read_schema(path)
    recorded = (schema.metadata or {}).get(RANGES_KEY)
    if recorded is not None:
        whole = json.loads(recorded)
        return {
            name: [float(low), float(high)]
            for name in numeric
            if name not in CALENDAR_FEATURES and name in whole
            for low, high in [whole[name]]
        }
    present = set(schema.names)
    ranges: dict[str, list[float]] = {}
    for name in numeric:
        if name in CALENDAR_FEATURES or name not in present:
            continue
        ranges.update(training_ranges(pd.read_parquet(path, columns=[name]), [name]))
    return ranges


def outside_training_range(
    ranges: Mapping[str, Sequence[float]], snapshot: pd.DataFrame, min_share: float
) -> dict[str, dict[str, Any]]:
    """Return, per feature with any as-of value outside its training [min, max], the shares of
    scored customers below the minimum and above the maximum, largest total share first."""
    return report_outside_range(ranges, range_counts(ranges, snapshot), len(snapshot), min_share)


def range_counts(
    ranges: Mapping[str, Sequence[float]], snapshot: pd.DataFrame
) -> dict[str, list[Any]]:
    """Return, per feature of `ranges` in `snapshot`, [rows below its training minimum, rows
    above its maximum, the smallest and the largest value (None when every value is missing)]."""
    found: dict[str, list[Any]] = {}
    for name, (low, high) in sorted(ranges.items()):
        if name not in snapshot.columns:
            continue
        values = _numeric_values(snapshot[name], name, "scoring snapshot")
        present = values[~np.isnan(values)]
        found[name] = [
            int(np.sum(values < low)),  # NaN compares False: missing is not out of range
            int(np.sum(values > high)),
            float(present.min()) if present.size else None,
            float(present.max()) if present.size else None,
        ]
    return found


def report_outside_range(
    ranges: Mapping[str, Sequence[float]],
    counts: Mapping[str, Sequence[Any]],
    rows: int,
    min_share: float,
) -> dict[str, dict[str, Any]]:
    """Return outside_training_range's entries from range_counts of all `rows` scored rows."""
    found: list[tuple[float, str, dict[str, Any]]] = []
    for name, (low, high) in sorted(ranges.items()):
        if name not in counts or rows == 0:
            continue
        below_rows, above_rows, smallest, largest = counts[name]
        below, above = below_rows / rows, above_rows / rows
        if below + above == 0:
            continue
        entry = {
            "training_min": _round(low),
            "training_max": _round(high),
            "current_min": _round(float(smallest)),
            "current_max": _round(float(largest)),
            "share_below_min": round(below, 6),
            "share_above_max": round(above, 6),
            "named": below + above >= min_share,
        }
        found.append((below + above, name, entry))
    found.sort(key=lambda item: (-item[0], item[1]))
    return {name: entry for _, name, entry in found}


def _round(value: float) -> float:
    return float(f"{value:.6g}")


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
    return shares_of(entry_counts(entry, column, name))


def entry_counts(entry: Mapping[str, Any], column: pd.Series, name: str) -> np.ndarray:
    """Return the current column's row counts in the reference entry's bins (missing last)."""
    if entry["kind"] == "categorical":
        return _categorical_counts(_text_values(column), entry["levels"])
    return _numeric_counts(_numeric_values(column, name, "scoring snapshot"), entry["edges"])


def shares_of(counts: np.ndarray) -> np.ndarray:
    """Return bin counts as shares of their total (zeros when there is no row)."""
    counts = np.asarray(counts, dtype="int64")
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
    return compare_counts(name, entry, entry_counts(entry, column, name), params, blocking)


def compare_counts(
    name: str,
    entry: Mapping[str, Any],
    counts: np.ndarray,
    params: DriftParams,
    blocking: bool,
) -> DriftEntry:
    """Return the drift of one column from its row counts in the reference entry's bins."""
    expected = reference_shares(entry)
    actual = shares_of(counts)
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
    ranges: Mapping[str, Sequence[float]] | None = None,
) -> dict[str, Any]:
    """Return the drift report (JSON-ready): PSI per feature and for the score, what blocks (only
    the opt-in drift.score_blocks / drift.blocking_features), and the features outside `ranges`."""
    check_drift_reference(reference, snapshot.columns, len(snapshot))
    return report_drift(
        reference,
        count_drift(reference, snapshot, ranges),
        count_score(reference, scores),
        params,
        ranges,
    )


def check_drift_reference(
    reference: Mapping[str, Any], columns: Sequence[str], rows: int | None = None
) -> None:
    """Refuse a reference of another format, a snapshot without rows (when `rows` is known) or
    without the reference's features (`columns`)."""
    if reference.get("format") != REFERENCE_FORMAT:
        raise ChurnError(
            f"drift reference format {reference.get('format')!r} is not {REFERENCE_FORMAT}; "
            "rerun `dvc repro promote` to rebuild the model folder"
        )
    if rows == 0:
        raise ChurnError(NO_ROWS)
    missing = [name for name in reference["features"] if name not in columns]
    if missing:
        raise ChurnError(
            f"scoring snapshot: missing feature column(s) {missing} that the champion was trained "
            "with; rebuild features with the same code version or retrain"
        )


def count_drift(
    reference: Mapping[str, Any],
    snapshot: pd.DataFrame,
    ranges: Mapping[str, Sequence[float]] | None = None,
) -> dict[str, Any]:
    """Return the counts the drift report is made of over `snapshot` (any part of the scored
    rows: two parts' counts add up with add_drift_counts): the rows, each reference feature's
    rows per bin and, with `ranges`, range_counts."""
    counts: dict[str, Any] = {
        "rows": int(len(snapshot)),
        "features": {
            name: entry_counts(entry, snapshot[name], name).tolist()
            for name, entry in reference["features"].items()
        },
    }
    if ranges is not None:
        counts["ranges"] = range_counts(ranges, snapshot)
    return counts


def count_score(reference: Mapping[str, Any], scores: np.ndarray | pd.Series) -> list[int]:
    """Return the scores' rows per bin of the reference's score entry (missing last)."""
    values = pd.Series(np.asarray(scores, dtype="float64"))
    return entry_counts(reference[SCORE], values, SCORE).tolist()


def add_drift_counts(left: Mapping[str, Any], right: Mapping[str, Any]) -> dict[str, Any]:
    """Return the counts (count_drift) of two parts of the scored rows together."""
    out: dict[str, Any] = {
        "rows": left["rows"] + right["rows"],
        "features": {
            name: [a + b for a, b in zip(counts, right["features"][name], strict=True)]
            for name, counts in left["features"].items()
        },
    }
    if "ranges" in left:
        out["ranges"] = {}
        for name, (below, above, low, high) in left["ranges"].items():
            other = right["ranges"][name]
            lows = [v for v in (low, other[2]) if v is not None]
            highs = [v for v in (high, other[3]) if v is not None]
            out["ranges"][name] = [
                below + other[0],
                above + other[1],
                min(lows) if lows else None,
                max(highs) if highs else None,
            ]
    return out


def report_drift(
    reference: Mapping[str, Any],
    counts: Mapping[str, Any],
    score_counts: Sequence[int],
    params: DriftParams,
    ranges: Mapping[str, Sequence[float]] | None = None,
) -> dict[str, Any]:
    """Return measure_drift's report from the counts of every scored row (count_drift) and of
    every score (count_score)."""
    if counts["rows"] == 0:
        raise ChurnError(NO_ROWS)
    blocking = set(params.blocking_features)
    entries = [
        compare_counts(name, entry, np.asarray(counts["features"][name]), params, name in blocking)
        for name, entry in sorted(reference["features"].items())
    ]
    score = compare_counts(
        SCORE, reference[SCORE], np.asarray(score_counts), params, params.score_blocks
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
        "reference_role": reference.get("roles", [None])[0],
        "reference_cutoff": reference.get("cutoff"),
        "current_rows": int(counts["rows"]),
        SCORE: score.to_dict(),
        "features": {e.name: e.to_dict() for e in entries},
    }
    if ranges is not None:
        outside = report_outside_range(
            ranges, counts["ranges"], int(counts["rows"]), params.out_of_range_share
        )
        report["outside_training_range"] = outside
        report["features_outside_training_range"] = [n for n, e in outside.items() if e["named"]]
    report["detail"] = "; ".join(drift_problems(report)) or _summary(report)
    return report


def _summary(report: Mapping[str, Any]) -> str:
    moved = report["failures"] + report["warnings"]
    text = (
        "moved (a warning, not blocking): "
        + ", ".join(
            f"{name} ({(report[SCORE] if name == SCORE else report['features'][name])['psi']:.3f})"
            for name in moved
        )
        if moved
        else "no feature or score moved beyond the warning threshold"
    )
    outside = report.get("features_outside_training_range") or []
    if outside:
        text += "; outside the training range (the model predicts flat there): " + ", ".join(
            f"{name} ({_outside_text(report['outside_training_range'][name])})" for name in outside
        )
    return text


def _outside_text(entry: Mapping[str, Any]) -> str:
    parts = []
    if entry["share_above_max"]:
        parts.append(f"{entry['share_above_max']:.1%} above max {entry['training_max']:g}")
    if entry["share_below_min"]:
        parts.append(f"{entry['share_below_min']:.1%} below min {entry['training_min']:g}")
    return ", ".join(parts)


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


# --------------------------------------------------------------------------- the stage
def read_role(path: Path, role: str) -> pd.DataFrame:
    """Read the training snapshots' rows of one role (all rows when it has none: short
    histories, where the drift reference falls back to the newest cutoff)."""
    from churn.files import read_input_parquet

    rows = read_input_parquet(path, "training snapshots", filters=[(ROLE, "==", role)])
    return rows if len(rows) else read_input_parquet(path, "training snapshots")
