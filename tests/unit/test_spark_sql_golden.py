"""Every query the Spark engine transpiles from DuckDB's dialect equals its committed golden file
(the features, the transactions' and side tables' row rules, the data checks' aggregates), so a
sqlglot upgrade or an edit of the shared SQL shows as a diff. Pure sqlglot: no Spark, no Java."""

from __future__ import annotations

import difflib

import pytest

from support.spark_golden import GOLDENS, REGENERATE


@pytest.mark.parametrize("golden", list(GOLDENS), ids=[path.stem for path in GOLDENS])
def test_transpiled_spark_sql_equals_the_committed_golden_file(golden):
    current, committed = GOLDENS[golden](), golden.read_text(encoding="utf-8")
    diff = "".join(
        difflib.unified_diff(
            committed.splitlines(keepends=True),
            current.splitlines(keepends=True),
            fromfile=f"{golden.name} (committed)",
            tofile="transpiled now",
            n=1,
        )
    )
    assert not diff, (
        f"the Spark SQL in {golden.name} changed (an edit of the SQL it is transpiled from, or a "
        f"sqlglot upgrade); review this diff, then regenerate with `{REGENERATE}`:\n" + diff[:6000]
    )


def test_every_golden_query_parses_as_spark_sql():
    sqlglot = pytest.importorskip("sqlglot")
    for golden in GOLDENS:
        statements = [s for s in golden.read_text(encoding="utf-8").split(";\n") if s.strip()]
        for statement in statements:
            lines = statement.splitlines()
            body = "\n".join(line for line in lines if not line.startswith("--"))
            if body.strip():
                assert sqlglot.parse_one(body, read="spark") is not None, golden.name


def test_the_golden_files_cover_every_branch_that_changes_the_sql():
    from support.spark_golden import CHECKS, INGEST_ROWS, SIDE_ROWS

    rows = INGEST_ROWS.read_text(encoding="utf-8")
    assert "FROM_UTC_TIMESTAMP" in rows  # zoned timestamps
    assert "CAST(`ordered_at` AS TIMESTAMP_NTZ) AS __ts" in rows  # naive ones
    assert "CAST(`ordered_on` AS TIMESTAMP_NTZ) AS __ts" in rows  # dates
    assert "RLIKE" in rows and "TRY_CAST" in rows  # text amounts read as DuckDB reads them
    assert "'reused_transaction_id'" in rows and "CAST(NULL AS STRING) AS __tx" in rows
    side = SIDE_ROWS.read_text(encoding="utf-8")
    assert side.count("-- ===== customers") == 2 and side.count("-- ===== nps") == 2
    checks = CHECKS.read_text(encoding="utf-8")
    assert "PERCENTILE(" in checks and "HOUR(" in checks and "LIMIT 51" in checks
