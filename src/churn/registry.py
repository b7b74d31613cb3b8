"""The MLflow model registry as the gate sees it: aliases, versions, model folders, decision runs."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from churn.errors import ChurnError
from churn.model import (
    ARTIFACT_FILES,
    DRIFT_REFERENCE_FILE,
    METADATA_FILE,
    MODEL_FILE,
)

FOLDER_ARTIFACT = "model_folder"  # run artifact path of folders registered by the gate
REFERENCE_ARTIFACT = "drift_reference"  # run artifact path of a version's frozen drift reference
SHA_TAG = "churn.model_sha256"  # sha256 of model.txt, to find the version of a model folder
REJECTED_TAG = "churn.rejected"  # set by `churn rollback` on the version it rolled back from


def default_tracking_uri(project: str | Path) -> str:
    """Return MLFLOW_TRACKING_URI if set, else a SQLite store in the project (absolute URI)."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path(project).resolve()}/mlflow.db"


def folder_sha(folder: str | Path) -> str:
    """Return the sha256 of a model folder's booster as recorded in its metadata.json."""
    metadata = json.loads((Path(folder) / METADATA_FILE).read_text(encoding="utf-8"))
    sha = metadata.get("files_sha256", {}).get(MODEL_FILE)
    if not sha:
        raise ChurnError(
            f"{folder}/{METADATA_FILE}: no files_sha256.{MODEL_FILE}; resave the model"
        )
    return str(sha)


class MlflowRegistry:
    """One registered model in an MLflow registry; every MLflow call of promote/rollback is here."""

    def __init__(
        self, tracking_uri: str, model_name: str, artifact_root: str | Path | None = None
    ) -> None:
        from mlflow import MlflowClient

        # tqdm bars from artifact downloads flood scheduler logs
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        self.tracking_uri = tracking_uri
        self.model_name = model_name
        self.artifact_root = Path(artifact_root).resolve() if artifact_root else None
        self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)

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
        found = self.client.search_model_versions(f"name='{self.model_name}'")
        return sorted((_row(v) for v in found), key=lambda row: int(row["version"]), reverse=True)

    def version_info(self, version: str) -> dict[str, Any] | None:
        """Return one version's aliases, run, sha256 and tags, or None when it does not exist."""
        from mlflow.exceptions import MlflowException

        try:
            return _row(self.client.get_model_version(self.model_name, str(version)))
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
        experiment = self.client.get_experiment_by_name(name)
        if experiment is not None:
            return str(experiment.experiment_id)
        location = None
        if self.artifact_root is not None:
            location = (self.artifact_root / name).as_uri()
        return str(self.client.create_experiment(name, artifact_location=location))

    def register_folder(self, folder: str | Path, experiment: str) -> str:
        """Log a model folder to a new run and register it as a new version; return the version."""
        from mlflow.exceptions import MlflowException

        folder = Path(folder)
        sha = folder_sha(folder)
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
            tags={SHA_TAG: sha},
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

    # ----------------------------------------------------------------- the one alias move
    def set_alias(self, alias: str, version: str) -> None:
        """Point the alias at a version: the only call that changes production."""
        self.client.set_registered_model_alias(self.model_name, alias, str(version))


def _row(version: Any) -> dict[str, Any]:
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
