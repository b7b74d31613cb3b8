"""The engine section: kind selects DuckDB or Spark; the Spark settings are checked."""

from __future__ import annotations

import sys
from datetime import date

import pandas as pd
import pytest

from churn.config import parse_params
from churn.errors import ChurnError
from support.spark_parity import frame_differences


def test_engine_defaults_to_duckdb_with_a_local_spark_ready():
    engine = parse_params({}).engine
    assert engine.kind == "duckdb"
    assert engine.spark.master == "local[2]" and engine.spark.remote is None
    assert engine.spark.conf["spark.driver.memory"] == "1g"


def test_spark_connect_replaces_the_master():
    engine = parse_params(
        {"engine": {"kind": "spark", "spark": {"master": None, "remote": "sc://spark:15002"}}}
    ).engine
    assert engine.spark.remote == "sc://spark:15002" and engine.spark.master is None


@pytest.mark.parametrize(
    ("spark", "message"),
    [
        ({"remote": "sc://h:15002"}, "exactly one of master"),
        ({"master": None}, "exactly one of master"),
        ({"master": "locl[2]"}, "not a Spark master URL"),
        ({"master": None, "remote": "http://h:15002"}, "not a Spark Connect URL"),
        ({"conf": {"driver.memory": "1g"}}, "not a Spark setting"),
        ({"conf": {"spark.sql.session.timeZone": "Europe/Berlin"}}, "set by churn"),
        ({"conf": {"spark.sql.ansi.enabled": False}}, "set by churn"),
        ({"mastr": "local[1]"}, "did you mean 'master'"),
    ],
)
def test_bad_spark_settings_are_errors_naming_the_key(spark, message):
    with pytest.raises(ChurnError, match=message) as caught:
        parse_params({"engine": {"kind": "spark", "spark": spark}})
    assert "engine.spark" in str(caught.value)


def test_unknown_engine_kind_is_an_error():
    with pytest.raises(ChurnError, match="engine.kind = 'polars'"):
        parse_params({"engine": {"kind": "polars"}})


def test_spark_conf_values_are_text():
    conf = parse_params({"engine": {"spark": {"conf": {"spark.ui.enabled": False}}}}).engine
    assert conf.spark.conf == {"spark.ui.enabled": "false"}


def test_frame_comparison_finds_each_kind_of_difference():
    base = pd.DataFrame(
        {"n": [1, 2], "x": [1.0, None], "d": [date(2024, 1, 1)] * 2, "t": ["a", "b"]}
    )
    assert frame_differences(base, base.copy()) == []
    near = base.assign(x=[1.0 + 1e-12, None])
    assert frame_differences(near, base) == []
    assert frame_differences(base.assign(x=[1.0 + 1e-6, None]), base) == [(0, "x", 1.000001, 1.0)]
    [(row, column, got, want)] = frame_differences(base.assign(x=[1.0, 0.0]), base)
    assert (row, column, got) == (1, "x", 0.0) and pd.isna(want)  # 0 is not missing
    assert frame_differences(base.assign(t=["a", "B"]), base) == [(1, "t", "B", "b")]
    assert frame_differences(base.assign(n=[1.0, 2.0]), base)[0][0] == "dtypes"
    assert frame_differences(base.iloc[:1], base) == [("rows", 1, 2)]


def test_a_local_spark_without_java_is_a_clear_error(monkeypatch):
    pytest.importorskip("pyspark.sql")
    from churn.spark import session

    monkeypatch.setattr(session.shutil, "which", lambda name: None)
    engine = parse_params({"engine": {"kind": "spark"}}).engine
    with pytest.raises(ChurnError, match="no Java runtime.*Java 17"):
        session.open_spark(engine)


def test_spark_without_pyspark_names_the_extra(monkeypatch):
    from churn.spark import session

    monkeypatch.setitem(sys.modules, "pyspark.sql", None)  # import fails as when not installed
    with pytest.raises(ChurnError, match=r"churn\[spark\]"):
        session.open_spark(parse_params({"engine": {"kind": "spark"}}).engine)
