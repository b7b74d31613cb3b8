"""Real-data check: the churn model against the baselines on CDNOW, with bootstrap CIs.

    python -m benchmarks.experiments.cdnow_eval PATH/TO/CDNOW_master.txt [--out benchmarks/results/cdnow.md]

CDNOW_master.txt ships inside the `lifetimes` wheel on PyPI (`pip download lifetimes==0.11.3
--no-deps`, then unzip; `lifetimes/datasets/CDNOW_master.txt`): 23,570 customers who first bought
in Q1 1997, every purchase to 1998-06-30. Horizon 90 days; as-of = last date - 90 days.

The real pipeline code runs end to end: the features stage's snapshot builder (on transactions
truncated at as-of, so nothing after it can leak in), `churn.train.fit_model`, and
`churn.evaluate.evaluate_model` (i) on the test cutoff exactly as `churn evaluate` does, and
(ii) on the as-of snapshot against what really happened in the 90 days after as-of.
"""

from __future__ import annotations

import argparse
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.common import (
    HORIZON,
    RESULTS,
    empty_side_tables,
    outcome_after,
    read_cdnow,
)
from churn.columns import (
    CHURNED,
    CUSTOMER_ID,
    CUTOFF,
    DATE,
    ROLE,
)
from churn.config import load_params
from churn.cutoffs import customer_share
from churn.evaluate import evaluate_model
from churn.features.build import build_snapshots
from churn.train import fit_model

SCORERS = ("model", "recency", "frequency", "rfm_logistic", "bgnbd", "bgnbd_no_purchase")
COLUMNS = ("roc_auc", "pr_auc", "log_loss", "brier", "ece", "lift_top10", "recall_top10")


def metrics_table(metrics: dict) -> str:
    """Return a markdown table: one row per scorer, the headline metrics as columns."""
    lines = ["| scorer | " + " | ".join(COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    for name in SCORERS:
        row = metrics["model"] if name == "model" else metrics["baselines"][name]
        cells = [f"{row[c]:.4f}" if c in row else "–" for c in COLUMNS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def comparison_table(metrics: dict) -> str:
    """Return a markdown table of model-minus-baseline differences with 95% bootstrap CIs."""
    lines = [
        "| baseline | Δ ROC AUC | 95% CI | Δ PR AUC | 95% CI |",
        "|---|---|---|---|---|",
    ]
    for name, row in metrics["comparison"].items():
        lines.append(
            f"| {name} | {row['roc_auc_diff']:+.4f} | "
            f"[{row['roc_auc_diff_lo']:+.4f}, {row['roc_auc_diff_hi']:+.4f}] | "
            f"{row['pr_auc_diff']:+.4f} | [{row['pr_auc_diff_lo']:+.4f}, {row['pr_auc_diff_hi']:+.4f}] |"
        )
    return "\n".join(lines)


def main() -> None:
    """Run features, train and evaluate on CDNOW and write the markdown report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cdnow", type=Path, help="path to CDNOW_master.txt")
    parser.add_argument("--out", type=Path, default=RESULTS / "cdnow.md")
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"), help="train settings")
    parser.add_argument(
        "--bgnbd", action="store_true", help="add the optional BG/NBD features (features.bgnbd)"
    )
    args = parser.parse_args()

    started = time.perf_counter()
    transactions = read_cdnow(args.cdnow)
    last = max(transactions[DATE])
    as_of = last - timedelta(days=HORIZON)
    defaults = load_params(args.params)
    params = defaults.model_copy(
        update={
            "churn": defaults.churn.model_copy(update={"horizon_days": HORIZON, "as_of": as_of}),
            "features": defaults.features.model_copy(update={"bgnbd": args.bgnbd}),
            "evaluate": defaults.evaluate.model_copy(update={"bootstrap": args.bootstrap}),
        }
    )
    # the pipeline sees nothing after as-of; the outcome is read from the full file afterwards
    known = transactions[transactions[DATE] <= as_of].reset_index(drop=True)
    customers, nps = empty_side_tables()
    snapshots = build_snapshots(known, customers, nps, params.churn, params.features, params.engine)
    train = snapshots.train
    result = fit_model(train, params.train, HORIZON, "CDNOW train snapshots")
    at_test = evaluate_model(train, result.model, params.evaluate, HORIZON, "CDNOW")

    bought = outcome_after(transactions, as_of, HORIZON)
    scored = snapshots.score.copy()
    scored[CHURNED] = (~scored[CUSTOMER_ID].isin(bought)).astype("int8")
    scored[ROLE] = "test"
    # the as-of snapshot is scored by the production model (what `churn score` uses: refit on
    # every cutoff labelled by the test cutoff); the baselines that learn (RFM logistic) are fitted
    # on the same rows, so both sides see the same, newest labels
    production = result.production_model
    test = train[ROLE] == "test"
    test_cutoff = pd.to_datetime(train.loc[test, CUTOFF]).min()
    labelled = pd.to_datetime(train[CUTOFF]) + pd.Timedelta(days=HORIZON) <= test_cutoff
    if result.production is not None:
        # plus the test cutoff's customers the production booster trained on (same hash split)
        share = customer_share(train[CUSTOMER_ID], "early_stopping")
        labelled |= test & (share < params.train.early_stopping_share)
    refit_rows = train[labelled].assign(**{ROLE: "fit"})
    at_as_of = evaluate_model(
        pd.concat([refit_rows, scored[train.columns]], ignore_index=True),
        production,
        params.evaluate,
        HORIZON,
        "CDNOW as-of",
    )
    # for reference: the evaluation model and the baselines fitted on the fit cutoffs only
    fit_rows = train[train[ROLE] == "fit"]
    at_as_of_eval = evaluate_model(
        pd.concat([fit_rows, scored[train.columns]], ignore_index=True),
        result.model,
        params.evaluate.model_copy(update={"bootstrap": 0}),
        HORIZON,
        "CDNOW as-of (evaluation model)",
    )
    elapsed = time.perf_counter() - started

    roles = train.groupby(ROLE, observed=True).agg(
        rows=(CHURNED, "size"), cutoffs=(CUTOFF, "nunique"), churn_rate=(CHURNED, "mean")
    )
    role_lines = "\n".join(
        f"| {role} | {int(r.rows)} | {int(r.cutoffs)} | {r.churn_rate:.3f} |"
        for role, r in roles.iterrows()
    )
    beats = {
        label: all(
            m["model"][k] > m["baselines"][b][k] for b in SCORERS[1:] for k in ("roc_auc", "pr_auc")
        )
        for label, m in (("test cutoff", at_test.metrics), ("as-of snapshot", at_as_of.metrics))
    }
    report = f"""# CDNOW: churn model vs baselines

Generated by `python -m benchmarks.experiments.cdnow_eval CDNOW_master.txt{" --bgnbd" if args.bgnbd else ""}` ({elapsed:.0f} s on this machine).
Features: {len(train.columns) - 4} columns{" including the optional BG/NBD features" if args.bgnbd else " (features.bgnbd off, the default)"}.
Data: {transactions[CUSTOMER_ID].nunique()} customers, {len(transactions)} transactions,
{min(transactions[DATE])} to {last}. Horizon {HORIZON} days; as-of {as_of} (last date - {HORIZON}).
Features use only transactions dated on or before as-of. `{args.params}` settings otherwise
(train: {result.rounds} boosting rounds chosen by early stopping, {result.model.calibrator.kind}
calibration). Bootstrap: {args.bootstrap} resamples of customers; 95% percentile intervals.

Training snapshots:

| role | rows | cutoffs | churn rate |
|---|---|---|---|
{role_lines}

## 1. Test cutoff {at_test.metrics["test_cutoff"]} (what `churn evaluate` reports)

{at_test.metrics["rows"]} eligible customers, churn rate {at_test.metrics["base_churn_rate"]:.3f}.

{metrics_table(at_test.metrics)}

Model minus baseline:

{comparison_table(at_test.metrics)}

## 2. As-of snapshot {as_of}, scored and compared with what really happened

{at_as_of.metrics["rows"]} eligible customers, churn rate {at_as_of.metrics["base_churn_rate"]:.3f}
(no purchase in the {HORIZON} days after as-of). Scored by the production model that `churn score`
uses ({"refit on every cutoff labelled by the test cutoff and half the test cutoff's customers, " + str(int(result.diagnostics.get("production_rows", 0))) + " rows, calibrated on the other half" if result.production is not None else "train.production_refit off: the evaluation model"});
rfm_logistic fitted on the same rows.

{metrics_table(at_as_of.metrics)}

Model minus baseline:

{comparison_table(at_as_of.metrics)}

For reference, the evaluation model (fit cutoffs + early-stopping customers, calibrated on the
calibration cutoff) on the same snapshot: ROC AUC {at_as_of_eval.metrics["model"]["roc_auc"]:.4f},
PR AUC {at_as_of_eval.metrics["model"]["pr_auc"]:.4f}, ECE {at_as_of_eval.metrics["model"]["ece"]:.4f}; rfm_logistic fitted
on the fit cutoffs only: ROC AUC {at_as_of_eval.metrics["baselines"]["rfm_logistic"]["roc_auc"]:.4f}, PR AUC
{at_as_of_eval.metrics["baselines"]["rfm_logistic"]["pr_auc"]:.4f}.

Model beats every baseline on ROC AUC and PR AUC: test cutoff {beats["test cutoff"]},
as-of snapshot {beats["as-of snapshot"]}.

Baselines: recency = days since last purchase; frequency = -purchases; rfm_logistic = logistic
regression on recency, log purchases, log spend fitted on the fit cutoffs (section 2: on the
production model's rows); bgnbd = -expected
purchases in the horizon from a BG/NBD model fitted (maximum likelihood) on the histories at the
evaluated cutoff; bgnbd_no_purchase = the same fit's probability of no purchase in the horizon
(`churn.bgnbd.probability_no_purchase`). Log loss, Brier and ECE (10 equal-width bins) only for probabilities.
"""
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report, encoding="utf-8")
    print(report)
    np.seterr(all="ignore")


if __name__ == "__main__":
    main()
