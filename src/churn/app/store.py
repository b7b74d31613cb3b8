"""What the page reads, loaded once: the latest published list (cached by its sha256), the
suppression list (re-read when the file changes, and afresh at every download), the manifests
of earlier lists, the backtest report, the campaign ledger and the retention page.

Read-only: every read goes through the published-lists record (`churn.publish.record`), which
checks a list against its manifest's sha256 the first time a version is loaded; no request
names a file — paths are fixed when the page starts.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from churn.app.selection import Choices, ListColumns, list_choices, load_columns, suppressed_mask
from churn.columns import CUSTOMER_ID, REASON_FAMILY, UPLIFT
from churn.errors import ChurnError
from churn.files import read_json
from churn.publish import record
from churn.score.suppression import read_suppression
from churn.score.targeting import CONTROL, TREATMENT


@dataclass(frozen=True)
class LoadedList:
    """One published list, held for fast selection: treatment and control apart."""

    key: str  # the list's sha256 and folder: a new publication is a new key
    manifest: dict[str, Any]
    treatment: ListColumns
    control: ListColumns
    choices: Choices
    columns: tuple[str, ...]  # the published list's columns, in order (what a download holds)


@dataclass(frozen=True)
class Suppression:
    """The suppression list as read now: ids and a fingerprint of the file."""

    ids: frozenset[str]
    sha256: str | None  # None: no suppression list configured
    path: str | None


NO_SUPPRESSION = Suppression(frozenset(), None, None)


def _list_key(manifest: dict[str, Any]) -> str:
    return f"{manifest.get('sha256')}:{manifest.get('path')}"


def load_published(
    exports: Path, manifest: dict[str, Any], segment_columns: list[str]
) -> LoadedList:
    """Return a published list (named by a checked manifest) as a LoadedList."""
    treatment = record.read_list(exports, manifest, TREATMENT)
    control = record.read_list(exports, manifest, CONTROL)
    published = tuple(str(c) for c in treatment.columns)
    try:
        scored = record.read_scored(exports, manifest, [CUSTOMER_ID, REASON_FAMILY])
    except ChurnError:
        scored = None  # an older list without the main reason: that filter is simply not offered
    uplift = None
    if (manifest.get("targeting") or {}).get("policy") == "uplift":
        # the uplift policy chose the list: the what-if counts its estimates (scored.parquet)
        uplift = record.read_scored(exports, manifest, [CUSTOMER_ID, UPLIFT])

    def by_id(frame: pd.DataFrame, table: pd.DataFrame, values: pa.Array) -> pd.Series:
        """Return `values` (one per row of `table`) for each listed customer, looked up by id."""
        positions = pc.index_in(
            _arrow_text(frame[CUSTOMER_ID]), value_set=_arrow_text(table[CUSTOMER_ID])
        )
        return pd.Series(values.take(positions).to_pandas(types_mapper=pd.ArrowDtype))

    def family(frame: pd.DataFrame) -> pd.Series | None:
        """Return the main reason of each listed customer (null where absent: no main reason)."""
        if scored is None:
            return None
        return by_id(frame, scored, _arrow_text(scored[REASON_FAMILY])).astype("string")

    def estimates(frame: pd.DataFrame) -> pd.Series | None:
        """Return the uplift policy's estimate for each listed customer (null where absent)."""
        if uplift is None:
            return None
        values = pa.array(uplift[UPLIFT].to_numpy(dtype="float64", na_value=np.nan))
        return by_id(frame, uplift, values).astype("float64")

    segments = [c for c in segment_columns if c in treatment.columns]
    treatment_columns = load_columns(treatment, segments, family(treatment), estimates(treatment))
    control_columns = load_columns(control, segments, family(control), estimates(control))
    return LoadedList(
        key=_list_key(manifest),
        manifest=manifest,
        treatment=treatment_columns,
        control=control_columns,
        choices=list_choices(treatment_columns, control_columns),
        columns=published,
    )


def _arrow_text(values: pd.Series) -> pa.Array:
    """Return a text column as one Arrow string array (missing values as nulls)."""
    array = pa.array(values.astype("string"), type=pa.string(), from_pandas=True)
    return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array


def segment_columns_of(frame_columns: list[str]) -> list[str]:
    """Return the columns of a published list that are segments (not the list's own fields)."""
    own = {*record.LIST_HEAD, *record.LIST_TAIL}
    return [c for c in frame_columns if c not in own]


class ListStore:
    """The page's reads, cached: each published version is loaded once, whatever the clicks."""

    def __init__(self, exports: Path, suppression: Path | None) -> None:
        self.exports = Path(exports)
        self.suppression_path = None if suppression is None else Path(suppression)
        self._lock = threading.Lock()
        self._loaded: LoadedList | None = None
        self._suppression: tuple[tuple[int, int, int], Suppression] | None = None
        self._masks: dict[tuple[str, str | None], tuple[np.ndarray, np.ndarray]] = {}
        self.loads = 0  # how many times a list was read from disk (once per published version)

    def latest(self) -> LoadedList:
        """Return the list LATEST.json names, reading it from disk only when it changed."""
        latest = read_json(
            self.exports / record.LATEST_FILE,
            "restore it from a dated folder, or run `churn publish`",
        )
        if latest is None:
            raise ChurnError(
                f"{self.exports / record.LATEST_FILE}: no list has been published yet; "
                "run `make run` (or `churn publish` after `dvc repro`)"
            )
        key = _list_key(latest)
        loaded = self._loaded
        if loaded is not None and loaded.key == key:
            return loaded
        with self._lock:
            if self._loaded is None or self._loaded.key != key:
                manifest = record.read_manifest(self.exports)  # checks every file's sha256
                import pyarrow.parquet as pq

                folder = record.list_folder(self.exports, manifest)
                names = pq.read_schema(folder / record.LIST_PARQUET).names
                self._loaded = load_published(self.exports, manifest, segment_columns_of(names))
                self._masks.clear()
                self.loads += 1
            return self._loaded

    def suppression(self, fresh: bool = False) -> Suppression:
        """Return the suppression list; re-read when the file changed, or always when `fresh`."""
        path = self.suppression_path
        if path is None:
            return NO_SUPPRESSION
        try:
            stat = path.stat()
        except FileNotFoundError:
            read_suppression(path)  # raises the suppression module's own message
            raise
        stamp = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        cached = self._suppression
        if not fresh and cached is not None and cached[0] == stamp:
            return cached[1]
        content = path.read_bytes()
        current = Suppression(
            frozenset(read_suppression(path)), hashlib.sha256(content).hexdigest(), str(path)
        )
        self._suppression = (stamp, current)
        return current

    def suppressed(
        self, loaded: LoadedList, suppression: Suppression
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return (treatment, control) rows on the suppression list, cached per list and file."""
        key = (loaded.key, suppression.sha256)
        masks = self._masks.get(key)
        if masks is None:
            masks = (
                suppressed_mask(loaded.treatment, suppression.ids),
                suppressed_mask(loaded.control, suppression.ids),
            )
            if len(self._masks) > 8:
                self._masks.clear()
            self._masks[key] = masks
        return masks

    def latest_as_of(self) -> str | None:
        """Return the as-of date of the list LATEST.json names (None before any publication)."""
        latest = read_json(self.exports / record.LATEST_FILE, "run `churn publish`")
        return None if latest is None else str(latest.get("as_of"))

    def manifests(self) -> list[dict[str, Any]]:
        """Return the manifest of every published list and imported past list (metadata only),
        oldest first."""
        found = []
        for as_of in record.published_dates(self.exports):
            manifest = read_json(
                self.exports / as_of / record.MANIFEST_FILE, "republish that date with --force"
            )
            if manifest is not None:
                found.append(manifest)
        for name in record.imported_folders(self.exports):  # past campaigns brought in
            manifest = read_json(
                self.exports / name / record.MANIFEST_FILE, "import the past lists again"
            )
            if manifest is not None:
                found.append(manifest)
        return sorted(found, key=lambda item: str(item.get("as_of")))

    def downloads(self) -> list[dict[str, Any]]:
        """Return every recorded download event, oldest first."""
        return record.read_downloads(self.exports)


def read_backtest(path: Path | None) -> dict[str, Any] | None:
    """Return the backtest report when it exists (written by `churn backtest`)."""
    if path is None:
        return None
    return read_json(path, "rerun `churn backtest`")


def read_ledger(path: Path | None) -> dict[str, Any] | None:
    """Return the campaign ledger when it exists (reports/ledger.json, written by `churn ledger`).

    None when there is none yet; a file that is not the ledger's shape (a `lists` array of
    entries, each with its `as_of` and `status`) is an error naming the file and the fix.
    """
    if path is None:
        return None
    fix = "rerun `churn ledger` (it rewrites the file)"
    ledger = read_json(path, fix)
    if ledger is None:
        return None
    entries = ledger.get("lists")
    if not isinstance(entries, list):
        raise ChurnError(f"{path}: no `lists` array, so it is not a campaign ledger; {fix}")
    for number, entry in enumerate(entries, start=1):
        missing = [
            key for key in ("as_of", "status") if not isinstance(entry, dict) or key not in entry
        ]
        if missing:
            raise ChurnError(f"{path}: list entry {number} lacks {', '.join(missing)}; {fix}")
        if not isinstance(entry.get("slices", []), list):
            raise ChurnError(
                f"{path}: list entry {number} ({entry['as_of']}): `slices` is not an array; {fix}"
            )
    return ledger
