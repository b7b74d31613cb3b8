"""The feature query transpiles to Spark SQL that parses (sqlglot); its golden file is compared
in test_spark_sql_golden.py."""

from __future__ import annotations

import pytest

from churn.config import ChurnParams, FeaturesParams
from churn.features.sql import snapshot_sql, spark_sql
from support.features_tables import CUTOFF

CHURN = ChurnParams()
PARAMS = FeaturesParams()


@pytest.mark.parametrize("labelled", [True, False])
def test_feature_sql_transpiles_to_spark_sql_that_parses(labelled):
    sqlglot = pytest.importorskip("sqlglot", reason="sqlglot is new in pyproject.toml")
    duckdb_sql = snapshot_sql(CHURN, PARAMS, CUTOFF, with_labels=labelled)
    spark = spark_sql(duckdb_sql)
    parsed = sqlglot.parse_one(spark, read="spark")
    assert parsed.find(sqlglot.exp.Window) is not None
    assert "MAX_BY" in spark and "ARG_MAX" not in spark
    assert "DATE_DIFF('day'" not in spark
