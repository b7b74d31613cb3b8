"""A real Spark job that runs out of heap (a local driver with 512 MB, in its own process and
JVM) ends in a ChurnError naming the setting to change, not in a Java stack trace."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.spark]

SCRIPT = textwrap.dedent(
    """
    from churn.config import EngineParams
    from churn.errors import ChurnError
    from churn.spark.session import spark_session

    conf = {"spark.driver.memory": "512m", "spark.ui.enabled": "false",
            "spark.sql.shuffle.partitions": "2"}
    engine = EngineParams(kind="spark", spark={"master": "local[1]", "conf": conf})
    try:
        with spark_session(engine, "features") as spark:
            # one task gathers 400 million longs (3.2 GB) into one array: the heap cannot hold it
            spark.range(0, 400_000_000).selectExpr("collect_list(id) AS ids").selectExpr(
                "size(ids)"
            ).collect()
    except ChurnError as error:
        print("CHURN ERROR:", error)
        raise SystemExit(3)
    print("NO ERROR")
    """
)


def test_a_spark_job_out_of_heap_is_a_clear_error_naming_the_memory_setting():
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 3, (done.stdout[-2000:], done.stderr[-4000:])
    message = done.stdout.split("CHURN ERROR:", 1)[1]
    assert message.strip().startswith("features: Spark ran out of memory (")
    assert "spark.driver.memory (now 512m" in message
    assert "Traceback" not in done.stdout
