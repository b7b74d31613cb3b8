"""Screen training objectives at the as-of date before wiring one into `churn train`: a purchase
count target (Poisson), a ranking objective per cutoff (rank_xendcg, the cutoff as query group)
and BG/NBD as the starting score, each against the binary booster fitted the same way.

    python -m benchmarks.experiments.objectives --data NAME=PATH ... [--bootstrap 300] \
        [--out benchmarks/results/objectives.md]

A --data PATH is a CDNOW_master.txt file or a folder of clean tables (`churn ingest` output), as
in `benchmarks.experiments.model_quality`. Per data set, everything after as-of = last date - H
is hidden; the features stage's snapshot builder makes the training rows (every labelled cutoff:
all their label windows end by as-of) and the as-of snapshot. One recipe for every objective, so
the objectives are compared and nothing else: the booster (params.yaml's train.lightgbm, BG/NBD
columns left out as with train.stack_bgnbd) fits the customers outside the early-stopping share
(stable id hash, train.early_stopping_share of 0.2 here) at every cutoff and stops early on the
others; no refit. The as-of snapshot is then scored by

- the booster's own score (`raw`: churn probability, minus the expected count, or the rank score);
- the stack (`stacked`): a logistic regression of the label on that score and the logit of BG/NBD
  P(no purchase in H), fitted on the early-stopping customers at the newest training cutoff, as
  the pipeline's stacked calibrator is.

The count target is the number of distinct purchase days in (cutoff, cutoff + H] (BG/NBD's unit),
read from the transactions up to as-of only. Reported: ROC AUC at as-of of each score, and each
objective's stacked score minus the binary booster's stacked score with a paired customer
bootstrap interval.
"""

from __future__ import annotations

import argparse
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from scipy import optimize

from benchmarks.common import RESULTS, load_clean, outcome_after
from churn.columns import AMOUNT, CHURNED, CUSTOMER_ID, CUTOFF, DATE
from churn.config import Params, TrainParams, load_params
from churn.cutoffs import customer_share
from churn.features.build import build_snapshots
from churn.metrics import bootstrap_differences, score_metrics
from churn.model import FeatureSpec
from churn.train import BGNBD_PREFIX, STACK_COLUMN, feature_columns, lightgbm_settings

OBJECTIVES = ("binary", "poisson_count", "rank_xendcg", "binary_bgnbd_offset")
ENSEMBLE = "ensemble"  # binary, poisson_count and rank_xendcg stacked together with BG/NBD
SCORED = (*OBJECTIVES, ENSEMBLE)
STOP_SHARE = 0.2


def purchase_day_counts(known: pd.DataFrame, rows: pd.DataFrame, horizon: int) -> np.ndarray:
    """Return, per row (customer, cutoff t), the distinct purchase days (amount > 0) dated in
    (t, t + horizon] among `known` transactions."""
    days = known.loc[known[AMOUNT] > 0, [CUSTOMER_ID, DATE]].drop_duplicates()
    days = days.assign(**{DATE: pd.to_datetime(days[DATE])})
    out = np.zeros(len(rows), dtype="float64")
    cutoffs = pd.to_datetime(rows[CUTOFF])
    for cutoff in cutoffs.unique():
        inside = (days[DATE] > cutoff) & (days[DATE] <= cutoff + pd.Timedelta(days=horizon))
        counts = days.loc[inside].groupby(CUSTOMER_ID).size()
        at = (cutoffs == cutoff).to_numpy()
        ids = rows.loc[at, CUSTOMER_ID].astype("string")
        out[at] = ids.map(counts).fillna(0).to_numpy("float64")
    return out


def _logit(p: np.ndarray) -> np.ndarray:
    clipped = np.clip(np.asarray(p, dtype="float64"), 1e-6, 1 - 1e-6)
    return np.log(clipped / (1 - clipped))


def _filled_logit(values: np.ndarray) -> np.ndarray:
    logit = _logit(values)
    finite = np.isfinite(logit)
    return np.where(finite, logit, logit[finite].mean() if finite.any() else 0.0)


def fit_logistic(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Return logistic-regression coefficients (last: intercept) of y on the columns of x."""
    design = np.column_stack([x, np.ones(len(x))])

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        z = design @ w
        p = 1.0 / (1.0 + np.exp(-z))
        return float(np.mean(np.logaddexp(0.0, z) - y * z)), design.T @ (p - y) / len(y)

    return optimize.minimize(loss, np.zeros(design.shape[1]), jac=True, method="BFGS").x


def fit_objective(
    objective: str,
    spec: FeatureSpec,
    train: pd.DataFrame,
    counts: np.ndarray,
    stop: np.ndarray,
    params: TrainParams,
) -> lgb.Booster:
    """Return the booster of one objective, fitted on ~stop rows, stopped early on stop rows."""
    settings = lightgbm_settings(params, spec)
    labels = train[CHURNED].to_numpy("float64")
    init = None
    if objective == "poisson_count":
        # the expected count falls as risk rises: constraints flip (recency raises risk)
        settings["objective"], settings["metric"] = "poisson", "poisson"
        settings["monotone_constraints"] = [-v for v in settings["monotone_constraints"]]
        labels = counts
    elif objective == "rank_xendcg":
        settings["objective"], settings["metric"] = "rank_xendcg", "auc"
    elif objective == "binary_bgnbd_offset":
        init = _filled_logit(train[STACK_COLUMN].to_numpy("float64"))
    matrix = spec.to_matrix(train)

    def dataset(mask: np.ndarray, reference: lgb.Dataset | None = None) -> lgb.Dataset:
        part = train.loc[mask]
        group = None
        if objective == "rank_xendcg":  # rows are sorted by cutoff: one query group per cutoff
            group = part.groupby(CUTOFF, sort=True).size().to_numpy()
        return lgb.Dataset(
            matrix.loc[mask],
            labels[mask],
            group=group,
            init_score=None if init is None else init[mask],
            params=settings,
            reference=reference,
            categorical_feature=list(spec.categorical),
        )

    fit_set = dataset(~stop)
    stop_set = dataset(stop, fit_set)
    return lgb.train(
        settings,
        fit_set,
        num_boost_round=params.lightgbm.max_rounds,
        valid_sets=[stop_set],
        callbacks=[lgb.early_stopping(params.lightgbm.early_stopping_rounds, verbose=False)],
    )


def churn_score(objective: str, booster: lgb.Booster, spec: FeatureSpec, rows: pd.DataFrame):  # noqa: ANN201
    """Return the booster's churn score on `rows` (higher = more risk), on a logit-like scale."""
    raw = booster.predict(spec.to_matrix(rows), num_iteration=booster.best_iteration)
    if objective == "poisson_count":
        return -np.log(np.maximum(raw, 1e-9))  # minus the log expected purchase days
    if objective == "rank_xendcg":
        return raw
    return _logit(raw)  # binary (with an offset: the residual over BG/NBD's logit)


def screen(
    name: str, source: Path, horizon: int, params: Params, bootstrap: int, seed: int
) -> dict[str, Any]:
    """Return each objective's ROC AUC at as-of (raw and stacked) and stacked minus binary."""
    transactions, customers, nps = load_clean(source)
    as_of = max(transactions[DATE]) - timedelta(days=horizon)
    churn = params.churn.model_copy(update={"horizon_days": horizon, "as_of": as_of})
    known = transactions[transactions[DATE] <= as_of].reset_index(drop=True)
    started = time.perf_counter()
    snapshots = build_snapshots(known, customers, nps, churn, params.features, params.engine)
    train = snapshots.train.sort_values([CUTOFF, CUSTOMER_ID], ignore_index=True)
    rows = snapshots.score.sort_values(CUSTOMER_ID, ignore_index=True)
    names = [n for n in feature_columns(train) if not n.startswith(BGNBD_PREFIX)]
    spec = FeatureSpec.infer(train, names)
    counts = purchase_day_counts(known, train, horizon)
    stop = customer_share(train[CUSTOMER_ID], "early_stopping") < STOP_SHARE
    newest = (pd.to_datetime(train[CUTOFF]) == pd.to_datetime(train[CUTOFF]).max()).to_numpy()
    stack_rows = stop & newest
    labels = (~rows[CUSTOMER_ID].isin(outcome_after(transactions, as_of, horizon))).to_numpy()
    labels = labels.astype("int64")
    bg_train = _filled_logit(train[STACK_COLUMN].to_numpy("float64"))
    bg_rows = _filled_logit(rows[STACK_COLUMN].to_numpy("float64"))
    y_train = train[CHURNED].to_numpy("float64")
    raw, stacked, rounds, boosters = {}, {}, {}, {}
    for objective in OBJECTIVES:
        booster = fit_objective(objective, spec, train, counts, stop, params.train)
        boosters[objective] = booster
        rounds[objective] = int(booster.best_iteration)
        s_train = churn_score(objective, booster, spec, train.loc[stack_rows])
        s_rows = churn_score(objective, booster, spec, rows)
        raw[objective] = s_rows
        w = fit_logistic(np.column_stack([s_train, bg_train[stack_rows]]), y_train[stack_rows])
        stacked[objective] = w[0] * s_rows + w[1] * bg_rows + w[2]
    # all three boosters and BG/NBD in one stack (a multi-objective ensemble)
    trained = [churn_score(o, boosters[o], spec, train.loc[stack_rows]) for o in OBJECTIVES[:3]]
    w = fit_logistic(np.column_stack([*trained, bg_train[stack_rows]]), y_train[stack_rows])
    raw[ENSEMBLE] = np.column_stack([raw[o] for o in OBJECTIVES[:3]]) @ w[:3]
    stacked[ENSEMBLE] = raw[ENSEMBLE] + w[3] * bg_rows + w[4]
    rounds[ENSEMBLE] = sum(rounds[o] for o in OBJECTIVES[:3])
    ids = rows[CUSTOMER_ID].astype("string").to_numpy()
    auc = {
        objective: {
            "raw": score_metrics(labels, raw[objective], False)["roc_auc"],
            "stacked": score_metrics(labels, stacked[objective], False)["roc_auc"],
        }
        for objective in SCORED
    }
    bgnbd = score_metrics(labels, rows[STACK_COLUMN].fillna(0.5).to_numpy(), False)["roc_auc"]
    diffs = {
        objective: bootstrap_differences(
            labels, stacked[objective], {"binary": stacked["binary"]}, ids, bootstrap, seed
        )["binary"]
        for objective in SCORED
        if objective != "binary"
    }
    return {
        "data": name,
        "rows": len(rows),
        "train_rows": len(train),
        "auc": auc,
        "bgnbd_no_purchase": bgnbd,
        "diff": diffs,
        "rounds": rounds,
        "seconds": time.perf_counter() - started,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", required=True, help="NAME=PATH (CDNOW file or folder)")
    parser.add_argument("--horizon", type=int, default=90)
    parser.add_argument("--bootstrap", type=int, default=300)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--out", type=Path, default=RESULTS / "objectives.md")
    args = parser.parse_args()
    params = load_params(args.params)
    lines = [
        "| data | objective | rounds | raw ROC AUC | stacked ROC AUC | stacked − binary stacked "
        "[95% CI] |",
        "|---|---|---|---|---|---|",
    ]
    started = time.perf_counter()
    for spec in args.data:
        name, path = spec.split("=", 1)
        result = screen(name, Path(path), args.horizon, params, args.bootstrap, args.seed)
        for objective in SCORED:
            auc, d = result["auc"][objective], result["diff"].get(objective)
            extra = (
                f"{d['roc_auc_diff']:+.4f} [{d['roc_auc_diff_lo']:+.4f}, {d['roc_auc_diff_hi']:+.4f}]"
                if d
                else f"(BG/NBD P(no purchase) alone: {result['bgnbd_no_purchase']:.4f})"
            )
            lines.append(
                f"| {name} | {objective} | {result['rounds'][objective]} | {auc['raw']:.4f} | "
                f"{auc['stacked']:.4f} | {extra} |"
            )
        print("\n".join(lines[-len(SCORED) :]), f"({result['seconds']:.0f} s)", flush=True)
    elapsed = time.perf_counter() - started
    command = " ".join(
        ["python -m benchmarks.experiments.objectives", "--data", *args.data]
        + ["--bootstrap", str(args.bootstrap)]
    )
    report = f"""# Objectives screened at the as-of date (one recipe, objective changed)

Generated by `{command}` ({elapsed:.0f} s on this machine). What each column is: the module
docstring of `benchmarks/experiments/objectives.py`.

{chr(10).join(lines)}
"""
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report, encoding="utf-8")
    print(report)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
