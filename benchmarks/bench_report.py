"""Benchmark the report's DuckDB aggregation against one hand-written monthly query, same run.

For each size it times, in fresh child processes (peak RSS measured per child):
  - report: `build_report` on the clean transactions Parquet (per-month flows, sales, cohorts,
    NPS churn), everything the page shows except the charts;
  - reference: ONE DuckDB query giving buyers, orders and revenue per month over the same file,
    fetched into pandas (the cheapest honest "monthly figures" query there is).
Both get the same DuckDB settings (report.threads / memory_limit). The ratio report / reference
says what the churn definition (spells, cohorts, NPS as-of join) costs on top of one scan, and
comparing sizes shows how it scales. Results go to benchmarks/results/report.json.

Data (gitignored, made once by `churn generate` + `churn ingest`), then the benchmark, from the
repository root:
    python -m benchmarks.bench_report --prepare 1m 10m
    python -m benchmarks.bench_report [--sizes 1m 10m] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import DATA, ROOT, generated_interim
from benchmarks.common import RESULTS as RESULTS_DIR

RESULTS = RESULTS_DIR / "report.json"
CUSTOMERS = {"1m": 54_000, "10m": 540_000, "50m": 2_700_000}  # ~18.5 rows per customer


def clean_path(size: str) -> Path:
    """Return where the clean transactions of one benchmark size live."""
    return DATA / f"report_{size}" / "interim" / "transactions.parquet"


def prepare(size: str) -> None:
    """Make the clean tables of one size with `churn generate` (Parquet) + `churn ingest`."""
    interim = generated_interim(DATA / f"report_{size}", CUSTOMERS[size], file_format="parquet")
    print(f"{size}: clean tables in {interim}")


def _child(kind: str, size: str) -> None:
    """Run one measured job in this (fresh) process and print its timing as JSON."""
    import pandas as pd

    from churn.config import ChurnParams, EngineParams, ReportParams
    from churn.engine import open_duckdb
    from churn.report import build_report
    from churn.report.activity import DuckDBAggregates

    settings, churn = ReportParams(), ChurnParams()
    path = clean_path(size)
    con = open_duckdb(EngineParams())
    start = time.perf_counter()
    if kind == "report":
        nps = pd.read_parquet(path.parent / "nps.parquet")
        report = build_report(
            DuckDBAggregates(con), con.read_parquet(str(path)), settings, churn, nps=nps
        )
        rows = len(report.periods)
    else:
        frame = con.sql(
            f"""
            SELECT date_trunc('month', date) AS month, count(DISTINCT customer_id) AS buyers,
                count(*) FILTER (WHERE amount > 0) AS orders, sum(amount) AS revenue
            FROM read_parquet('{path}') GROUP BY ALL ORDER BY month
            """
        ).df()
        rows = len(frame)
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_rss_mb": peak_mb, "rows": rows}))


def _measure(kind: str, size: str) -> dict:
    output = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_report", "--child", kind, size],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def bench(sizes: list[str], repeats: int) -> dict:
    """Time report and reference `repeats` times per size (interleaved); return medians."""
    import duckdb

    results: dict = {"repeats": repeats, "sizes": {}}
    for size in sizes:
        path = clean_path(size)
        transactions = duckdb.sql(f"SELECT count(*) FROM read_parquet('{path}')").fetchall()[0][0]
        runs: dict[str, list[dict]] = {"report": [], "reference": []}
        for _ in range(repeats):
            for kind in runs:
                runs[kind].append(_measure(kind, size))
        median = {kind: statistics.median(r["seconds"] for r in runs[kind]) for kind in runs}
        peak = {kind: max(r["peak_rss_mb"] for r in runs[kind]) for kind in runs}
        results["sizes"][size] = {
            "transactions": transactions,
            "report_seconds": round(median["report"], 2),
            "reference_seconds": round(median["reference"], 2),
            "ratio_report_to_reference": round(median["report"] / median["reference"], 2),
            "report_peak_rss_mb": round(peak["report"]),
            "reference_peak_rss_mb": round(peak["reference"]),
            "report_seconds_per_million_rows": round(median["report"] / transactions * 1e6, 3),
            "all_runs": runs,
        }
        print(
            json.dumps({size: {k: v for k, v in results["sizes"][size].items() if k != "all_runs"}})
        )
    return results


def main() -> None:
    """Prepare data, or run the benchmark and write benchmarks/results/report.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prepare", nargs="*", choices=list(CUSTOMERS))
    parser.add_argument("--sizes", nargs="*", default=["1m", "10m"], choices=list(CUSTOMERS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", nargs=2, metavar=("KIND", "SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(*args.child)
        return
    if args.prepare:
        for size in args.prepare:
            prepare(size)
        return
    results = bench(args.sizes, args.repeats)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
