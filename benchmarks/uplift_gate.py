"""The uplift gate across simulated regimes: how often it switches to uplift, and was it right.

Run from the repository root:

    python -m benchmarks.uplift_gate --first-seed 1000 --seeds 20 --fresh-no-effect 1100:1400 \
        --seen 0:20
    python -m benchmarks.uplift_gate --first-seed 100 --seeds 100 \
        --regimes no_effect proportional_to_risk heterogeneous --out uplift_gate_dev

Writes benchmarks/results/<out>.md (and .json; out defaults to uplift_gate). For each regime of
churn.uplift.simulate (no effect; effect proportional to risk; heterogeneous effects with some
customers pushed away; too few campaigns) and each seed, the gate of churn.uplift.gate runs with the
repository's params.yaml (`uplift` section, `score.contact_cost`) on freshly simulated campaigns.
The goal (issue 16): it switches in at most 5% of seeds in regimes 1, 2 and 4, and in at least 80%
in 3. True incremental profit uses each held-out customer's known effect; estimated is the gate's
AIPW. --fresh-no-effect A:B adds no-effect seeds A..B-1 (never used while developing the gate) to
measure its false-switch rate on more than 20 seeds; --seen A:B adds a table of every regime on
seeds A..B-1 that were looked at before (for continuity, not for judging). The method and why:
benchmarks/results/uplift_gate_method.md and uplift_gate_method_session5.md.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time

import numpy as np

from benchmarks.common import RESULTS, ROOT
from churn.config import UpliftParams, load_params
from churn.uplift.gate import (
    USE_UPLIFT,
)
from churn.uplift.simulate import REGIMES, gate_trial

GOALS = {
    "no_effect": (None, 0.05),
    "proportional_to_risk": (None, 0.05),
    "heterogeneous": (0.80, None),
    "too_few_campaigns": (None, 0.05),
}


def trial(regime: str, seed: int, params: UpliftParams, cost: float) -> dict[str, object]:
    """Run the gate on one simulated stream; return its decision, the true and estimated profits
    and the pieces of its rule (churn.uplift.simulate.gate_trial)."""
    return gate_trial(regime, seed, params, cost)


def _mean(trials: list[dict], key: str) -> float | None:
    values = [t[key] for t in trials if t.get(key) is not None]
    return float(np.mean(values)) if values else None


def _money(value: float | None) -> str:
    return "–" if value is None else f"{value:,.0f}"


def _share(trials: list[dict], rule) -> float:
    return sum(bool(rule(t)) for t in trials) / len(trials) if trials else float("nan")


def _wilson(switches: int, n: int) -> str:
    """95% Wilson interval of a switch share."""
    if n == 0:
        return "–"
    p, z = switches / n, 1.96
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return f"{max(0.0, centre - half):.1%}–{min(1.0, centre + half):.1%}"


def _run(regime: str, seeds: range, params: UpliftParams, cost: float) -> list[dict]:
    out = []
    for seed in seeds:
        started = time.perf_counter()
        out.append(trial(regime, seed, params, cost))
        print(
            f"{regime} seed {seed}: {out[-1]['policy']} ({time.perf_counter() - started:.1f} s)",
            file=sys.stderr,
            flush=True,
        )
    return out


def _old_level(trial: dict) -> bool:
    """Whether the estimate / standard error exceeds 1.96 (the previous one-sided 97.5% level, in
    its normal approximation; a diagnostic only)."""
    return (
        trial["standard_error"] > 0
        and trial["estimated_difference"] > 1.96 * trial["standard_error"]
    )


def _no_effect_lines(trials: list[dict], label: str) -> list[str]:
    """The false-switch rate and the bias check of the no-effect estimate on `trials`."""
    judged = [t for t in trials if "estimated_difference" in t]
    switches = sum(t["policy"] == USE_UPLIFT for t in trials)
    differences = np.array([t["estimated_difference"] for t in judged])
    errors = np.array([t["standard_error"] for t in judged])
    z = differences / np.where(errors > 0, errors, np.nan)
    n = len(differences)
    return [
        f"- {label}: the gate switches in {switches} of {len(trials)} seeds "
        f"({switches / len(trials):.1%}; 95% Wilson interval {_wilson(switches, len(trials))}). "
        f"Bootstrap-t bound alone {_share(judged, lambda t: t['difference_ci_low'] > 0):.1%}, "
        f"percentile bound at the same level "
        f"{_share(judged, lambda t: t['percentile_ci_low'] > 0):.1%}; at the previous level "
        f"(estimate / standard error > 1.96) {_share(judged, _old_level):.1%}.",
        f"- Bias check (the true difference is 0 on every seed): mean estimated difference "
        f"{differences.mean():,.0f} ± {differences.std(ddof=1) / math.sqrt(n):,.0f} (standard "
        f"error over {n} seeds); sd of the estimate over seeds {differences.std(ddof=1):,.0f} "
        f"against a mean standard error of {errors.mean():,.0f}; estimate / standard error has "
        f"mean {np.nanmean(z):.2f} and sd {np.nanstd(z, ddof=1):.2f} (calibrated: 0 and 1).",
    ]


def _regime_lines(trials: list[dict], regimes: list[str], seeds: range) -> tuple[list[str], dict]:
    """The table of switch shares against the goals, the rule's parts, and the summary."""
    lines = [
        "| regime | switch share | goal | met | true profit, uplift | true profit, risk x value "
        "| estimated, uplift | estimated, risk x value | true difference | estimated difference "
        "| Qini uplift | Qini risk x value |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    summary: dict[str, object] = {}
    for regime in regimes:
        mine = [t for t in trials if t["regime"] == regime]
        share = _share(mine, lambda t: t["policy"] == USE_UPLIFT)
        low, high = GOALS[regime]
        met = (low is None or share >= low) and (high is None or share <= high)
        goal = f"≥ {low:.0%}" if low is not None else f"≤ {high:.0%}"
        qini_u, qini_r = _mean(mine, "qini_uplift"), _mean(mine, "qini_risk_x_value")
        lines.append(
            f"| {regime} | {share:.0%} | {goal} | {'yes' if met else 'NO'} "
            f"| {_money(_mean(mine, 'true_uplift'))} | {_money(_mean(mine, 'true_risk_x_value'))} "
            f"| {_money(_mean(mine, 'estimated_uplift'))} "
            f"| {_money(_mean(mine, 'estimated_risk_x_value'))} "
            f"| {_money(_mean(mine, 'true_difference'))} "
            f"| {_money(_mean(mine, 'estimated_difference'))} "
            f"| {'–' if qini_u is None else f'{qini_u:.3f}'} "
            f"| {'–' if qini_r is None else f'{qini_r:.3f}'} |"
        )
        judged = [t for t in mine if "difference_ci_low" in t]
        summary[regime] = {
            "switch_share": share,
            "switches": sum(t["policy"] == USE_UPLIFT for t in mine),
            "goal_met": met,
            "seeds": [seeds.start, seeds.stop - 1],
            "bootstrap_t_only_switch_share": _share(judged, lambda t: t["difference_ci_low"] > 0)
            if judged
            else None,
            "percentile_switch_share": _share(judged, lambda t: t["percentile_ci_low"] > 0)
            if judged
            else None,
            "previous_level_switch_share": _share(judged, _old_level) if judged else None,
        }
    lines += [
        "",
        "The rule's parts, as shares of seeds (diagnostics; the gate uses the last column):",
        "",
        "| regime | previous level: estimate / se > 1.96 | percentile bound > 0 "
        "| bootstrap-t bound > 0 | and positive in every held-out campaign (the gate) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for regime in regimes:
        mine = [t for t in trials if t["regime"] == regime]
        judged = [t for t in mine if "difference_ci_low" in t]
        gate = _share(mine, lambda t: t["policy"] == USE_UPLIFT)
        if not judged:
            lines.append(f"| {regime} | – | – | – | {gate:.0%} |")
            continue
        lines.append(
            f"| {regime} | {_share(judged, _old_level):.0%} "
            f"| {_share(judged, lambda t: t['percentile_ci_low'] > 0):.0%} "
            f"| {_share(judged, lambda t: t['difference_ci_low'] > 0):.0%} | {gate:.0%} |"
        )
    if "too_few_campaigns" in regimes:
        reasons = sorted({t["reason"] for t in trials if t["regime"] == "too_few_campaigns"})
        lines += ["", "too_few_campaigns: the gate's reason — " + "; ".join(reasons)]
    return lines, summary


def _seed_range(text: str) -> range:
    first, last = (int(x) for x in text.split(":"))
    return range(first, last)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20, help="seeds per regime")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--regimes", nargs="+", default=list(REGIMES), choices=REGIMES)
    parser.add_argument(
        "--fresh-no-effect",
        default="",
        help="A:B — also run no-effect seeds A..B-1 and report their false-switch rate apart",
    )
    parser.add_argument(
        "--seen",
        default="",
        help="A:B — also run every regime on seeds A..B-1, looked at before (continuity only)",
    )
    parser.add_argument("--out", default="uplift_gate", help="file stem in benchmarks/results")
    args = parser.parse_args()
    params = load_params(ROOT / "params.yaml")
    cost = params.score.contact_cost
    alpha = params.uplift.false_switch_rate
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    started = time.perf_counter()
    trials = [t for regime in args.regimes for t in _run(regime, seeds, params.uplift, cost)]
    fresh: list[dict] = []
    if args.fresh_no_effect:
        fresh = _run("no_effect", _seed_range(args.fresh_no_effect), params.uplift, cost)
    seen: list[dict] = []
    if args.seen:
        seen_seeds = _seed_range(args.seen)
        seen = [t for regime in args.regimes for t in _run(regime, seen_seeds, params.uplift, cost)]
    seconds = time.perf_counter() - started
    command = "python -m benchmarks.uplift_gate " + " ".join(sys.argv[1:])
    lines = [
        "# The uplift gate across simulated regimes",
        "",
        f"`{command}` — seeds {seeds.start}–{seeds.stop - 1} per regime, params.yaml `uplift` "
        f"section ({params.uplift.model_dump()}), contact cost {cost}; {seconds:.0f} s in all on "
        "a shared 2-core machine.",
        "",
        "The gate (churn.uplift.gate) switches to the uplift policy only when the studentized "
        "customer bootstrap (bootstrap-t) lower bound of the difference in incremental profit "
        f"(uplift minus risk x value, at the list size), one-sided at level {alpha:g} "
        f"(uplift.false_switch_rate: a one-sided {1 - alpha:.1%} bound), is above 0 and the "
        "estimated difference is above 0 in every held-out campaign. The level bounds the chance "
        "of any false switch over a year of monthly decisions at "
        f"{min(1.0, 12 * alpha):.0%} (Bonferroni). Why this rule, decided before these seeds "
        "were run: benchmarks/results/uplift_gate_method_session5.md (and, for the rest of the "
        "rule, uplift_gate_method.md); what came out, and what it means: its last section.",
        "",
        "Each seed simulates a fresh stream of monthly randomized campaigns "
        "(churn.uplift.simulate: 12 lists of 4,000 customers from a pool of 10,000, control share "
        "0.1, 90-day horizon; too_few_campaigns: 3 lists of 1,000). The gate holds out the newest "
        "quarter of the campaigns, trains the X-learner on the older ones whose label windows end "
        "before them, and compares both policies at half of each held-out list. Profits are sums "
        "over the held-out lists (margin kept minus contact cost), averaged over seeds: *true* "
        "from each customer's known effect, *estimated* by the gate (AIPW).",
        "",
        f"## Seeds {seeds.start}–{seeds.stop - 1}"
        + (" (never run before this evaluation)" if args.fresh_no_effect else ""),
        "",
    ]
    table, summary = _regime_lines(trials, args.regimes, seeds)
    lines += table
    lines += ["", "## No effect: false switches and the bias check", ""]
    if "no_effect" in args.regimes:
        lines += _no_effect_lines(
            [t for t in trials if t["regime"] == "no_effect"],
            f"seeds {seeds.start}–{seeds.stop - 1}",
        )
    if fresh:
        first, last = fresh[0]["seed"], fresh[-1]["seed"]
        lines += _no_effect_lines(fresh, f"fresh seeds {first}–{last} (never used in development)")
        together = fresh + [t for t in trials if t["regime"] == "no_effect"]
        switches = sum(t["policy"] == USE_UPLIFT for t in fresh)
        summary["no_effect_fresh"] = {
            "seeds": [first, last],
            "switches": switches,
            "switch_share": switches / len(fresh),
            "wilson_95": _wilson(switches, len(fresh)),
        }
        if len(together) > len(fresh):
            both = sum(t["policy"] == USE_UPLIFT for t in together)
            lines += _no_effect_lines(
                together,
                f"both fresh ranges together ({len(together)} seeds, {seeds.start}–"
                f"{seeds.stop - 1} and {first}–{last})",
            )
            summary["no_effect_all_fresh"] = {
                "seeds": len(together),
                "switches": both,
                "switch_share": both / len(together),
                "wilson_95": _wilson(both, len(together)),
            }
    if seen:
        span = f"{seen[0]['seed']}–{seen[-1]['seed']}"
        lines += [
            "",
            f"## Seeds {span}: seen before (for continuity; looked at while the earlier rule was "
            "developed, so not evidence for this one)",
            "",
        ]
        seen_table, seen_summary = _regime_lines(seen, args.regimes, _seed_range(args.seen))
        lines += seen_table + [""]
        if "no_effect" in args.regimes:
            lines += _no_effect_lines(
                [t for t in seen if t["regime"] == "no_effect"], f"seen seeds {span}"
            )
        summary["seen"] = seen_summary
    lines.append("")
    (RESULTS / f"{args.out}.md").write_text("\n".join(lines), encoding="utf-8")
    (RESULTS / f"{args.out}.json").write_text(
        json.dumps(
            {
                "summary": summary,
                "trials": trials,
                "fresh_no_effect": fresh,
                "seen": seen,
                "seconds": seconds,
            },
            indent=1,
            default=str,
        ),
        encoding="utf-8",
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
