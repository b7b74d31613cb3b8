"""A/B of the stages after `features` on one finished run: reference code vs this checkout.

    python -m benchmarks.experiments.later_stages_ab --run /work/scale-speedB/10M/run \
        --reference-src /tmp/old/src --stages ledger evaluate --rounds 1 \
        --out benchmarks/results/later_stages_10M.md

The reference is another commit's `src/` (e.g. `git archive <commit> src | tar -x -C /tmp/old`),
run by the same interpreter with PYTHONPATH pointing at it; this checkout's code runs without.
Each stage runs its dvc.yaml command (default settings) in `--run` (a work folder whose
data/features and earlier stages' outputs exist, as benchmarks.scale leaves them) under a fresh
memory cgroup capped at --cap (benchmarks.scale.MemoryCap), reference and this code alternating
(A B A B ...) so both see the same machine. Per run: wall and CPU seconds (user + sys of the stage's
processes, wait4), peak RSS, the load average before and after. After each pair the stage's
outputs must be byte-identical (this work changes speed, not results); any difference is
reported and fails the run.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import shutil
import statistics
import sys
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.scale import run_capped, stage_commands

# the files each stage writes that must not change (relative to the run folder)
OUTPUTS = {
    "ledger": [
        "data/ledger/uplift.parquet",
        "data/ledger/contacted.parquet",
        "reports/ledger.json",
    ],
    "evaluate": ["reports/metrics.json", "reports/segments.json", "reports/plots"],
    "promote": ["reports/promotion.json"],
}


def snapshot_outputs(run: Path, stage: str, into: Path) -> None:
    if into.exists():
        shutil.rmtree(into)
    into.mkdir(parents=True)
    for rel in OUTPUTS.get(stage, []):
        source = run / rel
        target = into / rel.replace("/", "__")
        if source.is_dir():
            shutil.copytree(source, target)
        elif source.exists():
            shutil.copy2(source, target)


def same_outputs(a: Path, b: Path) -> list[str]:
    """Return the output files that differ between two snapshots (empty: identical)."""
    compared = filecmp.dircmp(a, b)
    differ: list[str] = []

    def walk(node: filecmp.dircmp, prefix: str) -> None:
        differ.extend(prefix + n for n in node.left_only + node.right_only)
        _, mismatch, errors = filecmp.cmpfiles(node.left, node.right, node.common_files, False)
        differ.extend(prefix + n for n in mismatch + errors)
        for name, sub in node.subdirs.items():
            walk(sub, prefix + name + "/")

    walk(compared, "")
    return differ


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--reference-src", type=Path, required=True)
    parser.add_argument("--stages", nargs="+", default=["ledger", "evaluate"])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--cap", default="3G")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--note", default="")
    args = parser.parse_args()
    cap_bytes = int(args.cap.rstrip("G")) * 2**30
    commands = dict(stage_commands())
    logs = args.run.parent / "ab-logs"
    logs.mkdir(exist_ok=True)
    base_env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    codes = {
        "reference": {**base_env, "PYTHONPATH": str(args.reference_src)},
        "this": base_env,
    }
    results: dict[str, dict[str, list[dict]]] = {}
    failures: list[str] = []
    for stage in args.stages:
        command = ["nice", "-n", "10", *commands[stage]]
        for round_ in range(args.rounds):
            for code, env in codes.items():
                log = logs / f"{stage}-{code}-{round_}.log"
                record = run_capped(command, args.run, cap_bytes, stage, log, env=env)
                results.setdefault(stage, {}).setdefault(code, []).append(record)
                print(stage, code, record, flush=True)
                if record["exit_code"] != 0:
                    failures.append(f"{stage} ({code}) exit {record['exit_code']}: see {log}")
                snapshot_outputs(args.run, stage, logs / f"out-{stage}-{code}")
            differ = same_outputs(logs / f"out-{stage}-reference", logs / f"out-{stage}-this")
            if differ:
                failures.append(f"{stage}: outputs differ: {differ}")
    write_markdown(args, results, failures)
    if failures:
        raise SystemExit("; ".join(failures))


def write_markdown(args: argparse.Namespace, results: dict, failures: list[str]) -> None:
    command = "python -m benchmarks.experiments.later_stages_ab " + " ".join(sys.argv[1:])
    lines = [
        "# Stages after `features`: reference code vs this branch, same run, same cap",
        "",
        f"Written by `{command}` at {datetime.now(UTC).isoformat(timespec='seconds')} on a shared "
        f"2-core machine. Each stage: its dvc.yaml command with default params, in a fresh "
        f"{args.cap} memory cgroup, `nice -n 10`, reference and this code alternating. CPU s = "
        "user + sys of the stage's processes (the machine is loaded by other jobs: compare CPU "
        "seconds; wall time follows the load). Outputs compared byte for byte after each pair.",
        "",
    ]
    if args.note:
        lines += [args.note, ""]
    lines += [
        "| stage | code | wall s | CPU s | peak RSS MB | load before→after | exit |",
        "|---|---|---|---|---|---|---|",
    ]
    for stage, by_code in results.items():
        for code, records in by_code.items():
            for r in records:
                lines.append(
                    f"| {stage} | {code} | {r['seconds']} | {r['cpu_seconds']} | "
                    f"{r['peak_rss_mb']:,} | {r['load_before']}→{r['load_after']} | "
                    f"{r['exit_code']} |"
                )
    lines.append("")
    for stage, by_code in results.items():
        if {"reference", "this"} <= by_code.keys():
            ref = statistics.median(r["cpu_seconds"] for r in by_code["reference"])
            new = statistics.median(r["cpu_seconds"] for r in by_code["this"])
            lines.append(
                f"- {stage}: CPU {ref:.0f} s → {new:.0f} s ({ref / max(new, 0.1):.2f}x less)"
            )
    lines.append("")
    lines.append(
        "Outputs: " + ("; ".join(failures) if failures else "byte-identical for every stage.")
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
