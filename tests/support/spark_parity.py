"""Comparing the engines: a Spark session for tests and a column-by-column frame comparison."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa

from churn.config import EngineParams, SparkParams
from support.division_cases import division_customers, division_nps, division_transactions
from support.features_tables import customers_frame, day, nps_frame, transactions_frame
from support.services import require

if TYPE_CHECKING:
    from churn.spark.score import SparkScores

# small JVM: the test machine is shared; one core, few shuffle partitions
TEST_CONF = {
    "spark.driver.memory": "512m",
    "spark.sql.shuffle.partitions": "2",
    "spark.ui.enabled": "false",
    # the JVM's own zone far from UTC: the session zone churn sets (UTC) must win
    "spark.driver.extraJavaOptions": "-Duser.timezone=Pacific/Kiritimati",
}


def spark_engine(local_dir: Path, remote: str | None = None) -> EngineParams:
    """Return the engine section of a local Spark (or a local Spark Connect server) for tests."""
    conf = {**TEST_CONF, "spark.local.dir": str(local_dir)}
    if remote is not None:
        return EngineParams(kind="spark", spark=SparkParams(master=None, remote=remote, conf=conf))
    return EngineParams(kind="spark", spark=SparkParams(master="local[1]", conf=conf))


_CONNECT_SERVER = """
import sys, time
from pyspark.sql import SparkSession
builder = SparkSession.builder.master("local[1]").appName("churn-connect-server")
for pair in sys.argv[1:]:
    key, value = pair.split("=", 1)
    builder = builder.config(key, value)
session = builder.getOrCreate()
print("ready", flush=True)
sys.stdin.read()  # until the test closes stdin
session.stop()
"""


@contextmanager
def connect_server(local_dir: Path) -> Iterator[str]:
    """Run a Spark Connect server (a local Spark with the Connect plugin, in a child process) on
    a free port; yield its sc:// URL. Not `remote: local`: pyspark binds that one to the fixed
    port 15002, which another run on the machine may hold."""
    import socket
    import subprocess
    import sys

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    conf = {
        **TEST_CONF,
        "spark.local.dir": str(local_dir),
        "spark.plugins": "org.apache.spark.sql.connect.SparkConnectPlugin",
        "spark.connect.grpc.binding.address": "127.0.0.1",
        "spark.connect.grpc.binding.port": str(port),
        # the executors' Python workers must import churn (mapInPandas): this interpreter
        "spark.pyspark.python": sys.executable,
    }
    server = subprocess.Popen(
        [sys.executable, "-c", _CONNECT_SERVER, *(f"{k}={v}" for k, v in conf.items())],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYSPARK_PYTHON": sys.executable},
    )
    try:
        line = server.stdout.readline()
        if line.strip() != "ready":
            raise RuntimeError(f"the Spark Connect server did not start (exit {server.poll()})")
        yield f"sc://127.0.0.1:{port}"
    finally:
        server.stdin.close()
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@contextmanager
def connect_session(work: Path) -> Iterator[Any]:
    """Yield a Spark Connect session on a local Connect server started in `work`; stop it after
    (connect_remote)."""
    from churn.spark.session import open_spark

    with connect_remote(work) as url:
        session = open_spark(spark_engine(Path("/tmp"), remote=url))
        try:
            yield session
        finally:
            session.stop()


@contextmanager
def connect_remote(work: Path) -> Iterator[str]:
    """Yield the sc:// URL of a local Connect server started in `work`, for sessions opened by
    the code under test (a stage's own spark_session, engine.spark.remote set to the URL).

    pyspark refuses a remote session while a local one runs, so this worker's shared local session
    is stopped first (later modules get a new one from getOrCreate); pyspark marks the process as
    Connect-only (SPARK_CONNECT_MODE_ENABLED) and does not unmark it on stop() for an sc:// URL,
    so those variables are restored after."""
    import pytest

    require_spark()
    pytest.importorskip("pyspark.sql.connect.session")
    names = ("SPARK_CONNECT_MODE_ENABLED", "SPARK_REMOTE", "SPARK_LOCAL_REMOTE")
    before = {name: os.environ.get(name) for name in names}
    stop_local_spark()
    try:
        with connect_server(work) as url:
            yield url
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def require_spark() -> None:
    """Skip (or fail in CI) without Java or pyspark."""
    require("java")
    import pytest

    pytest.importorskip("pyspark.sql")


def stop_local_spark() -> None:
    """Stop this process's classic Spark session, if one runs (a Spark Connect session with
    remote "local" starts its own, and pyspark refuses while another exists)."""
    import sys

    if "pyspark.sql" not in sys.modules:
        return
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        active.stop()


def _same(left: object, right: object) -> bool:
    left_missing = left is None or left is pd.NA or (isinstance(left, float) and math.isnan(left))
    right_missing = (
        right is None or right is pd.NA or (isinstance(right, float) and math.isnan(right))
    )
    if left_missing or right_missing:
        return left_missing and right_missing
    if isinstance(left, float) or isinstance(right, float):
        return math.isclose(float(left), float(right), rel_tol=1e-9, abs_tol=0.0)
    if isinstance(left, date) or isinstance(right, date):
        return type(left) is type(right) and left == right
    return left == right


def frame_differences(spark_frame: pd.DataFrame, duckdb_frame: pd.DataFrame) -> list[tuple]:
    """Return (row, column, Spark value, DuckDB value) for every cell that differs: integers,
    dates and text equal, floats within 1e-9 relative; also schema and row-count mismatches."""
    if list(spark_frame.columns) != list(duckdb_frame.columns):
        return [("columns", list(spark_frame.columns), list(duckdb_frame.columns))]
    dtypes = [
        (name, str(a), str(b))
        for name, a, b in zip(
            spark_frame.columns, spark_frame.dtypes, duckdb_frame.dtypes, strict=True
        )
        if str(a) != str(b)
    ]
    if dtypes:
        return [("dtypes", dtypes)]
    if len(spark_frame) != len(duckdb_frame):
        return [("rows", len(spark_frame), len(duckdb_frame))]
    differences = []
    for name in duckdb_frame.columns:
        for row, (got, want) in enumerate(
            zip(spark_frame[name].tolist(), duckdb_frame[name].tolist(), strict=True)
        ):
            if not _same(got, want):
                differences.append((row, name, got, want))
    return differences


def assert_same_output_files(
    duckdb_dir: Path, spark_dir: Path, names: tuple[str, ...]
) -> list[tuple[str, pd.DataFrame, pd.DataFrame]]:
    """Assert that each `name`.parquet written by the DuckDB run (in `duckdb_dir`) and by the
    Spark run (in `spark_dir`) has the same schema and values; return (name, DuckDB frame, Spark
    frame) for further checks."""
    import pyarrow.parquet as pq

    frames = []
    for name in names:
        duck_file, spark_file = duckdb_dir / f"{name}.parquet", spark_dir / f"{name}.parquet"
        assert pq.read_schema(spark_file) == pq.read_schema(duck_file), name
        want, got = pd.read_parquet(duck_file), pd.read_parquet(spark_file)
        assert frame_differences(got, want) == [], name
        frames.append((name, want, got))
    return frames


# beyond the division cases: ids that sort differently as bytes, case and accents, a customer
# with only refunds, a purchase on the first day of the data, a leap day, unknown customers in
# the side tables, nps answers on the same day (tie broken by score)
EDGE_ROWS = [
    ("00001", day(-700), 10.0),
    ("00001", day(-3), 12.345678),
    ("A", day(-60), 1.0),
    ("a", day(-61), 2.0),
    ("é", day(-30), 3.5),
    ("refunds_only", day(-20), -4.0),
    ("refunds_only", day(-10), -1.0),
    ("leap", pd.Timestamp("2024-02-29").date(), 7.0),
    ("leap", day(-1), 7.0),
    ("big", day(-2), 999_999_999.9999),
    ("big", day(-1), 0.0001),
]


def edge_tables() -> tuple[pa.Table, pa.Table, pa.Table]:
    """Return the division cases plus EDGE_ROWS as clean (transactions, customers, nps)."""
    transactions = pa.concat_tables([division_transactions(), transactions_frame(EDGE_ROWS)])
    customers = pa.concat_tables(
        [
            division_customers(),
            customers_frame([("00001", None, "web", "west"), ("ghost", day(-5), "app", "x")]),
        ]
    )
    nps = pa.concat_tables(
        [
            division_nps(),
            nps_frame([("00001", day(-4), 7), ("00001", day(-4), 2), ("ghost", day(-1), 10)]),
        ]
    )
    return transactions, customers, nps


def assert_same_snapshots(on_spark, on_duckdb) -> None:
    """Assert both engines planned the same cutoffs and computed the same tables, cell by cell."""
    assert on_spark.as_of == on_duckdb.as_of
    assert on_spark.cutoffs == on_duckdb.cutoffs
    assert on_spark.dropped == on_duckdb.dropped
    assert len(on_duckdb.train) > 0 and len(on_duckdb.score) > 0
    assert frame_differences(on_spark.train, on_duckdb.train) == []
    assert frame_differences(on_spark.score, on_duckdb.score) == []


def spark_published_list(result: SparkScores) -> pd.DataFrame:
    """Return the flagged customers of a Spark scoring (the list marketing gets) as pandas, in
    priority order, with the dtypes of build_scores' frame."""
    from churn import columns as C
    from churn.spark.features import to_pandas
    from churn.spark.score import with_score_dtypes

    rows = to_pandas(result.scores.where(f"{C.AT_RISK}").orderBy(C.PRIORITY))
    return with_score_dtypes(rows)


def spark_all_scores(result: SparkScores) -> pd.DataFrame:
    """Return every customer's scores of a Spark scoring as pandas (all rows come to the
    driver: small test data only), in priority order, with build_scores' dtypes."""
    from churn.spark.features import to_pandas
    from churn.spark.score import with_score_dtypes

    return with_score_dtypes(to_pandas(result.scores))
