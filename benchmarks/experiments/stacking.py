"""Stacking the model with the BG/NBD probability of no purchase in H, measured at the as-of date.

    python -m benchmarks.experiments.stacking --data NAME=PATH ... [--bootstrap 500]
        [--out benchmarks/results/stacking.md]

Per data set (a CDNOW_master.txt file or a folder of clean tables), everything after
as-of = last date - H is hidden and the snapshots are built with features.bgnbd on, so every
cutoff carries the BG/NBD P(no purchase in H) fitted on that cutoff's histories (no labels).
The booster is trained as `churn train` trains it on params.yaml's features (the BG/NBD columns
dropped), then two candidates replace its calibrator:

- **blend**: a logistic regression on (logit of the booster's raw probability, logit of the
  BG/NBD probability), fitted on the customers the model calibrates on (the held-out customers
  of its calibration cutoff, whose labels its booster never read);
- **bgnbd feature**: for reference, the `bgnbd_on` variant of model_quality (BG/NBD columns
  as features).

Each is scored on the as-of snapshot against what happened in the next H days, with the paired
bootstrap of model minus the best of recency, frequency and the two BG/NBD scores.
"""

from __future__ import annotations

import argparse
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from benchmarks.common import RESULTS, load_clean, outcome_after
from benchmarks.experiments.model_quality import RIVALS
from churn.columns import CHURNED, CUSTOMER_ID, CUTOFF, DATE, ROLE
from churn.config import load_params
from churn.cutoffs import CALIBRATION, customer_share
from churn.evaluate.baselines import score_baselines
from churn.features.bgnbd_columns import EXPECTED, P_ALIVE, P_NO_PURCHASE
from churn.features.build import build_snapshots
from churn.metrics import bootstrap_differences, score_metrics
from churn.train import fit_model

BGNBD = [EXPECTED, P_ALIVE, P_NO_PURCHASE]
EPS = 1e-4


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.nan_to_num(np.asarray(p, dtype="float64"), nan=0.5), EPS, 1 - EPS)
    return np.log(p / (1 - p))


def calibration_rows(snapshots: pd.DataFrame, model: Any, share: float) -> pd.DataFrame:
    """Return the rows the model was calibrated on (labels its booster never read)."""
    held = model.metadata.get("held_out")
    if held:
        rows = snapshots[pd.to_datetime(snapshots[CUTOFF]) == pd.Timestamp(held["cutoff"])]
        keep = customer_share(rows[CUSTOMER_ID].reset_index(drop=True), held["hash"])
        return rows[keep >= float(held["share_from"])]
    rows = snapshots[snapshots[ROLE] == CALIBRATION]
    keep = customer_share(rows[CUSTOMER_ID].reset_index(drop=True), "early_stopping")
    return rows[keep >= share]


def measure(name: str, source: Path, params: Any, horizon: int, bootstrap: int, seed: int):
    """Return rows of the markdown table for one data set."""
    transactions, customers, nps = load_clean(source)
    as_of = max(transactions[DATE]) - timedelta(days=horizon)
    churn = params.churn.model_copy(update={"horizon_days": horizon, "as_of": as_of})
    known = transactions[transactions[DATE] <= as_of].reset_index(drop=True)
    features = params.features.model_copy(update={"bgnbd": True})
    snapshots = build_snapshots(known, customers, nps, churn, features, params.engine)
    train, rows = snapshots.train, snapshots.score.sort_values(CUSTOMER_ID, ignore_index=True)
    labels = (~rows[CUSTOMER_ID].isin(outcome_after(transactions, as_of, horizon))).to_numpy()
    labels = labels.astype("int64")
    plain = fit_model(train.drop(columns=BGNBD), params.train, horizon, name).production_model
    with_feature = fit_model(train, params.train, horizon, name).production_model
    held = calibration_rows(train, plain, params.train.early_stopping_share)
    stack = LogisticRegression(C=1e4, max_iter=1000)
    inputs = np.column_stack(
        [_logit(plain.predict_raw(held)), _logit(held[P_NO_PURCHASE].to_numpy())]
    )
    stack.fit(inputs, held[CHURNED].to_numpy("int64"))
    as_of_inputs = np.column_stack(
        [_logit(plain.predict_raw(rows)), _logit(rows[P_NO_PURCHASE].to_numpy())]
    )
    scored = {
        "model": plain.predict_proba(rows),
        "blend": stack.predict_proba(as_of_inputs)[:, 1],
        "bgnbd feature": with_feature.predict_proba(rows),
    }
    baselines, _ = score_baselines(rows, train, horizon, seed, name)
    rivals = {b.name: b.score for b in baselines if b.name in RIVALS}
    metrics = {b.name: score_metrics(labels, b.score, b.is_probability) for b in baselines}
    best = max(RIVALS, key=lambda n: metrics[n]["roc_auc"])
    ids = rows[CUSTOMER_ID].astype("string").to_numpy()
    out = []
    for candidate, proba in scored.items():
        m = score_metrics(labels, proba, True)
        d = bootstrap_differences(labels, proba, rivals, ids, bootstrap, seed)[best]
        out.append(
            f"| {name} | {plain.evaluation} | {candidate} | {m['roc_auc']:.4f} | "
            f"{m['pr_auc']:.4f} | {m['ece']:.4f} | {best} {metrics[best]['roc_auc']:.4f} | "
            f"{d['roc_auc_diff']:+.4f} [{d['roc_auc_diff_lo']:+.4f}, {d['roc_auc_diff_hi']:+.4f}] |"
            + (
                f" weights {stack.coef_[0][0]:.2f} / {stack.coef_[0][1]:.2f} |"
                if candidate == "blend"
                else " |"
            )
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", help="NAME=PATH (CDNOW file or clean-table folder)")
    parser.add_argument("--horizon", type=int, default=90)
    parser.add_argument("--bootstrap", type=int, default=500)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--out", type=Path, default=RESULTS / "stacking.md")
    args = parser.parse_args()
    np.seterr(all="ignore")
    params = load_params(args.params)
    started = time.perf_counter()
    lines = [
        "| data | evaluation | candidate | ROC AUC | PR AUC | ECE | best baseline | "
        "candidate − best [95% CI] | note |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for spec in args.data:
        name, path = spec.split("=", 1)
        lines += measure(name, Path(path), params, args.horizon, args.bootstrap, args.seed)
        print("\n".join(lines[-3:]), flush=True)
    command = "python -m benchmarks.experiments.stacking --data " + " ".join(
        spec.split("=", 1)[0] + "=..." for spec in args.data
    )
    report = (
        "# Stacking with the BG/NBD probability at the as-of date\n\n"
        f"Generated by `{command} --bootstrap {args.bootstrap}` "
        f"({time.perf_counter() - started:.0f} s). What each candidate is: the module docstring.\n\n"
        + "\n".join(lines)
        + "\n"
    )
    args.out.write_text(report, encoding="utf-8")
    print(report)


if __name__ == "__main__":
    main()
