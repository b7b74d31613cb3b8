"""One as-of benchmark per data shape: CDNOW (real), the default synthetic data and generator shapes,
each run as a user lives it — hide the last H days, run features + train, score the as-of snapshot
with the default targeting and reasons, compare with what happened.

    python -m benchmarks.realdata_shapes --cdnow /tmp/lt/lifetimes/datasets/CDNOW_master.txt \
        [--customers 4000] [--bootstrap 500] [--out benchmarks/results/realdata_shapes.md]

CDNOW is not a dependency of the project: CDNOW_master.txt (Fader & Hardie's CD retailer sample,
23,570 customers, Jan 1997 - Jun 1998) ships inside the `lifetimes` wheel on PyPI. Get it with

    pip download lifetimes==0.11.3 --no-deps -d /tmp/lt
    cd /tmp/lt && unzip Lifetimes-0.11.3-py3-none-any.whl lifetimes/datasets/CDNOW_master.txt

and pass the file (or the wheel itself) as --cdnow. Without --cdnow the CDNOW row is left out.

Shapes (made once under benchmarks/data/shapes/ by `churn generate` + `churn ingest` with the
shape's `generate:` overrides on params.yaml, --customers customers each; H = 90 days):
- default: params.yaml's `generate` section as it is (3 years, 20% of customers from before the
  export, customers keep arriving, seasonality 0.3);
- short_history: 9 months of data, so at as-of only 6 months are known: one training cutoff,
  evaluated on an in-time holdout;
- young_acquiring: 2 years, nobody from before the export, customers keep arriving;
- ageing_closed: 3 years, everybody acquired in the first quarter, nobody after: the base ages.

Per data set, `benchmarks.experiments.model_quality.measure` hides everything after
as-of = last date - H and trains as `churn features` / `churn train` would; it scores the as-of
snapshot with the production model and every `churn evaluate` baseline (ROC AUC of the model
against the best of recency, frequency and the two BG/NBD scores, with a paired bootstrap
interval; ECE in 10 equal-width bins). Then `churn.score` flags the list with params.yaml's
`score` section and explains the flagged customers (`explain_reasons`, as `churn score` does),
and `churn.backtest.backtest_run` judges the list against the purchases in the H days after
as-of (Wilson 95% intervals), as `churn backtest` judges a published list.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.common import RESULTS, load_clean
from benchmarks.experiments.model_quality import CLOSED, Shape, measure, shape_data
from benchmarks.experiments.reasons_eval import BEHAVIOURAL
from churn.backtest import backtest_run, purchase_dates
from churn.columns import AT_RISK, CUSTOMER_ID
from churn.config import BacktestParams, Params, load_params
from churn.model import ChurnModel
from churn.score.phrasing import build_references
from churn.score.reasons import explain_reasons, relative_contributions
from churn.score.targeting import score_customers

HORIZON = 90
SHAPES = (
    Shape("default", {}),
    Shape("short_history", {"days": 273}),
    Shape("young_acquiring", {"days": 730, "pre_period_share": 0.0}),
    Shape("ageing_closed", {"days": 1095, **CLOSED}),
)
SCORER_METRICS = ("roc_auc", "pr_auc", "ece")
NONE = "(none)"  # a flagged customer with no reason that raises their risk


def explain_list(
    snapshot: pd.DataFrame, model: ChurnModel, params: Params
) -> tuple[pd.DataFrame, list[list[Any]]]:
    """Return the scores (default targeting) and, per flagged customer, the reasons shown."""
    probability = model.predict_proba(snapshot)
    scores = score_customers(snapshot, probability, params.score, model_version="as-of")
    flagged = scores[AT_RISK].to_numpy(dtype=bool)
    if not flagged.any():
        return scores, []
    by_id = snapshot.set_index(snapshot[CUSTOMER_ID].astype("string"))
    rows = by_id.loc[scores.loc[flagged, CUSTOMER_ID].to_numpy()].reset_index(drop=True)
    reasons = params.score.reasons
    # as build_scores: "customers like them" and the average customer whose risk a reason raises
    # are every scored customer, not only the flagged
    contributions = relative_contributions(model, rows, reasons, snapshot)
    references = build_references(snapshot, reasons.peer_tenure_bands_days, probability)
    shown = explain_reasons(contributions, model.spec.names, rows, reasons, references)
    column = {name: i for i, name in enumerate(model.spec.names)}
    # each shown reason with its stated feature's contribution, to check it raises the risk too
    stated = [
        [(reason, float(contributions[row, column[reason.feature]])) for reason in row_reasons]
        for row, row_reasons in enumerate(shown)
    ]
    return scores, stated


def reference_of(template: str) -> str:
    """Return what a reason's text compares the customer with, from its template id."""
    if "_vs_own" in template:
        return "own rhythm"
    if template.endswith("_vs_peers") or template == "nps_unanswered":
        return "customers like them"
    if template.endswith(("_vs_population", "_vs_everyone")):
        return "all customers"
    return "none"


def summarise_reasons(stated: list[list[tuple[Any, float]]]) -> dict[str, Any]:
    """Return the shares of flagged customers per reason family (any position and first), with a
    risk-raising reason at all, the shares of shown reasons per reference their text compares
    with, and the count of shown reasons whose family or stated feature would lower the risk
    (contributions relative to `score.reasons.contribution_reference`)."""
    flagged = len(stated)
    if not flagged:
        return {"flagged": 0}
    shown = [[reason for reason, _ in row] for row in stated]
    given = Counter(family for row in shown for family in {r.family for r in row})
    first = Counter(row[0].family if row else NONE for row in shown)
    references = Counter(reference_of(r.template) for row in shown for r in row)
    total = sum(references.values())
    return {
        "flagged": flagged,
        "with_risk_raising_reason": sum(bool(row) for row in shown) / flagged,
        "first_reason_behavioural": sum(first[f] for f in BEHAVIOURAL) / flagged,
        "reason_share": {f: n / flagged for f, n in given.most_common()},
        "first_reason_share": {f: n / flagged for f, n in first.most_common()},
        "reasons_shown": total,
        "reference_share": {k: n / total for k, n in references.most_common()} if total else {},
        "first_reason_reference_share": {
            k: n / flagged
            for k, n in Counter(
                reference_of(row[0].template) if row else NONE for row in shown
            ).most_common()
        },
        # shown alone because no family adds risk as a whole (churn.score.reasons, basis)
        "single_feature_reasons": sum(r.basis == "feature" for row in shown for r in row),
        "templates": dict(Counter(r.template for row in shown for r in row).most_common()),
        "reasons_lowering_risk": sum(
            reason.contribution <= 0 or feature <= 0 for row in stated for reason, feature in row
        ),
    }


def run_one(name: str, source: Path, params: Params, bootstrap: int, seed: int) -> dict[str, Any]:
    """Return the row of one data set: model quality, the flagged list against what happened,
    and the reasons."""
    started = time.perf_counter()
    quality = measure(name, source, HORIZON, "after", params, bootstrap, seed)
    scores, shown = explain_list(quality["snapshot"], quality["production_model"], params)
    transactions, _, _ = load_clean(source)
    judged = backtest_run(
        scores, purchase_dates(transactions), quality["as_of"], HORIZON, BacktestParams()
    )
    comparison = judged["flagged_vs_rest"]
    model = quality["metrics"]["model"]
    return {
        "data": name,
        "as_of": str(quality["as_of"]),
        "history_days": (quality["as_of"] - quality["first_date"]).days + 1,
        "horizon_days": HORIZON,
        "customers_scored": quality["rows"],
        "churn_rate": round(quality["churn_rate"], 4),
        "evaluation": quality["evaluation"],
        "model_roc_auc": round(model["roc_auc"], 4),
        "model_pr_auc": round(model["pr_auc"], 4),
        "ece": round(model["ece"], 4),
        "best_baseline": quality["best"],
        "best_baseline_roc_auc": round(quality["metrics"][quality["best"]]["roc_auc"], 4),
        "roc_auc_diff": {k: round(v, 4) for k, v in quality["diff"].items()},
        # every scorer on the same customers: the model and each `churn evaluate` baseline
        "scorers": {
            name: {k: round(float(v), 4) for k, v in metrics.items() if k in SCORER_METRICS}
            for name, metrics in quality["metrics"].items()
        },
        "model_minus_each": {
            name: round(model["roc_auc"] - quality["metrics"][name]["roc_auc"], 4)
            for name in quality["metrics"]
            if name != "model"
        },
        "flagged": int(scores[AT_RISK].sum()),
        "flagged_vs_rest": comparison,
        "backtest_warnings": judged["warnings"],
        "reasons": summarise_reasons(shown),
        "seconds": round(time.perf_counter() - started, 1),
    }


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def _rate(group: dict[str, Any]) -> str:
    if group["churn_rate"] is None:
        return "–"
    return (
        f"{_pct(group['churn_rate'])} [{_pct(group['ci_low'])}, {_pct(group['ci_high'])}] "
        f"(pred. {_pct(group['predicted'])})"
    )


def table_row(row: dict[str, Any]) -> str:
    """Return one markdown row of the consolidated table."""
    diff, reasons = row["roc_auc_diff"], row["reasons"]
    shares = ", ".join(
        f"{family} {_pct(share)}" for family, share in reasons.get("reason_share", {}).items()
    )
    return (
        f"| {row['data']} | {row['history_days']} | {row['evaluation']} | "
        f"{row['model_roc_auc']:.4f} | {row['best_baseline']} {row['best_baseline_roc_auc']:.4f} "
        f"| {diff['roc_auc_diff']:+.4f} [{diff['roc_auc_diff_lo']:+.4f}, "
        f"{diff['roc_auc_diff_hi']:+.4f}] | {row['ece']:.4f} | {row['flagged']:,} of "
        f"{row['customers_scored']:,} | {_rate(row['flagged_vs_rest']['flagged'])} | "
        f"{_rate(row['flagged_vs_rest']['rest'])} | "
        f"{_pct(reasons.get('with_risk_raising_reason'))} | "
        f"{_pct(reasons.get('first_reason_behavioural'))} | {shares or '–'} |"
    )


def _shares(shares: dict[str, float]) -> str:
    return ", ".join(f"{name} {_pct(share)}" for name, share in shares.items()) or "–"


def reason_lines(rows: list[dict[str, Any]]) -> list[str]:
    """Return the markdown table of the reasons shown to each data set's flagged customers."""
    lines = [
        "| data | flagged | with a risk-raising reason | first reason behavioural | "
        "first reason's family (share of flagged) | reasons shown | what the texts compare with "
        "(share of reasons) | first reason compares with (share of flagged) | shown alone "
        "(single feature) | lowering risk |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        reasons = row["reasons"]
        if not reasons.get("flagged"):
            lines.append(f"| {row['data']} | 0 | – | – | – | – | – | – | – | – |")
            continue
        lines.append(
            f"| {row['data']} | {reasons['flagged']:,} | "
            f"{_pct(reasons['with_risk_raising_reason'])} | "
            f"{_pct(reasons['first_reason_behavioural'])} | "
            f"{_shares(reasons['first_reason_share'])} | {reasons['reasons_shown']:,} | "
            f"{_shares(reasons['reference_share'])} | "
            f"{_shares(reasons['first_reason_reference_share'])} | "
            f"{reasons['single_feature_reasons']:,} | {reasons['reasons_lowering_risk']} |"
        )
    return lines


def scorer_lines(rows: list[dict[str, Any]]) -> list[str]:
    """Return the markdown table of every scorer's ROC AUC, PR AUC and ECE per data set."""
    lines = [
        "| data | scorer | ROC AUC | PR AUC | ECE | model − this ROC AUC |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        for name, metrics in row["scorers"].items():
            ece = metrics.get("ece")
            diff = row["model_minus_each"].get(name)
            lines.append(
                f"| {row['data']} | {name} | {metrics['roc_auc']:.4f} | {metrics['pr_auc']:.4f} | "
                f"{'–' if ece is None else f'{ece:.4f}'} | "
                f"{'' if diff is None else f'{diff:+.4f}'} |"
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cdnow", type=Path, help="CDNOW_master.txt or the lifetimes wheel")
    parser.add_argument("--customers", type=int, default=4000, help="customers per shape")
    parser.add_argument("--shapes", nargs="*", default=[s.name for s in SHAPES])
    parser.add_argument("--bootstrap", type=int, default=500)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--out", type=Path, default=RESULTS / "realdata_shapes.md")
    args = parser.parse_args()
    np.seterr(all="ignore")
    params = load_params(args.params)
    datasets = [("cdnow", args.cdnow)] if args.cdnow else []
    datasets += [(s.name, shape_data(s, args.customers)) for s in SHAPES if s.name in args.shapes]
    started = time.perf_counter()
    rows = []
    for name, source in datasets:
        rows.append(run_one(name, source, params, args.bootstrap, args.seed))
        print(table_row(rows[-1]), f"({rows[-1]['seconds']:.0f} s)", flush=True)
    elapsed = time.perf_counter() - started
    command = " ".join(
        ["python -m benchmarks.realdata_shapes"]
        + (["--cdnow", "CDNOW_master.txt"] if args.cdnow else [])
        + ["--customers", str(args.customers), "--bootstrap", str(args.bootstrap)]
    )
    lines = [
        "| data | history days at as-of | evaluation | model ROC AUC | best baseline ROC AUC | "
        "model − best [95% CI] | ECE | flagged | churn flagged [95% CI] | churn rest [95% CI] | "
        "flagged with a risk-raising reason | first reason behavioural | customers given each "
        "reason family (share of flagged) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        *(table_row(row) for row in rows),
    ]
    warnings = [f"- {row['data']}: {w}" for row in rows for w in row["backtest_warnings"]]
    lowering = sum(row["reasons"].get("reasons_lowering_risk", 0) for row in rows)
    report = f"""# As-of benchmark per data shape: CDNOW, default synthetic data, generator shapes

Generated by `{command}` ({elapsed:.0f} s on this machine; `{args.params}` as committed).
How to get CDNOW and what each shape is: the docstring of `benchmarks/realdata_shapes.py`.

Each row hides everything after as-of = last date − {HORIZON} days, trains on what is left and
scores the as-of snapshot with the production model. **history days**: days of data known at
as-of. **evaluation**: what the pipeline's own metrics would be labelled (`out_of_time`, or
`in_time_holdout` when the history is too short for a test cutoff). The ROC AUC, the ECE (10
equal-width bins) and the churn rates are measured against what really happened in the {HORIZON}
days after as-of. **best baseline**: the best of recency, frequency, BG/NBD expected purchases
(`bgnbd`) and BG/NBD P(no purchase in H) (`bgnbd_no_purchase`) on the same customers; the
interval is a paired customer bootstrap ({args.bootstrap} resamples). **flagged**: the default
rule of `score.target` (net benefit > 0, probability ≥ the medium tier and ≥ the scored
customers' mean), control customers included; churn rates with Wilson 95% intervals and the mean
predicted probability of each group. **Reasons**: the reasons `churn score` shows the flagged
customers, with contributions measured from `score.reasons.contribution_reference`
(`{params.score.reasons.contribution_reference}`: "scored" is the average scored customer —
each feature's TreeSHAP value minus its mean over the scored snapshot); every reason shown raises
that customer's risk above it (shown reasons whose contribution or whose stated feature's
contribution is ≤ 0, all rows: {lowering}); "first reason behavioural" = recency, frequency,
spend trend, refunds or NPS first.

{chr(10).join(lines)}

Reasons per data set. **what the texts compare with**: the reference of each shown reason's
text — the customer's own rhythm (`*_vs_own*`), customers like them (median of the scored
customers in the same tenure band, `*_vs_peers`) or all customers (tenure, region, channel).
**shown alone**: reasons stated by a single feature that adds risk, shown only when no family
adds risk as a whole (`churn.score.reasons.explain_reasons`). **lowering risk**: shown reasons
whose family or stated feature has a contribution ≤ 0.

{chr(10).join(reason_lines(rows))}

Every scorer on the same customers (ECE only for the scorers that are probabilities; the RFM
logistic regression is fitted on the training rows and is not part of the goal's "best baseline"):

{chr(10).join(scorer_lines(rows))}

{"Backtest warnings:" + chr(10) + chr(10).join(warnings) if warnings else "No backtest warning: on no data set did what was predicted for the flagged customers lie above the interval of their observed churn by more than `backtest.shortfall_tolerance`."}

The same rows with every field: `{args.out.with_suffix(".json").name}`.
"""
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report, encoding="utf-8")
    args.out.with_suffix(".json").write_text(
        json.dumps({"command": command, "seconds": round(elapsed), "rows": rows}, indent=2) + "\n",
        encoding="utf-8",
    )
    print(report)


if __name__ == "__main__":
    main()
