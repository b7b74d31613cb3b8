"""Opening a Spark session from the engine section: local mode, a cluster, or Spark Connect."""

from __future__ import annotations

import os
import shutil
import sys
from typing import Any

from churn.config import SPARK_FIXED_CONF, EngineParams
from churn.errors import ChurnError

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
