"""Generated clean tables for tests: `churn generate` then the real `churn ingest`, once per session.

Every test that needs seeded clean data gets it from `generated_interim` (or `generated_tables`,
which reads its output) through the session fixtures of the same names in tests/conftest.py.
All knowledge of the generate/ingest command lines lives in `generated_interim`, so a change of
those commands is adapted here and nowhere else.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import shutil
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from typer.testing import CliRunner

from churn.cli import app
from support.paths import ROOT

Tables = tuple[pa.Table, pd.DataFrame, pd.DataFrame]


def _invoke(*argv: str) -> None:
    result = CliRunner().invoke(app, list(argv))
    if result.exit_code != 0:
        raise RuntimeError(
            f"`churn {' '.join(argv)}` exited {result.exit_code}:\n{result.output}"
        ) from result.exception


def generated_interim(
    base: Path, customers: int, seed: int, days: int = 900, chunk_customers: int | None = None
) -> Path:
    """Return a folder of clean tables (transactions/customers/nps.parquet) from the real CLI.

    Runs `churn generate` and `churn ingest` with the repository's params.yaml, changing only the
    generator's numbers and the ingest sources. Cached per arguments: `base` is one session folder
    (the `generated_tables` fixture in conftest passes it).
    """
    return _generate_and_ingest(base, customers, seed, days, chunk_customers)


@functools.cache  # positional arguments only, so equal requests share one cache entry
def _generate_and_ingest(
    base: Path, customers: int, seed: int, days: int, chunk_customers: int | None
) -> Path:
    work = base / f"customers{customers}-seed{seed}-days{days}-chunk{chunk_customers}"
    raw, interim = work / "raw", work / "interim"
    # parallel test workers share `base`: the first builds the tables, the others wait and reuse
    with exclusive(base / f"{work.name}.lock"):
        if (work / "done").is_file():
            return interim
        shutil.rmtree(work, ignore_errors=True)  # what a worker killed half-way left
        params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
        params["generate"].update(
            customers=customers, seed=seed, days=days, chunk_customers=chunk_customers or customers
        )
        params["ingest"]["source"] = str(raw / "transactions.csv.gz")
        params["ingest"]["customers"]["source"] = str(raw / "customers.csv")
        params["ingest"]["nps"]["source"] = str(raw / "nps.csv")
        work.mkdir(parents=True)
        params_file = work / "params.yaml"
        params_file.write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")

        _invoke("generate", "--out", str(raw), "--params", str(params_file))
        _invoke(
            "ingest",
            "--out", str(interim),
            "--report", str(work / "ingest.json"),
            "--sql-copies", str(raw),
            "--state", str(work / "ingest_history.json"),
            "--params", str(params_file),
        )  # fmt: skip
        (work / "done").write_text("")
    return interim


@contextlib.contextmanager
def exclusive(lock: Path) -> Iterator[None]:
    """Hold an exclusive lock on the file `lock` (created if missing) for the block."""
    with open(lock, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def generated_tables(
    base: Path, customers: int, seed: int, days: int = 900, chunk_customers: int | None = None
) -> Tables:
    """Return fresh (transactions as Arrow, customers, nps) clean tables from `generated_interim`."""
    interim = generated_interim(base, customers, seed, days, chunk_customers)
    return (
        pq.read_table(interim / "transactions.parquet"),
        pd.read_parquet(interim / "customers.parquet"),
        pd.read_parquet(interim / "nps.parquet"),
    )
