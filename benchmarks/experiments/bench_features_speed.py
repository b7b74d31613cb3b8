"""The features stage before and after a change: a git ref's code and this tree's, same inputs.

    python -m benchmarks.experiments.bench_features_speed --data /work/scale-speedA/10M/interim \
        --params /work/scale-speedA/10M/params.yaml --ref main --label 10M

Both run `churn features` (the dvc.yaml command, default features/engine params of --params) in
a fresh child process inside its own memory cgroup (benchmarks.scale.MemoryCap, default 3 GiB):
first the reference (`git archive REF src` on PYTHONPATH), then this working tree, alternating
for --runs rounds. Per run: wall seconds, CPU seconds (user + system of the stage's processes),
peak RSS, the cgroup's peak charge and the 1-minute load before and after. The outputs of the
two are then compared column by column (integers, dates and text equal, nulls in the same
places, floats within 1e-9 relative) and the features reports must be equal. Results are
appended to benchmarks/results/features_speed.json and rewritten as features_speed.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks.common import RESULTS, ROOT
from benchmarks.scale import run_capped

OUT = RESULTS / "features_speed.json"
RELATIVE = 1e-9


def export_source(ref: str, folder: Path) -> Path:
    """Return folder/src holding `ref`'s src tree (git archive)."""
    archive = subprocess.run(
        ["git", "archive", ref, "src"], cwd=ROOT, capture_output=True, check=True
    ).stdout  # fmt: skip
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder / "src"


def features_command(data: Path, params: Path, out: Path) -> list[str]:
    """Return the features stage's command (dvc.yaml's, with these paths)."""
    return [sys.executable, "-m", "churn", "features",
            "--transactions", str(data / "transactions.parquet"),
            "--customers", str(data / "customers.parquet"), "--nps", str(data / "nps.parquet"),
            "--out", str(out), "--report", str(out / "features.json"),
            "--params", str(params)]  # fmt: skip


def run_variant(src: Path, data: Path, params: Path, out: Path, cap: int, name: str) -> dict:
    """Run the stage with `src` first on the import path; return run_capped's measurements."""
    out.mkdir(parents=True, exist_ok=True)
    previous = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = str(src)
    try:
        where = subprocess.run(
            [sys.executable, "-c", "import churn; print(churn.__file__)"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        if not where.startswith(str(src)):
            raise SystemExit(f"{name}: churn imported from {where}, not from {src}")
        result = run_capped(features_command(data, params, out), ROOT, cap, name, out / "log.txt")
    finally:
        if previous is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = previous
    if result["exit_code"] != 0:
        raise SystemExit(f"{name} failed: {result}")
    return result


def compare_column(a: pa.ChunkedArray, b: pa.ChunkedArray) -> dict:
    """Return how column b differs from a: null positions, exact or relative float difference."""
    if a.type != b.type:
        return {"equal": False, "why": f"type {a.type} vs {b.type}"}
    nulls_a, nulls_b = a.is_null().to_numpy(), b.is_null().to_numpy()
    if not np.array_equal(nulls_a, nulls_b):
        return {"equal": False, "why": f"{int((nulls_a != nulls_b).sum())} null positions differ"}
    if pa.types.is_floating(a.type):
        x = a.to_numpy(zero_copy_only=False)[~nulls_a]
        y = b.to_numpy(zero_copy_only=False)[~nulls_b]
        scale = np.maximum(np.abs(x), np.abs(y))
        with np.errstate(invalid="ignore", divide="ignore"):
            relative = np.where(scale > 0, np.abs(x - y) / scale, 0.0)
        worst = float(relative.max()) if relative.size else 0.0
        exact = int((x != y).sum())
        return {"equal": worst <= RELATIVE, "max_relative": worst, "values_not_bitwise": exact}
    same = a.equals(b)
    return {"equal": bool(same), **({} if same else {"why": "values differ"})}


def compare_outputs(ref: Path, this: Path) -> dict:
    """Return the column-by-column comparison of both snapshots and the reports' equality."""
    result: dict = {}
    for name in ("train.parquet", "score.parquet"):
        a, b = pq.read_table(ref / name), pq.read_table(this / name)
        entry: dict = {
            "rows": [a.num_rows, b.num_rows],
            "columns_equal": a.column_names == b.column_names,
        }
        if a.num_rows == b.num_rows and entry["columns_equal"]:
            entry["columns"] = {col: compare_column(a[col], b[col]) for col in a.column_names}
            entry["equal"] = all(c["equal"] for c in entry["columns"].values())
        else:
            entry["equal"] = False
        result[name] = entry
    reports = [json.loads((folder / "features.json").read_text()) for folder in (ref, this)]
    result["features.json"] = {"equal": reports[0] == reports[1]}
    result["equal"] = all(v["equal"] for v in result.values())
    return result


def git(*words: str) -> str:
    """Return a git command's output in the repository."""
    done = subprocess.run(["git", *words], cwd=ROOT, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def summary(runs: list[dict]) -> dict:
    return {
        "median_seconds": round(statistics.median(r["seconds"] for r in runs), 1),
        "median_cpu_seconds": round(statistics.median(r["cpu_seconds"] for r in runs), 1),
        "max_peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
        "max_cgroup_peak_mb": max(r["cgroup_peak_mb"] or 0 for r in runs),
        "load": [[r["load_before"], r["load_after"]] for r in runs],
    }


def markdown(entries: list[dict]) -> str:
    lines = [
        "# Features stage: before / after, same inputs, same run",
        "",
        "Written by `python -m benchmarks.experiments.bench_features_speed` (command per entry below). Each "
        "variant runs `churn features` in a fresh child process inside its own 3 GiB memory "
        "cgroup, alternating; CPU s = user + system seconds of the stage's processes (wall time "
        "is noisy on this shared 2-core machine); load = 1-minute load average before→after. "
        "Equality: integers, dates and text equal, nulls in the same places, floats within "
        "1e-9 relative, features reports equal.",
        "",
    ]
    for entry in entries:
        lines += [
            f"## {entry['label']}: {entry['rows']:,} transactions ({entry['finished']})",
            "",
            f"`{entry['command']}`; reference `{entry['ref']}` ({entry['ref_commit'][:9]}), "
            f"this tree at {entry['this_commit'][:9]}{' (with uncommitted changes)' if entry['dirty'] else ''}.",
            "",
            "| code | runs | median wall s | median CPU s | peak RSS MB | cgroup peak MB | load before→after |",
            "|---|---|---|---|---|---|---|",
        ]
        for name in ("reference", "this"):
            s = entry[name]
            lines.append(
                f"| {name} | {len(entry['runs'][name])} | {s['median_seconds']} | "
                f"{s['median_cpu_seconds']} | {s['max_peak_rss_mb']:,.0f} | "
                f"{s['max_cgroup_peak_mb']:,.0f} | "
                f"{', '.join(f'{a:g}→{b:g}' for a, b in s['load'])} |"
            )
        ratio = entry["reference"]["median_seconds"] / entry["this"]["median_seconds"]
        cpu_ratio = entry["reference"]["median_cpu_seconds"] / entry["this"]["median_cpu_seconds"]
        comparison = entry["comparison"]
        lines += [
            "",
            *([entry["note"], ""] if entry.get("note") else []),
            f"- speed-up: {ratio:.2f}x wall, {cpu_ratio:.2f}x CPU",
            f"- outputs equal: **{comparison['equal']}** (train {comparison['train.parquet']['rows'][0]:,} "
            f"rows, score {comparison['score.parquet']['rows'][0]:,} rows; features.json equal: "
            f"{comparison['features.json']['equal']})",
        ]
        for table in ("train.parquet", "score.parquet"):
            columns = comparison[table].get("columns", {})
            worst = max((c.get("max_relative", 0.0) for c in columns.values()), default=0.0)
            unequal = [name for name, c in columns.items() if not c["equal"]]
            lines.append(
                f"- {table}: largest float difference {worst:.3g} relative; columns not equal: "
                f"{', '.join(unequal) or 'none'}"
            )
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="folder with the clean tables")
    parser.add_argument("--params", type=Path, required=True)
    parser.add_argument("--ref", default="main", help="git ref of the reference code")
    parser.add_argument("--label", required=True)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--cap-gb", type=float, default=3.0)
    parser.add_argument("--work", type=Path, default=None, help="outputs (default: a temp dir)")
    parser.add_argument("--note", default="", help="a paragraph for this entry (e.g. the load)")
    args = parser.parse_args()
    cap = int(args.cap_gb * 2**30)
    work = args.work or Path(tempfile.mkdtemp(prefix="features-speed-"))
    work.mkdir(parents=True, exist_ok=True)
    ref_src = export_source(args.ref, Path(tempfile.mkdtemp(prefix="features-ref-", dir=work)))
    variants = {"reference": ref_src, "this": ROOT / "src"}
    runs: dict[str, list[dict]] = {name: [] for name in variants}
    for index in range(args.runs):
        for name, src in variants.items():
            result = run_variant(src, args.data, args.params, work / name, cap, f"features-{name}")
            runs[name].append(result)
            print(f"run {index + 1} {name}: {result}", flush=True)
    comparison = compare_outputs(work / "reference", work / "this")
    entry = {
        "label": args.label,
        "command": "python -m benchmarks.experiments.bench_features_speed "
        + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "rows": pq.ParquetFile(args.data / "transactions.parquet").metadata.num_rows,
        "ref": args.ref,
        "ref_commit": git("rev-parse", args.ref),
        "this_commit": git("rev-parse", "HEAD"),
        "dirty": bool(git("status", "--porcelain", "src")),
        "cap": f"{args.cap_gb:g} GiB",
        "runs": runs,
        "reference": summary(runs["reference"]),
        "this": summary(runs["this"]),
        "comparison": comparison,
        "note": args.note,
    }
    entries = json.loads(OUT.read_text()) if OUT.is_file() else []
    entries = [e for e in entries if e["label"] != args.label] + [entry]
    OUT.write_text(json.dumps(entries, indent=2), encoding="utf-8")
    OUT.with_suffix(".md").write_text(markdown(entries), encoding="utf-8")
    print(json.dumps({k: entry[k] for k in ("reference", "this")}, indent=2))
    print("outputs equal:", comparison["equal"])


if __name__ == "__main__":
    main()
