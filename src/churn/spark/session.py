"""Opening a Spark session from the engine section: local mode, a cluster, or Spark Connect."""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from collections.abc import Iterator
from typing import Any

from churn.config import SPARK_FIXED_CONF, EngineParams
from churn.errors import ChurnError
from churn.logs import get_logger

log = get_logger("spark")

# what churn always sets, whatever engine.spark.conf says (validated there): UTC like DuckDB,
# ANSI mode so a bad cast or an overflow fails the query instead of becoming NULL
FIXED_CONF = {"spark.sql.session.timeZone": "UTC", "spark.sql.ansi.enabled": "true"}
assert set(FIXED_CONF) == set(SPARK_FIXED_CONF)

INSTALL_HINT = (
    "engine.kind is spark but pyspark is not installed; install the optional extra: "
    "pip install 'churn[spark]' (or set engine.kind: duckdb in params.yaml)"
)


def _pyspark() -> Any:
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise ChurnError(INSTALL_HINT) from None
    return SparkSession


def open_spark(engine: EngineParams) -> Any:
    """Return a SparkSession for engine.spark: a master URL (local[N], a cluster) or a Spark
    Connect URL (remote), in UTC with ANSI mode on."""
    spark_params = engine.spark
    session_class = _pyspark()
    builder = session_class.builder.appName(spark_params.app_name)
    local = spark_params.remote == "local" or (spark_params.master or "").startswith("local")
    # a master URL (local or a cluster) runs the driver in a JVM here; only a remote Spark
    # Connect server needs no Java on this machine
    needs_java = spark_params.remote is None or spark_params.remote == "local"
    if needs_java and shutil.which("java") is None:
        raise ChurnError(
            "engine.kind is spark with a Spark driver on this machine but no Java runtime was "
            "found on PATH; install Java 17 (e.g. apt-get install openjdk-17-jre-headless), or "
            "set engine.spark.remote to a Spark Connect server (sc://host:15002) and "
            "engine.spark.master to null"
        )
    conf = {**spark_params.conf, **FIXED_CONF}
    if local:
        # Python workers on this machine must run this interpreter (pandas UDFs import churn,
        # LightGBM, pyarrow). PySpark reads the worker's Python from PYSPARK_PYTHON (or
        # spark.pyspark.python given to spark-submit), not from the builder's conf.
        python = conf.get("spark.pyspark.python", sys.executable)
        os.environ.setdefault("PYSPARK_PYTHON", python)
    if spark_params.remote is not None:
        builder = builder.remote(spark_params.remote)
    else:
        builder = builder.master(spark_params.master)
    if spark_params.remote is None or local:
        # a master, or the local Connect server in this machine's JVM: static settings apply
        for key, value in conf.items():
            builder = builder.config(key, value)
    try:
        session = builder.getOrCreate()
    except Exception as error:  # pyspark raises many types (Py4J, gRPC, runtime)
        target = spark_params.remote or spark_params.master
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ChurnError(
            f"engine.spark: could not start a Spark session on {target!r} ({first}); check "
            "engine.spark.master / engine.spark.remote in params.yaml and that the cluster or "
            "Connect server is reachable"
        ) from None
    for key, value in FIXED_CONF.items():
        # a Connect server (or a session reused by getOrCreate) may have other defaults
        session.conf.set(key, value)
    return session


# what a Spark failure says when it ran out of memory (driver or executor JVM, a container
# killed by YARN / Kubernetes / the kernel, a Python worker of a pandas UDF killed) or disk
MEMORY_SIGNS = (
    "java.lang.OutOfMemoryError",
    "Java heap space",
    "GC overhead limit exceeded",
    "SparkOutOfMemoryError",
    "UNABLE_TO_ACQUIRE_MEMORY",
    "exceeding memory limits",
    "OOMKilled",
    "exit code 137",
    "exit status 137",
    "Python worker exited unexpectedly",
)
DISK_SIGNS = ("No space left on device",)
STOPPED = (
    "the Spark driver stopped in the middle of the job (Spark's log above says why; a local "
    "driver that runs out of memory logs java.lang.OutOfMemoryError and shuts down)"
)


def _conf(spark: Any, engine: EngineParams, key: str, default: str) -> str:
    try:
        value = spark.conf.get(key, None)
    except Exception:  # noqa: BLE001 - a stopped session cannot answer
        value = None
    return str(value or engine.spark.conf.get(key) or default)


def _context_stopped(spark: Any) -> bool:
    """Return whether a classic session's SparkContext stopped (or its JVM is gone); False on
    Spark Connect, which has no context here (its server reports its own failures)."""
    if spark is None or not hasattr(spark, "_jsc"):
        return False
    try:
        return bool(spark.sparkContext._jsc.sc().isStopped())
    except Exception:  # noqa: BLE001 - the JVM died with the job: it cannot be asked
        return True


def _error_text(error: BaseException) -> str:
    """Return what `error` says, without failing: a Py4J error's text is asked of the JVM,
    which may have died with the job (its own network error is then what it says)."""
    parts = []
    for part in (error, getattr(error, "java_exception", None)):
        if part is None:
            continue
        try:
            parts.append(str(part))
        except Exception as unreadable:  # noqa: BLE001 - the JVM that held the text is gone
            parts.append(f"{type(part).__name__} ({type(unreadable).__name__})")
    return "\n".join(parts)


def _evidence(text: str, signs: tuple[str, ...]) -> str | None:
    """Return the line of `text` that shows a sign, cut to the part around the first sign."""
    for raw in text.splitlines():
        line = raw.strip().lstrip(": ")
        found = [line.index(sign) for sign in signs if sign in line]
        if found:
            at = min(found)
            return line if len(line) <= 240 else "..." + line[max(0, at - 100) : at + 140]
    return None


def spark_resource_error(
    error: BaseException, spark: Any, engine: EngineParams, stage: str
) -> ChurnError | None:
    """Return the user-facing error for a Spark job that ran out of memory or disk (the setting
    to change, from engine.spark.conf), or None when `error` is something else."""
    text = _error_text(error)
    disk = _evidence(text, DISK_SIGNS)
    if disk is not None:
        local_dir = _conf(spark, engine, "spark.local.dir", "the system temp folder")
        return ChurnError(
            f"{stage}: Spark ran out of disk space ({disk}). Spark spills shuffles and cached "
            f"blocks to spark.local.dir (now {local_dir}): free space there, or set "
            "engine.spark.conf spark.local.dir in params.yaml to a folder on a larger disk"
        )
    memory = _evidence(text, MEMORY_SIGNS)
    if memory is None and _context_stopped(spark):
        memory = STOPPED
    if memory is None:
        return None
    driver = _conf(spark, engine, "spark.driver.memory", "1g")
    partitions = _conf(spark, engine, "spark.sql.shuffle.partitions", "200")
    return ChurnError(
        f"{stage}: Spark ran out of memory ({memory}). In params.yaml raise engine.spark.conf "
        f"spark.driver.memory (now {driver}; in local mode the driver runs every task) or, on a "
        "cluster, spark.executor.memory (and spark.executor.pyspark.memory for the Python "
        f"workers of pandas UDFs); or raise spark.sql.shuffle.partitions (now {partitions}) so "
        "each task holds less"
    )


@contextlib.contextmanager
def spark_resource_errors(spark: Any, engine: EngineParams, stage: str) -> Iterator[None]:
    """Turn a Spark job's out-of-memory or out-of-disk failure in the block into a ChurnError
    naming the setting to change (never a Java stack trace); other errors pass unchanged."""
    try:
        yield
    except ChurnError:
        raise
    except Exception as error:
        translated = spark_resource_error(error, spark, engine, stage)
        if translated is None:
            raise
        raise translated from None


@contextlib.contextmanager
def spark_session(engine: EngineParams, stage: str) -> Iterator[Any]:
    """Yield a session of `engine` (open_spark) for one stage's work, with its out-of-memory and
    out-of-disk failures as ChurnErrors (spark_resource_errors); the session is stopped after."""
    spark = open_spark(engine)
    try:
        with spark_resource_errors(spark, engine, stage):
            yield spark
    finally:
        try:
            spark.stop()
        except Exception:  # noqa: BLE001 - a driver that died cannot be stopped again
            log.debug("could not stop the Spark session")
