"""A Spark job that runs out of memory or disk is a ChurnError naming the setting to change
(churn.spark.session.spark_resource_error), never a Java stack trace; other errors pass."""

from __future__ import annotations

import pytest

from churn.config import EngineParams
from churn.errors import ChurnError
from churn.spark.session import spark_resource_error, spark_resource_errors

ENGINE = EngineParams(kind="spark")

# the first lines of what pyspark raised in a local run whose task ran out of heap
HEAP = (
    "An error occurred while calling o37.collectToPython.\n"
    ": org.apache.spark.SparkException: Job aborted due to stage failure: Task 0 in stage 0.0 "
    "failed 1 times, most recent failure: Lost task 0.0 in stage 0.0 (TID 0) (192.0.2.2 "
    "executor driver): java.lang.OutOfMemoryError: Java heap space\n"
    "\tat java.base/java.util.Arrays.copyOf(Arrays.java:3512)\n"
)
YARN = (
    "Job aborted due to stage failure: ExecutorLostFailure (executor 3 exited caused by one of "
    "the running tasks) Reason: Container killed by YARN for exceeding memory limits. 5.6 GB "
    "of 5.5 GB physical memory used."
)
DISK = (
    "Job aborted due to stage failure: java.io.IOException: No space left on device\n"
    "\tat java.base/java.io.FileOutputStream.writeBytes(Native Method)\n"
)


class _Conf:
    def __init__(self, values: dict[str, str]) -> None:
        self.values = values

    def get(self, key: str, default: object = None) -> object:
        return self.values.get(key, default)


class _Session:
    """A classic session's surface that spark_resource_error reads: conf and the context."""

    def __init__(self, stopped: bool | None, conf: dict[str, str] | None = None) -> None:
        self.conf = _Conf(conf or {})
        self.stopped = stopped
        self._jsc = object()

    @property
    def sparkContext(self):  # noqa: N802 - pyspark's name
        session = self

        class _Sc:
            def isStopped(self) -> bool:  # noqa: N802
                if session.stopped is None:
                    raise ConnectionRefusedError("the JVM is gone")
                return bool(session.stopped)

        class _Jsc:
            def sc(self) -> _Sc:
                return _Sc()

        class _Context:
            _jsc = _Jsc()

        return _Context()


def test_heap_exhaustion_names_the_memory_settings_with_their_values():
    spark = _Session(False, {"spark.driver.memory": "1g", "spark.sql.shuffle.partitions": "8"})
    error = spark_resource_error(RuntimeError(HEAP), spark, ENGINE, "features")
    assert isinstance(error, ChurnError)
    text = str(error)
    assert text.startswith("features: Spark ran out of memory (")
    assert "java.lang.OutOfMemoryError: Java heap space" in text
    assert "spark.driver.memory (now 1g" in text and "spark.sql.shuffle.partitions (now 8)" in text
    assert "spark.executor.memory" in text
    assert "\tat " not in text  # no stack trace


def test_a_container_killed_for_memory_is_a_memory_error():
    error = spark_resource_error(RuntimeError(YARN), _Session(False), ENGINE, "score")
    assert error is not None and "Container killed by YARN" in str(error)
    assert "spark.executor.memory" in str(error)


def test_a_full_disk_names_spark_local_dir():
    spark = _Session(False, {"spark.local.dir": "/mnt/spill"})
    error = spark_resource_error(RuntimeError(DISK), spark, ENGINE, "ingest")
    assert error is not None
    assert "out of disk space" in str(error) and "spark.local.dir (now /mnt/spill)" in str(error)


def test_a_driver_that_stopped_mid_job_is_reported_as_memory():
    """A local driver that runs out of heap shuts its context down: pyspark then raises an
    unrelated-looking error (a NullPointerException about the DAGScheduler)."""
    npe = RuntimeError('java.lang.NullPointerException: Cannot invoke "...dagScheduler()" is null')
    for stopped in (True, None):  # stopped, or the JVM cannot even be asked
        error = spark_resource_error(npe, _Session(stopped), ENGINE, "features")
        assert error is not None and "driver stopped in the middle of the job" in str(error)
    assert spark_resource_error(npe, _Session(False), ENGINE, "features") is None


def test_other_errors_and_churn_errors_pass_unchanged():
    spark = _Session(False)
    with pytest.raises(ValueError, match="a bug"), spark_resource_errors(spark, ENGINE, "score"):
        raise ValueError("a bug")
    with pytest.raises(ChurnError, match="^mine$"), spark_resource_errors(spark, ENGINE, "score"):
        raise ChurnError("mine")
    with (
        pytest.raises(ChurnError, match="ran out of memory") as caught,
        spark_resource_errors(spark, ENGINE, "score"),
    ):
        raise RuntimeError(HEAP)
    assert caught.value.__suppress_context__  # shown without the Java error chained below it


class _Unreadable(RuntimeError):
    """A Py4J error whose text lives in a JVM that died: asking for it fails."""

    def __str__(self) -> str:
        raise ConnectionResetError("Error while sending or receiving")


def test_an_error_whose_text_cannot_be_read_is_judged_by_the_driver_state():
    error = spark_resource_error(_Unreadable(), _Session(None), ENGINE, "features")
    assert error is not None and "driver stopped in the middle of the job" in str(error)
    assert spark_resource_error(_Unreadable(), _Session(False), ENGINE, "features") is None
