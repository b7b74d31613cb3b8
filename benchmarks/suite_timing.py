"""Wall time of `make test` and of `make run` from a clean state, for two checkouts, interleaved.

Used to check that a restructuring made neither slower: both checkouts run in the same session,
alternating (A, B, A, B, ...), so machine noise hits both alike; medians are compared.

    python benchmarks/suite_timing.py BEFORE_DIR AFTER_DIR --runs 3 --out benchmarks/results/suite_timing.json

`--jobs "same tests"` times, on each side, only the tests whose function name exists on both
sides (each side's own pytest command and options, CI's environment): the tests a restructuring
moved and kept, without the tests added or dropped since.

`--jobs "make run by command"` runs `make run` as "make run" does, with every `churn` command
(the DVC stages' and the Makefile's own) timed by /usr/bin/time through a wrapper put first on
the PATH (`make run BIN=.timing-bin`: the wrapper and links to the checkout's venv), and reports
each command's wall and CPU seconds and their sums over the commands both sides run (a stage
that DVC skips runs no command): the same work, without the steps and stages added since.

Each checkout needs its venv installed first (`make .venv/.installed`). `make run` is timed after
`make reset` and with the DVC cache cleared (every stage runs), `make test` with the environment CI sets (CHURN_SLOW_TESTS=1).
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import platform
import resource
import statistics
import subprocess
import time
from pathlib import Path


def timed(
    command: list[str], cwd: Path, env: dict[str, str], log: Path | None = None
) -> tuple[float, float, int]:
    """Return (wall seconds, CPU seconds of the command and its children, exit code).

    CPU time (user + system) is what the work costs; wall time also counts waiting for cores
    that other jobs on a shared machine hold, so it is compared as well but trusted less."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with open(log or os.devnull, "w") as out:  # the last run's output, to read its counts
        done = subprocess.run(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.returncode


def test_names(folder: Path) -> set[str]:
    """Return the names of the test functions in `folder`/tests (module level or in classes)."""
    names = set()
    for path in (folder / "tests").rglob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith(
                "test_"
            ):
                names.add(node.name)
    return names


def collected_ids(folder: Path, env: dict[str, str], xdist: bool) -> list[str]:
    """Return the node ids `pytest --collect-only` finds in `folder` (in one process)."""
    command = [str(folder / ".venv/bin/python"), "-m", "pytest", "--collect-only", "-q"]
    if xdist:
        command.append("-n0")
    done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{folder}: pytest --collect-only failed:\n{done.stdout}{done.stderr}")
    return [line for line in done.stdout.splitlines() if "::" in line]


def same_tests(before: Path, after: Path, env: dict[str, str]) -> dict[str, list[str]]:
    """Return, per side, the node ids of the tests whose function name exists on both sides."""
    common = test_names(before) & test_names(after)
    chosen = {}
    for side, folder in (("before", before), ("after", after)):
        xdist = "-n 2" in (folder / "pyproject.toml").read_text()
        ids = collected_ids(folder, env, xdist)
        chosen[side] = [i for i in ids if i.split("::")[-1].split("[")[0] in common]
    return chosen


TIMING_BIN = ".timing-bin"


def timing_bin(folder: Path, log: Path) -> None:
    """Write folder/.timing-bin: `churn` that appends "wall|user|sys|subcommand" to `log`, and a
    link to the venv's `dvc` (the Makefile calls both as $(BIN)/...; the rest of the venv is
    found on the PATH the job sets)."""
    shim = folder / TIMING_BIN
    shim.mkdir(exist_ok=True)
    venv_bin = folder / ".venv/bin"
    if not (shim / "dvc").exists():
        (shim / "dvc").symlink_to(venv_bin / "dvc")
    wrapper = shim / "churn"
    wrapper.write_text(
        "#!/bin/bash\n"
        f'exec /usr/bin/time -a -o "{log}" -f "%e|%U|%S|$1" "{venv_bin / "churn"}" "$@"\n'
    )
    wrapper.chmod(0o755)


def command_times(log: Path) -> dict[str, dict[str, float]]:
    """Return {subcommand: {"seconds", "cpu_seconds"}} from a timing_bin log (a subcommand run
    twice is summed)."""
    times: dict[str, dict[str, float]] = {}
    for line in log.read_text().splitlines():
        parts = line.split("|")
        if len(parts) != 4:  # /usr/bin/time's "Command exited with non-zero status" line
            continue
        wall, user, system, name = parts
        entry = times.setdefault(name, {"seconds": 0.0, "cpu_seconds": 0.0})
        entry["seconds"] = round(entry["seconds"] + float(wall), 2)
        entry["cpu_seconds"] = round(entry["cpu_seconds"] + float(user) + float(system), 2)
    return times


def common_sums(runs: dict[str, list[dict]]) -> dict[str, object]:
    """Return the commands every run of both sides ran, and per side the median over runs of
    their summed wall and CPU seconds."""
    names = None
    for side_runs in runs.values():
        for run in side_runs:
            ran = set(run.get("commands", {}))
            names = ran if names is None else names & ran
    names = sorted(names or ())
    summary: dict[str, object] = {"commands": names}
    for key in ("seconds", "cpu_seconds"):
        medians = {
            side: round(
                statistics.median(sum(r["commands"][n][key] for n in names) for r in side_runs), 1
            )
            for side, side_runs in runs.items()
            if side_runs
        }
        if {"before", "after"} <= medians.keys():
            medians["ratio_after_to_before"] = round(medians["after"] / medians["before"], 3)
        summary[key] = medians
    return summary


def load_average() -> float:
    return os.getloadavg()[0]


def write(args: argparse.Namespace, results: dict) -> dict:
    """Write the runs so far and their medians to args.out; return the medians."""
    summary = {}
    for name, sides in results.items():
        summary[name] = {}
        for key in ("seconds", "cpu_seconds"):
            medians = {
                side: statistics.median(r[key] for r in runs)
                for side, runs in sides.items()
                if runs
            }
            if {"before", "after"} <= medians.keys():
                medians["ratio_after_to_before"] = round(medians["after"] / medians["before"], 3)
            summary[name][key] = medians
        if name == "make run by command":
            summary[name]["common_commands"] = common_sums(sides)
    report = {
        "machine": {"cores": os.cpu_count(), "python": platform.python_version()},
        "test_items": getattr(args, "test_items", {}),
        "runs_per_side": args.runs,
        "median_seconds": summary,
        "runs": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--jobs", nargs="+", default=["make test", "make run"])
    args = parser.parse_args()
    env = {**os.environ, "CHURN_SLOW_TESTS": "1", "CHURN_REQUIRE_SERVICES": "1"}
    jobs = {
        "make test": [["make", "test"]],
        # the DVC cache would restore every stage's outputs without running it: clear it too
        "make run": [["make", "reset"], ["rm", "-rf", ".dvc/cache", ".dvc/tmp"], ["make", "run"]],
        "make run by command": [
            ["make", "reset"],
            ["rm", "-rf", ".dvc/cache", ".dvc/tmp"],
            ["make", "run", f"BIN={TIMING_BIN}"],
        ],
    }
    selected: dict[str, list[str]] = {}
    if "same tests" in args.jobs:
        selected = same_tests(args.before, args.after, env)
        args.test_items = {side: len(ids) for side, ids in selected.items()}
        for side, ids in selected.items():
            print(f"same tests, {side}: {len(ids)} test items", flush=True)
    results: dict[str, dict[str, list[dict[str, float]]]] = {}
    for name in args.jobs:
        results[name] = {"before": [], "after": []}
        for _ in range(args.runs):
            for side, folder in (("before", args.before), ("after", args.after)):
                load = load_average()
                seconds, cpu, code = 0.0, 0.0, 0
                if name == "same tests":
                    argsfile = folder / ".same-tests.txt"
                    argsfile.write_text("\n".join(selected[side]) + "\n")
                    python = str(folder / ".venv/bin/python")
                    commands = [[python, "-m", "pytest", "-q", "@" + str(argsfile)]]
                    run_env = {**env, "PATH": f"{folder / '.venv/bin'}:{os.environ['PATH']}"}
                else:
                    commands, run_env = jobs[name], env
                times_log = folder / ".suite-timing-commands.log"
                if name == "make run by command":
                    times_log.unlink(missing_ok=True)
                    timing_bin(folder, times_log)
                    run_env = {**env, "PATH": f"{folder / '.venv/bin'}:{os.environ['PATH']}"}
                for command in commands:
                    if command[0] == "rm" or command[-1] == "reset":
                        subprocess.run(command, cwd=folder, env=run_env, capture_output=True)
                        continue
                    log = folder / f".suite-timing-{name.replace(' ', '-')}.log"
                    seconds, cpu, code = timed(command, folder, run_env, log)
                run = {
                    "seconds": round(seconds, 1),
                    "cpu_seconds": round(cpu, 1),
                    "exit": code,
                    "load": load,
                }
                if name == "make run by command":
                    run["commands"] = command_times(times_log) if times_log.exists() else {}
                results[name][side].append(run)
                write(args, results)  # a session cut short still leaves every finished run
                print(
                    f"{name} {side}: {seconds:.1f} s wall, {cpu:.1f} s CPU "
                    f"(exit {code}, load {load:.1f})",
                    flush=True,
                )
    summary = write(args, results)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
