"""The transpiled feature SQL on Spark local (ANSI mode on) equals DuckDB on the edge cases."""

from __future__ import annotations

import math
from datetime import date

import pytest

from churn.features.sql import spark_sql
from support.division_cases import (
    cutoff_table,
    division_customers,
    division_nps,
    division_transactions,
    duckdb_features,
    feature_sql,
)

pytestmark = [pytest.mark.slow, pytest.mark.spark]


@pytest.fixture(scope="module")
def spark(spark_session):
    session = spark_session()  # the worker's shared Spark local session (conftest), ANSI on
    # dates must not move with the session zone: run in one far from UTC
    settings = {
        "spark.sql.session.timeZone": "Pacific/Kiritimati",
        "spark.sql.shuffle.partitions": "1",
    }
    before = {key: session.conf.get(key) for key in settings}
    for key, value in settings.items():
        session.conf.set(key, value)
    assert session.conf.get("spark.sql.ansi.enabled") == "true"
    views = {
        "transactions": division_transactions().select(["customer_id", "date", "amount"]),
        "customers": division_customers(),
        "nps": division_nps(),
        "cutoffs": cutoff_table(),
    }
    for name, table in views.items():
        session.createDataFrame(table).createOrReplaceTempView(name)
    yield session
    for name in views:
        session.catalog.dropTempView(name)
    for key, value in before.items():
        session.conf.set(key, value)


def _same(left, right) -> bool:
    if isinstance(left, float) or isinstance(right, float):
        if left is None or right is None:
            return left is right
        return math.isclose(left, right, rel_tol=1e-9, abs_tol=0.0)
    # integers, dates and text: equal values of the same Python type (no int/float mix-up)
    return type(left) is type(right) and left == right


@pytest.mark.parametrize("labelled", [True, False], ids=["training", "as_of"])
def test_spark_ansi_gives_duckdbs_features_on_the_edge_cases(spark, labelled):
    expected = duckdb_features(labelled)
    result = spark.sql(spark_sql(feature_sql(labelled)))
    assert result.columns == expected.column_names
    rows = [row.asDict() for row in result.collect()]  # the query orders by cutoff, customer_id
    wanted = expected.to_pylist()
    assert [(r["cutoff"], r["customer_id"]) for r in rows] == [
        (r["cutoff"], r["customer_id"]) for r in wanted
    ]
    assert all(isinstance(r["cutoff"], date) for r in rows)
    differences = [
        (want["customer_id"], want["cutoff"], name, got[name], want[name])
        for got, want in zip(rows, wanted, strict=True)
        for name in expected.column_names
        if not _same(got[name], want[name])
    ]
    assert differences == []
