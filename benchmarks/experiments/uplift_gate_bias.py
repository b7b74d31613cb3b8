"""Is the uplift gate's estimate biased when a contact does nothing? Many cheap seeds.

    python -m benchmarks.experiments.uplift_gate_bias --first-seed 2000 --seeds 400

For each seed of the no-effect regime (churn.uplift.simulate) the whole gate runs (simulation,
X-learner on the training campaigns, both lists on the held-out ones, AIPW), with the fewest
bootstrap resamples the params allow (200, at a 2.5% level): only the point estimate and its
standard error matter here.
The true difference is 0 on every seed, so the mean estimate over seeds tests for bias.

Under no effect a customer's outcome does not depend on the assignment, so given the held-out
rows (features, outcomes, both lists, the outcome models) the estimate is a sum over rows of
d v (T - p) w with d = in uplift list - in risk x value list, v the value, p = P(treated) and
w = (Y - m1) / p + (Y - m0) / (1 - p): its mean over the random assignment is exactly 0 and its
variance exactly p (1 - p) sum (d v w)^2. The ratio estimate / that exact randomization standard
error therefore has mean 0 and sd 1 whatever the learner did, unless the lists or the outcome
models depend on the held-out assignment itself: its mean over seeds is a sharper bias test than
the raw estimate's (every seed weighs the same). Also reported: the share treated among rows in
one list only (p if the lists ignore the assignment), and the estimate's parts (the outcome
models' part d v (m1 - m0), and the treated and control residual parts).
Writes benchmarks/results/uplift_gate_bias.md (and .json).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time

import numpy as np

from benchmarks.common import RESULTS, ROOT
from churn.columns import CONTROL_SHARE, EXPECTED_VALUE, RETAINED, TREATED
from churn.config import load_params
from churn.uplift.data import check_campaign_rows
from churn.uplift.gate import (
    IN_RISK_VALUE_LIST,
    IN_UPLIFT_LIST,
    RETENTION_CONTROL,
    RETENTION_TREATED,
    run_uplift_gate,
)
from churn.uplift.simulate import simulate_uplift_campaigns


def measure(seed: int, params, cost: float) -> dict[str, float]:
    """Run the gate on one no-effect stream; return its estimate, both standard errors, parts."""
    rows = check_campaign_rows(simulate_uplift_campaigns("no_effect", seed).rows)
    outcome = run_uplift_gate(rows, params, cost)
    chosen = outcome.holdout
    difference = outcome.report["comparison"]["difference"]
    d = chosen[IN_UPLIFT_LIST].to_numpy(float) - chosen[IN_RISK_VALUE_LIST].to_numpy(float)
    v = chosen[EXPECTED_VALUE].to_numpy()
    t = chosen[TREATED].to_numpy(float)
    y = chosen[RETAINED].to_numpy(float)
    p = 1.0 - chosen[CONTROL_SHARE].to_numpy()
    m0, m1 = chosen[RETENTION_CONTROL].to_numpy(), chosen[RETENTION_TREATED].to_numpy()
    w = (y - m1) / p + (y - m0) / (1 - p)
    exact = float(np.sum(d * v * (t - p) * w))
    exact_se = math.sqrt(float(np.sum(p * (1 - p) * (d * v * w) ** 2)))
    one_list = d != 0
    return {
        "seed": seed,
        "estimate": difference["estimate"],
        "standard_error": difference["standard_error"],
        "ci_low": difference["ci_low"],
        "policy": outcome.report["policy_in_use"],
        "replicated": outcome.report["comparison"]["replicated"],
        "exact_form": exact,
        "randomization_se": exact_se,
        "model_part": float(np.sum(d * v * (m1 - m0))),
        "treated_part": float(np.sum(d * v * t * (y - m1) / p)),
        "control_part": float(-np.sum(d * v * (1 - t) * (y - m0) / (1 - p))),
        "rows_one_list": int(one_list.sum()),
        "treated_share_one_list": float(t[one_list].mean()),
        "treated_share_uplift_only": float(t[d > 0].mean()) if (d > 0).any() else p.mean(),
        "treated_share_risk_only": float(t[d < 0].mean()) if (d < 0).any() else p.mean(),
        "nominal_treated_share": float(p[one_list].mean()),
    }


def _mean_se(values: np.ndarray) -> str:
    return f"{values.mean():,.3f} ± {values.std(ddof=1) / math.sqrt(len(values)):,.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--first-seed", type=int, default=2000)
    parser.add_argument("--seeds", type=int, default=400)
    parser.add_argument("--out", default="uplift_gate_bias")
    args = parser.parse_args()
    settings = load_params(ROOT / "params.yaml")
    # few resamples (the bound is not used here): the fewest the params allow at a 2.5% level
    params = settings.uplift.model_copy(update={"bootstrap": 200, "false_switch_rate": 0.025})
    cost = settings.score.contact_cost
    started = time.perf_counter()
    trials = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        trials.append(measure(seed, params, cost))
        print(f"seed {seed}: {trials[-1]['estimate']:,.0f}", file=sys.stderr, flush=True)
    seconds = time.perf_counter() - started
    numeric = [key for key in trials[0] if key != "policy"]
    column = {key: np.array([t[key] for t in trials], dtype=float) for key in numeric}
    n = len(trials)
    z_exact = column["estimate"] / column["randomization_se"]
    z_gate = column["estimate"] / column["standard_error"]
    gap = column["treated_share_one_list"] - column["nominal_treated_share"]
    share_gap = column["treated_share_uplift_only"] - column["treated_share_risk_only"]
    last = args.first_seed + args.seeds - 1
    lines = [
        "# Is the uplift gate's no-effect estimate biased?",
        "",
        f"`python -m benchmarks.experiments.uplift_gate_bias --first-seed {args.first_seed} "
        f"--seeds {args.seeds}` — no-effect seeds {args.first_seed}–{last} (development seeds, "
        f"disjoint from every evaluation range), whole gate per seed, bootstrap 200; "
        f"{seconds:.0f} s on a shared 2-core machine. The true difference is 0 on every seed.",
        "",
        "| quantity (over seeds) | mean ± standard error of the mean | sd |",
        "| --- | --- | --- |",
        f"| estimated difference | {_mean_se(column['estimate'])} "
        f"| {column['estimate'].std(ddof=1):,.0f} |",
        f"| estimate / exact randomization se (0 and 1 if unbiased and calibrated) "
        f"| {_mean_se(z_exact)} | {z_exact.std(ddof=1):.3f} |",
        f"| estimate / the gate's bootstrap standard error | {_mean_se(z_gate)} "
        f"| {z_gate.std(ddof=1):.3f} |",
        f"| the gate's standard error / exact randomization se | "
        f"{_mean_se(column['standard_error'] / column['randomization_se'])} | – |",
        f"| outcome models' part d v (m1 − m0) | {_mean_se(column['model_part'])} "
        f"| {column['model_part'].std(ddof=1):,.0f} |",
        f"| treated residual part | {_mean_se(column['treated_part'])} "
        f"| {column['treated_part'].std(ddof=1):,.0f} |",
        f"| control residual part | {_mean_se(column['control_part'])} "
        f"| {column['control_part'].std(ddof=1):,.0f} |",
        f"| treated share among rows in one list only, minus P(treated) | {_mean_se(gap)} "
        f"| {gap.std(ddof=1):.4f} |",
        f"| treated share, uplift list only minus risk x value list only "
        f"| {_mean_se(share_gap)} | {share_gap.std(ddof=1):.4f} |",
        "",
        f"- Largest |estimate − exact form| over seeds (the algebra above, checked): "
        f"{np.abs(column['estimate'] - column['exact_form']).max():.2f}.",
        f"- Share of seeds with estimate / exact se > 1.96: {np.mean(z_exact > 1.96):.1%}; "
        f"> 2.65: {np.mean(z_exact > 2.65):.1%} (normal: 2.5% and 0.4%).",
        f"- {n} seeds; positive estimates in {np.mean(column['estimate'] > 0):.1%} of them.",
        "",
    ]
    (RESULTS / f"{args.out}.md").write_text("\n".join(lines), encoding="utf-8")
    (RESULTS / f"{args.out}.json").write_text(
        json.dumps({"trials": trials, "seconds": seconds}, indent=1), encoding="utf-8"
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
