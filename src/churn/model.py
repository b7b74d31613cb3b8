"""The model artifact: LightGBM Booster text + calibrator + feature spec, saved and loaded as a folder."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from churn.errors import ChurnError

if (
    TYPE_CHECKING
):  # LightGBM (with scikit-learn and SciPy) takes seconds to import: only when loading
    import lightgbm as lgb

MODEL_FILE = "model.txt"
CALIBRATOR_FILE = "calibrator.json"
FEATURES_FILE = "features.json"
METADATA_FILE = "metadata.json"
ARTIFACT_FILES = (MODEL_FILE, CALIBRATOR_FILE, FEATURES_FILE, METADATA_FILE)
# optional: PSI bins frozen at training time (churn.drift), written by the promote stage
DRIFT_REFERENCE_FILE = "drift_reference.json"

_EPS = 1e-6


# stable per-customer hash splits (churn.train): same id, same side, in every run and cutoff
@dataclass(frozen=True)
class FeatureSpec:
    """The model's inputs, in order: numeric columns, then categorical columns with fixed levels."""

    numeric: tuple[str, ...]
    categorical: tuple[str, ...] = ()
    categories: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        """Return every feature name in model order."""
        return [*self.numeric, *self.categorical]

    @classmethod
    def infer(cls, frame: pd.DataFrame, features: list[str]) -> FeatureSpec:
        """Return a spec for `features` of `frame`: string/categorical columns become categorical."""
        numeric, categorical, categories = [], [], {}
        for name in features:
            column = frame[name]
            if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
                numeric.append(name)
            else:
                categorical.append(name)
                levels = pd.Series(column.dropna().astype(str).unique()).sort_values()
                categories[name] = tuple(levels.tolist())
        return cls(tuple(numeric), tuple(categorical), categories)

    def to_matrix(self, frame: pd.DataFrame, source: str = "features") -> pd.DataFrame:
        """Return the model matrix: columns in model order, numeric as float64, categories fixed."""
        missing = [name for name in self.names if name not in frame.columns]
        if missing:
            raise ChurnError(
                f"{source}: missing feature column(s) {missing}; the model was trained with "
                f"{len(self.names)} features — rebuild features with the same code version or retrain"
            )
        columns: dict[str, Any] = {}
        for name in self.numeric:
            columns[name] = pd.to_numeric(frame[name], errors="raise").astype("float64").to_numpy()
        for name in self.categorical:
            # levels unseen at training become missing, which LightGBM handles as its own branch
            levels = list(self.categories[name])
            values = frame[name].astype("object").where(frame[name].notna(), None)
            text = pd.Series([None if v is None else str(v) for v in values], dtype="object")
            columns[name] = pd.Categorical(text.where(text.isin(levels), None), categories=levels)
        return pd.DataFrame(columns, index=frame.index)

    def to_dict(self) -> dict[str, Any]:
        return {
            "numeric": list(self.numeric),
            "categorical": list(self.categorical),
            "categories": {k: list(v) for k, v in self.categories.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureSpec:
        return cls(
            tuple(data["numeric"]),
            tuple(data.get("categorical", [])),
            {k: tuple(v) for k, v in data.get("categories", {}).items()},
        )


@dataclass(frozen=True)
class Calibrator:
    """Maps raw model scores to calibrated probabilities: identity, isotonic or Platt (on logits)."""

    kind: str = "identity"
    x: tuple[float, ...] = ()  # isotonic: raw-score thresholds (increasing)
    y: tuple[float, ...] = ()  # isotonic: calibrated probability at each threshold
    a: float = 1.0  # platt: p = sigmoid(a * logit(raw) + b)
    b: float = 0.0

    def apply(self, raw: np.ndarray) -> np.ndarray:
        """Return calibrated probabilities for raw scores in [0, 1]."""
        raw = np.asarray(raw, dtype="float64")
        if self.kind == "identity":
            return raw.copy()
        if self.kind == "isotonic":
            return np.interp(raw, np.asarray(self.x), np.asarray(self.y))
        if self.kind == "platt":
            clipped = np.clip(raw, _EPS, 1 - _EPS)
            logit = np.log(clipped / (1 - clipped))
            return 1.0 / (1.0 + np.exp(-(self.a * logit + self.b)))
        raise ChurnError(
            f"calibrator kind {self.kind!r} is unknown; expected identity, isotonic or platt"
        )

    def to_dict(self) -> dict[str, Any]:
        if self.kind == "isotonic":
            return {"kind": "isotonic", "x": list(self.x), "y": list(self.y)}
        if self.kind == "platt":
            return {"kind": "platt", "a": self.a, "b": self.b}
        return {"kind": self.kind}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibrator:
        kind = data.get("kind", "identity")
        if kind == "isotonic":
            x, y = tuple(map(float, data["x"])), tuple(map(float, data["y"]))
            if (
                len(x) != len(y)
                or len(x) == 0
                or any(b < a for a, b in zip(x, x[1:], strict=False))
            ):
                raise ChurnError(
                    "calibrator.json: isotonic x/y must be non-empty, equal length, x sorted"
                )
            return cls(kind, x, y)
        if kind == "platt":
            a, b = float(data["a"]), float(data["b"])
            if not (math.isfinite(a) and math.isfinite(b)):
                raise ChurnError("calibrator.json: platt a and b must be finite numbers")
            return cls(kind, a=a, b=b)
        return cls(kind)


@dataclass(frozen=True)
class ChurnModel:
    """A trained churn model: booster, calibrator, feature spec and free-form metadata."""

    booster: lgb.Booster
    calibrator: Calibrator
    spec: FeatureSpec
    metadata: dict[str, Any] = field(default_factory=dict)
    drift_reference: dict[str, Any] | None = None  # churn.drift reference, when one was built

    def predict_raw(self, frame: pd.DataFrame) -> np.ndarray:
        """Return the booster's uncalibrated probabilities for each row of `frame`."""
        matrix = self.spec.to_matrix(frame)
        if matrix.empty:
            return np.zeros(0, dtype="float64")
        return np.asarray(self.booster.predict(matrix), dtype="float64")

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Return calibrated churn probabilities for each row of `frame`."""
        return self.calibrator.apply(self.predict_raw(frame))

    def read_labels_overlapping(self, cutoffs: pd.Series, part: str) -> bool:
        """Return True when `part` ("calibration" or "training") of this model read labels whose
        window overlaps the label window (t, t + horizon] of any of `cutoffs` (per its metadata).

        Training covers every cutoff in `training_cutoffs` [oldest, newest] (a production refit's
        partly used `held_out` cutoff is handled by `held_out_mask`). Folders written before these
        keys existed have no record, and count as not overlapping.
        """
        # imported here: the served pyfunc model ships model.py alone (churn.tracking)
        from churn.cutoffs import labels_overlap

        if part == "calibration":
            newest = self.metadata.get("calibration_cutoff")
            span = [newest, newest]
        else:
            span = self.metadata.get("training_cutoffs")
        return labels_overlap(span, cutoffs, self.metadata.get("horizon_days"))

    def held_out_mask(self, rows: pd.DataFrame) -> np.ndarray | None:
        """Return which of `rows` this model never trained on, when that matters, else None.

        A production refit trains on part of its newest cutoff's customers (by a stable hash) and
        calibrates on the rest. On rows whose label window overlaps that cutoff's, only those
        held-out customers give an out-of-time ranking; elsewhere every row does (None).
        """
        from churn.cutoffs import labels_overlap

        held = self.metadata.get("held_out")
        if not held or rows.empty:
            return None
        span = [held["cutoff"], held["cutoff"]]
        if not labels_overlap(span, rows["cutoff"], self.metadata.get("horizon_days")):
            return None
        from churn.cutoffs import customer_share

        share = customer_share(rows["customer_id"].reset_index(drop=True), held["hash"])
        return share >= float(held["share_from"])

    @property
    def evaluation(self) -> str:
        """Return how this model's recipe was measured: "out_of_time" (a later cutoff; also for
        folders written before this was recorded) or "in_time_holdout" (held-out customers)."""
        return str(self.metadata.get("evaluation") or "out_of_time")

    def holdout_mask(self, rows: pd.DataFrame) -> np.ndarray | None:
        """Return which of `rows` belong to this model's in-time holdout (customers no model of
        its line trains on), or None when the model was measured out of time."""
        holdout = self.metadata.get("holdout")
        if self.evaluation != "in_time_holdout" or not holdout:
            return None
        from churn.cutoffs import customer_share

        share = customer_share(rows["customer_id"].reset_index(drop=True), holdout["hash"])
        return share < float(holdout["share_below"])

    @property
    def version(self) -> str:
        """Return the model version recorded in metadata (registry version or content hash)."""
        return str(self.metadata.get("model_version", self.metadata.get("sha256", "unversioned")))

    def save(self, folder: str | Path) -> dict[str, str]:
        """Write the artifact files (and any drift reference) into `folder`; return their sha256."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        texts = {
            MODEL_FILE: self.booster.model_to_string(),
            CALIBRATOR_FILE: _dump(self.calibrator.to_dict()),
            FEATURES_FILE: _dump(self.spec.to_dict()),
        }
        if self.drift_reference is not None:
            texts[DRIFT_REFERENCE_FILE] = _dump(self.drift_reference)
        else:
            (folder / DRIFT_REFERENCE_FILE).unlink(missing_ok=True)
        digests = {name: _sha256(text) for name, text in texts.items()}
        metadata = {**self.metadata, "files_sha256": digests}
        texts[METADATA_FILE] = _dump(metadata)
        # imported here: the served pyfunc model ships model.py alone (churn.tracking)
        from churn.files import write_text

        for name, text in texts.items():
            write_text(folder / name, text)
        return digests

    @classmethod
    def load(cls, folder: str | Path) -> ChurnModel:
        """Read a model folder written by `save`; raise ChurnError naming what is missing or corrupt."""
        folder = Path(folder)
        missing = [name for name in ARTIFACT_FILES if not (folder / name).is_file()]
        if missing:
            raise ChurnError(
                f"{folder}: model folder is missing {missing}; run `dvc repro train` (or promote) first"
            )
        texts = {name: (folder / name).read_text(encoding="utf-8") for name in ARTIFACT_FILES}
        if (folder / DRIFT_REFERENCE_FILE).is_file():
            texts[DRIFT_REFERENCE_FILE] = (folder / DRIFT_REFERENCE_FILE).read_text(
                encoding="utf-8"
            )
        try:
            metadata = json.loads(texts[METADATA_FILE])
            calibrator = Calibrator.from_dict(json.loads(texts[CALIBRATOR_FILE]))
            spec = FeatureSpec.from_dict(json.loads(texts[FEATURES_FILE]))
            reference = (
                json.loads(texts[DRIFT_REFERENCE_FILE]) if DRIFT_REFERENCE_FILE in texts else None
            )
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
            raise ChurnError(
                f"{folder}: corrupt model metadata ({error}); retrain the model"
            ) from None
        expected = metadata.get("files_sha256", {})
        if DRIFT_REFERENCE_FILE in expected and DRIFT_REFERENCE_FILE not in texts:
            raise ChurnError(
                f"{folder / DRIFT_REFERENCE_FILE}: listed in metadata.json but missing; restore the "
                "model folder (rerun `dvc repro promote`)"
            )
        for name in (MODEL_FILE, CALIBRATOR_FILE, FEATURES_FILE, DRIFT_REFERENCE_FILE):
            if name not in texts:
                continue
            if name in expected and expected[name] != _sha256(texts[name]):
                raise ChurnError(
                    f"{folder / name}: sha256 does not match metadata.json; the file was changed or "
                    "partly written — restore it or retrain"
                )
        import lightgbm as lgb

        try:
            booster = lgb.Booster(model_str=texts[MODEL_FILE])
        except lgb.basic.LightGBMError as error:
            raise ChurnError(f"{folder / MODEL_FILE}: not a LightGBM model ({error})") from None
        return cls(booster, calibrator, spec, metadata, reference)


def _dump(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
