"""How many customers does training need? Test-cutoff quality with train.sample_customers.

    python -m benchmarks.experiments.train_sample --customers 60000 --samples 5000 10000 20000
        [--out benchmarks/results/train_sample.md]

Generates the default synthetic data with `--customers` customers (`churn generate` + `churn
ingest`, once, under benchmarks/data/), builds the snapshots with the repository's params, then
trains the evaluation model (params.yaml's train section, production_refit off) on every fit
customer and on each sample size, and reports ROC AUC and ECE on the untouched test cutoff.
"""

from __future__ import annotations

import argparse
import time

import pandas as pd
from sklearn.metrics import roc_auc_score

from benchmarks.common import DATA, RESULTS, ROOT, generated_interim
from churn.columns import CHURNED, CUSTOMER_ID, ROLE
from churn.config import load_params
from churn.features.build import build_snapshots
from churn.metrics import probability_metrics
from churn.train import fit_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=60000)
    parser.add_argument("--samples", type=int, nargs="+", default=[5000, 10000, 20000])
    parser.add_argument("--out", default=str(RESULTS / "train_sample.md"))
    args = parser.parse_args()
    defaults = load_params(ROOT / "params.yaml")
    interim = generated_interim(DATA / f"train_sample_{args.customers}", args.customers)
    snapshots = build_snapshots(
        interim / "transactions.parquet",
        interim / "customers.parquet",
        interim / "nps.parquet",
        defaults.churn,
        defaults.features,
        defaults.engine,
    ).train
    test = snapshots[snapshots[ROLE] == "test"]
    fit = snapshots[snapshots[ROLE] == "fit"]
    labels = test[CHURNED].to_numpy()
    lines = [
        f"Generated data, {args.customers:,} customers: {len(snapshots):,} training rows, "
        f"{fit[CUSTOMER_ID].nunique():,} fit customers in {len(fit):,} fit rows, "
        f"{len(test):,} test rows. Command: `python -m benchmarks.experiments.train_sample "
        f"--customers {args.customers} --samples {' '.join(map(str, args.samples))}`.",
        "",
        "| sample_customers | fit rows | rounds | test ROC AUC | Δ AUC | test ECE | Δ ECE | fit s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    full: dict[str, float] = {}
    for sample in [None, *args.samples]:
        params = defaults.train.model_copy(
            update={"sample_customers": sample, "production_refit": False}
        )
        started = time.perf_counter()
        result = fit_model(snapshots, params, defaults.churn.horizon_days, "benchmark")
        seconds = time.perf_counter() - started
        proba = result.model.predict_proba(test)
        auc = float(roc_auc_score(labels, proba))
        ece = float(probability_metrics(labels, proba)["ece"])
        full = full or {"auc": auc, "ece": ece}
        lines.append(
            f"| {sample or 'all'} | {int(result.diagnostics['rows_fit']):,} | {result.rounds} | "
            f"{auc:.4f} | {auc - full['auc']:+.4f} | {ece:.4f} | {ece - full['ece']:+.4f} | "
            f"{seconds:.1f} |"
        )
        print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    with open(args.out, "a", encoding="utf-8") as out:
        out.write(f"\n## {pd.Timestamp.now(tz='UTC'):%Y-%m-%d %H:%M} UTC\n\n{text}")
    print(text)


if __name__ == "__main__":
    main()
