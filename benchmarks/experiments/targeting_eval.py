"""Who the at-risk list holds: the old targeting rule against the new one, judged by what happened.

    python -m benchmarks.experiments.targeting_eval --data default=generated
        cdnow=/work/cdnow/CDNOW_master.txt [--customers 50000] [--out benchmarks/results/targeting.md]

For each data set, everything after `as_of = last date - 90` is hidden; the real features stage
builds the snapshots, `churn.train.fit_model` trains, and the production model (what `churn score`
uses) scores the as-of snapshot. `churn.score.score_customers` then flags customers twice: the old
rule (net benefit > 0, no probability floor, no value cap) and the new default (net benefit > 0 and
probability >= the medium tier, value capped at the 99th percentile). Each list is judged by
`churn.backtest.backtest_run` against the purchases in the 90 days after as-of, as `churn backtest`
judges a published list: churn rate of the flagged customers against the rest's and against the
mean probability predicted for them (Wilson 95% interval on the observed rate).

`default=generated` makes the default synthetic data (`churn generate` + `churn ingest` with the
repository's params.yaml, `--customers` customers) under benchmarks/data/targeting/; a file is read
as CDNOW_master.txt; a folder holds the clean tables `churn ingest` writes.
"""

from __future__ import annotations

import argparse
import time
from datetime import timedelta
from pathlib import Path

import pandas as pd
from sklearn.metrics import roc_auc_score

from benchmarks.common import DATA, HORIZON, RESULTS, generated_interim, load_clean
from churn.backtest import backtest_run, churned_after, purchase_dates
from churn.columns import CUSTOMER_ID, DATE
from churn.config import BacktestParams, ScoreParams, TargetParams, load_params
from churn.features.build import build_snapshots
from churn.score.targeting import TIERS, score_customers, summarise_scores
from churn.train import fit_model


def rules(score: ScoreParams) -> dict[str, ScoreParams]:
    """Return the old rule (no floor, no cap) and the new default, from the params' score section."""
    old_target = score.target.model_copy(
        update={"min_probability_floor": None, "above_average": False}
    )
    tier_only = score.target.model_copy(update={"above_average": False})
    return {
        "old: net benefit > 0": score.model_copy(
            update={"target": TargetParams(**old_target.model_dump()), "value_cap_quantile": None}
        ),
        "tier floor only: net benefit > 0, p >= medium, value cap p99": score.model_copy(
            update={"target": tier_only}
        ),
        "new default: also p >= the scored customers' mean": score,
        "variant: tier floor at high, no mean guard": score.model_copy(
            update={"target": tier_only.model_copy(update={"min_probability_floor": "high"})}
        ),
    }


def pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def row(name: str, rule: str, scores: pd.DataFrame, judged: dict) -> str:
    """Return one markdown row: list size, tier mix, lowest probability, flagged vs rest vs predicted."""
    summary = summarise_scores(scores, 0)
    comparison = judged["flagged_vs_rest"]
    flagged, rest = comparison["flagged"], comparison["rest"]
    mix = " / ".join(str(summary["flagged_by_tier"][tier]) for tier in TIERS)
    interval = (
        "–"
        if flagged["ci_low"] is None
        else f"{pct(flagged['churn_rate'])} [{pct(flagged['ci_low'])}, {pct(flagged['ci_high'])}]"
    )
    low = summary["lowest_flagged_probability"]
    cap = summary["targeting"]["expected_value_cap"]
    return (
        f"| {name} | {rule} | {summary['flagged']} | {mix} | "
        f"{'–' if low is None else f'{low:.3f}'} | {interval} | {pct(flagged['predicted'])} | "
        f"{pct(rest['churn_rate'])} | {pct(rest['predicted'])} | "
        f"{'none' if cap is None else f'{cap:,.0f}'} | {'WARN' if judged['warnings'] else 'ok'} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", required=True, help="NAME=PATH or NAME=generated")
    parser.add_argument("--customers", type=int, default=50_000, help="for NAME=generated")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--out", type=Path, default=RESULTS / "targeting.md")
    args = parser.parse_args()
    defaults = load_params(args.params)
    lines = [
        "| data | rule | flagged | tiers high / medium / low | lowest flagged p | "
        "churn flagged [95% CI] | predicted flagged | churn rest | predicted rest | value cap | "
        "check |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    notes = []
    started = time.perf_counter()
    for spec in args.data:
        name, path = spec.split("=", 1)
        source = (
            generated_interim(DATA / "targeting" / name, args.customers, args.params)
            if path == "generated"
            else Path(path)
        )
        transactions, customers, nps = load_clean(source)
        as_of = max(transactions[DATE]) - timedelta(days=HORIZON)
        known = transactions[transactions[DATE] <= as_of].reset_index(drop=True)
        churn = defaults.churn.model_copy(update={"horizon_days": HORIZON, "as_of": as_of})
        snapshots = build_snapshots(
            known, customers, nps, churn, defaults.features, defaults.engine
        )
        model = fit_model(snapshots.train, defaults.train, HORIZON, name).production_model
        snapshot = snapshots.score
        probability = model.predict_proba(snapshot)
        purchases = purchase_dates(transactions)
        for rule, params in rules(defaults.score).items():
            scores = score_customers(snapshot, probability, params, model_version="as-of")
            judged = backtest_run(scores, purchases, as_of, HORIZON, BacktestParams())
            lines.append(row(name, rule, scores, judged))
            print(lines[-1], flush=True)
            notes.extend(f"- {name}, {rule.split(':')[0]} rule: {w}" for w in judged["warnings"])
        churned = churned_after(snapshot[CUSTOMER_ID], purchases, as_of, HORIZON)
        notes.append(
            f"- {name}: as-of {as_of}, {len(snapshot):,} customers scored, churn rate "
            f"{churned.mean():.1%}, mean predicted {probability.mean():.1%}, as-of ROC AUC "
            f"{roc_auc_score(churned, probability):.4f}"
        )
    elapsed = time.perf_counter() - started
    report = f"""# Targeting: who the at-risk list holds, old rule against new

Generated by `python -m benchmarks.experiments.targeting_eval --data {" ".join(args.data)}
--customers {args.customers}` ({elapsed:.0f} s on this machine).

Each data set: everything after as-of (last date − {HORIZON} days) is hidden, the real features
and train code build and fit the model with `{args.params}` settings, the production model scores
the as-of snapshot, and each rule's list is judged by `churn.backtest.backtest_run` against the
purchases in the {HORIZON} days after as-of (no campaign ran, so every scored customer is judged).
"old" is the rule before this change (net benefit > 0 alone, no value cap); "tier floor only" adds
churn probability ≥ `score.tiers.medium` and caps expected value at its 99th percentile over the
scored customers; "new default" also needs churn probability ≥ the scored customers' mean
(`score.target.above_average`). Control customers are included (they are flagged too).
"check" is what `churn backtest` would say: WARN when what was predicted for the flagged customers
lies above the 95% interval of their observed churn by more than `backtest.shortfall_tolerance`.
The variant row (floor at `score.tiers.high`, no mean guard) is for comparison only.

{chr(10).join(lines)}

{chr(10).join(notes)}
"""
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report, encoding="utf-8")
    print(report)


if __name__ == "__main__":
    main()
