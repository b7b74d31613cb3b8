"""Where the model's ranking gap against BG/NBD is won and lost at the as-of date, and how much
ranking the as-of snapshot itself would allow.

    python -m benchmarks.experiments.where_lost --data NAME=PATH ... \
        [--out benchmarks/results/where_lost.md]

A --data PATH is a CDNOW_master.txt file or a folder of clean tables, as in
`benchmarks.experiments.model_quality`, whose `measure` hides everything after as-of = last date
- H, trains as `churn train` would (params.yaml as it is) and scores the as-of snapshot with the
production model. Per data set:

- **per bucket** (purchase days, recency): customers, churn rate, mean predicted probability of
  the model and of BG/NBD P(no purchase in H), and the ROC AUC within the bucket of the model,
  BG/NBD P(no purchase) and BG/NBD expected purchases;
- **pairs**: model minus BG/NBD expected purchases in ROC AUC, split by the purchase-day bucket
  of the churner (rows) and of the customer who stayed (columns) of each (churner, stayer) pair,
  in units of 1e-4 (the cells sum to the whole difference): the diagonal is ranking within a
  bucket, the rest ranking across buckets;
- **in-time ceiling**: 5-fold cross-validated ROC AUC of a LightGBM fitted on the as-of snapshot's
  own outcomes (the labels the real model never sees; params.yaml's tree settings, 300 rounds),
  with the snapshot's features without and with the BG/NBD columns — how much ranking these
  features hold at as-of when nothing has to carry over from older cutoffs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from benchmarks.common import RESULTS
from benchmarks.experiments.model_quality import measure
from churn.columns import CHURNED, CUSTOMER_ID, CUTOFF, ROLE
from churn.config import load_params

BG_NO_PURCHASE, BG_EXPECTED = "bgnbd_p_no_purchase", "bgnbd_expected_purchases"
FREQUENCY = ([0, 1, 2, 3, 5, 8, np.inf], ["1", "2", "3", "4-5", "6-8", "9+"])
RECENCY = (
    [-1, 30, 60, 90, 180, 270, np.inf],
    ["0-30", "31-60", "61-90", "91-180", "181-270", "271+"],
)


def _auc(labels: np.ndarray, score: np.ndarray) -> float:
    return float(roc_auc_score(labels, score)) if 0 < labels.sum() < len(labels) else float("nan")


def bucket_lines(frame: pd.DataFrame, column: str, bins: tuple) -> list[str]:
    """Return markdown rows: per bucket of `column`, size, churn, mean predictions, AUCs."""
    buckets = pd.cut(frame[column], bins[0], labels=bins[1])
    lines = []
    for label, part in frame.groupby(buckets, observed=True):
        y = part["y"].to_numpy()
        lines.append(
            f"| {label} | {len(part):,} | {y.mean():.3f} | {part['p'].mean():.3f} | "
            f"{part[BG_NO_PURCHASE].mean():.3f} | {_auc(y, part['p'].to_numpy()):.4f} | "
            f"{_auc(y, part[BG_NO_PURCHASE].to_numpy()):.4f} | "
            f"{_auc(y, -part[BG_EXPECTED].to_numpy()):.4f} |"
        )
    return lines


def pair_matrix(frame: pd.DataFrame, first: np.ndarray, second: np.ndarray) -> pd.DataFrame:
    """Return AUC(first) - AUC(second) split by the purchase-day bucket of the churner (rows) and
    of the stayer (columns) of each pair, in units of 1e-4."""
    buckets = pd.cut(frame["purchase_days"], FREQUENCY[0], labels=FREQUENCY[1]).astype("string")
    y = frame["y"].to_numpy()
    total = float(y.sum() * (len(y) - y.sum()))
    out = pd.DataFrame(0.0, index=FREQUENCY[1], columns=FREQUENCY[1])
    for a in FREQUENCY[1]:
        churners = ((buckets == a).to_numpy()) & (y == 1)
        for b in FREQUENCY[1]:
            stayers = ((buckets == b).to_numpy()) & (y == 0)
            if not churners.any() or not stayers.any():
                continue
            gain = 0.0
            for score, sign in ((first, 1.0), (second, -1.0)):
                ordered = np.sort(score[stayers])
                values = score[churners]
                below = np.searchsorted(ordered, values, "left")
                ties = np.searchsorted(ordered, values, "right") - below
                gain += sign * float((below + 0.5 * ties).sum())
            out.loc[a, b] = 1e4 * gain / total
    return out


def ceiling(frame: pd.DataFrame, features: list[str], params) -> float:  # noqa: ANN001
    """Return the 5-fold cross-validated ROC AUC of a booster fitted on the as-of outcomes."""
    tree = params.train.lightgbm
    settings = {
        "objective": "binary",
        "learning_rate": tree.learning_rate,
        "num_leaves": tree.num_leaves,
        "min_data_in_leaf": tree.min_data_in_leaf,
        "feature_fraction": tree.feature_fraction,
        "bagging_fraction": tree.bagging_fraction,
        "bagging_freq": tree.bagging_freq,
        "lambda_l2": tree.lambda_l2,
        "seed": params.train.seed,
        "num_threads": 1,
        "deterministic": True,
        "verbose": -1,
    }
    y = frame["y"].to_numpy()
    matrix = frame[features].astype("float64")
    out = np.zeros(len(frame))
    folds = StratifiedKFold(5, shuffle=True, random_state=params.train.seed)
    for fit, held in folds.split(matrix, y):
        booster = lgb.train(settings, lgb.Dataset(matrix.iloc[fit], y[fit]), 300)
        out[held] = booster.predict(matrix.iloc[held])
    return _auc(y, out)


def analyse(name: str, source: Path, params) -> list[str]:  # noqa: ANN001
    """Return the markdown section of one data set."""
    result = measure(name, source, 90, "after", params, 0, params.train.seed)
    frame = result["snapshot"].assign(y=result["labels"], p=result["proba"])
    y = frame["y"].to_numpy()
    model, bg = frame["p"].to_numpy(), -frame[BG_EXPECTED].to_numpy()
    keys = {CUSTOMER_ID, CUTOFF, ROLE, CHURNED, "y", "p"}
    numeric = [c for c in frame.columns if c not in keys and frame[c].dtype.kind in "fiub"]
    plain = [c for c in numeric if not c.startswith("bgnbd_")]
    header = (
        "| bucket | customers | churn | mean p model | mean p BG/NBD | ROC AUC model | "
        "ROC AUC BG/NBD P(no purchase) | ROC AUC BG/NBD E[purchases] |"
    )
    rule = "|---|---|---|---|---|---|---|---|"
    pairs = pair_matrix(frame, model, bg)
    pair_lines = [
        "| churner \\ stayer | " + " | ".join(pairs.columns) + " |",
        "|---" * (len(pairs.columns) + 1) + "|",
        *(
            f"| {index} | " + " | ".join(f"{v:+.1f}" for v in row) + " |"
            for index, row in pairs.iterrows()
        ),
    ]
    diagonal = float(np.trace(pairs.to_numpy()))
    return [
        f"## {name} (as-of {result['as_of']}, {len(frame):,} customers, churn {y.mean():.3f}, "
        f"{result['evaluation']})",
        "",
        f"ROC AUC at as-of: model {_auc(y, model):.4f}, BG/NBD E[purchases] {_auc(y, bg):.4f}, "
        f"BG/NBD P(no purchase) {_auc(y, frame[BG_NO_PURCHASE].to_numpy()):.4f}. In-time ceiling "
        f"(5-fold CV on the as-of outcomes): {ceiling(frame, plain, params):.4f} without the "
        f"BG/NBD columns, {ceiling(frame, numeric, params):.4f} with them.",
        "",
        "By purchase days:",
        "",
        header,
        rule,
        *bucket_lines(frame, "purchase_days", FREQUENCY),
        "",
        "By recency (days):",
        "",
        header,
        rule,
        *bucket_lines(frame, "recency_days", RECENCY),
        "",
        f"Pairs (model − BG/NBD E[purchases], 1e-4 ROC AUC; total {pairs.to_numpy().sum():+.1f}, "
        f"within a bucket {diagonal:+.1f}, across buckets {pairs.to_numpy().sum() - diagonal:+.1f}):",
        "",
        *pair_lines,
        "",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", required=True, help="NAME=PATH (CDNOW file or folder)")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--out", type=Path, default=RESULTS / "where_lost.md")
    args = parser.parse_args()
    params = load_params(args.params)
    sections = []
    for spec in args.data:
        name, path = spec.split("=", 1)
        sections += analyse(name, Path(path), params)
        print("\n".join(sections[-40:]), flush=True)
    command = " ".join(["python -m benchmarks.experiments.where_lost", "--data", *args.data])
    report = f"""# Where the ranking gap against BG/NBD is won and lost at the as-of date

Generated by `{command}`. What each table is: the docstring of
`benchmarks/experiments/where_lost.py`.

{chr(10).join(sections)}"""
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report, encoding="utf-8")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
