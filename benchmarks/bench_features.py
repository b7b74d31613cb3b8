"""Benchmark the features stage against one hand-written DuckDB query, in the same run.

For each size (10M, 50M transactions) it times, in fresh child processes (peak RSS measured per
child): the as-of snapshot (`build_snapshots(..., with_train=False)`, all features, customers and
NPS joined, result in pandas) and ONE hand-written DuckDB SQL query computing the core features
(recency, frequency, spend, tenure, 30/90/180/365-day counts and spend, gap mean and std) over the
same Parquet file, also fetched into pandas. It then times all training cutoffs over 10M rows.
Both sides get the same DuckDB settings (features.threads / memory_limit). Results go to
benchmarks/results/features.json.

Data (gitignored) is made on first use by `churn generate` (Parquet) + `churn ingest` into
benchmarks/data/features_SIZE/. From the repository root:

    python -m benchmarks.bench_features [--sizes 10m 50m] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pandas as pd

from benchmarks.common import DATA, ROOT, generated_interim
from benchmarks.common import RESULTS as RESULTS_DIR
from churn.config import ChurnParams, EngineParams, FeaturesParams
from churn.engine import open_duckdb
from churn.features.build import build_snapshots

RESULTS = RESULTS_DIR / "features.json"
CUSTOMERS = {"10m": 540_000, "50m": 2_700_000}  # ~18.5 transaction rows per customer
CORE = [
    "recency_days",
    "tenure_days",
    "purchases",
    "purchase_days",
    "spend_total",
    "aov",
    "spend_max",
    *(f"{kind}_{days}d" for days in (30, 90, 180, 365) for kind in ("purchases", "spend")),
    "gap_mean_days",
    "gap_std_days",
]


def reference_sql(path: Path, as_of: date, active_within_days: int) -> str:
    """Return the hand-written single query for the core features at as_of (the yardstick)."""
    cut = f"DATE '{as_of.isoformat()}'"
    since = f"DATE '{(as_of - timedelta(days=active_within_days)).isoformat()}'"
    windows = ",\n    ".join(
        f"COUNT(*) FILTER (WHERE date > {cut} - INTERVAL {d} DAY) AS purchases_{d}d,\n    "
        f"COALESCE(SUM(amount) FILTER (WHERE date > {cut} - INTERVAL {d} DAY), 0) AS spend_{d}d"
        for d in (30, 90, 180, 365)
    )
    return f"""
WITH purchases AS (
  SELECT customer_id, date, amount FROM read_parquet('{path}')
  WHERE amount > 0 AND date <= {cut}
),
gaps AS (
  SELECT customer_id, date - LAG(date) OVER (PARTITION BY customer_id ORDER BY date) AS gap
  FROM (SELECT DISTINCT customer_id, date FROM purchases)
),
gap_stats AS (
  SELECT customer_id, AVG(gap) AS gap_mean_days, STDDEV_SAMP(gap) AS gap_std_days
  FROM gaps GROUP BY customer_id
),
totals AS (
  SELECT customer_id,
    {cut} - MAX(date) AS recency_days,
    {cut} - MIN(date) AS tenure_days,
    COUNT(*) AS purchases,
    COUNT(DISTINCT date) AS purchase_days,
    SUM(amount) AS spend_total,
    SUM(amount) / COUNT(*) AS aov,
    MAX(amount) AS spend_max,
    {windows}
  FROM purchases GROUP BY customer_id
  HAVING MAX(date) > {since}
)
SELECT * FROM totals LEFT JOIN gap_stats USING (customer_id) ORDER BY customer_id
"""


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_child(kind: str, folder: Path, out: Path | None) -> dict:
    """Run one measured job in this process (called in a fresh child); return time and peak RSS."""
    params, churn, engine = FeaturesParams(), ChurnParams(), EngineParams()
    txn = folder / "transactions.parquet"
    as_of = duckdb.sql(f"SELECT MAX(date) FROM read_parquet('{txn}')").fetchall()[0][0]
    load_before = os.getloadavg()[0]
    cpu_before = _cpu_seconds()
    start = time.perf_counter()
    if kind == "reference":
        con = open_duckdb(engine, ordered=False)
        frame = con.sql(reference_sql(txn, as_of, churn.active_within_days)).to_arrow_table()
        frame = frame.to_pandas(split_blocks=True, self_destruct=True)
        rows = len(frame)
    else:
        snapshots = build_snapshots(
            txn,
            folder / "customers.parquet",
            folder / "nps.parquet",
            churn,
            params,
            engine,
            with_train=(kind == "train"),
        )
        frame = snapshots.train if kind == "train" else snapshots.score
        rows = len(frame)
        if kind == "train":
            cutoffs = len(snapshots.cutoffs)
    seconds = time.perf_counter() - start
    cpu = _cpu_seconds() - cpu_before
    if out is not None:
        frame[["customer_id", *CORE]].to_parquet(out)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {
        "seconds": round(seconds, 3),
        "cpu_seconds": round(cpu, 3),
        "peak_rss_mb": round(peak_mb, 1),
        "rows": rows,
        "load_avg_1min": round((load_before + os.getloadavg()[0]) / 2, 2),
    }
    if kind == "train":
        result["cutoffs"] = cutoffs
    return result


def measure(kind: str, folder: Path, out: Path | None = None) -> dict:
    """Run `kind` in a fresh child process and return its JSON result."""
    argv = [sys.executable, "-m", "benchmarks.bench_features", "--child", kind, str(folder)]
    if out is not None:
        argv.append(str(out))
    done = subprocess.run(argv, capture_output=True, text=True, check=False, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"{kind} on {folder} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def compare_outputs(ours: Path, reference: Path) -> float:
    """Return the largest absolute difference of core features between the two results."""
    left = pd.read_parquet(ours).set_index("customer_id").sort_index()
    right = pd.read_parquet(reference).set_index("customer_id").sort_index()
    if not left.index.equals(right.index):
        raise AssertionError("snapshot and reference disagree on which customers are eligible")
    worst = 0.0
    for name in CORE:
        a = left[name].astype("float64").to_numpy()
        b = right[name].astype("float64").to_numpy()
        both_nan = pd.isna(a) & pd.isna(b)
        if (pd.isna(a) != pd.isna(b)).any():
            raise AssertionError(f"{name}: null pattern differs from the reference")
        diff = abs(a[~both_nan] - b[~both_nan])
        worst = max(worst, float(diff.max()) if diff.size else 0.0)
    return worst


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", nargs="+", default=["10m", "50m"])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    results: dict = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results["machine"] = {"cores": os.cpu_count(), "duckdb": duckdb.__version__}
    results["settings"] = FeaturesParams().model_dump(mode="json")
    for size in args.sizes:
        folder = generated_interim(
            DATA / f"features_{size}", CUSTOMERS[size], file_format="parquet"
        )
        rows = duckdb.sql(
            f"SELECT COUNT(*) FROM read_parquet('{folder / 'transactions.parquet'}')"
        ).fetchall()[0][0]
        snapshot_runs, reference_runs = [], []
        with tempfile.TemporaryDirectory() as tmp:
            ours_out, ref_out = Path(tmp) / "ours.parquet", Path(tmp) / "ref.parquet"
            for i in range(args.repeats):
                # alternate the order so neither side always runs on a warm page cache
                first, second = (
                    ("snapshot", "reference") if i % 2 == 0 else ("reference", "snapshot")
                )
                for kind in (first, second):
                    keep = (ours_out if kind == "snapshot" else ref_out) if i == 0 else None
                    run = measure(kind, folder, keep)
                    (snapshot_runs if kind == "snapshot" else reference_runs).append(run)
                    print(size, kind, run, flush=True)
            max_diff = compare_outputs(ours_out, ref_out)
        snap = statistics.median(r["seconds"] for r in snapshot_runs)
        ref = statistics.median(r["seconds"] for r in reference_runs)
        snap_cpu = statistics.median(r["cpu_seconds"] for r in snapshot_runs)
        ref_cpu = statistics.median(r["cpu_seconds"] for r in reference_runs)
        entry = {
            "transactions": rows,
            "eligible_customers": snapshot_runs[0]["rows"],
            "snapshot_seconds": [r["seconds"] for r in snapshot_runs],
            "reference_seconds": [r["seconds"] for r in reference_runs],
            "snapshot_median_seconds": snap,
            "reference_median_seconds": ref,
            "ratio_median": round(snap / ref, 3),
            "snapshot_cpu_seconds": [r["cpu_seconds"] for r in snapshot_runs],
            "reference_cpu_seconds": [r["cpu_seconds"] for r in reference_runs],
            "cpu_ratio_median": round(snap_cpu / ref_cpu, 3),
            "load_avg_1min": [r["load_avg_1min"] for r in snapshot_runs + reference_runs],
            "target_ratio": 1.5,
            "snapshot_peak_rss_mb": max(r["peak_rss_mb"] for r in snapshot_runs),
            "reference_peak_rss_mb": max(r["peak_rss_mb"] for r in reference_runs),
            "core_features_max_abs_diff_vs_reference": max_diff,
        }
        if size == "50m":
            entry["target_peak_rss_mb"] = 3072
        if size == "10m":
            train = measure("train", folder)
            print(size, "train", train, flush=True)
            entry["train_all_cutoffs"] = {**train, "target_seconds": 60}
        results[size] = entry
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    print(json.dumps(results, indent=2, sort_keys=True))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        kind, folder = sys.argv[2], Path(sys.argv[3])
        out = Path(sys.argv[4]) if len(sys.argv) > 4 else None
        print(json.dumps(run_child(kind, folder, out)))
    else:
        main()
