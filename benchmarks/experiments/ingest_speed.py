"""Ingest speed A/B: a plain DuckDB sorted copy, the reference code's ingest and this checkout's.

    python -m benchmarks.experiments.ingest_speed --data /work/scale-data/10M --reference-src /tmp/old/src \
        --rounds 3 --out benchmarks/results/ingest_speed.json

Per round, in this order and each in its own fresh memory cgroup capped at --cap (3 GiB;
benchmarks.scale.MemoryCap), `nice -n 10`: (a) the reference of issue 14, DuckDB copying the same
transactions file sorted by customer and time (benchmarks.scale.duckdb_sorted_copy's statement);
(b) `churn ingest` with the reference code (another commit's `src/`, e.g. `git archive <commit>
src | tar -x -C /tmp/old`, on PYTHONPATH); (c) `churn ingest` with this checkout's code. Both
ingests read the same params.yaml (the repository's, input paths changed and ingest.reject_after
fixed so that both classify the same rows) and start from an empty run history. After each round
the four tables and the report must be byte-identical (this work changes speed, not results); any
difference is reported and fails the run. Per run: wall seconds, CPU seconds (user + sys of the
process and DuckDB's threads, wait4), peak RSS; ratios to (a) by wall and by CPU, per round and
the medians. Results: --out (.json) and the same name with .md.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import shutil
import statistics
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import yaml

from benchmarks.common import RESULTS, ROOT
from benchmarks.scale import run_capped

OUTPUTS = ("transactions.parquet", "quarantine.parquet", "customers.parquet", "nps.parquet")
GOAL = 2.0


def prepare(data: Path, work: Path, reject_after: str) -> Path:
    """Write work/params.yaml: the repository's, reading data/raw, reject_after fixed."""
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    settings = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    raw = data / "raw"
    settings["ingest"]["source"] = str(raw / "transactions.parquet")
    settings["ingest"]["format"] = "parquet"
    for side in ("customers", "nps"):
        if settings["ingest"].get(side):
            settings["ingest"][side]["source"] = str(raw / f"{side}.csv")
    settings["ingest"]["reject_after"] = reject_after
    params = work / "params.yaml"
    params.write_text(yaml.safe_dump(settings, sort_keys=False), encoding="utf-8")
    return params


def sorted_copy_command(data: Path, target: Path) -> list[str]:
    """Return the reference: DuckDB's sorted copy of the transactions file (scale.py's)."""
    settings = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    engine, columns = settings["engine"], settings["ingest"]["columns"]
    config = {"memory_limit": engine["memory_limit"]}
    if engine.get("threads") is not None:
        config["threads"] = str(engine["threads"])
    source = data / "raw" / "transactions.parquet"
    code = (
        "import duckdb\n"
        f"con = duckdb.connect(config={config!r})\n"
        f"con.execute(\"COPY (SELECT * FROM read_parquet('{source}') ORDER BY "
        f"{columns['customer_id']}, {columns['timestamp']}) TO '{target}' (FORMAT parquet)\")\n"
    )
    return [sys.executable, "-c", code]


def ingest_command(work: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "churn", "ingest", "--out", str(out),
            "--report", str(out / "ingest.json"), "--sql-copies", str(out / "sql"),
            "--state", str(out / "history.json"), "--params", str(work / "params.yaml")]  # fmt: skip


def differing(a: Path, b: Path) -> list[str]:
    """Return the outputs that differ between two ingest output folders (empty: identical)."""
    names = [*OUTPUTS, "ingest.json"]
    _, mismatch, errors = filecmp.cmpfiles(a, b, names, shallow=False)
    return mismatch + errors


def summarize(runs: dict[str, list[dict]]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    ref = runs["sorted_copy"]
    for name, records in runs.items():
        entry = {
            "median_seconds": round(statistics.median(r["seconds"] for r in records), 2),
            "median_cpu_seconds": round(statistics.median(r["cpu_seconds"] for r in records), 2),
            "max_peak_rss_mb": max(r["peak_rss_mb"] for r in records),
            "exit_codes": [r["exit_code"] for r in records],
        }
        if name != "sorted_copy":
            wall = [r["seconds"] / f["seconds"] for r, f in zip(records, ref, strict=False)]
            cpu = [r["cpu_seconds"] / f["cpu_seconds"] for r, f in zip(records, ref, strict=False)]
            entry["wall_ratios"] = [round(x, 2) for x in wall]
            entry["cpu_ratios"] = [round(x, 2) for x in cpu]
            entry["median_wall_ratio"] = round(statistics.median(wall), 2)
            entry["median_cpu_ratio"] = round(statistics.median(cpu), 2)
        out[name] = entry
    return out


def markdown(results: dict) -> str:
    lines = [
        "# Ingest speed: plain DuckDB sorted copy vs ingest (reference code) vs ingest (this code)",
        "",
        f"Written by `{results['command']}` at {results['finished']} on a shared "
        f"{results['cpus']}-core machine, {results['transactions']:,} transactions "
        f"({results['data']}). Each run in a fresh {results['cap']} memory cgroup, `nice -n 10`; "
        "per round the sorted copy, the reference ingest and this ingest run one after another "
        "(interleaved), medians of the rounds. CPU s = user + sys of the process and its DuckDB "
        "threads (wait4): less sensitive than wall time to other jobs on the machine. Ratios are "
        f"to the sorted copy of the same round (goal: {GOAL:g}x). Reference code: "
        f"`{results['reference_src']}` ({results['reference_commit']}); this code: "
        f"{results['this_commit']}.",
        "",
    ]
    if results.get("note"):
        lines += [results["note"], ""]
    lines += [
        "| run | median wall s | median CPU s | wall / sorted copy: median of rounds (of "
        "medians) | CPU / sorted copy: median of rounds (of medians) | peak RSS MB | exit codes |",
        "|---|---|---|---|---|---|---|",
    ]
    ref = results["summary"]["sorted_copy"]
    for name, entry in results["summary"].items():
        of_medians = [entry[key] / ref[key] for key in ("median_seconds", "median_cpu_seconds")]
        lines.append(
            f"| {name} | {entry['median_seconds']} | {entry['median_cpu_seconds']} | "
            f"{entry.get('median_wall_ratio', 1)} ({of_medians[0]:.2f}) | "
            f"{entry.get('median_cpu_ratio', 1)} ({of_medians[1]:.2f}) | "
            f"{entry['max_peak_rss_mb']:,} | {entry['exit_codes']} |"
        )
    lines += ["", "Per round (wall s / CPU s, load average before→after):", ""]
    lines += [
        "| round | " + " | ".join(results["runs"]) + " |",
        "|---" * (1 + len(results["runs"])) + "|",
    ]
    for i in range(len(results["runs"]["sorted_copy"])):
        cells = []
        for records in results["runs"].values():
            if i < len(records):
                r = records[i]
                cells.append(
                    f"{r['seconds']} / {r['cpu_seconds']} ({r['load_before']:g}→{r['load_after']:g})"
                )
            else:
                cells.append("")
        lines.append(f"| {i + 1} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Outputs (transactions, quarantine, customers, nps Parquet files and the ingest report): "
        + (
            "; ".join(results["failures"])
            if results["failures"]
            else "byte-identical in every round."
        ),
        "",
    ]
    return "\n".join(lines)


def commit_of(path: Path) -> str:
    done = subprocess.run(
        ["git", "-C", str(path), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    return done.stdout.strip() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("/work/scale-data/10M"))
    parser.add_argument("--reference-src", type=Path, required=True)
    parser.add_argument("--reference-commit", default="", help="what --reference-src holds")
    parser.add_argument("--work", type=Path, default=None, help="default: <data>/ingest-speed")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cap-gb", type=float, default=3.0)
    parser.add_argument("--reject-after", default="2026-01-01 00:00:00")
    parser.add_argument("--out", type=Path, default=RESULTS / "ingest_speed.json")
    parser.add_argument("--note", default="")
    parser.add_argument("--rewrite", action="store_true", help="only rewrite --out's .md")
    parser.add_argument("--append", action="store_true", help="add rounds to --out's runs")
    args = parser.parse_args()
    if args.rewrite:
        results = json.loads(args.out.read_text(encoding="utf-8"))
        results["note"] = args.note or results.get("note", "")
        args.out.with_suffix(".md").write_text(markdown(results), encoding="utf-8")
        return
    cap_bytes = int(args.cap_gb * 2**30)
    work = args.work or args.data / "ingest-speed"
    prepare(args.data, work, args.reject_after)
    base_env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    codes = {"reference": {**base_env, "PYTHONPATH": str(args.reference_src)}, "this": base_env}
    import pyarrow.parquet as pq

    results: dict = {
        "command": "python -m benchmarks.experiments.ingest_speed " + " ".join(sys.argv[1:]),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "cap": f"{args.cap_gb:g} GiB",
        "data": str(args.data),
        "transactions": pq.ParquetFile(
            args.data / "raw" / "transactions.parquet"
        ).metadata.num_rows,
        "reference_src": str(args.reference_src),
        "reference_commit": args.reference_commit or "not given",
        "this_commit": commit_of(ROOT),
        "note": args.note,
        "runs": {"sorted_copy": [], "ingest_reference": [], "ingest_this": []},
        "failures": [],
    }
    out_json = args.out
    if args.append and out_json.is_file():
        earlier = json.loads(out_json.read_text(encoding="utf-8"))
        results["runs"], results["failures"] = earlier["runs"], earlier["failures"]
        results["command"] = f"{earlier['command']} ; {results['command']}"
        results["started"] = earlier["started"]
        results["this_commit"] = f"{earlier['this_commit']} then {results['this_commit']}"

    def save() -> None:
        results["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
        results["summary"] = summarize(results["runs"])
        out_json.parent.mkdir(parents=True, exist_ok=True)
        out_json.write_text(json.dumps(results, indent=2), encoding="utf-8")
        out_json.with_suffix(".md").write_text(markdown(results), encoding="utf-8")

    nice = ["nice", "-n", "10"]
    for round_ in range(args.rounds):
        target = work / "sorted_copy.parquet"
        record = run_capped(nice + sorted_copy_command(args.data, target), work, cap_bytes,
                            "sorted_copy", work / f"sorted_copy-{round_}.log", env=base_env)  # fmt: skip
        target.unlink(missing_ok=True)
        results["runs"]["sorted_copy"].append(record)
        print(round_ + 1, "sorted_copy", record, flush=True)
        for code, env in codes.items():
            out = work / f"out-{code}"
            if out.exists():
                shutil.rmtree(out)
            out.mkdir()
            log = work / f"ingest-{code}-{round_}.log"
            record = run_capped(
                nice + ingest_command(work, out), work, cap_bytes, code, log, env=env
            )
            results["runs"][f"ingest_{code}"].append(record)
            print(round_ + 1, f"ingest_{code}", record, flush=True)
            if record["exit_code"] != 0:
                results["failures"].append(
                    f"round {round_ + 1}: {code} exit {record['exit_code']}: see {log}"
                )
        differ = differing(work / "out-reference", work / "out-this")
        if differ:
            results["failures"].append(f"round {round_ + 1}: outputs differ: {differ}")
        save()
    if results["failures"]:
        raise SystemExit("; ".join(results["failures"]))


if __name__ == "__main__":
    main()
