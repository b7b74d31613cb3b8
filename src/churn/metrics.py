"""Every model metric, written once: ROC/PR AUC, precision/recall of a list, log loss, Brier, ECE,
lift, calibration table, the ROC/PR/gains curve tables and the customer bootstrap of
model-minus-baseline differences. Used by train, evaluate, the promote gate, uplift and the
backtest, so the same name always means the same number (the only module importing
sklearn.metrics: tests/contract/test_single_homes.py)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from churn.errors import ChurnError

MODEL = "model"
# equal-width probability bins over [0, 1] of every ECE and calibration table (one setting, so
# ECE figures from training, evaluation, the gate and the backtest are always comparable)
ECE_BINS = 10
GATE_METRICS = ("roc_auc", "pr_auc", "log_loss", "brier", "ece")
_CLIP = 1e-15
# the x axis of every curve table (evaluate's ROC, PR and gains plots)
CURVE_GRID = np.round(np.linspace(0.0, 1.0, 101), 2)


def log_loss(labels: np.ndarray, proba: np.ndarray) -> float:
    """Return the mean binary log loss, probabilities clipped to [1e-15, 1 - 1e-15]."""
    labels = np.asarray(labels, dtype="float64")
    p = np.clip(np.asarray(proba, dtype="float64"), _CLIP, 1 - _CLIP)
    return float(-np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p)))


def brier(labels: np.ndarray, proba: np.ndarray) -> float:
    """Return the Brier score: mean squared difference of probability and outcome."""
    labels = np.asarray(labels, dtype="float64")
    return float(np.mean((np.asarray(proba, dtype="float64") - labels) ** 2))


def roc_auc(labels: np.ndarray, score: np.ndarray) -> float:
    """Return the ROC AUC of a score (ties count half); both classes must be present."""
    from sklearn.metrics import roc_auc_score  # slow import: only when called

    return float(roc_auc_score(labels, score))


def pr_auc(labels: np.ndarray, score: np.ndarray) -> float:
    """Return the PR AUC (average precision) of a score; both classes must be present."""
    from sklearn.metrics import average_precision_score  # slow import: only when called

    return float(average_precision_score(labels, score))


def precision_recall(labels: np.ndarray, flagged: np.ndarray) -> tuple[Any, Any]:
    """Return (precision, recall) of a flagged set: the share of flagged rows whose label is 1
    and the share of label-1 rows flagged; None for either when nothing is flagged or no label
    is 1."""
    labels = np.asarray(labels)
    flagged = np.asarray(flagged, dtype=bool)
    hits = int((flagged & (labels == 1)).sum())
    positives = int(labels.sum())
    # hits / an int64 count: a numpy float, as the backtest has always rounded it
    precision = hits / flagged.sum() if flagged.any() else None
    recall = hits / positives if positives else None
    return precision, recall


def probability_metrics(labels: np.ndarray, proba: np.ndarray) -> dict[str, float | None]:
    """Return ROC AUC, PR AUC, log loss, Brier and ECE of probabilities; None for any that cannot
    be computed (no rows, one class, or values that are not probabilities)."""
    labels = np.asarray(labels)
    proba = np.asarray(proba, dtype="float64")
    empty: dict[str, float | None] = dict.fromkeys(GATE_METRICS)
    if labels.size == 0 or labels.size != proba.size:
        return empty
    if not np.isfinite(proba).all() or (proba < 0).any() or (proba > 1).any():
        return empty
    both_classes = np.unique(labels).size == 2
    return {
        "roc_auc": roc_auc(labels, proba) if both_classes else None,
        "pr_auc": pr_auc(labels, proba) if both_classes else None,
        "log_loss": log_loss(labels, proba),
        "brier": brier(labels, proba),
        "ece": expected_calibration_error(labels, proba),
    }


def calibration_rows(proba: np.ndarray, churned: np.ndarray) -> list[dict[str, object]]:
    """Return the calibration table as JSON-ready rows: bin, customers, mean probability, rate."""
    table = calibration_table(churned, proba)
    rows = []
    for row in table.itertuples(index=False):
        b = int(row.bin)
        last = b == ECE_BINS - 1
        rows.append(
            {
                "bin": f"[{b / ECE_BINS:.2f}, {(b + 1) / ECE_BINS:.2f}{']' if last else ')'}",
                "customers": int(row.rows),
                "mean_probability": float(row.predicted),
                "churn_rate": float(row.observed),
            }
        )
    return rows


def fraction_label(fraction: float) -> str:
    """Return the metric suffix for a top fraction: 0.05 -> 'top5', 0.125 -> 'top12.5'."""
    percent = round(fraction * 100, 6)
    return f"top{int(percent)}" if percent == int(percent) else f"top{percent:g}"


def expected_calibration_error(
    labels: np.ndarray, proba: np.ndarray, bins: int = ECE_BINS
) -> float:
    """Return ECE: bin probabilities into `bins` equal-width bins on [0, 1] (the top bin includes 1),
    and sum |observed churn rate - mean probability| over bins, weighted by each bin's share of rows.
    """
    labels = np.asarray(labels, dtype="float64")
    proba = np.asarray(proba, dtype="float64")
    if labels.size == 0:
        return float("nan")
    index = np.minimum((proba * bins).astype("int64"), bins - 1)
    observed = np.bincount(index, weights=labels, minlength=bins)
    predicted = np.bincount(index, weights=proba, minlength=bins)
    return float(np.sum(np.abs(observed - predicted)) / labels.size)


def captured_in_top(
    labels: np.ndarray,
    score: np.ndarray,
    fraction: float,
    sorted_score: np.ndarray | None = None,
) -> float:
    """Return the expected number of churners among the top `fraction` of rows by score.

    The list holds k = round(fraction * n) rows (at least 1). Rows tied with the k-th score are
    taken at their average churn rate, so the answer never depends on row order.
    `sorted_score`: np.sort of `score` as float64, when the caller asks for many fractions.
    """
    labels = np.asarray(labels, dtype="float64")
    score = np.asarray(score, dtype="float64")
    n = labels.size
    k = min(max(int(round(fraction * n)), 1), n)
    ascending = np.sort(score) if sorted_score is None else sorted_score
    threshold = ascending[::-1][k - 1]
    above = score > threshold
    tied = score == threshold
    taken = k - int(above.sum())
    return float(labels[above].sum() + taken * labels[tied].mean())


def lift_and_recall(labels: np.ndarray, score: np.ndarray, fraction: float) -> tuple[float, float]:
    """Return (lift, recall) of the top `fraction` by score: precision / base rate, share caught."""
    labels = np.asarray(labels, dtype="float64")
    n, positives = labels.size, labels.sum()
    k = min(max(int(round(fraction * n)), 1), n)
    caught = captured_in_top(labels, score, fraction)
    base = positives / n
    lift = (caught / k) / base if base > 0 else float("nan")
    recall = caught / positives if positives > 0 else float("nan")
    return float(lift), float(recall)


def score_metrics(
    labels: np.ndarray,
    score: np.ndarray,
    is_probability: bool,
    fractions: tuple[float, ...] = (0.05, 0.1, 0.2),
) -> dict[str, float]:
    """Return ranking metrics for any score, plus log loss, Brier and ECE for probabilities."""
    labels = np.asarray(labels, dtype="int64")
    score = np.asarray(score, dtype="float64")
    if not np.isfinite(score).all():
        raise ChurnError(f"{int((~np.isfinite(score)).sum())} score(s) are missing or infinite")
    out: dict[str, float] = {"rows": float(labels.size), "base_churn_rate": float(labels.mean())}
    if np.unique(labels).size == 2:
        out["roc_auc"] = roc_auc(labels, score)
        out["pr_auc"] = pr_auc(labels, score)
    if is_probability:
        out["log_loss"] = log_loss(labels, score)
        out["brier"] = brier(labels, score)
        out["ece"] = expected_calibration_error(labels, score)
        out["mean_probability"] = float(score.mean())
    if labels.sum() > 0:
        for fraction in fractions:
            lift, recall = lift_and_recall(labels, score, fraction)
            out[f"lift_{fraction_label(fraction)}"] = lift
            out[f"recall_{fraction_label(fraction)}"] = recall
    return out


def _tie_groups(score: np.ndarray) -> tuple[np.ndarray, int]:
    """Return each row's rank group (0 = highest score; equal scores share a group) and the count."""
    unique, inverse = np.unique(-score, return_inverse=True)
    return inverse, unique.size


def weighted_auc_ap(
    groups: np.ndarray, n_groups: int, labels: np.ndarray, weights: np.ndarray
) -> tuple[float, float]:
    """Return (ROC AUC, average precision) with row weights; ties count half, as in scikit-learn."""
    pos = np.bincount(groups, weights=weights * labels, minlength=n_groups)
    neg = np.bincount(groups, weights=weights * (1 - labels), minlength=n_groups)
    total_pos, total_neg = pos.sum(), neg.sum()
    if total_pos == 0 or total_neg == 0:
        return float("nan"), float("nan")
    # groups run from the highest score down: negatives ranked below a group come after it
    neg_below = total_neg - np.cumsum(neg)
    auc = float(np.sum(pos * (neg_below + 0.5 * neg)) / (total_pos * total_neg))
    cum_pos, cum_all = np.cumsum(pos), np.cumsum(pos + neg)
    precision = np.divide(cum_pos, cum_all, out=np.zeros_like(cum_pos), where=cum_all > 0)
    ap = float(np.sum(pos / total_pos * precision))
    return auc, ap


def bootstrap_differences(
    labels: np.ndarray,
    model_score: np.ndarray,
    baselines: dict[str, np.ndarray],
    customers: np.ndarray,
    resamples: int,
    seed: int,
) -> dict[str, dict[str, float]]:
    """Return model-minus-baseline ROC AUC and PR AUC with 95% percentile CIs, resampling customers."""
    labels = np.asarray(labels, dtype="float64")
    _, customer_index = np.unique(customers, return_inverse=True)
    n_customers = int(customer_index.max()) + 1 if customer_index.size else 0
    scorers = {MODEL: model_score, **baselines}
    grouped = {name: _tie_groups(np.asarray(s, dtype="float64")) for name, s in scorers.items()}
    base = {
        name: weighted_auc_ap(g, k, labels, np.ones_like(labels))
        for name, (g, k) in grouped.items()
    }
    rng = np.random.default_rng(seed)
    draws = {name: [] for name in scorers}
    for _ in range(resamples):
        # every row of a drawn customer comes along: customers, not rows, are the units
        counts = np.bincount(rng.integers(0, n_customers, n_customers), minlength=n_customers)
        weights = counts[customer_index].astype("float64")
        for name, (g, k) in grouped.items():
            draws[name].append(weighted_auc_ap(g, k, labels, weights))
    model_draws = np.asarray(draws[MODEL])
    out: dict[str, dict[str, float]] = {}
    for name in baselines:
        diff = model_draws - np.asarray(draws[name])
        row: dict[str, float] = {}
        for j, metric in enumerate(("roc_auc", "pr_auc")):
            row[f"{metric}_diff"] = base[MODEL][j] - base[name][j]
            if resamples:
                lo, hi = np.nanpercentile(diff[:, j], [2.5, 97.5])
                row[f"{metric}_diff_lo"] = float(lo)
                row[f"{metric}_diff_hi"] = float(hi)
        out[name] = row
    return out


def bootstrap_auc_interval(
    labels: np.ndarray, score: np.ndarray, customers: np.ndarray, resamples: int, seed: int
) -> tuple[float, float, float]:
    """Return (ROC AUC, 2.5th, 97.5th percentile) of a score's ROC AUC, resampling customers (every
    row of a drawn customer comes along); NaN when both classes are not present."""
    labels = np.asarray(labels, dtype="float64")
    groups, n_groups = _tie_groups(np.asarray(score, dtype="float64"))
    auc = weighted_auc_ap(groups, n_groups, labels, np.ones_like(labels))[0]
    _, customer_index = np.unique(customers, return_inverse=True)
    n_customers = int(customer_index.max()) + 1 if customer_index.size else 0
    if not np.isfinite(auc) or n_customers == 0:
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(resamples):
        counts = np.bincount(rng.integers(0, n_customers, n_customers), minlength=n_customers)
        draws.append(weighted_auc_ap(groups, n_groups, labels, counts[customer_index])[0])
    lo, hi = np.nanpercentile(np.asarray(draws, dtype="float64"), [2.5, 97.5])
    return float(auc), float(lo), float(hi)


def calibration_table(labels: np.ndarray, proba: np.ndarray, bins: int = ECE_BINS) -> pd.DataFrame:
    """Return per equal-width bin: mean predicted probability, observed churn rate, row count."""
    index = np.minimum((proba * bins).astype("int64"), bins - 1)
    frame = pd.DataFrame({"bin": index, "p": proba, "y": labels})
    grouped = frame.groupby("bin").agg(
        predicted=("p", "mean"), observed=("y", "mean"), rows=("y", "size")
    )
    grouped = grouped.reset_index()
    grouped["predicted"] = grouped["predicted"].round(6)
    grouped["observed"] = grouped["observed"].round(6)
    return grouped


def roc_table(labels: np.ndarray, scores: dict[str, np.ndarray]) -> pd.DataFrame:
    """Return true-positive rate at a fixed false-positive-rate grid, one column per scorer."""
    from sklearn.metrics import roc_curve

    table = {"fpr": CURVE_GRID}
    for name, score in scores.items():
        fpr, tpr, _ = roc_curve(labels, score)
        table[name] = np.round(np.interp(CURVE_GRID, fpr, tpr), 6)
    return pd.DataFrame(table)


def pr_table(labels: np.ndarray, scores: dict[str, np.ndarray]) -> pd.DataFrame:
    """Return interpolated precision (best precision at recall >= r) on a recall grid per scorer."""
    from sklearn.metrics import precision_recall_curve

    table = {"recall": CURVE_GRID}
    for name, score in scores.items():
        precision, recall, _ = precision_recall_curve(labels, score)
        order = np.argsort(recall, kind="stable")
        recall, precision = recall[order], precision[order]
        best_after = np.maximum.accumulate(precision[::-1])[::-1]
        position = np.searchsorted(recall, CURVE_GRID, side="left")
        position = np.minimum(position, recall.size - 1)
        table[name] = np.round(best_after[position], 6)
    return pd.DataFrame(table)


def gains_table(labels: np.ndarray, scores: dict[str, np.ndarray]) -> pd.DataFrame:
    """Return the share of churners caught when contacting the top x share of customers."""
    table = {"targeted": CURVE_GRID}
    positives = max(float(np.sum(labels)), 1.0)
    for name, score in scores.items():
        ascending = np.sort(np.asarray(score, dtype="float64"))  # once, not once per point
        caught = [0.0] + [
            captured_in_top(labels, score, f, ascending) / positives for f in CURVE_GRID[1:]
        ]
        table[name] = np.round(caught, 6)
    return pd.DataFrame(table)
