"""Scale benchmark: every `dvc repro` stage on 10M / 50M generated transactions under a memory cap.

    python -m benchmarks.scale --sizes 10M 50M --runs 3

For each size the project's generator (`churn generate --customers N --format parquet`) writes the
raw files once under --data (default /work/scale-data, outside the repository); later runs reuse
them. Each run then executes the commands of dvc.yaml's stages in their order (the `generate`
stage excepted: its output is the generated data) in a fresh work folder whose params.yaml is the
repository's with only the input paths changed (ingest; the ledger's --contacts in the commands), so
every stage runs with the DEFAULT settings. The generated past campaign lists enter the published-lists record
through `churn import-lists` (no DVC stage writes the record), timed as a step of its own
("import-lists") just before the ledger stage, as `make run` does.

Each stage runs in its own memory cgroup capped at --cap (default 3G, swap capped too: the machine
has none). The cap is enforced by the kernel: a stage over it is killed (exit 137) and reported
with the same hint `churn retrain` gives. Per stage: wall time, peak RSS of the stage's processes
(wait4's ru_maxrss), the cgroup's peak charge (memory.max_usage_in_bytes / memory.peak: RSS plus
page cache, which the kernel reclaims before killing), exit code, and the load average.
References in the same run: a plain DuckDB sorted copy of the same transactions file under the
same cap (the ingest goal is <= 2x of it). Results: benchmarks/results/scale.json and scale.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import yaml

from benchmarks.common import RESULTS, ROOT

TRANSACTIONS_PER_CUSTOMER = 17.0  # the generator's default parameters (~850k rows / 50k customers)
SIZES = {"1M": 1_000_000, "10M": 10_000_000, "50M": 50_000_000}
GOALS_S = {"10M": 300.0, "50M": 1200.0}  # the whole repro
FEATURES_GOAL_S = {"10M": 60.0}
INGEST_RATIO_GOAL = 2.0


# --------------------------------------------------------------------------- memory cap
class MemoryCap:
    """A memory cgroup with a hard limit that a child process joins before it execs.

    cgroup v2 (a child under /sys/fs/cgroup with memory.max and memory.swap.max = 0) when the
    machine mounts the unified hierarchy with the memory controller; else cgroup v1's memory
    controller (memory.limit_in_bytes and memory.memsw.limit_in_bytes when swap accounting exists).
    """

    def __init__(self, name: str, limit_bytes: int) -> None:
        self.limit = limit_bytes
        v2 = Path("/sys/fs/cgroup")
        v1 = Path("/sys/fs/cgroup/memory")
        controllers = v2 / "cgroup.controllers"
        if controllers.is_file() and "memory" in controllers.read_text().split():
            self.kind, self.path = "cgroup v2", v2 / name
            self.path.mkdir(exist_ok=True)
            (self.path / "memory.max").write_text(str(limit_bytes))
            if (self.path / "memory.swap.max").exists():
                (self.path / "memory.swap.max").write_text("0")
        elif (v1 / "memory.limit_in_bytes").is_file():
            self.kind, self.path = "cgroup v1 memory controller", v1 / name
            self.path.mkdir(exist_ok=True)
            (self.path / "memory.limit_in_bytes").write_text(str(limit_bytes))
            memsw = self.path / "memory.memsw.limit_in_bytes"
            if memsw.exists():
                memsw.write_text(str(limit_bytes))
        else:
            raise SystemExit(
                "no writable memory cgroup on this machine: the cap cannot be enforced"
            )
        self.procs = self.path / "cgroup.procs"

    def reset_peak(self) -> None:
        for name in ("memory.max_usage_in_bytes", "memory.peak"):
            # memory.peak is not resettable before Linux 6.12: a fresh cgroup per stage anyway
            with contextlib.suppress(OSError):
                (self.path / name).write_text("0")

    def peak(self) -> int | None:
        for name in ("memory.peak", "memory.max_usage_in_bytes"):
            if (self.path / name).is_file():
                return int((self.path / name).read_text().split()[0])
        return None

    def oom_kills(self) -> int:
        for name in ("memory.events", "memory.oom_control"):
            path = self.path / name
            if path.is_file():
                for line in path.read_text().splitlines():
                    key, _, value = line.partition(" ")
                    if key == "oom_kill":
                        return int(value)
        return 0

    def join(self) -> None:  # runs in the child, before exec
        self.procs.write_text(str(os.getpid()))

    def remove(self) -> None:
        with contextlib.suppress(OSError):
            self.path.rmdir()


def run_capped(
    command: list[str], cwd: Path, cap_bytes: int, name: str, log: Path, env: dict | None = None
) -> dict[str, object]:
    """Run `command` in a fresh memory cgroup (with `env`, default: this process's environment);
    return wall time, CPU seconds, peaks, exit code and load."""
    cap = MemoryCap(f"churn-scale-{os.getpid()}-{name}", cap_bytes)
    cap.reset_peak()
    oom_before = cap.oom_kills()
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    with log.open("w", encoding="utf-8") as out:
        child = subprocess.Popen(  # noqa: S603
            command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, preexec_fn=cap.join, env=env
        )
        _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    code = child.returncode if child.returncode >= 0 else 128 - child.returncode
    oom = cap.oom_kills() - oom_before
    peak = cap.peak()
    # the stage's own processes are gone; remove the cgroup (leftover page cache is moved up)
    cap.remove()
    tail = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-3:]
    result: dict[str, object] = {
        "seconds": round(seconds, 2),
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 1),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "cgroup_peak_mb": None if peak is None else round(peak / 2**20, 1),
        "exit_code": code,
        "oom_kills": oom,
        "load_before": round(load_before, 2),
        "load_after": round(os.getloadavg()[0], 2),
        "cap": cap.kind,
    }
    if code == 128 + signal.SIGKILL:
        from churn.engine import killed_by_system

        result["hint"] = killed_by_system(f"stage '{name}'", code, name)
    elif code != 0:
        result["error"] = " | ".join(tail)
    return result


# --------------------------------------------------------------------------- data and stages
def generate(folder: Path, transactions: int, cap_bytes: int) -> dict[str, object]:
    """Write folder/raw once with the project's generator; return its row count and time."""
    raw = folder / "raw"
    done = folder / "generated.json"
    if done.is_file():
        return json.loads(done.read_text(encoding="utf-8"))
    folder.mkdir(parents=True, exist_ok=True)
    customers = round(transactions / TRANSACTIONS_PER_CUSTOMER)
    command = [sys.executable, "-m", "churn", "generate", "--out", str(raw),
               "--params", str(ROOT / "params.yaml"), "--customers", str(customers),
               "--format", "parquet"]  # fmt: skip
    timing = run_capped(command, ROOT, cap_bytes, "generate", folder / "generate.log")
    if timing["exit_code"] != 0:
        raise SystemExit(f"generate failed: {timing}")
    import pyarrow.parquet as pq

    rows = pq.ParquetFile(raw / "transactions.parquet").metadata.num_rows
    info = {"customers": customers, "transactions": rows, "generate": timing}
    done.write_text(json.dumps(info, indent=2), encoding="utf-8")
    return info


def work_folder(folder: Path, name: str = "run") -> Path:
    """Return a fresh work folder folder/name: params.yaml (input paths only changed) and the
    suppression list."""
    work = folder / name
    if work.exists():
        shutil.rmtree(work)
    (work / "data").mkdir(parents=True)
    settings = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    raw = folder / "raw"
    settings["ingest"]["source"] = str(raw / "transactions.parquet")
    settings["ingest"]["format"] = "parquet"
    for side in ("customers", "nps"):
        if settings["ingest"].get(side):
            settings["ingest"][side]["source"] = str(raw / f"{side}.csv")
    # the generator's contact log (the ledger's --contacts) and past campaign lists (the
    # IMPORT_STEP) are read from raw/ by stage_commands
    (work / "params.yaml").write_text(yaml.safe_dump(settings, sort_keys=False), encoding="utf-8")
    shutil.copy(ROOT / "data" / "suppression.csv", work / "data" / "suppression.csv")
    return work


IMPORT_STEP = "import-lists"  # not a DVC stage: `churn import-lists`, before the ledger stage


def stage_commands(raw: Path = Path("raw")) -> list[tuple[str, list[str]]]:
    """Return dvc.yaml's stages in file order (the pipeline order) as churn commands, with the
    import of the generated past campaign lists (raw/campaign_lists.csv) before the ledger."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    commands = []
    for name, stage in stages.items():
        if name == "generate":
            continue  # its output is the generated data
        words = shlex.split(stage["cmd"])
        if name == "ledger":
            # into the record the ledger stage reads (its --exports: the work folder is no DVC
            # project, so the command cannot look the path up in dvc.yaml itself)
            lists = str(raw / "campaign_lists.csv")
            exports = words[words.index("--exports") + 1]
            commands.append(
                (
                    IMPORT_STEP,
                    [sys.executable, "-m", "churn", "import-lists", lists, "--exports", exports],
                )
            )
        assert words[0] == "churn", stage["cmd"]
        # the generated raw files live in raw/, not data/raw/ (the demo's contact log)
        words = [str(raw / Path(w).name) if w == "data/raw/contacts.csv" else w for w in words]
        commands.append((name, [sys.executable, "-m", "churn", *words[1:]]))
    return commands


def duckdb_sorted_copy(folder: Path, work: Path, cap_bytes: int) -> dict[str, object]:
    """Reference: DuckDB copies the same transactions file sorted by customer and time."""
    settings = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    engine = settings["engine"]
    columns = settings["ingest"]["columns"]
    source = folder / "raw" / "transactions.parquet"
    target = work / "reference_sorted.parquet"
    config = {"memory_limit": engine["memory_limit"]}
    if engine.get("threads") is not None:
        config["threads"] = str(engine["threads"])
    code = (
        "import duckdb, sys\n"
        f"con = duckdb.connect(config={config!r})\n"
        f"con.execute(\"COPY (SELECT * FROM read_parquet('{source}') ORDER BY "
        f"{columns['customer_id']}, {columns['timestamp']}) TO '{target}' (FORMAT parquet)\")\n"
    )
    result = run_capped([sys.executable, "-c", code], work, cap_bytes, "reference_sorted_copy",
                        work / "reference_sorted_copy.log")  # fmt: skip
    target.unlink(missing_ok=True)
    return result


def one_run(
    folder: Path,
    cap_bytes: int,
    logs: Path,
    save,  # noqa: ANN001
    work_name: str = "run",
) -> dict[str, object]:
    """Run the reference, then every stage in a fresh folder/work_name; `save(run)` after each,
    so a cut-off run is recorded."""
    work = work_folder(folder, work_name)
    run: dict[str, object] = {"stages": {}, "complete": False}
    run["reference_sorted_copy"] = duckdb_sorted_copy(folder, work, cap_bytes)
    print(f"  reference sorted copy: {run['reference_sorted_copy']}", flush=True)
    save(run)
    stages = run["stages"]
    stages_ok = True
    for name, command in stage_commands(folder / "raw"):
        if not stages_ok:
            stages[name] = {"skipped": "an earlier stage failed"}
            continue
        stages[name] = run_capped(command, work, cap_bytes, name, logs / f"{name}.log")
        stages_ok = stages[name]["exit_code"] == 0
        print(f"  {name}: {stages[name]}", flush=True)
        run["repro_seconds"] = round(
            sum(s["seconds"] for s in stages.values() if "seconds" in s), 1
        )
        save(run)
    run["complete"] = stages_ok
    save(run)
    return run


def later_stages(
    folder: Path, cap_bytes: int, overrides: list[str], out: Path
) -> dict[str, object]:
    """Run the stages after `features` on a finished run's features, with params overrides.

    For the memory of the model stages when a default run cannot reach them in the time at hand:
    the results say which params differ from the defaults, and they are no repro time.
    """
    source = folder / "run"
    work = folder / "run-later"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir()
    for part in ("data", "reports"):
        shutil.copytree(source / part, work / part, ignore=shutil.ignore_patterns("scores"))
    settings = yaml.safe_load((source / "params.yaml").read_text(encoding="utf-8"))
    for item in overrides:
        key, _, value = item.partition("=")
        *parents, leaf = key.split(".")
        node = settings
        for name in parents:
            node = node[name]
        node[leaf] = yaml.safe_load(value)
    (work / "params.yaml").write_text(yaml.safe_dump(settings, sort_keys=False), encoding="utf-8")
    logs = folder / "logs" / "later"
    logs.mkdir(parents=True, exist_ok=True)
    result: dict[str, object] = {"overrides": overrides, "stages": {}}
    commands = stage_commands(folder / "raw")
    names = [name for name, _ in commands]
    for name, command in commands[names.index("features") + 1 :]:
        stage = run_capped(command, work, cap_bytes, name, logs / f"{name}.log")
        result["stages"][name] = stage
        print(f"  {name}: {stage}", flush=True)
        out.write_text(json.dumps(result, indent=2), encoding="utf-8")
        if stage["exit_code"] != 0:
            break
    return result


def stage_range(
    folder: Path,
    work_name: str,
    first: str,
    last: str | None,
    cap_bytes: int,
    out: Path,
    note: str = "",
) -> dict[str, object]:
    """Run dvc.yaml's stages from `first` through `last` (default: to the end), default params.

    In folder/<work_name>: a fresh work folder when `first` is the first stage, else the existing
    one (the earlier stages' outputs), so a long run can go stage by stage, each in its own
    invocation (e.g. under `flock`), and resume after a fix. Results are merged into `out` (and
    its .md) stage by stage: a stage run again replaces its earlier result. No repro time.
    When the range holds the ingest stage, the reference (a plain DuckDB sorted copy of the same
    transactions file under the same cap) runs just before it, and the ingest ratio is recorded.
    """
    commands = stage_commands(folder / "raw")
    names = [name for name, _ in commands]
    for name in (first, last):
        if name is not None and name not in names:
            raise SystemExit(f"--stages: unknown stage {name!r}; dvc.yaml has {', '.join(names)}")
    start = names.index(first)
    stop = names.index(last) + 1 if last else len(names)
    work = folder / work_name
    if start == 0:
        work_folder(folder, work_name)
    elif not (work / "params.yaml").is_file():
        raise SystemExit(f"--stages {first}: no work folder {work}; start from {names[0]!r}")
    results = json.loads(out.read_text(encoding="utf-8")) if out.is_file() else {"stages": {}}
    results.update(
        {"folder": str(work), "cap": f"{cap_bytes / 2**30:g} GiB", "cpus": os.cpu_count()}
    )
    if note:
        results["note"] = note
    logs = folder / "logs" / work_name
    logs.mkdir(parents=True, exist_ok=True)
    for name, command in commands[start:stop]:
        if name == "ingest":
            reference = duckdb_sorted_copy(folder, work, cap_bytes)
            reference["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
            results["reference_sorted_copy"] = reference
            results.pop("ingest_ratio", None)
            print(f"  reference sorted copy: {reference}", flush=True)
        stage = run_capped(command, work, cap_bytes, name, logs / f"{name}.log")
        stage["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
        results["stages"][name] = stage
        if name == "ingest" and stage["exit_code"] == 0:
            ratio = stage["seconds"] / results["reference_sorted_copy"]["seconds"]
            results["ingest_ratio"] = round(ratio, 2)
            print(f"  ingest / reference sorted copy: {ratio:.2f}x", flush=True)
        # keep dvc.yaml's order whatever order the stages ran in
        results["stages"] = {n: results["stages"][n] for n in names if n in results["stages"]}
        print(f"  {name}: {stage}", flush=True)
        out.write_text(json.dumps(results, indent=2), encoding="utf-8")
        out.with_suffix(".md").write_text(stage_range_markdown(results), encoding="utf-8")
        if stage["exit_code"] != 0:
            break
    return results


def stage_range_markdown(results: dict) -> str:
    lines = [
        f"# Stages one by one under a {results['cap']} memory cap (`--stages`)",
        "",
        f"Work folder {results['folder']}; default params.yaml except the input paths; one fresh "
        "cgroup per stage. Peak RSS: the stage's processes (wait4); cgroup peak: RSS plus page "
        "cache charged to the cgroup. Load: 1-minute load average before and after the stage.",
        "",
        *([results["note"], ""] if results.get("note") else []),
        "| stage | s | CPU s | peak RSS MB | cgroup peak MB | exit code | load before→after "
        "| finished |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, stage in results["stages"].items():
        lines.append(
            f"| {name} | {stage['seconds']} | {stage['cpu_seconds']} | "
            f"{stage['peak_rss_mb']:,.0f} | {stage['cgroup_peak_mb'] or 0:,.0f} | "
            f"{stage['exit_code']} | {stage['load_before']:g}→{stage['load_after']:g} | "
            f"{stage['finished']} |"
        )
    lines.append("")
    reference = results.get("reference_sorted_copy")
    if reference is not None:
        lines.append(
            f"Reference (plain DuckDB sorted copy of the same transactions file, same cap, just "
            f"before ingest): {reference['seconds']} s, {reference['cpu_seconds']} CPU s, peak "
            f"RSS {reference['peak_rss_mb']:,.0f} MB, load {reference['load_before']:g}→"
            f"{reference['load_after']:g}; ingest / reference: {results.get('ingest_ratio')}x "
            f"(goal {INGEST_RATIO_GOAL}x)"
        )
        lines.append("")
    for name, stage in results["stages"].items():
        if "hint" in stage or "error" in stage:
            lines.append(
                f"- {name}: exit {stage['exit_code']}: {stage.get('hint') or stage['error']}"
            )
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- summary
def summarize(label: str, info: dict, runs: list[dict]) -> dict[str, object]:
    complete = [r for r in runs if r["complete"]]
    per_stage = {}
    for name, _ in stage_commands():
        done = [r["stages"][name] for r in runs if "seconds" in r["stages"].get(name, {})]
        if not done:
            per_stage[name] = {"runs": 0}
            continue
        per_stage[name] = {
            "median_seconds": round(statistics.median(d["seconds"] for d in done), 1),
            "median_cpu_seconds": (
                round(statistics.median(d["cpu_seconds"] for d in done), 1)
                if all("cpu_seconds" in d for d in done)
                else None
            ),
            "max_peak_rss_mb": max(d["peak_rss_mb"] for d in done),
            "max_cgroup_peak_mb": max(d["cgroup_peak_mb"] or 0 for d in done),
            "exit_codes": [d["exit_code"] for d in done],
            "load": [[d["load_before"], d["load_after"]] for d in done],
            "runs": len(done),
        }
    refs = [r["reference_sorted_copy"]["seconds"] for r in runs if "reference_sorted_copy" in r]
    ref = statistics.median(refs) if refs else None
    ingest_ratios = [
        r["stages"]["ingest"]["seconds"] / r["reference_sorted_copy"]["seconds"]
        for r in runs
        if r["stages"].get("ingest", {}).get("exit_code") == 0 and "reference_sorted_copy" in r
    ]
    return {
        "size": label,
        "transactions": info["transactions"],
        "customers": info["customers"],
        "runs": len(runs),
        "complete_runs": len(complete),
        "median_repro_seconds": (
            round(statistics.median(r["repro_seconds"] for r in complete), 1) if complete else None
        ),
        "repro_goal_seconds": GOALS_S.get(label),
        "features_goal_seconds": FEATURES_GOAL_S.get(label),
        "median_reference_sorted_copy_seconds": None if ref is None else round(ref, 1),
        "median_ingest_ratio": round(statistics.median(ingest_ratios), 2)
        if ingest_ratios
        else None,
        "ingest_ratio_goal": INGEST_RATIO_GOAL,
        "stages": per_stage,
    }


def markdown(results: dict) -> str:
    lines = [
        "# Scale: every pipeline stage on 10M / 50M transactions under a 3 GB memory cap",
        "",
        f"Written by `{results['command']}` at {results['finished']} on a shared {os.cpu_count()}-core "
        f"machine ({results['memory_total_gb']} GB RAM, no swap). Cap: {results['cap']} "
        f"({results['cap_kind']}), one fresh cgroup per stage; a stage passes only if it completes "
        "there. Peak RSS: largest resident set of the stage's processes (wait4); cgroup peak: RSS "
        "plus page cache charged to the cgroup (reclaimable). Default params.yaml except the input "
        "paths. Load: the 1-minute load average before and after each stage.",
        "",
    ]
    if results.get("note"):
        lines += [results["note"], ""]
    for summary in results["summaries"]:
        label = summary["size"]
        lines += [
            f"## {label}: {summary['transactions']:,} transactions, {summary['customers']:,} "
            f"customers ({summary['runs']} run(s), {summary['complete_runs']} complete)",
            "",
            f"- whole repro (sum of stages): median {summary['median_repro_seconds']} s "
            f"(goal {summary['repro_goal_seconds']} s)",
            f"- ingest / DuckDB sorted copy of the same file (same run, same cap): "
            f"{summary['median_ingest_ratio']}x (goal {INGEST_RATIO_GOAL}x); reference median "
            f"{summary['median_reference_sorted_copy_seconds']} s",
            "",
            "| stage | median s | median CPU s | peak RSS MB | cgroup peak MB | exit codes "
            "| load before→after |",
            "|---|---|---|---|---|---|---|",
        ]
        for name, stage in summary["stages"].items():
            if not stage.get("runs"):
                lines.append(f"| {name} | not run | | | | | |")
                continue
            lines.append(
                f"| {name} | {stage['median_seconds']} | {stage.get('median_cpu_seconds')} | "
                f"{stage['max_peak_rss_mb']:,.0f} | "
                f"{stage['max_cgroup_peak_mb']:,.0f} | {stage['exit_codes']} | "
                f"{', '.join(f'{a:g}→{b:g}' for a, b in stage['load'])} |"
            )
        lines.append("")
        for run_index, run in enumerate(results["runs"][label], 1):
            if run.get("in_progress"):
                lines.append(f"- run {run_index}: {run['in_progress']}")
            for name, stage in run["stages"].items():
                if "hint" in stage or "error" in stage:
                    detail = stage.get("hint") or stage.get("error")
                    lines.append(f"- run {run_index}, {name}: exit {stage['exit_code']}: {detail}")
        lines.append("")
    for label, later in results.get("later", {}).items():
        lines += [
            f"## {label}: the stages after features with {', '.join(later['overrides'])}",
            "",
            "Not the default params and no repro time: the model stages' memory under the same "
            "cap, on the features of the run above, where the default run could not reach them "
            "in the time at hand (`--later-stages`).",
            "",
            "| stage | s | peak RSS MB | cgroup peak MB | exit code | load before→after |",
            "|---|---|---|---|---|---|",
        ]
        for name, stage in later["stages"].items():
            lines.append(
                f"| {name} | {stage['seconds']} | {stage['peak_rss_mb']:,.0f} | "
                f"{stage['cgroup_peak_mb']:,.0f} | {stage['exit_code']} | "
                f"{stage['load_before']:g}→{stage['load_after']:g} |"
            )
        lines.append("")
    return "\n".join(lines)


def write(results: dict, out: Path) -> None:
    out.write_text(json.dumps(results, indent=2), encoding="utf-8")
    out.with_suffix(".md").write_text(markdown(results), encoding="utf-8")


def combine(parts: list[Path], out: Path, note: str = "") -> None:
    """Write one results file from several runs of this script (e.g. one per size, or one run
    per invocation): runs of the same size are pooled and summarized together (their medians)."""
    loaded = [json.loads(p.read_text(encoding="utf-8")) for p in parts]
    results = dict(loaded[0])
    results["command"] = " ; ".join(r["command"] for r in loaded)
    results["runs"] = {}
    for part in loaded:
        for label, runs in part["runs"].items():
            results["runs"].setdefault(label, []).extend(runs)
        results.update({k: v for k, v in part.items() if k.startswith("data_")})
        results["finished"] = max(results["finished"], part["finished"])
    results["summaries"] = [
        summarize(label, results[f"data_{label}"], runs)
        for label, runs in results["runs"].items()
        if runs and "stages" in runs[0]
    ]
    results["note"] = note or results.get("note", "")
    write(results, out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["10M", "50M"], choices=sorted(SIZES))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--data", type=Path, default=Path("/work/scale-data"))
    parser.add_argument("--cap-gb", type=float, default=3.0)
    parser.add_argument("--out", type=Path, default=RESULTS / "scale.json")
    parser.add_argument("--generate-only", action="store_true")
    parser.add_argument("--note", default="", help="a paragraph for scale.md (e.g. other jobs)")
    parser.add_argument("--combine", nargs="+", type=Path, help="results files to merge into --out")
    parser.add_argument(
        "--later-stages",
        nargs="*",
        metavar="KEY=VALUE",
        help="only the stages after features, on the last run's features, with these overrides",
    )
    parser.add_argument(
        "--stages",
        nargs="+",
        metavar="STAGE",
        help="FIRST [LAST]: only these dvc.yaml stages, on the work folder --work-name (fresh "
        "when FIRST is the first stage, else resumed); results merged into --out",
    )
    parser.add_argument(
        "--work-name",
        default="run",
        help="the work folder under --data/SIZE (whole runs too: their logs go to "
        "logs/WORK_NAME-runN unless it is 'run'), so runs of two branches do not overwrite "
        "each other",
    )
    args = parser.parse_args()
    if args.stages is not None:
        if len(args.stages) > 2:
            parser.error("--stages takes FIRST [LAST]")
        first, last = args.stages[0], (args.stages[1] if len(args.stages) == 2 else None)
        for label in args.sizes:
            stage_range(args.data / label, args.work_name, first, last,
                        int(args.cap_gb * 2**30), args.out, args.note)  # fmt: skip
        return
    if args.later_stages is not None:
        for label in args.sizes:
            later_stages(args.data / label, int(args.cap_gb * 2**30), args.later_stages, args.out)
        return
    if args.combine:
        combine(args.combine, args.out, args.note)
        return
    cap_bytes = int(args.cap_gb * 2**30)
    results: dict[str, object] = {
        "command": "python -m benchmarks.scale " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "cap": f"{args.cap_gb:g} GiB",
        "cpus": os.cpu_count(),
        "memory_total_gb": round(
            os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1
        ),
        "runs": {},
        "summaries": [],
        "note": args.note,
    }
    for label in args.sizes:
        folder = args.data / label
        info = generate(folder, SIZES[label], cap_bytes)
        results[f"data_{label}"] = info
        print(f"{label}: {info['transactions']:,} transactions", flush=True)
        if args.generate_only:
            continue
        runs: list[dict] = []
        results["runs"][label] = runs
        results["summaries"].append(None)
        slot = len(results["summaries"]) - 1

        def save(run: dict, label: str = label, info: dict = info, slot: int = slot) -> None:
            current = results["runs"][label]
            if not current or current[-1] is not run:
                current.append(run)
            results["summaries"][slot] = summarize(label, info, current)
            results["cap_kind"] = run["reference_sorted_copy"]["cap"]
            results["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
            write(results, args.out)

        for index in range(args.runs):
            prefix = "" if args.work_name == "run" else f"{args.work_name}-"
            logs = folder / "logs" / f"{prefix}run{index + 1}"
            logs.mkdir(parents=True, exist_ok=True)
            print(f"{label} run {index + 1}/{args.runs}", flush=True)
            one_run(folder, cap_bytes, logs, save, args.work_name)


if __name__ == "__main__":
    main()
