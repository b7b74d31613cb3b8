"""The model artifact: LightGBM Booster text + calibrator + feature spec, saved and loaded as a folder."""

from __future__ import annotations

import hashlib
import json
import math
import re
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
PREDICT_ROWS = 100_000  # rows per booster.predict call (bounds the model matrix in memory)


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
    def from_dict(cls, data: Any, source: str = FEATURES_FILE) -> FeatureSpec:
        """Return the spec of a features.json object; raise ChurnError naming any wrong shape."""
        fix = "restore the model folder or retrain (`dvc repro train`)"
        if not isinstance(data, dict):
            raise ChurnError(
                f"{source}: expected a JSON object, found {type(data).__name__}; {fix}"
            )

        def names(key: str, value: Any) -> tuple[str, ...]:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ChurnError(f"{source}: {key!r} must be a list of column names; {fix}")
            return tuple(value)

        if "numeric" not in data:
            raise ChurnError(f"{source}: no 'numeric' list of feature names; {fix}")
        numeric = names("numeric", data["numeric"])
        categorical = names("categorical", data.get("categorical", []))
        categories = data.get("categories", {})
        if not isinstance(categories, dict):
            raise ChurnError(
                f"{source}: 'categories' must map each categorical feature to levels; {fix}"
            )
        levels = {k: names(f"categories.{k}", v) for k, v in categories.items()}
        unlisted = [name for name in categorical if name not in levels]
        if unlisted:
            raise ChurnError(f"{source}: no levels under 'categories' for {unlisted}; {fix}")
        return cls(numeric, categorical, levels)


def _logit(p: np.ndarray) -> np.ndarray:
    clipped = np.clip(np.asarray(p, dtype="float64"), _EPS, 1 - _EPS)
    return np.log(clipped / (1 - clipped))


KINDS = ("identity", "isotonic", "platt", "stack")


@dataclass(frozen=True)
class Calibrator:
    """Maps raw model scores to calibrated probabilities: identity, isotonic, Platt (on logits),
    or a stack: Platt with a second input, a probability column of the rows (the BG/NBD
    probability of no purchase in the horizon, churn.train)."""

    kind: str = "identity"
    x: tuple[float, ...] = ()  # isotonic: raw-score thresholds (increasing)
    y: tuple[float, ...] = ()  # isotonic: calibrated probability at each threshold
    a: float = 1.0  # platt: p = sigmoid(a * logit(raw) + b)
    b: float = 0.0
    # stack: p = sigmoid(a * logit(raw) + c * logit(row[column]) + b); a missing value of the
    # column (a cutoff whose BG/NBD fit was degenerate) counts as `fill` (a logit)
    column: str | None = None
    c: float = 0.0
    fill: float = 0.0

    def apply(self, raw: np.ndarray, stacked: np.ndarray | None = None) -> np.ndarray:
        """Return calibrated probabilities for raw scores in [0, 1] (and, for a stack, the
        column's values on the same rows)."""
        raw = np.asarray(raw, dtype="float64")
        if self.kind == "identity":
            return raw.copy()
        if self.kind == "isotonic":
            return np.interp(raw, np.asarray(self.x), np.asarray(self.y))
        if self.kind == "platt":
            return 1.0 / (1.0 + np.exp(-(self.a * _logit(raw) + self.b)))
        if self.kind == "stack":
            if stacked is None or len(stacked) != len(raw):
                raise ChurnError(
                    f"the stacked calibrator needs column {self.column!r} of the same rows"
                )
            second = _logit(np.asarray(stacked, dtype="float64"))
            second = np.where(np.isfinite(second), second, self.fill)
            return 1.0 / (1.0 + np.exp(-(self.a * _logit(raw) + self.c * second + self.b)))
        raise ChurnError(
            f"calibrator kind {self.kind!r} is unknown; expected one of {', '.join(KINDS)}"
        )

    def to_dict(self) -> dict[str, Any]:
        if self.kind == "isotonic":
            return {"kind": "isotonic", "x": list(self.x), "y": list(self.y)}
        if self.kind == "platt":
            return {"kind": "platt", "a": self.a, "b": self.b}
        if self.kind == "stack":
            return {
                "kind": "stack",
                "a": self.a,
                "b": self.b,
                "c": self.c,
                "column": self.column,
                "fill": self.fill,
            }
        return {"kind": self.kind}

    @classmethod
    def from_dict(cls, data: Any, source: str = CALIBRATOR_FILE) -> Calibrator:
        """Return the calibrator of a calibrator.json object; raise ChurnError on any wrong shape."""
        fix = "restore the model folder or retrain (`dvc repro train`)"
        if not isinstance(data, dict):
            raise ChurnError(
                f"{source}: expected a JSON object, found {type(data).__name__}; {fix}"
            )
        kind = data.get("kind", "identity")
        if kind not in KINDS:
            raise ChurnError(
                f"{source}: calibrator kind {kind!r} is unknown ({', '.join(KINDS)}); {fix}"
            )
        if kind == "isotonic":
            x, y = (
                _numbers(data.get("x"), f"{source}: isotonic 'x'"),
                _numbers(data.get("y"), f"{source}: isotonic 'y'"),
            )
            if (
                len(x) != len(y)
                or len(x) == 0
                or any(b < a for a, b in zip(x, x[1:], strict=False))
            ):
                raise ChurnError(
                    f"{source}: isotonic x/y must be non-empty, equal length, x sorted; {fix}"
                )
            return cls(kind, x, y)
        if kind == "platt":
            a, b = _numbers([data.get("a"), data.get("b")], f"{source}: platt 'a' and 'b'")
            return cls(kind, a=a, b=b)
        if kind == "stack":
            a, b, c, fill = _numbers(
                [data.get("a"), data.get("b"), data.get("c"), data.get("fill")],
                f"{source}: stack 'a', 'b', 'c' and 'fill'",
            )
            column = data.get("column")
            if not isinstance(column, str) or not column:
                raise ChurnError(f"{source}: stack 'column' must name a column; {fix}")
            return cls(kind, a=a, b=b, c=c, column=column, fill=fill)
        return cls(kind)


def _numbers(values: Any, what: str) -> tuple[float, ...]:
    """Return `values` as finite floats; raise ChurnError when it is not a list of finite numbers."""
    if not isinstance(values, list) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in values
    ):
        raise ChurnError(
            f"{what} must be a list of finite numbers; restore the model folder or retrain "
            "(`dvc repro train`)"
        )
    return tuple(float(v) for v in values)


@dataclass(frozen=True)
class ChurnModel:
    """A trained churn model: booster, calibrator, feature spec and free-form metadata."""

    booster: lgb.Booster
    calibrator: Calibrator
    spec: FeatureSpec
    metadata: dict[str, Any] = field(default_factory=dict)
    drift_reference: dict[str, Any] | None = None  # churn.drift reference, when one was built

    def check_features(self, frame: pd.DataFrame, source: str = "features") -> None:
        """Raise ChurnError naming the feature columns `frame` lacks (and the ones it has that
        this model's feature set never held), with the ways out, when it cannot be scored."""
        needed = [*self.spec.names, *([self.calibrator.column] if self.calibrator.column else [])]
        missing = [name for name in needed if name not in frame.columns]
        if not missing:
            return
        recorded = (self.metadata.get("definition") or {}).get("features")
        # keys of a snapshot (churn.columns; the served model ships this module alone)
        keys = {"customer_id", "cutoff", "role", "churned", "as_of"}
        extra = (
            sorted(c for c in frame.columns if c not in set(recorded) | keys)
            if isinstance(recorded, list)
            else []
        )
        raise ChurnError(
            f"{source}: missing feature column(s) {missing} that model version {self.version} "
            f"was trained with ({len(self.spec.names)} features)"
            + (f"; the rows have feature(s) {extra} it never saw" if extra else "")
            + ". The feature set changed since this model was trained: promote a model trained "
            "on the new features (`churn retrain --new-definition`, or `churn promote "
            "--new-definition --apply` after `dvc repro train`), roll back to one trained on "
            "them (`churn rollback --list`, then `churn rollback --to VERSION`), or restore the "
            "features params and rebuild features"
        )

    def predict_raw(self, frame: pd.DataFrame) -> np.ndarray:
        """Return the booster's uncalibrated probabilities for each row of `frame`."""
        self.check_features(frame)
        if not len(frame):
            return np.zeros(0, dtype="float64")
        # in batches: the model matrix and LightGBM's copy of it are a few MB whatever the rows
        # (each row's prediction depends on that row alone, so the result is the same)
        out = np.empty(len(frame), dtype="float64")
        for start in range(0, len(frame), PREDICT_ROWS):
            matrix = self.spec.to_matrix(frame.iloc[start : start + PREDICT_ROWS])
            out[start : start + len(matrix)] = self.booster.predict(matrix)
        return out

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Return calibrated churn probabilities for each row of `frame`."""
        raw = self.predict_raw(frame)
        column = self.calibrator.column
        stacked = None if column is None else frame[column].astype("float64").to_numpy()
        return self.calibrator.apply(raw, stacked)

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
        """Read a model folder written by `save`; raise ChurnError naming what is missing or corrupt.

        Every checksum is verified, and every JSON file's shape checked, before the booster text
        reaches LightGBM: its parser aborts the whole process on some malformed input.
        """
        folder = Path(folder)
        missing = [name for name in ARTIFACT_FILES if not (folder / name).is_file()]
        if missing:
            raise ChurnError(
                f"{folder}: model folder is missing {missing}; run `dvc repro train` (or promote) first"
            )
        names = [*ARTIFACT_FILES]
        if (folder / DRIFT_REFERENCE_FILE).is_file():
            names.append(DRIFT_REFERENCE_FILE)
        texts = {name: _read_text(folder / name) for name in names}
        metadata = _parse_json(folder / METADATA_FILE, texts[METADATA_FILE], dict)
        _check_metadata(metadata, folder / METADATA_FILE)
        expected = metadata.get("files_sha256")
        if not isinstance(expected, dict) or not isinstance(expected.get(MODEL_FILE), str):
            raise ChurnError(
                f"{folder / METADATA_FILE}: no files_sha256.{MODEL_FILE} (a JSON object of file "
                "name -> sha256); the folder was not written by churn or is damaged — restore it "
                "or retrain (`dvc repro train`)"
            )
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
        calibrator = Calibrator.from_dict(
            _parse_json(folder / CALIBRATOR_FILE, texts[CALIBRATOR_FILE], dict),
            str(folder / CALIBRATOR_FILE),
        )
        spec = FeatureSpec.from_dict(
            _parse_json(folder / FEATURES_FILE, texts[FEATURES_FILE], dict),
            str(folder / FEATURES_FILE),
        )
        reference = (
            _parse_json(folder / DRIFT_REFERENCE_FILE, texts[DRIFT_REFERENCE_FILE], dict)
            if DRIFT_REFERENCE_FILE in texts
            else None
        )
        booster = _parse_booster(folder / MODEL_FILE, texts[MODEL_FILE], spec)
        return cls(booster, calibrator, spec, metadata, reference)


# the shapes of the metadata keys the gate, evaluate and scoring read (absent keys are allowed:
# folders written before a key existed do not have it)
_METADATA_SHAPES: dict[str, tuple[type, ...]] = {
    "definition": (dict,),
    "training_cutoffs": (list,),
    "calibration_cutoff": (str, type(None)),
    "horizon_days": (int,),
    "held_out": (dict, type(None)),
    "holdout": (dict, type(None)),
    "out_of_time": (dict, type(None)),
    "evaluation": (str, type(None)),
}
_METADATA_PARTS = {"held_out": ("cutoff", "hash", "share_from"), "holdout": ("hash", "share_below")}


def _check_metadata(metadata: dict[str, Any], path: Path) -> None:
    """Raise ChurnError naming a metadata key whose value has the wrong shape."""
    fix = "restore the model folder or retrain (`dvc repro train`)"
    for key, shapes in _METADATA_SHAPES.items():
        value = metadata.get(key)
        if key in metadata and (not isinstance(value, shapes) or isinstance(value, bool)):
            expected = " or ".join("null" if t is type(None) else t.__name__ for t in shapes)
            raise ChurnError(
                f"{path}: {key!r} must be {expected}, found {type(value).__name__}; {fix}"
            )
    cutoffs = metadata.get("training_cutoffs")
    if cutoffs is not None and (len(cutoffs) != 2 or not all(isinstance(c, str) for c in cutoffs)):
        raise ChurnError(f"{path}: 'training_cutoffs' must be [oldest, newest] dates; {fix}")
    for key, parts in _METADATA_PARTS.items():
        value = metadata.get(key)
        if isinstance(value, dict) and any(part not in value for part in parts):
            raise ChurnError(f"{path}: {key!r} must hold {list(parts)}; {fix}")


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ChurnError(
            f"{path}: not UTF-8 text (byte {error.start}); the file is damaged — restore the "
            "model folder or retrain (`dvc repro train`)"
        ) from None
    except OSError as error:
        raise ChurnError(f"{path}: cannot be read ({error.strerror}); check the disk") from None


def _parse_json(path: Path, text: str, shape: type) -> Any:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ChurnError(
            f"{path}: not valid JSON (line {error.lineno}: {error.msg}); restore the model folder "
            "or retrain (`dvc repro train`)"
        ) from None
    if not isinstance(data, shape):
        raise ChurnError(
            f"{path}: expected a JSON {'object' if shape is dict else shape.__name__}, found "
            f"{type(data).__name__}; restore the model folder or retrain (`dvc repro train`)"
        )
    return data


# LightGBM's text format: a header block starting with "tree", the trees, then "end of trees".
# Its parser reads the trees in parallel threads, where a malformed number aborts the whole
# process ("terminate called ..."), so the trees are checked here first.
_BOOSTER_HEAD = re.compile(r"\Atree\r?\nversion=v\d+\r?\n")
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?inf|nan")
_PER_SPLIT = (
    "split_feature",
    "split_gain",
    "threshold",
    "decision_type",
    "left_child",
    "right_child",
    "internal_value",
    "internal_weight",
    "internal_count",
)
_PER_LEAF = ("leaf_value", "leaf_weight", "leaf_count")


_HEADER_LINE = re.compile(r"[a-z_]+=[^\x00-\x08\x0b-\x1f\x7f]*")
_IMPORTANCE_LINE = re.compile(r"[^=\s]+=\d+")
_PARAMETER_LINE = re.compile(r"\[[a-z0-9_]+: [^\[\]\x00-\x1f\x7f]*\]")


def _check_model_text(text: str, features: int) -> str | None:
    """Return what is wrong with a LightGBM model text, line by line, or None."""
    start, end = text.find("\nTree="), text.find("\nend of trees")
    if start < 0 or end < start:
        return "no 'Tree=' blocks before an 'end of trees' line"
    for number, line in enumerate(text[:start].splitlines()[1:], 2):
        if line.strip() and not _HEADER_LINE.fullmatch(line.rstrip("\r")):
            return f"header line {number} is not key=value: {line[:40]!r}"
    problem = _check_trees(text[start + 1 : end], features)
    if problem:
        return problem
    section = ""
    for line in text[end + 1 :].splitlines()[1:]:
        line = line.rstrip("\r")
        if not line or line in ("feature_importances:", "parameters:", "end of parameters"):
            section = line or section
            continue
        if line.startswith("pandas_categorical:"):
            try:
                categorical = json.loads(line.partition(":")[2])
            except json.JSONDecodeError:
                return "the pandas_categorical line is not JSON"
            if categorical is not None and not isinstance(categorical, list):
                return "the pandas_categorical line is not a JSON list"
            continue
        pattern = _PARAMETER_LINE if section == "parameters:" else _IMPORTANCE_LINE
        if section not in ("feature_importances:", "parameters:") or not pattern.fullmatch(line):
            return f"unexpected line after the trees: {line[:40]!r}"
    return None


def _check_trees(block: str, features: int) -> str | None:
    """Return what is wrong with the tree blocks (numbers, array lengths, indices), or None."""
    trees: list[dict[str, list[str]]] = []
    for number, line in enumerate(block.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.replace("_", "").isalpha():
            return f"tree line {number} is not key=value: {line[:40]!r}"
        if key == "Tree":
            trees.append({})
            continue
        tokens = value.split()
        if not trees or not all(_NUMBER.fullmatch(t) for t in tokens):
            return f"tree line {number} ({key}) holds a value that is not a number"
        trees[-1][key] = tokens
    for index, tree in enumerate(trees):
        leaves = tree.get("num_leaves", ["x"])[0]
        if not leaves.isdigit() or int(leaves) < 1:
            return f"tree {index}: num_leaves missing or not a positive integer"
        lengths = {
            **dict.fromkeys(_PER_SPLIT, int(leaves) - 1),
            **dict.fromkeys(_PER_LEAF, int(leaves)),
        }
        for key, length in lengths.items():
            if key in tree and len(tree[key]) != length:
                return f"tree {index}: {key} has {len(tree[key])} values for {leaves} leaves"
        if int(leaves) > 1:
            for key, low, high in (
                ("split_feature", 0, features - 1),
                ("left_child", -int(leaves), int(leaves) - 2),
                ("right_child", -int(leaves), int(leaves) - 2),
            ):
                values = tree.get(key)
                if values is None or not all(
                    v.lstrip("-").isdigit() and low <= int(v) <= high for v in values
                ):
                    return f"tree {index}: {key} missing or outside {low}..{high}"
    return None


def _parse_booster(path: Path, text: str, spec: FeatureSpec) -> lgb.Booster:
    """Return the booster of a checked model.txt; malformed text is refused before LightGBM (whose
    parser can abort the process) sees it."""
    fix = "restore the model folder or retrain (`dvc repro train`)"
    if not _BOOSTER_HEAD.match(text):
        raise ChurnError(
            f"{path}: not a LightGBM model text (no 'tree' / 'version=' header); {fix}"
        )
    declared = re.search(r"^max_feature_idx=(\d+)\r?$", text[: text.find("\nTree=")], re.M)
    if declared is None or int(declared.group(1)) + 1 != len(spec.names):
        raise ChurnError(
            f"{path}: the booster takes "
            f"{'an unknown number of' if declared is None else int(declared.group(1)) + 1} "
            f"features but features.json lists {len(spec.names)}; the folder mixes files of two "
            f"models or is damaged — {fix}"
        )
    problem = _check_model_text(text, len(spec.names))
    if problem:
        raise ChurnError(f"{path}: not a valid LightGBM model: {problem}; {fix}")
    import lightgbm as lgb

    try:
        booster = lgb.Booster(model_str=text)
    except lgb.basic.LightGBMError as error:
        raise ChurnError(f"{path}: not a LightGBM model ({error}); {fix}") from None
    if booster.num_feature() != len(spec.names):
        raise ChurnError(
            f"{path}: the booster takes {booster.num_feature()} features but features.json lists "
            f"{len(spec.names)}; the folder mixes files of two models — {fix}"
        )
    return booster


def _dump(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
