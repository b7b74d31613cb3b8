"""Profile the ingest stage: wall and CPU seconds of every DuckDB statement it runs, in order.

    python -m benchmarks.experiments.profile_ingest --params /work/scale-data/10M/run/params.yaml \
        --out /tmp/ingest-profile [--top 25]

Runs `churn.ingest.run_ingest` once in this process with a connection that times each
`execute` (wall, and CPU seconds of the whole process: DuckDB's threads included), and prints
the statements grouped by their first words with their share of the stage. For finding where
ingest's time goes beyond a plain sorted copy; it writes the outputs under --out.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import churn.ingest.stage as stage
from churn.config import load_params
from churn.ingest import IngestOutputs


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class TimedConnection:
    """A DuckDB connection whose execute() records (sql, wall s, cpu s)."""

    def __init__(self, con, log: list) -> None:  # noqa: ANN001
        self._con = con
        self._log = log
        self.plans: Path | None = None

    def execute(self, sql: str, *args, **kwargs):  # noqa: ANN002, ANN003, ANN201
        if self.plans is not None:
            path = self.plans / f"{len(self._log):03d}.txt"
            self._con.execute("SET enable_profiling = 'query_tree'")
            self._con.execute(f"SET profiling_output = '{path}'")
        start, cpu = time.perf_counter(), _cpu()
        result = self._con.execute(sql, *args, **kwargs)
        self._log.append((sql, time.perf_counter() - start, _cpu() - cpu))
        return result

    def __getattr__(self, name: str):  # noqa: ANN204
        return getattr(self._con, name)


def _label(sql: str) -> str:
    words = re.sub(r"\s+", " ", sql).strip()
    return words[:150]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--plans", type=Path, help="folder for DuckDB's profile of each statement")
    args = parser.parse_args()
    os.chdir(args.params.parent)
    settings = load_params(args.params).select("ingest", "engine")
    log: list = []
    opener = stage.open_duckdb

    def timed(*a, **k) -> TimedConnection:  # noqa: ANN002, ANN003
        con = TimedConnection(opener(*a, **k), log)
        if args.plans:
            args.plans.mkdir(parents=True, exist_ok=True)
            con.plans = args.plans
        return con

    stage.open_duckdb = timed
    args.out.mkdir(parents=True, exist_ok=True)
    start, cpu = time.perf_counter(), _cpu()
    with tempfile.TemporaryDirectory(prefix="churn-profile-") as work:
        stage.run_ingest(
            settings.ingest, settings.engine, IngestOutputs.in_folder(args.out), args.out, {},
            datetime.now(UTC), os.environ, Path(work),
        )  # fmt: skip
    total, total_cpu = time.perf_counter() - start, _cpu() - cpu
    print(f"ingest: {total:.1f} s wall, {total_cpu:.1f} s CPU, {len(log)} statements")
    for sql, wall, cpu_s in sorted(log, key=lambda r: -r[2])[: args.top]:
        print(f"{wall:7.2f} s {cpu_s:7.2f} cpu  {_label(sql)}")
    print(
        f"sum of statements: {sum(r[1] for r in log):.1f} s wall, {sum(r[2] for r in log):.1f} s CPU"
    )


if __name__ == "__main__":
    main()
