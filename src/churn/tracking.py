"""Every MLflow call of the project: tracking URI, training runs, the registry, evaluation logging.

MLflow is imported inside the functions: it is slow to import and most commands never need it.
Nothing logged here may identify a customer: params, tags, metrics and artifacts are aggregates,
and the model's input example is synthetic.
"""

from __future__ import annotations

import contextlib
import json
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
from churn.files import csv_text, sha256_file
from churn.model import (
    ARTIFACT_FILES,
    DRIFT_REFERENCE_FILE,
    METADATA_FILE,
    MODEL_FILE,
    ChurnModel,
)

CHALLENGER = "challenger"
SHA_TAG = "churn.model_sha256"  # sha256 of model.txt, to find the version or run of a folder
EVALUATION_SHA_TAG = "churn.evaluation_sha256"  # on a training run: its evaluation model
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


def data_fingerprint(snapshots: pd.DataFrame, path: str | Path | None = None) -> dict[str, Any]:
    """Return row counts, customers, churn rates and cutoff ranges per role (+ file sha256)."""
    out: dict[str, Any] = {"rows": int(len(snapshots))}
    if path is not None:
        out["file"] = Path(path).name
        out["sha256"] = sha256_file(path)
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
    # a stacked calibrator reads one more column of the rows (BG/NBD's probability)
    stack = [model.calibrator.column] if model.calibrator.column else []
    for name in [*model.spec.numeric, *stack]:
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
    """Return an MLflow client of `uri`, checked readable: a damaged store is a ChurnError."""
    # artifact download progress bars flood non-interactive logs
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    import mlflow

    mlflow.set_tracking_uri(uri)
    try:
        client = mlflow.MlflowClient(tracking_uri=uri)
        client.search_registered_models(max_results=1)
    except Exception as error:  # sqlalchemy, MLflow and network errors alike: the store is unusable
        raise registry_unreadable(uri, error) from None
    return client


def registry_unreadable(uri: str, error: BaseException) -> ChurnError:
    """Return the error for a tracking store that cannot be read, naming the recovery."""
    first = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
    where = uri.removeprefix("sqlite:///") if uri.startswith("sqlite:///") else uri
    return ChurnError(
        f"MLflow registry {where}: cannot be read ({type(error).__name__}: {first}). Nothing was "
        "changed. Restore it from a backup (for the default store: copy mlflow.db back), or point "
        "MLFLOW_TRACKING_URI at the team's registry. Do not delete it to start over: models/"
        "champion/ and the published lists name its versions (docs/scheduling.md, 'When the "
        "registry is lost')"
    )


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
    extra_shas: dict[str, str] | None = None,
) -> TrainingRecord:
    """Log a training run and its pyfunc model; register it and point `challenger` at it.

    The run is tagged with the booster sha256 of the registered model (and of any `extra_shas`,
    such as the evaluation model's) so later stages find it from the model folder alone.
    """
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
        mlflow.set_tag(SHA_TAG, _folder_sha(model_dir))
        for name, sha in (extra_shas or {}).items():
            mlflow.set_tag(name, sha)
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
        # the model folder records no run or version (DVC tracks it, so it must not change from
        # run to run): the booster's sha256 is how the gate and evaluate find them again
        client.set_model_version_tag(model_name, version, SHA_TAG, _folder_sha(model_dir))
        mlflow.set_tag("model_version", version)
    return TrainingRecord(run.info.run_id, model_name, version)


def find_run(uri: str, experiment: str, tag: str, sha: str) -> str | None:
    """Return the newest run of `experiment` whose tag `tag` equals `sha`, or None."""
    client = _client(uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return None
    runs = client.search_runs(
        [found.experiment_id],
        filter_string=f"tags.`{tag}` = '{sha}'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    return runs[0].info.run_id if runs else None


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
            f"MLflow run {run_id} (from the model folder's metadata.json) is not in {uri}; "
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
            # the same spreadsheet-safe CSV as reports/plots/ (people open these too)
            mlflow.log_text(csv_text(table), f"evaluation/{name}.csv")
        mlflow.set_tag("evaluated", "true")
        # out_of_time, or in_time_holdout (customers held out, not dates: a short history)
        mlflow.set_tag("evaluation", str(metrics.get("evaluation", "out_of_time")))


def spark_udf(spark: Any, uri: str, model_uri: str) -> Any:
    """Return a Spark UDF of the pyfunc model (calibrated probabilities) for large-scale scoring."""
    import mlflow

    mlflow.set_tracking_uri(uri)
    # env_manager="local": executors use this environment, the one the model was tested in
    return mlflow.pyfunc.spark_udf(spark, model_uri, result_type="double", env_manager="local")


# --------------------------------------------------------------------------- promote / rollback
# The registry as the champion/challenger gate sees it. Only ModelRegistry.set_alias changes
# production; `churn promote` calls it last, and only with --apply, from `churn retrain`, or when
# no champion exists yet.
FOLDER_ARTIFACT = "model_folder"  # run artifact path of folders registered by the gate
REFERENCE_ARTIFACT = "drift_reference"  # run artifact path of a version's frozen drift reference
REJECTED_TAG = "churn.rejected"  # set by `churn rollback` on the version it rolled back from
# MLflow keeps no alias history: each move of the champion alias stamps the version it now names
CHAMPION_SINCE_TAG = "churn.champion_since"  # ns since the epoch of the latest such move
RESTORED_TAG = "churn.restored_from"  # on a version re-registered from models/champion/


def _folder_sha(folder: str | Path) -> str:
    """Return the sha256 of a model folder's booster as recorded in its metadata.json."""
    metadata = json.loads((Path(folder) / METADATA_FILE).read_text(encoding="utf-8"))
    sha = metadata.get("files_sha256", {}).get(MODEL_FILE)
    if not sha:
        raise ChurnError(
            f"{folder}/{METADATA_FILE}: no files_sha256.{MODEL_FILE}; resave the model"
        )
    return str(sha)


class ModelRegistry:
    """One registered model as the promote gate and rollback see it (churn.promote.Registry)."""

    def __init__(self, uri: str, model_name: str) -> None:
        self.tracking_uri = uri
        self.model_name = model_name
        self.client = _client(uri)

    # ----------------------------------------------------------------- reading
    def alias_version(self, alias: str) -> str | None:
        """Return the version the alias points to, or None when the alias (or model) is absent."""
        from mlflow.exceptions import MlflowException

        try:
            return str(self.client.get_model_version_by_alias(self.model_name, alias).version)
        except MlflowException:
            return None

    def versions(self) -> list[dict[str, Any]]:
        """Return every version of the model (newest first) with its aliases and tags."""
        from mlflow.exceptions import MlflowException

        try:
            aliases = self.client.get_registered_model(self.model_name).aliases
        except MlflowException:
            return []
        by_version: dict[str, list[str]] = {}
        for alias, version in aliases.items():
            by_version.setdefault(str(version), []).append(alias)
        # search results carry no aliases: take them from the registered model
        rows = [
            {**_version_row(v), "aliases": sorted(by_version.get(str(v.version), []))}
            for v in self.client.search_model_versions(f"name='{self.model_name}'")
        ]
        return sorted(rows, key=lambda row: int(row["version"]), reverse=True)

    def version_info(self, version: str) -> dict[str, Any] | None:
        """Return one version's aliases, run, sha256 and tags, or None when it does not exist."""
        from mlflow.exceptions import MlflowException

        try:
            return _version_row(self.client.get_model_version(self.model_name, str(version)))
        except MlflowException:
            return None

    def find_version(self, sha: str) -> str | None:
        """Return the newest version whose booster has this sha256, or None."""
        for row in self.versions():
            if row["sha256"] == sha:
                return row["version"]
        return None

    def rejected_reason(self, version: str) -> str | None:
        """Return why a version was rolled back from, or None when it never was."""
        info = self.version_info(version)
        return None if info is None else info["tags"].get(REJECTED_TAG)

    def fetch_folder(self, version: str, dest: str | Path) -> Path:
        """Download a version's model folder (and its drift reference, if any) into `dest`."""
        import mlflow.artifacts

        dest = Path(dest)
        info = self.version_info(version)
        if info is None:
            raise ChurnError(
                f"registry {self.tracking_uri}: model {self.model_name!r} has no version "
                f"{version}; list versions with `churn rollback --list`"
            )
        with tempfile.TemporaryDirectory(prefix="churn-fetch-") as tmp:
            root = Path(
                mlflow.artifacts.download_artifacts(
                    artifact_uri=self.client.get_model_version_download_uri(
                        self.model_name, str(version)
                    ),
                    dst_path=tmp,
                    tracking_uri=self.tracking_uri,
                )
            )
            source = _folder_holding(root, MODEL_FILE)
            missing = (
                list(ARTIFACT_FILES)
                if source is None
                else [name for name in ARTIFACT_FILES if not (source / name).is_file()]
            )
            if source is None or missing:
                raise ChurnError(
                    f"registry: version {version} of {self.model_name!r} holds no complete model "
                    f"folder (missing {missing}); roll back to another version"
                )
            dest.mkdir(parents=True, exist_ok=True)
            for name in (*ARTIFACT_FILES, DRIFT_REFERENCE_FILE):
                if (source / name).is_file():
                    shutil.copyfile(source / name, dest / name)
            if not (dest / DRIFT_REFERENCE_FILE).is_file() and info["run_id"]:
                self._fetch_reference(info["run_id"], dest)
        return dest

    def has_reference(self, version: str) -> bool:
        """Return True when the version's run (or folder) already holds a drift reference."""
        info = self.version_info(version)
        if info is None or not info["run_id"]:
            return False
        for path in (REFERENCE_ARTIFACT, FOLDER_ARTIFACT):
            names = {Path(f.path).name for f in self.client.list_artifacts(info["run_id"], path)}
            if DRIFT_REFERENCE_FILE in names:
                return True
        return False

    def _fetch_reference(self, run_id: str, dest: Path) -> None:
        names = {Path(f.path).name for f in self.client.list_artifacts(run_id, REFERENCE_ARTIFACT)}
        if DRIFT_REFERENCE_FILE in names:
            with tempfile.TemporaryDirectory(prefix="churn-ref-") as tmp:
                got = self.client.download_artifacts(
                    run_id, f"{REFERENCE_ARTIFACT}/{DRIFT_REFERENCE_FILE}", tmp
                )
                shutil.copyfile(got, dest / DRIFT_REFERENCE_FILE)

    # ----------------------------------------------------------------- writing (never aliases)
    def _experiment_id(self, name: str) -> str:
        return str(_experiment_id(self.client, name, self.tracking_uri))

    def register_folder(
        self, folder: str | Path, experiment: str, tags: dict[str, str] | None = None
    ) -> str:
        """Log a model folder to a new run and register it as a new version; return the version."""
        from mlflow.exceptions import MlflowException

        folder = Path(folder)
        sha = _folder_sha(folder)
        run = self.client.create_run(
            self._experiment_id(experiment), run_name="register-model-folder"
        )
        try:
            self.client.log_artifacts(run.info.run_id, str(folder), FOLDER_ARTIFACT)
            self.client.set_tag(run.info.run_id, SHA_TAG, sha)
        finally:
            self.client.set_terminated(run.info.run_id)
        with contextlib.suppress(MlflowException):  # already registered
            self.client.create_registered_model(self.model_name)
        version = self.client.create_model_version(
            self.model_name,
            source=f"{run.info.artifact_uri}/{FOLDER_ARTIFACT}",
            run_id=run.info.run_id,
            tags={SHA_TAG: sha, **(tags or {})},
        )
        return str(version.version)

    def tag_sha(self, version: str, sha: str) -> None:
        """Record the booster sha256 on a version registered elsewhere (by `churn train`)."""
        self.client.set_model_version_tag(self.model_name, str(version), SHA_TAG, sha)

    def clear_rejected(self, version: str) -> None:
        """Remove the rolled-back mark (an explicit rollback *to* a version clears it)."""
        from mlflow.exceptions import MlflowException

        with contextlib.suppress(MlflowException):  # it had no mark
            self.client.delete_model_version_tag(self.model_name, str(version), REJECTED_TAG)

    def attach_reference(self, version: str, folder: str | Path) -> bool:
        """Store the folder's drift reference with the version's run; False if it cannot be."""
        path = Path(folder) / DRIFT_REFERENCE_FILE
        info = self.version_info(version)
        if not path.is_file() or info is None or not info["run_id"]:
            return False
        self.client.log_artifact(info["run_id"], str(path), REFERENCE_ARTIFACT)
        return True

    def mark_rejected(self, version: str, reason: str) -> None:
        """Tag a version so the gate never promotes it again (set by rollback)."""
        self.client.set_model_version_tag(self.model_name, str(version), REJECTED_TAG, reason)

    def log_decision(self, experiment: str, report: dict[str, Any], report_path: Path) -> str:
        """Log a gate decision (params, both models' metrics, fingerprint) as a run; return its id."""
        import time

        from mlflow.entities import Metric, Param, RunTag

        run = self.client.create_run(self._experiment_id(experiment), run_name="promote")
        run_id = run.info.run_id
        now = int(time.time() * 1000)
        params = [Param(key, str(value)) for key, value in report["rules"].items()]
        metrics = [
            Metric(f"{role}_{key}", float(value), now, 0)
            for role in ("challenger", "champion")
            for key, value in ((report.get(role) or {}).get("metrics") or {}).items()
            if isinstance(value, int | float)
        ]
        tags = {
            "decision": report["decision"],
            "challenger_version": report["challenger"].get("version"),
            "champion_version": (report.get("champion") or {}).get("version"),
            "chosen_version": report["chosen_version"],
            "alias_moved": report["alias"]["moved_by_this_run"],
            "eval_fingerprint": report["eval_data"]["sha256"],
            # out_of_time, or in_time_holdout: short history, floor only
            "evaluation": report.get("evaluation"),
        }
        try:
            self.client.log_batch(
                run_id,
                metrics=metrics,
                params=params,
                tags=[RunTag(k, "" if v is None else str(v)) for k, v in tags.items()],
            )
            self.client.log_artifact(run_id, str(report_path))
        finally:
            self.client.set_terminated(run_id)
        return run_id

    def alias_history(self, alias: str, limit: int) -> list[str]:
        """Return up to `limit` versions that held the alias, latest first (the holder first).

        Taken from the stamps `set_alias` leaves on each version it points the alias at; a holder
        from before stamps existed is still listed first.
        """
        holder = self.alias_version(alias)
        stamped = [
            (row["tags"][_since_tag(alias)], row["version"])
            for row in self.versions()
            if _since_tag(alias) in row["tags"]
        ]
        ordered = [version for _, version in sorted(stamped, reverse=True)]
        history = ([holder] if holder else []) + [v for v in ordered if v != holder]
        return history[:limit]

    # ----------------------------------------------------------------- the one alias move
    def set_alias(self, alias: str, version: str) -> None:
        """Point the alias at a version: the only call that changes production. The version is
        stamped with the time, so the alias's history can be read back (`alias_history`)."""
        import time

        # nanoseconds since the epoch, zero-padded: sorts as text, and two moves never tie
        stamp = f"{time.time_ns():020d}"
        self.client.set_model_version_tag(self.model_name, str(version), _since_tag(alias), stamp)
        self.client.set_registered_model_alias(self.model_name, alias, str(version))


def project_registry(names: Any) -> ModelRegistry:  # names: churn.config.RegistryParams
    """Return the registry of `names.model` in this project's tracking store (MLFLOW_TRACKING_URI,
    or the SQLite file in the working folder)."""
    return ModelRegistry(tracking_uri(Path.cwd()), names.model)


def _since_tag(alias: str) -> str:
    return CHAMPION_SINCE_TAG if alias == "champion" else f"churn.{safe_key(alias)}_since"


def _version_row(version: Any) -> dict[str, Any]:
    tags = dict(version.tags or {})
    return {
        "version": str(version.version),
        "aliases": sorted(getattr(version, "aliases", None) or []),
        "created": version.creation_timestamp,
        "run_id": version.run_id,
        "sha256": tags.get(SHA_TAG),
        "tags": tags,
    }


def _folder_holding(root: Path, name: str) -> Path | None:
    """Return the shallowest folder under root that holds a file called `name`."""
    if (root / name).is_file():
        return root
    hits = sorted(root.rglob(name), key=lambda p: len(p.parts))
    return hits[0].parent if hits else None
