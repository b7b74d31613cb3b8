"""Every MLflow call of the project: tracking URI, training runs, the registry, evaluation logging.

MLflow is imported inside the functions: it is slow to import and most commands never need it.
Nothing logged here may identify a customer: params, tags, metrics and artifacts are aggregates,
and the model's input example is synthetic.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from churn.columns import CHURNED, CUSTOMER_ID, CUTOFF, ROLE
from churn.errors import ChurnError
from churn.model import ARTIFACT_FILES, ChurnModel

CHALLENGER = "challenger"
PYFUNC_FILE = Path(__file__).with_name("pyfunc_model.py")
MODEL_ARTIFACT = "model"
_PACKAGE_FILES = ("__init__.py", "errors.py", "model.py")  # what the pyfunc imports
_UNSAFE = re.compile(r"[^A-Za-z0-9_\-. /]")


@dataclass(frozen=True)
class TrainingRecord:
    """Where a training run landed: run id, registered model name and version."""

    run_id: str
    model_name: str
    model_version: str


def tracking_uri(project_root: str | Path) -> str:
    """Return MLFLOW_TRACKING_URI if set, else an absolute SQLite URI in the project folder."""
    configured = os.environ.get("MLFLOW_TRACKING_URI", "").strip()
    if configured:
        return configured
    return f"sqlite:///{Path(project_root).resolve() / 'mlflow.db'}"


def artifact_root(uri: str) -> str | None:
    """Return a folder beside a SQLite store for run artifacts (None: let the server decide)."""
    if uri.startswith("sqlite:///"):
        return (Path(uri.removeprefix("sqlite:///")).parent / "mlartifacts").as_uri()
    return None


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """Return nested mappings as {'a.b.c': leaf}; lists and tuples become comma-joined text."""
    out: dict[str, Any] = {}
    if isinstance(tree, dict):
        for key, value in tree.items():
            out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(tree, list | tuple):
        out[prefix] = ",".join(str(v) for v in tree)
    else:
        out[prefix] = tree
    return out


def safe_key(key: str) -> str:
    """Return the key with characters MLflow rejects replaced by '_'."""
    return _UNSAFE.sub("_", key)


def file_sha256(path: str | Path) -> str:
    """Return the sha256 hex digest of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def data_fingerprint(snapshots: pd.DataFrame, path: str | Path | None = None) -> dict[str, Any]:
    """Return row counts, customers, churn rates and cutoff ranges per role (+ file sha256)."""
    out: dict[str, Any] = {"rows": int(len(snapshots))}
    if path is not None:
        out["file"] = Path(path).name
        out["sha256"] = file_sha256(path)
    cutoffs = pd.to_datetime(snapshots[CUTOFF])
    roles = snapshots[ROLE].astype("string")
    for role in sorted(roles.dropna().unique()):
        mask = (roles == role).to_numpy()
        part = {
            "rows": int(mask.sum()),
            "customers": int(snapshots.loc[mask, CUSTOMER_ID].nunique()),
            "cutoffs": int(cutoffs[mask].nunique()),
            "cutoff_min": str(cutoffs[mask].min().date()),
            "cutoff_max": str(cutoffs[mask].max().date()),
        }
        if CHURNED in snapshots.columns:
            part["churn_rate"] = round(float(snapshots.loc[mask, CHURNED].mean()), 6)
        out[str(role)] = part
    return out


def git_revision(project_root: str | Path) -> dict[str, str]:
    """Return the git commit of the project folder and whether the work tree has changes."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=project_root,
            capture_output=True,
            text=True,
            check=True,
            timeout=20,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=project_root,
            capture_output=True,
            text=True,
            check=True,
            timeout=20,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return {"git_commit": "unknown", "git_dirty": "unknown"}
    return {"git_commit": commit, "git_dirty": str(bool(status)).lower()}


def synthetic_input_example(model: ChurnModel, reference: pd.DataFrame) -> pd.DataFrame:
    """Return 3 feature-only rows built from column quantiles and levels — no real customer's row."""
    rows: dict[str, Any] = {}
    for name in model.spec.numeric:
        column = pd.to_numeric(reference[name], errors="coerce")
        values = column.quantile([0.25, 0.5, 0.75]).fillna(0.0).to_numpy("float64")
        # keep the snapshot's dtypes: MLflow will not cast int64 input to a double schema
        if pd.api.types.is_integer_dtype(reference[name].dtype):
            rows[name] = np.round(values).astype(reference[name].dtype)
        else:
            rows[name] = np.round(values, 3)
    for name in model.spec.categorical:
        levels = list(model.spec.categories.get(name, ())) or ["unknown"]
        rows[name] = pd.array([levels[i % len(levels)] for i in range(3)], dtype="string")
    return pd.DataFrame(rows)


def _client(uri: str) -> Any:
    # artifact download progress bars flood non-interactive logs
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    import mlflow

    mlflow.set_tracking_uri(uri)
    return mlflow.MlflowClient(tracking_uri=uri)


def _experiment_id(client: Any, name: str, uri: str) -> str:
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    return client.create_experiment(name, artifact_location=artifact_root(uri))


def log_training(
    uri: str,
    experiment: str,
    model_name: str,
    model_dir: str | Path,
    params: dict[str, Any],
    metrics: dict[str, float],
    tags: dict[str, str],
    fingerprint: dict[str, Any],
    input_example: pd.DataFrame,
) -> TrainingRecord:
    """Log a training run and its pyfunc model; register it and point `challenger` at it."""
    import mlflow
    from mlflow.models import infer_signature

    client = _client(uri)
    experiment_id = _experiment_id(client, experiment, uri)
    model = ChurnModel.load(model_dir)
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"train-{model_name}") as run:
        mlflow.log_params({safe_key(k): v for k, v in flatten(params).items()})
        mlflow.log_params({safe_key(f"data.{k}"): v for k, v in flatten(fingerprint).items()})
        mlflow.log_metrics({safe_key(k): float(v) for k, v in metrics.items()})
        mlflow.set_tags({"stage": "train", **tags})
        mlflow.log_dict(fingerprint, "data_fingerprint.json")
        with warnings.catch_warnings():
            # integer feature columns are integers in the snapshot contract; no nulls expected
            warnings.filterwarnings("ignore", message=".*integer column", category=UserWarning)
            signature = infer_signature(input_example, model.predict_proba(input_example))
        with tempfile.TemporaryDirectory() as tmp:
            bundle = Path(tmp) / "model_dir"
            bundle.mkdir()
            for name in ARTIFACT_FILES:
                shutil.copy2(Path(model_dir) / name, bundle / name)
            # a minimal copy of the package so the served model needs only lightgbm and pandas
            package = Path(tmp) / "code" / "churn"
            package.mkdir(parents=True)
            for name in _PACKAGE_FILES:
                shutil.copy2(Path(__file__).with_name(name), package / name)
            info = mlflow.pyfunc.log_model(
                name=MODEL_ARTIFACT,
                python_model=str(PYFUNC_FILE),
                artifacts={"model_dir": str(bundle)},
                code_paths=[str(package)],
                signature=signature,
                input_example=input_example,
                registered_model_name=model_name,
                pip_requirements=_requirements(),
            )
        version = str(info.registered_model_version)
        client.set_registered_model_alias(model_name, CHALLENGER, version)
        client.set_model_version_tag(model_name, version, "run_id", run.info.run_id)
        mlflow.set_tag("model_version", version)
    return TrainingRecord(run.info.run_id, model_name, version)


def _requirements() -> list[str]:
    from importlib.metadata import version

    return [f"{name}=={version(name)}" for name in ("lightgbm", "pandas", "numpy", "mlflow")]


def log_evaluation(
    uri: str,
    run_id: str,
    metrics: dict[str, Any],
    figures: dict[str, Any],
    tables: dict[str, pd.DataFrame],
) -> None:
    """Add evaluation metrics, plot images and plot tables to the training run `run_id`."""
    import mlflow
    from mlflow.exceptions import MlflowException

    client = _client(uri)
    try:
        client.get_run(run_id)
    except MlflowException:
        raise ChurnError(
            f"MLflow run {run_id} (from models/challenger/metadata.json) is not in {uri}; "
            "retrain with `dvc repro -f train` so evaluation has a run to log to"
        ) from None
    numbers = {
        safe_key(f"test.{k}"): float(v)
        for k, v in flatten(metrics).items()
        if isinstance(v, int | float) and not isinstance(v, bool) and np.isfinite(v)
    }
    with mlflow.start_run(run_id=run_id):
        mlflow.log_metrics(numbers)
        mlflow.log_dict(metrics, "evaluation/metrics.json")
        for name, figure in figures.items():
            mlflow.log_figure(figure, f"evaluation/{name}.png")
        for name, table in tables.items():
            mlflow.log_text(table.to_csv(index=False), f"evaluation/{name}.csv")
        mlflow.set_tag("evaluated", "true")


def alias_version(uri: str, model_name: str, alias: str) -> str | None:
    """Return the version a registry alias points at, or None when the alias is not set."""
    from mlflow.exceptions import MlflowException

    client = _client(uri)
    try:
        return str(client.get_model_version_by_alias(model_name, alias).version)
    except MlflowException:
        return None


def load_pyfunc(uri: str, model_uri: str) -> Any:
    """Return the MLflow pyfunc model at `model_uri` (e.g. models:/churn-classifier@challenger)."""
    import mlflow

    mlflow.set_tracking_uri(uri)
    return mlflow.pyfunc.load_model(model_uri)
