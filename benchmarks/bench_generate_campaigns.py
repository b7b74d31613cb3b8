"""Benchmark: the default data's generation time with and without the simulated past campaigns.

Run from the repository root: python -m benchmarks.bench_generate_campaigns [--repeats 3]
Writes benchmarks/results/generate_campaigns.json: the median time of simulating the default
50,000 customers (every chunk, in memory: the files' writing is the same either way) with
generate.campaigns on (the default) and off, alternated in the same run, and their ratio.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

from benchmarks.common import RESULTS
from churn.config import CampaignsParams, GenerateParams
from churn.generate import simulate


def _seconds(params: GenerateParams) -> tuple[float, int]:
    started = time.perf_counter()
    rows = sum(len(chunk.transactions) for chunk in simulate(params))
    return time.perf_counter() - started, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    on = GenerateParams()
    off = GenerateParams(campaigns=CampaignsParams(enabled=False))
    times: dict[str, list[float]] = {"campaigns_on": [], "campaigns_off": []}
    rows: dict[str, int] = {}
    for _ in range(args.repeats):
        for name, params in (("campaigns_off", off), ("campaigns_on", on)):
            seconds, count = _seconds(params)
            times[name].append(seconds)
            rows[name] = count
    medians = {name: statistics.median(values) for name, values in times.items()}
    result = {
        "customers": on.customers,
        "repeats": args.repeats,
        "seconds": times,
        "median_seconds": medians,
        "transaction_rows": rows,
        "ratio_on_to_off": medians["campaigns_on"] / medians["campaigns_off"],
        "machine": platform.platform(),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "generate_campaigns.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
