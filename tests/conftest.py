"""Shared fixtures: the project root and small helpers. Tests write only under tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def project_root() -> Path:
    return ROOT


# --------------------------------------------------------------------------- promote: MLflow store
# Creating a SQLite MLflow store runs its migrations (~8 s here): do it once per session and give
# each test its own copy under tmp_path.
@pytest.fixture(scope="session")
def _migrated_mlflow_db(tmp_path_factory) -> Path:
    from mlflow import MlflowClient

    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    uri = f"sqlite:///{path}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.search_experiments()
    client.search_registered_models()
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
