"""Out-of-time check of training choices: score a past as-of snapshot, compare with what happened.

    python benchmarks/asof_eval.py [--data NAME=DIR_OR_CDNOW_FILE ...] [--shifts 0 60]
        [--out benchmarks/results/season.md]

For each data set and shift s, everything after `as_of = last date - 90 - s` is hidden; the real
features stage builds the snapshots, `churn.train.fit_model` trains, and the as-of snapshot is
scored by the production model (what `churn score` uses) and by the evaluation model, then
compared with the purchases that really followed. Variants: `features.season` on/off.

A DIR holds the clean tables `churn ingest` writes (transactions.parquet, and customers.parquet /
nps.parquet when present); a file is read as CDNOW_master.txt.
"""

from __future__ import annotations

import argparse
import time
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
from cdnow_eval import empty_side_tables, outcome_after, read_cdnow
from sklearn.metrics import average_precision_score, roc_auc_score

from churn.columns import CHURNED, CUSTOMER_ID, DATE, ROLE
from churn.config import load_params
from churn.evaluate import expected_calibration_error
from churn.features.build import build_snapshots
from churn.train import fit_model

HORIZON = 90


def load(source: Path) -> tuple[pd.DataFrame, object, object]:
    """Return clean transactions and side tables from an ingest folder or a CDNOW file."""
    if source.is_file():
        customers, nps = empty_side_tables()
        return read_cdnow(source), customers, nps
    empty_customers, empty_nps = empty_side_tables()
    customers = source / "customers.parquet"
    nps = source / "nps.parquet"
    return (
        pd.read_parquet(source / "transactions.parquet"),
        pq.read_table(customers) if customers.is_file() else empty_customers,
        pq.read_table(nps) if nps.is_file() else empty_nps,
    )


def truncated(specs: list[str], shifts: list[int]):  # noqa: ANN201
    """Yield (name, as_of, transactions known at as_of, customers, nps, all transactions).

    Each spec is NAME=PATH; as_of = last date - HORIZON - shift, and nothing after it is kept."""
    for spec in specs:
        name, path = spec.split("=", 1)
        transactions, customers, nps = load(Path(path))
        last = max(transactions[DATE])
        for shift in shifts:
            as_of = last - timedelta(days=HORIZON + shift)
            known = transactions[transactions[DATE] <= as_of].reset_index(drop=True)
            yield name, as_of, known, customers, nps, transactions


def scores(labels, proba) -> dict[str, float]:  # noqa: ANN001
    return {
        "roc_auc": roc_auc_score(labels, proba),
        "pr_auc": average_precision_score(labels, proba),
        "ece": expected_calibration_error(labels, proba, 10),
        "mean_p": float(proba.mean()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", required=True, help="NAME=PATH")
    parser.add_argument("--shifts", nargs="+", type=int, default=[0, 60])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/season.md"))
    args = parser.parse_args()
    defaults = load_params(args.params)
    lines = [
        "| data | as-of | season | model | as-of ROC AUC | PR AUC | ECE | mean p / churn rate |"
        " test-cutoff ECE (evaluation model) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    started = time.perf_counter()
    for name, as_of, known, customers, nps, transactions in truncated(args.data, args.shifts):
        bought = outcome_after(transactions, as_of, HORIZON)
        for season in (False, True):
            features = defaults.features.model_copy(
                update={"horizon_days": HORIZON, "as_of": as_of, "season": season}
            )
            snapshots = build_snapshots(known, customers, nps, features)
            result = fit_model(snapshots.train, defaults.train, HORIZON, name)
            rows = snapshots.score
            labels = (~rows[CUSTOMER_ID].isin(bought)).astype("int8").to_numpy()
            test = snapshots.train[snapshots.train[ROLE] == "test"]
            test_ece = expected_calibration_error(
                test[CHURNED].to_numpy(), result.model.predict_proba(test), 10
            )
            for label, model in (
                ("production", result.production_model),
                ("evaluation", result.model),
            ):
                s = scores(labels, model.predict_proba(rows))
                lines.append(
                    f"| {name} | {as_of} | {'on' if season else 'off'} | {label} | "
                    f"{s['roc_auc']:.4f} | {s['pr_auc']:.4f} | {s['ece']:.4f} | "
                    f"{s['mean_p']:.3f} / {labels.mean():.3f} | {test_ece:.4f} |"
                )
                print(lines[-1], flush=True)
    elapsed = time.perf_counter() - started
    report = f"""# Scoring a past as-of snapshot: season features and the production refit

Generated by `python benchmarks/asof_eval.py --data {" ".join(args.data)} --shifts
{" ".join(map(str, args.shifts))}` ({elapsed:.0f} s on this machine).

Each row hides everything after as-of, trains with `{args.params}` settings, scores the as-of
snapshot and compares it with what really happened in the {HORIZON} days after it. "production"
is the model `churn score` uses (refit on every cutoff labelled by the test cutoff plus the test
cutoff's early-stopping customers, calibrated on the other test customers); "evaluation" is the model `churn evaluate` measures (fit cutoffs, calibrated on
the calibration cutoff). ECE: 10 equal-width bins. The last column is the evaluation model's ECE
on its own test cutoff (what `reports/metrics.json` would show).

{chr(10).join(lines)}
"""
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report, encoding="utf-8")
    print(report)


if __name__ == "__main__":
    main()
