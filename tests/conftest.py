"""Shared fixtures and the layer markers. Tests write only under tmp_path.

Each test gets the marker of its layer folder (unit, property, contract, integration, model), so
`pytest -m "unit or property or contract"` is the fast loop (`make test-fast`).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import pytest

from support import generated
from support.paths import ROOT

LAYERS = ("unit", "property", "contract", "integration", "model")


# Scheduling on the pytest-xdist workers (`--dist loadscope --no-loadscope-reorder`, pyproject.toml):
# each module stays on one worker, so its module fixtures run once (a module's later tests may read
# what its earlier ones wrote); modules start in collection order with the long ones first (the
# full `dvc repro` runs, then the rest of the `slow` modules), so no worker is left alone with a
# long test at the end of the run. (`--dist loadgroup` with per-module groups was tried: it sent
# one module's tests to both workers.)
FULL_PIPELINE = (
    "test_retrain_pipeline.py",
    "test_spark_pipeline.py",
    "test_short_history_pipeline.py",
)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items) -> None:
    """Mark every test with the layer its folder names (tests/<layer>/test_*.py); put the long
    modules first."""
    tests = Path(__file__).resolve().parent
    slow_modules = set()
    for item in items:
        layer = item.path.resolve().relative_to(tests).parts[0]
        if layer not in LAYERS:
            raise pytest.UsageError(
                f"{item.nodeid}: tests live in one of tests/{{{','.join(LAYERS)}}}/"
            )
        item.add_marker(layer)
        module = item.nodeid.split("::")[0]
        if item.get_closest_marker("slow"):
            slow_modules.add(module)

    def start(item) -> tuple[int, int]:
        name = item.path.name
        if name in FULL_PIPELINE:
            return (0, FULL_PIPELINE.index(name))
        return (1 if item.nodeid.split("::")[0] in slow_modules else 2, 0)

    items.sort(key=start)  # stable: a module's tests keep their order and stay together


@pytest.fixture
def project_root() -> Path:
    return ROOT


def _run_folder(tmp_path_factory, name: str) -> Path:
    """Return a folder of this test run shared by its parallel workers (pytest-xdist), if any."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return tmp_path_factory.mktemp(name)
    # each worker's basetemp is <run folder>/popen-gwN: their common parent is this run's alone
    folder = tmp_path_factory.getbasetemp().parent / name
    folder.mkdir(exist_ok=True)
    return folder


# --------------------------------------------------------------------------- generated data
# `churn generate` + `churn ingest` take a few seconds per population: run each once per test run
# (the workers share them, see support.generated).
@pytest.fixture(scope="session")
def _generated_folder(tmp_path_factory) -> Path:
    return _run_folder(tmp_path_factory, "generated")


@pytest.fixture(scope="session")
def generated_interim(_generated_folder):
    """Return a function (customers, seed, days=900) -> folder of clean Parquet tables."""
    return functools.partial(generated.generated_interim, _generated_folder)


@pytest.fixture(scope="session")
def generated_tables(_generated_folder):
    """Return a function (customers, seed, days=900) -> clean (transactions, customers, nps)."""
    return functools.partial(generated.generated_tables, _generated_folder)


@pytest.fixture(scope="session")
def dev_data(generated_tables):
    """Return a function () -> the report tests' clean tables: 1,500 customers over three years."""
    return functools.partial(generated_tables, 1500, 7, days=1095, chunk_customers=1000)


# --------------------------------------------------------------------------- promote: MLflow store
# Creating a SQLite MLflow store runs its migrations (~8 s here): do it once per test run (the
# workers share it) and give each test its own copy under tmp_path.
@pytest.fixture(scope="session")
def _migrated_mlflow_db(tmp_path_factory) -> Path:
    folder = _run_folder(tmp_path_factory, "mlflow-template")
    path = folder / "mlflow.db"
    with generated.exclusive(folder / "mlflow.lock"):
        if not (folder / "done").is_file():
            from mlflow import MlflowClient

            path.unlink(missing_ok=True)
            uri = f"sqlite:///{path}"
            client = MlflowClient(tracking_uri=uri, registry_uri=uri)
            client.search_experiments()
            client.search_registered_models()
            (folder / "done").write_text("")
    return path


@pytest.fixture
def mlflow_store(tmp_path, _migrated_mlflow_db, monkeypatch) -> str:
    """Return the tracking URI of a fresh, already-migrated SQLite MLflow store under tmp_path."""
    import shutil

    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)

    path = tmp_path / "mlflow" / "mlflow.db"
    path.parent.mkdir()
    shutil.copyfile(_migrated_mlflow_db, path)
    return f"sqlite:///{path}"


# --------------------------------------------------------------------------- Spark local
# Starting a SparkContext takes seconds: the modules that test on Spark in this process share
# one local session per worker (support.spark_parity.TEST_CONF). open_spark's getOrCreate returns
# it while it runs; a command that stops its session when done (the Spark ingest and features
# stages do) only makes the next call start a new one. Nothing else stops it before the end.
@pytest.fixture(scope="session")
def spark_session(tmp_path_factory):
    """Return a function () -> this worker's running Spark local session (skip without Java)."""
    from support.spark_parity import require_spark, spark_engine, stop_local_spark

    folder = tmp_path_factory.mktemp("spark-local")

    def session():
        require_spark()
        from churn.spark.session import open_spark

        return open_spark(spark_engine(folder))

    yield session
    stop_local_spark()


@pytest.fixture
def spark(spark_session):
    """This worker's Spark local session, running (see spark_session)."""
    return spark_session()
