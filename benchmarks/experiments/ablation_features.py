"""Feature-group ablation: out-of-time ROC AUC / PR AUC without each group, synthetic and CDNOW.

For each dataset: build snapshots with the features stage, fit a quick LightGBM (fixed params and
seed) on the `fit` cutoffs, measure on the `test` cutoff; then refit with one feature group
removed at a time. Groups come from churn.features.definitions (docs/features.md). Groups whose
columns are all null on a dataset (no customers table / NPS on CDNOW) are skipped there.

CDNOW (Fader & Hardie's CD retailer sample, shipped inside the `lifetimes` package; not a
dependency of churn):
    pip download lifetimes==0.11.3 --no-deps -d /tmp/x
    python -m benchmarks.experiments.ablation_features --cdnow /tmp/x/Lifetimes-0.11.3-py3-none-any.whl
(the path may be the wheel, an sdist .tar.gz, or the extracted CDNOW_master.txt). CDNOW uses
horizon 90 days and as_of = last date - 90, so no label window touches the last 90 days.

Writes benchmarks/results/ablation.md.
"""

from __future__ import annotations

import argparse
import time
from datetime import timedelta
from pathlib import Path

import lightgbm as lgb
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

from benchmarks.common import (
    DATA,
    RESULTS,
    empty_side_tables,
    generated_interim,
    load_clean,
    read_cdnow,
)
from churn import columns as c
from churn.config import ChurnParams, EngineParams, FeaturesParams, GenerateParams
from churn.features import build_snapshots, feature_groups
from churn.features.definitions import feature_list


def categorical_names(params: FeaturesParams) -> list[str]:
    """Return the categorical (string) feature names."""
    return [feature.name for feature in feature_list(params) if feature.categorical]


CORE = [
    c.RECENCY_DAYS,
    c.TENURE_DAYS,
    c.PURCHASES,
    c.PURCHASE_DAYS,
    c.SPEND_TOTAL,
    c.AOV,
    c.SPEND_MAX,
    c.SPEND_90D,
    c.PURCHASES_90D,
    c.GAP_MEAN_DAYS,
    c.CHANNEL,
    c.REGION,
]
LGB_PARAMS = {
    "objective": "binary",
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_data_in_leaf": 100,
    "feature_fraction": 0.9,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "num_threads": 2,
    "deterministic": True,
    "force_row_wise": True,
    "verbosity": -1,
}
ROUNDS = 300


def prepare(
    frame: pd.DataFrame, names: list[str], categories: dict[str, list[str]]
) -> pd.DataFrame:
    """Return the model matrix: numeric features as float, categoricals with fixed categories."""
    out = {}
    for name in names:
        if name in categories:
            out[name] = pd.Categorical(frame[name].astype(object), categories=categories[name])
        else:
            out[name] = frame[name].astype("float64")
    return pd.DataFrame(out, index=frame.index)


def evaluate(fit: pd.DataFrame, test: pd.DataFrame, names: list[str], cats: list[str], seed: int):
    """Return (ROC AUC, PR AUC) on test of a LightGBM fitted on fit with these features."""
    categories = {
        name: sorted(set(fit[name].dropna()) | set(test[name].dropna()))
        for name in names
        if name in cats
    }
    train_x = prepare(fit, names, categories)
    dataset = lgb.Dataset(
        train_x,
        fit[c.CHURNED].to_numpy(),
        categorical_feature=[n for n in names if n in categories] or "auto",
        free_raw_data=True,
    )
    booster = lgb.train({**LGB_PARAMS, "seed": seed}, dataset, num_boost_round=ROUNDS)
    scores = booster.predict(prepare(test, names, categories))
    labels = test[c.CHURNED].to_numpy()
    return roc_auc_score(labels, scores), average_precision_score(labels, scores)


def ablate(
    label: str, snapshots, params: FeaturesParams, only: list[str] | None = None
) -> list[str]:
    """Return markdown lines: full model, noise across seeds, each group removed, core only."""
    train = snapshots.train
    fit, test = train[train[c.ROLE] == "fit"], train[train[c.ROLE] == "test"]
    groups = feature_groups(params)
    cats = categorical_names(params)
    usable = {group: names for group, names in groups.items() if not fit[names].isna().all().all()}
    skipped = sorted(set(groups) - set(usable))
    everything = [name for names in usable.values() for name in names]
    started = time.perf_counter()
    full_roc, full_pr = evaluate(fit, test, everything, cats, seed=0)
    seeds = [evaluate(fit, test, everything, cats, seed=s) for s in (1, 2)]
    spread_roc = max(abs(r - full_roc) for r, _ in seeds)
    spread_pr = max(abs(p - full_pr) for _, p in seeds)
    test_cutoff = test[c.CUTOFF].iloc[0]
    lines = [
        f"### {label}",
        "",
        f"fit: {fit[c.CUTOFF].nunique()} cutoffs, {len(fit):,} rows; test cutoff {test_cutoff}: "
        f"{len(test):,} rows, churn rate {test[c.CHURNED].mean():.3f}. "
        f"Seed noise (same features, seeds 1-2 vs 0): ROC AUC ±{spread_roc:.4f}, "
        f"PR AUC ±{spread_pr:.4f}."
        + (f" Skipped (all null here): {', '.join(skipped)}." if skipped else ""),
        "",
        "| features | n | ROC AUC | Δ ROC AUC | PR AUC | Δ PR AUC |",
        "|---|---:|---:|---:|---:|---:|",
        f"| all | {len(everything)} | {full_roc:.4f} | | {full_pr:.4f} | |",
    ]
    rows = []
    for group, names in usable.items():
        if only and group not in only:
            continue
        kept = [name for name in everything if name not in names]
        roc, pr = evaluate(fit, test, kept, cats, seed=0)
        rows.append(
            (
                roc - full_roc,
                f"| − {group} ({', '.join(names)}) | {len(kept)} | {roc:.4f} | "
                f"{roc - full_roc:+.4f} | {pr:.4f} | {pr - full_pr:+.4f} |",
            )
        )
    lines += [line for _, line in sorted(rows)]
    if only:  # just the asked-for groups: no core-only / recency-only rows
        print(f"{label}: {time.perf_counter() - started:.0f} s of model fits", flush=True)
        return [*lines, ""]
    core = [name for name in CORE if name in everything]
    roc, pr = evaluate(fit, test, core, cats, seed=0)
    lines.append(
        f"| core only ({len(core)} contract names) | {len(core)} | {roc:.4f} | "
        f"{roc - full_roc:+.4f} | {pr:.4f} | {pr - full_pr:+.4f} |"
    )
    for name in (c.RECENCY_DAYS,):
        roc, pr = evaluate(fit, test, [name], cats, seed=0)
        lines.append(
            f"| {name} only | 1 | {roc:.4f} | {roc - full_roc:+.4f} | {pr:.4f} | "
            f"{pr - full_pr:+.4f} |"
        )
    print(f"{label}: {time.perf_counter() - started:.0f} s of model fits", flush=True)
    return [*lines, ""]


def synthetic_snapshots(customers: int, params: FeaturesParams):
    """Return snapshots of the default synthetic data (seeded), through `churn generate` + `ingest`."""
    interim = generated_interim(DATA / f"ablation_{customers}", customers)
    return build_snapshots(*load_clean(interim), ChurnParams(), params, EngineParams())


def cdnow_snapshots(path: Path, params: FeaturesParams):
    """Return CDNOW snapshots with horizon 90 and as_of = last date - 90."""
    transactions = read_cdnow(path)
    as_of = max(transactions["date"]) - timedelta(days=90)
    churn = ChurnParams(horizon_days=90, as_of=as_of)
    snapshots = build_snapshots(transactions, *empty_side_tables(), churn, params, EngineParams())
    return snapshots, params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cdnow", type=Path, help="lifetimes wheel/sdist or CDNOW_master.txt")
    parser.add_argument("--customers", type=int, default=GenerateParams().customers)
    parser.add_argument(
        "--bgnbd", action="store_true", help="add the optional BG/NBD features (features.bgnbd)"
    )
    parser.add_argument(
        "--only", nargs="+", metavar="GROUP", help="remove only these groups (quicker run)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "ablation.md")
    args = parser.parse_args()
    params = FeaturesParams(bgnbd=args.bgnbd)
    out = [
        "# Feature-group ablation",
        "",
        "Generated by `python -m benchmarks.experiments.ablation_features`. LightGBM with fixed params "
        f"({ROUNDS} rounds, learning rate {LGB_PARAMS['learning_rate']}, "
        f"{LGB_PARAMS['num_leaves']} leaves, seed 0) fitted on the `fit` cutoffs, measured on "
        "the `test` cutoff (out of time). Δ = metric without the group − metric with all "
        "features: negative means the group helps. Rows sorted by Δ ROC AUC.",
        "",
    ]
    snapshots = synthetic_snapshots(args.customers, params)
    out += ablate(
        f"Synthetic default data ({args.customers:,} customers, seed 42)",
        snapshots,
        params,
        args.only,
    )
    if args.cdnow:
        cdnow, cdnow_params = cdnow_snapshots(args.cdnow, params)
        out += ablate(
            f"CDNOW (23,570 customers, as_of {cdnow.as_of}, horizon 90)",
            cdnow,
            cdnow_params,
            args.only,
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(out))
    print("\n".join(out))


if __name__ == "__main__":
    main()
