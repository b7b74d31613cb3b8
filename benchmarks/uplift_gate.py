"""The uplift gate across simulated regimes: how often it switches to uplift, and was it right.

Run from the repository root: python -m benchmarks.uplift_gate [--seeds 20]
Writes benchmarks/results/uplift_gate.md (and .json). For each regime of churn.uplift.simulate
(no effect; effect proportional to risk; heterogeneous effects with some customers pushed away;
too few campaigns) and each seed, the gate of churn.uplift.gate runs with the repository's
params.yaml (`uplift` section, `score.contact_cost`) on freshly simulated campaigns. The goal
(issue 16): it switches in at most 5% of seeds in regimes 1, 2 and 4, and in at least 80% in 3.
True incremental profit uses each held-out customer's known effect; estimated is the gate's AIPW.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from benchmarks.common import RESULTS, ROOT
from churn.config import load_params
from churn.uplift.simulate import REGIMES, gate_trial

GOALS = {
    "no_effect": (None, 0.05),
    "proportional_to_risk": (None, 0.05),
    "heterogeneous": (0.80, None),
    "too_few_campaigns": (None, 0.05),
}


def _mean(trials: list[dict], key: str) -> float | None:
    values = [t[key] for t in trials if t.get(key) is not None]
    return float(np.mean(values)) if values else None


def _money(value: float | None) -> str:
    return "–" if value is None else f"{value:,.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument(
        "--extra-no-effect-seeds",
        type=int,
        default=40,
        help="more seeds of the no-effect regime after the first --seeds, to see its false-switch rate",
    )
    args = parser.parse_args()
    params = load_params(ROOT / "params.yaml")
    cost = params.score.contact_cost
    started = time.perf_counter()
    trials = [
        gate_trial(regime, seed, params.uplift, cost)
        for regime in REGIMES
        for seed in range(args.seeds)
    ]
    seconds = time.perf_counter() - started
    lines = [
        "# The uplift gate across simulated regimes",
        "",
        f"`python -m benchmarks.uplift_gate --seeds {args.seeds}` — {args.seeds} seeds per regime, "
        f"params.yaml `uplift` section ({params.uplift.model_dump()}), contact cost {cost}; "
        f"{seconds:.0f} s in all on a shared 2-core machine.",
        "",
        "Each seed simulates a fresh stream of monthly randomized campaigns "
        "(churn.uplift.simulate: 12 lists of 4,000 customers from a pool of 10,000, control share "
        "0.1, 90-day horizon; too_few_campaigns: 3 lists of 1,000). The gate holds out the newest "
        "quarter of the campaigns, trains the X-learner on the older ones whose label windows end "
        "before them, and compares both policies at half of each held-out list. Profits are sums "
        "over the held-out lists (margin kept minus contact cost), averaged over seeds: *true* "
        "from each customer's known effect, *estimated* by the gate (AIPW).",
        "",
        "| regime | switch share | goal | met | true profit, uplift | true profit, risk x value "
        "| estimated, uplift | estimated, risk x value | Qini uplift | Qini risk x value |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    summary = {}
    for regime in REGIMES:
        mine = [t for t in trials if t["regime"] == regime]
        share = sum(t["policy"] == "uplift" for t in mine) / len(mine)
        low, high = GOALS[regime]
        met = (low is None or share >= low) and (high is None or share <= high)
        goal = f"≥ {low:.0%}" if low is not None else f"≤ {high:.0%}"
        qini_u, qini_r = _mean(mine, "qini_uplift"), _mean(mine, "qini_risk_x_value")
        lines.append(
            f"| {regime} | {share:.0%} | {goal} | {'yes' if met else 'NO'} "
            f"| {_money(_mean(mine, 'true_uplift'))} | {_money(_mean(mine, 'true_risk_x_value'))} "
            f"| {_money(_mean(mine, 'estimated_uplift'))} "
            f"| {_money(_mean(mine, 'estimated_risk_x_value'))} "
            f"| {'–' if qini_u is None else f'{qini_u:.3f}'} "
            f"| {'–' if qini_r is None else f'{qini_r:.3f}'} |"
        )
        summary[regime] = {"switch_share": share, "goal_met": met}
    reasons = sorted({t["reason"] for t in trials if t["regime"] == "too_few_campaigns"})
    lines += ["", "too_few_campaigns: the gate's reason — " + "; ".join(reasons), ""]
    if args.extra_no_effect_seeds:
        extra = [
            gate_trial("no_effect", seed, params.uplift, cost)
            for seed in range(args.seeds, args.seeds + args.extra_no_effect_seeds)
        ]
        switched = sum(t["policy"] == "uplift" for t in extra)
        everything = [t for t in trials if t["regime"] == "no_effect"] + extra
        total = sum(t["policy"] == "uplift" for t in everything)
        differences = np.array(
            [t["estimated_uplift"] - t["estimated_risk_x_value"] for t in everything]
        )
        lines += [
            f"no_effect, {args.extra_no_effect_seeds} more seeds ({args.seeds}–"
            f"{args.seeds + args.extra_no_effect_seeds - 1}): {switched} switch(es); over all "
            f"{len(everything)} seeds {total} ({total / len(everything):.1%}), against 2.5% for a "
            "calibrated lower end of a 95% interval. Estimated difference (uplift minus risk x "
            f"value; the true one is 0): mean {differences.mean():,.0f}, sd {differences.std():,.0f}.",
            "",
        ]
        summary["no_effect_all_seeds"] = {"switches": total, "seeds": len(everything)}
        trials += extra
    (RESULTS / "uplift_gate.md").write_text("\n".join(lines), encoding="utf-8")
    (RESULTS / "uplift_gate.json").write_text(
        json.dumps(
            {"summary": summary, "trials": trials, "seconds": seconds}, indent=1, default=str
        ),
        encoding="utf-8",
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
