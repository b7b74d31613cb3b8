"""Benchmark: `churn ingest` of ~10M Parquet rows against a plain DuckDB sorted COPY of the file.

Targets (issue 2): ingest wall time <= 2x the reference in the same run; peak RSS < 3 GB.
Each timed step runs in its own child process that reports its own wall time, CPU time and peak
RSS (getrusage), so the numbers do not mix. The machine is shared, so runs alternate and the
report gives medians, per-run ratios and the CPU-time ratio (less sensitive to other load). Run from the project root:

    python -m benchmarks.bench_ingest [--customers 535000] [--repeats 2]

Data goes to benchmarks/data/ (gitignored); results to benchmarks/results/ingest.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import yaml

from benchmarks.common import DATA, ROOT
from benchmarks.common import RESULTS as RESULTS_DIR

RESULTS = RESULTS_DIR / "ingest.json"
THREADS = 2
MEMORY_LIMIT = "2GB"

CHILD_PRELUDE = """
import json, resource, sys, time
start = time.perf_counter()
"""
CHILD_EPILOGUE = """
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"seconds": time.perf_counter() - start, "cpu_seconds": usage.ru_utime + usage.ru_stime,
                  "peak_rss_mb": usage.ru_maxrss / 1024}))
"""


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT / "src")}


def _child(code: str) -> dict[str, float]:
    """Run code in a fresh Python; return its own wall time and peak RSS."""
    done = subprocess.run(
        [sys.executable, "-c", CHILD_PRELUDE + textwrap.dedent(code) + CHILD_EPILOGUE],
        cwd=DATA,
        env=_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"benchmark step failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def ensure_data(customers: int) -> Path:
    """Generate the Parquet export once (about 18.8 rows per customer with default params)."""
    folder = DATA / f"raw_{customers}"
    path = folder / "transactions.parquet"
    if not path.exists():
        print(f"generating {customers} customers into {folder} ...", flush=True)
        subprocess.run(
            [sys.executable, "-m", "churn", "generate", "--out", str(folder), "--format",
             "parquet", "--customers", str(customers), "--params", str(ROOT / "params.yaml")],
            env=_env(), check=True,
        )  # fmt: skip
    return path


def write_params(source: Path) -> Path:
    """Write a params.yaml whose ingest section reads the benchmark file (transactions only)."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["ingest"].update(
        {"source": str(source), "customers": None, "nps": None, "threads": THREADS,
         "memory_limit": MEMORY_LIMIT},
    )  # fmt: skip
    path = DATA / "bench_params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def reference(source: Path) -> dict[str, float]:
    """Plain DuckDB: read the file, sort by customer and time, write Parquet."""
    return _child(
        f"""
        import duckdb
        con = duckdb.connect(config={{"threads": {THREADS}, "memory_limit": "{MEMORY_LIMIT}"}})
        con.execute("COPY (SELECT * FROM read_parquet('{source}') ORDER BY customer, ordered_at) "
                    "TO 'reference_out.parquet' (FORMAT parquet, COMPRESSION zstd)")
        """
    )


def ingest(params: Path) -> dict[str, float]:
    """The real stage through its CLI entry point, in-process in the child."""
    return _child(
        f"""
        from churn.cli import app
        app(["ingest", "--params", "{params}", "--out", "ingest_out",
             "--report", "ingest_report.json", "--state", "ingest_history.json"],
            standalone_mode=False)
        """
    )


def main() -> None:
    """Run the benchmark and write benchmarks/results/ingest.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=535_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    DATA.mkdir(parents=True, exist_ok=True)
    source = ensure_data(args.customers)
    params = write_params(source)
    (DATA / "ingest_history.json").unlink(missing_ok=True)
    runs: dict[str, list[dict[str, float]]] = {"reference": [], "ingest": []}
    for i in range(args.repeats):
        for name, step in (
            ("reference", lambda: reference(source)),
            ("ingest", lambda: ingest(params)),
        ):
            result = step()
            runs[name].append(result)
            print(
                f"run {i + 1} {name}: {result['seconds']:.1f} s, peak {result['peak_rss_mb']:.0f} MB",
                flush=True,
            )
    report = json.loads((DATA / "ingest_report.json").read_text())
    ref_s = statistics.median(r["seconds"] for r in runs["reference"])
    ing_s = statistics.median(r["seconds"] for r in runs["ingest"])
    peak = max(r["peak_rss_mb"] for r in runs["ingest"])
    results = {
        "benchmark": "ingest of a Parquet export vs DuckDB COPY (SELECT * ORDER BY customer, ordered_at)",
        "rows": report["rows_read"],
        "rows_clean": report["rows_clean"],
        "quarantined": report["quarantined"],
        "duplicates_removed": report["duplicates_removed"],
        "customers": args.customers,
        "threads": THREADS,
        "memory_limit": MEMORY_LIMIT,
        "repeats": args.repeats,
        "reference_seconds": [round(r["seconds"], 2) for r in runs["reference"]],
        "ingest_seconds": [round(r["seconds"], 2) for r in runs["ingest"]],
        "reference_peak_rss_mb": [round(r["peak_rss_mb"]) for r in runs["reference"]],
        "ingest_peak_rss_mb": [round(r["peak_rss_mb"]) for r in runs["ingest"]],
        "reference_cpu_seconds": [round(r["cpu_seconds"], 2) for r in runs["reference"]],
        "ingest_cpu_seconds": [round(r["cpu_seconds"], 2) for r in runs["ingest"]],
        "ratio_per_run": [
            round(i["seconds"] / r["seconds"], 3)
            for i, r in zip(runs["ingest"], runs["reference"], strict=True)
        ],
        "ratio_median": round(ing_s / ref_s, 3),
        "cpu_ratio_median": round(
            statistics.median(r["cpu_seconds"] for r in runs["ingest"])
            / statistics.median(r["cpu_seconds"] for r in runs["reference"]),
            3,
        ),
        "target_ratio": 2.0,
        "target_peak_rss_mb": 3072,
        "meets_time_target": ing_s <= 2.0 * ref_s,
        "meets_memory_target": peak < 3072,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "duckdb": __import__("duckdb").__version__,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
