"""The record of published at-risk lists: the one module that writes `exports/at_risk/`.

Each publication is a dated folder (the list to contact, its control group, every scored customer
for the backtest, a manifest with model version, churn definition and sha256 of every file),
`LATEST.json` naming the current list, `events.jsonl`, one line per publication, override or
download, and `downloads/`, one file per download from the marketing page (who was downloaded
to be contacted, and the control members of the same filter). Campaign lists run before or
besides churn enter it through `import_lists` (the `churn import-lists` command, never a DVC stage), as
`<list_date>.imported-<sha12>/` folders of origin "imported" (no model version; named by the
hash of their contents) that LATEST.json never names. The backtest, the campaign ledger and the
marketing page read this record; nothing else writes it.
A folder is complete before LATEST.json names it: staged under a hidden name, every file fsynced,
then renamed into place.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from churn.columns import (
    AS_OF,
    AT_RISK,
    CHURN_PROBABILITY,
    CUSTOMER_ID,
    EXPECTED_NET_BENEFIT,
    EXPECTED_VALUE,
    GROUP,
    MODEL_VERSION,
    PRIORITY,
    REASONS,
    RISK_TIER,
    SUGGESTED_ACTION,
    VALUE_AT_RISK,
)
from churn.errors import ChurnError
from churn.files import (
    append_line,
    csv_bytes,
    explain_write_errors,
    fsync_dir,
    json_text,
    parquet_bytes,
    read_json,
    sha256_bytes,
    write_bytes,
)
from churn.publish.gates import OPTIONAL_SCORE_COLUMNS, SCORE_SCHEMA, validate_scores
from churn.score.targeting import CONTROL, TREATMENT

LATEST_FILE = "LATEST.json"
MANIFEST_FILE = "manifest.json"
LIST_CSV = "at_risk.csv"
LIST_PARQUET = "at_risk.parquet"
CONTROL_CSV = "control.csv"
CONTROL_PARQUET = "control.parquet"
SCORED_PARQUET = "scored.parquet"  # every scored customer, flagged or not: what the backtest reads
EVENTS_FILE = "events.jsonl"
DOWNLOADS = "downloads"  # downloads/<stamp>-<sha12>-<nonce>.json: one per download
DOWNLOAD_EVENT = "download"
DOWNLOAD_KEYS = (
    "as_of",
    "list_sha256",
    "model_version",
    "filters",
    "format",
    "file_name",
    "file_sha256",
    "rows",
    "control_rows",
)
SUPERSEDED = ".superseded-"  # <as_of>.superseded-<sha12>/: a list replaced with --force
IMPORTED = ".imported-"  # <list_date>.imported-<sha12>/: a past campaign list brought in
IMPORT_EVENT = "imported"
ORIGIN_IMPORTED = "imported"  # manifest "origin" of an imported list (churn's own: "churn")
# the only folder names a manifest may point at: a date, a kept copy of a replaced list, or an
# imported past list
LIST_FOLDER = re.compile(
    r"(\d{4}-\d{2}-\d{2})(\.superseded-[0-9a-z]{1,64}|\.imported-[0-9a-f]{12})?"
)

LIST_HEAD = (
    PRIORITY,
    CUSTOMER_ID,
    CHURN_PROBABILITY,
    RISK_TIER,
    EXPECTED_VALUE,
    VALUE_AT_RISK,
    EXPECTED_NET_BENEFIT,
    REASONS,
    SUGGESTED_ACTION,
)
LIST_TAIL = (GROUP, AS_OF, MODEL_VERSION)


# --------------------------------------------------------------------------- lists
def select_lists(scores: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (treatment, control) lists of flagged customers, sorted by priority, for marketing."""
    own = SCORE_SCHEMA.keys() | OPTIONAL_SCORE_COLUMNS.keys()
    segments = [c for c in scores.columns if c not in own]
    columns = [*LIST_HEAD, *segments, *LIST_TAIL]
    flagged = scores.loc[scores[AT_RISK].to_numpy(dtype=bool)].sort_values(PRIORITY, kind="stable")
    listed = flagged[columns].copy()
    listed[CHURN_PROBABILITY] = listed[CHURN_PROBABILITY].round(4)
    for column in (EXPECTED_VALUE, VALUE_AT_RISK, EXPECTED_NET_BENEFIT):
        listed[column] = listed[column].round(2)
    is_control = (listed[GROUP] == CONTROL).to_numpy(dtype=bool)
    treatment = listed.loc[~is_control].reset_index(drop=True)
    control = listed.loc[is_control].reset_index(drop=True)
    return treatment, control


# --------------------------------------------------------------------------- publish
@dataclass(frozen=True)
class PublishResult:
    """What publish_lists did: status is published / unchanged / replaced."""

    status: str
    folder: Path
    manifest: dict[str, Any]
    superseded: Path | None = None


@contextlib.contextmanager
def _exclusive(root: Path) -> Iterator[None]:
    """Hold an exclusive lock on the exports folder (released by the OS if the process dies)."""
    with open(root / ".lock", "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _clean_leftovers(root: Path) -> None:
    """Remove staging folders and temp files an interrupted publish left behind."""
    for entry in root.iterdir():
        if entry.name.startswith((".staging-", ".trash-")) and entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        elif entry.name.startswith(".") and entry.name.endswith(".tmp"):
            entry.unlink(missing_ok=True)


def _read_json(path: Path) -> dict[str, Any] | None:
    return read_json(path, "restore it from a dated folder")


def _json_bytes(data: dict[str, Any]) -> bytes:
    return json_text(data).encode("utf-8")


def _folder_matches(folder: Path, manifest: dict[str, Any] | None) -> bool:
    """Return True when every file the manifest lists exists in `folder` with its sha256."""
    if not manifest or not isinstance(manifest.get("files"), dict):
        return False
    for name, entry in manifest["files"].items():
        if Path(name).name != name or name.startswith(".") or not isinstance(entry, dict):
            return False  # only plain file names of the folder itself, never a path out of it
        path = folder / name
        if not path.is_file() or sha256_bytes(path.read_bytes()) != entry.get("sha256"):
            return False
    return True


def _manifest(
    folder_name: str, files: dict[str, bytes], rows: dict[str, int], base: dict[str, Any]
) -> dict[str, Any]:
    entries = {
        name: {"sha256": sha256_bytes(data), "rows": rows[name], "bytes": len(data)}
        for name, data in files.items()
    }
    return {
        **base,
        "path": f"{folder_name}/{LIST_CSV}",
        "sha256": entries[LIST_CSV]["sha256"],
        "rows": rows[LIST_CSV],
        "control_path": f"{folder_name}/{CONTROL_CSV}",
        "files": entries,
    }


def _stage_folder(root: Path, name: str, files: dict[str, bytes], manifest: dict[str, Any]) -> Path:
    """Write a complete folder under a hidden staging name; return its path."""
    staging = root / f".staging-{name}-{secrets.token_hex(4)}"
    staging.mkdir()
    try:
        for file_name, data in files.items():
            write_bytes(staging / file_name, data)
        write_bytes(staging / MANIFEST_FILE, _json_bytes(manifest))
    except ChurnError as error:  # a failed write (disk full): nothing half-written is left
        shutil.rmtree(staging, ignore_errors=True)
        raise ChurnError(
            f"{root / name}: not published (LATEST.json is unchanged): {error}"
        ) from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return staging


def _install_folder(root: Path, staging: Path, dest: Path) -> None:
    """Rename a staged folder to `dest`, moving any current `dest` aside first."""
    trash = None
    if dest.exists():
        trash = root / f".trash-{dest.name}-{secrets.token_hex(4)}"
        os.replace(dest, trash)
    os.replace(staging, dest)
    fsync_dir(root)
    if trash is not None:
        shutil.rmtree(trash, ignore_errors=True)


def _supersede(root: Path, dest: Path, existing: dict[str, Any]) -> Path:
    """Copy the published folder to <date>.superseded-<sha12>/ (complete, or not at all)."""
    name = f"{dest.name}.superseded-{str(existing.get('sha256', 'unknown'))[:12]}"
    kept = root / name
    if _folder_matches(kept, _read_json(kept / MANIFEST_FILE)):
        return kept
    files = {file: (dest / file).read_bytes() for file in existing["files"]}
    rows = {file: int(entry.get("rows", 0)) for file, entry in existing["files"].items()}
    base = {k: v for k, v in existing.items() if k not in ("files", "path", "control_path")}
    manifest = _manifest(name, files, rows, base)
    staging = _stage_folder(root, name, files, manifest)
    _install_folder(root, staging, kept)
    return kept


def publish_lists(
    scores: pd.DataFrame,
    root: str | Path,
    *,
    force: bool = False,
    now: dt.datetime | None = None,
    about: dict[str, Any] | None = None,
) -> PublishResult:
    """Publish the flagged customers of `scores` as exports/at_risk/<as_of>/ and switch LATEST.json.

    The dated folder is written under a staging name and renamed into place when complete; only
    then is LATEST.json (a copy of the folder's manifest) replaced. `about` goes into the manifest
    (the model's churn definition, registered model, overrides used). Publishing identical content
    again is a no-op. A different list for an already published date is refused unless `force`;
    then the previous folder is first kept as <as_of>.superseded-<sha12>/ (and LATEST points at
    that copy while the date folder is swapped). Lists of other dates are never touched.
    """
    validate_scores(scores)
    root = Path(root)
    as_of = str(scores[AS_OF].iloc[0])
    treatment, control = select_lists(scores)
    files = {
        LIST_CSV: csv_bytes(treatment),
        LIST_PARQUET: parquet_bytes(treatment),
        CONTROL_CSV: csv_bytes(control),
        CONTROL_PARQUET: parquet_bytes(control),
        SCORED_PARQUET: parquet_bytes(scores),
    }
    rows = {
        LIST_CSV: len(treatment),
        LIST_PARQUET: len(treatment),
        CONTROL_CSV: len(control),
        CONTROL_PARQUET: len(control),
        SCORED_PARQUET: len(scores),
    }
    created = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).replace(microsecond=0)
    base = {
        "as_of": as_of,
        "origin": "churn",
        "model_version": str(scores[MODEL_VERSION].iloc[0]),
        "created_at": created.isoformat().replace("+00:00", "Z"),
        "groups": {TREATMENT: len(treatment), CONTROL: len(control)},
        **(about or {}),
    }
    manifest = _manifest(as_of, files, rows, base)
    # a failed write (disk full, read-only exports) names the folder; LATEST.json is replaced
    # last and atomically, so it still names a complete list
    with explain_write_errors(root, "LATEST.json still names a complete list"):
        root.mkdir(parents=True, exist_ok=True)
        with _exclusive(root):
            _clean_leftovers(root)
            dest = root / as_of
            latest_path = root / LATEST_FILE
            latest = _read_json(latest_path)
            if latest is not None and str(latest.get("as_of", "")) > as_of and not force:
                raise ChurnError(
                    f"{latest_path}: names a newer list ({latest.get('as_of')}) than this one "
                    f"({as_of}); rerun with --force to make the older list the latest"
                )
            existing = _read_json(dest / MANIFEST_FILE) if dest.exists() else None
            superseded = None
            if (
                dest.exists()
                and _same_content(existing, manifest)
                and _folder_matches(dest, existing)
            ):
                status, manifest = "unchanged", existing  # keeps the first publication's created_at
            elif dest.exists():
                if not force:
                    raise ChurnError(
                        f"{dest}: a different list is already published for {as_of} "
                        f"(sha256 {str((existing or {}).get('sha256', '?'))[:12]}, new "
                        f"{manifest['sha256'][:12]}); rerun with --force to replace it (the previous "
                        f"list is kept as {as_of}.superseded-<sha>/)"
                    )
                if existing is None or not _folder_matches(dest, existing):
                    raise ChurnError(
                        f"{dest}: exists but is not a complete published list (manifest missing or "
                        "files changed by hand); move it away, then publish again"
                    )
                superseded = _supersede(root, dest, existing)
                if latest is not None and str(latest.get("path", "")).startswith(f"{as_of}/"):
                    write_bytes(latest_path, (superseded / MANIFEST_FILE).read_bytes())
                _install_folder(root, _stage_folder(root, as_of, files, manifest), dest)
                status = "replaced"
            else:
                _install_folder(root, _stage_folder(root, as_of, files, manifest), dest)
                status = "published"
            manifest_bytes = (dest / MANIFEST_FILE).read_bytes()
            if not latest_path.exists() or latest_path.read_bytes() != manifest_bytes:
                write_bytes(latest_path, manifest_bytes)
            if status != "unchanged":
                _append_event(
                    root, {"event": status, **_summary(json.loads(manifest_bytes))}, created
                )
    return PublishResult(status, dest, json.loads(manifest_bytes), superseded)


def _summary(manifest: dict[str, Any]) -> dict[str, Any]:
    keys = ("as_of", "origin", "list_id", "model_version", "sha256", "rows", "groups", "overrides")
    return {key: manifest[key] for key in keys if key in manifest}


def _append_event(root: Path, event: dict[str, Any], when: dt.datetime) -> None:
    """Append one line to events.jsonl (under the exports lock) and flush it to disk."""
    line = json.dumps({"at": when.isoformat().replace("+00:00", "Z"), **event}, sort_keys=True)
    append_line(root / EVENTS_FILE, line)


def read_events(root: str | Path) -> list[dict[str, Any]]:
    """Return every recorded publication event, oldest first."""
    path = Path(root) / EVENTS_FILE
    if not path.is_file():
        return []
    events = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            raise ChurnError(
                f"{path}: line {number} is not a complete event ({line[:60]!r}), e.g. cut by a "
                "full disk; delete that line (the lists themselves are checked by their manifests)"
            ) from None
    return events


def record_download(
    root: str | Path,
    download: dict[str, Any],
    customer_ids: list[str],
    control_ids: list[str],
    *,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Record one download of a published list; return its `download` event.

    `download` says which list (as_of, list_sha256, model_version), which filters, the file
    (format, name, sha256) and how many rows (contacts and control). The customer ids downloaded
    and the control members of the same filter go into downloads/<stamp>-<sha12>-<nonce>.json,
    so a campaign can be matched to its list and to its own control group; events.jsonl gets one
    line naming that file. Written under the exports lock; published lists are never touched.
    """
    missing = [key for key in DOWNLOAD_KEYS if key not in download]
    if missing:
        raise ChurnError(f"download record: missing {missing}; the page must say what it served")
    if len(customer_ids) != download["rows"] or len(control_ids) != download["control_rows"]:
        raise ChurnError(
            f"download record: {len(customer_ids)} customer ids for {download['rows']} rows and "
            f"{len(control_ids)} control ids for {download['control_rows']}; they must agree"
        )
    root = Path(root)
    if not (root / LATEST_FILE).is_file():
        raise ChurnError(
            f"{root / LATEST_FILE}: no list has been published yet; run `churn publish`"
        )
    when = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    name = (
        f"{DOWNLOADS}/{when:%Y%m%dT%H%M%S%fZ}-{str(download['file_sha256'])[:12]}-"
        f"{secrets.token_hex(3)}.json"
    )
    at = when.replace(microsecond=0).isoformat().replace("+00:00", "Z")
    detail = {
        "at": at,
        **download,
        "customer_ids": list(customer_ids),
        "control_customer_ids": list(control_ids),
    }
    event = {"event": DOWNLOAD_EVENT, **download, "record": name}
    with _exclusive(root):
        (root / DOWNLOADS).mkdir(exist_ok=True)
        write_bytes(root / name, _json_bytes(detail))
        _append_event(root, event, when.replace(microsecond=0))
    return {"at": at, **event}


def read_downloads(root: str | Path) -> list[dict[str, Any]]:
    """Return every recorded download event, oldest first."""
    return [event for event in read_events(root) if event.get("event") == DOWNLOAD_EVENT]


def read_download_record(root: str | Path, event: dict[str, Any]) -> dict[str, Any]:
    """Return the file a download event names: the filters, and the customer ids downloaded to be
    contacted with the control members of the same filter (ChurnError naming it when missing)."""
    path = Path(root) / str(event.get("record", ""))
    detail = read_json(path, "it is named by events.jsonl; restore it from a backup")
    if not event.get("record") or detail is None:
        raise ChurnError(
            f"{path}: the download record named by {Path(root) / EVENTS_FILE} is missing; "
            "restore it from a backup or remove that download line"
        )
    return detail


def published_dates(root: str | Path) -> list[str]:
    """Return the as-of dates with a published list (not superseded copies), oldest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(
        entry.name
        for entry in root.iterdir()
        if entry.is_dir() and _is_date(entry.name) and (entry / MANIFEST_FILE).is_file()
    )


def imported_folders(root: str | Path) -> list[str]:
    """Return the folders of imported past lists (<list_date>.imported-<sha12>/ with a
    manifest), oldest first: history for the ledger and the app, never lists to contact."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = []
    for entry in root.iterdir():
        match = LIST_FOLDER.fullmatch(entry.name)
        if (
            entry.is_dir()
            and match is not None
            and (match.group(2) or "").startswith(IMPORTED)
            and (entry / MANIFEST_FILE).is_file()
        ):
            found.append(entry.name)
    return sorted(found)


def _is_date(name: str) -> bool:
    match = LIST_FOLDER.fullmatch(name)
    if match is None or match.group(2):
        return False
    try:
        dt.date.fromisoformat(name)
    except ValueError:
        return False
    return True


def list_folder(root: str | Path, manifest: dict[str, Any], source: str | Path = "") -> Path:
    """Return the folder of the list a manifest names, checked to be a dated folder of `root`.

    A manifest edited to point elsewhere (`../x`, an absolute path, a symlink leading out of the
    exports folder) is an error: the record is read only from inside its own folder.
    """
    root = Path(root)
    name = str(manifest.get("path", "")).split("/", 1)[0]
    folder = root / name
    match = LIST_FOLDER.fullmatch(name)
    inside = False
    if match is not None and _is_date(match.group(1)):
        with contextlib.suppress(OSError):
            inside = folder.resolve().parent == root.resolve()
    if not inside:
        raise ChurnError(
            f"{source or root}: names the list folder {name!r}, which is not a dated folder "
            f"inside {root}; restore it from the list's own <date>/manifest.json"
        )
    return folder


def read_scored(
    root: str | Path, manifest: dict[str, Any], columns: list[str] | None = None
) -> pd.DataFrame:
    """Return every customer scored for a published list (flagged or not): the backtest's input.

    `columns` reads only those (ChurnError naming the file when one is missing)."""
    folder = list_folder(root, manifest)
    path = folder / SCORED_PARQUET
    if not path.is_file():
        raise ChurnError(
            f"{path}: missing; lists published before every scored customer was recorded cannot "
            "be backtested (republish that date with `churn publish --force`)"
        )
    if columns is not None:
        import pyarrow.parquet as pq

        missing = [c for c in columns if c not in pq.read_schema(path).names]
        if missing:
            raise ChurnError(f"{path}: no column(s) {missing}; republish with the current code")
    return pd.read_parquet(path, columns=columns)


def _same_content(existing: dict[str, Any] | None, manifest: dict[str, Any]) -> bool:
    if not existing or not isinstance(existing.get("files"), dict):
        return False
    old = {name: entry.get("sha256") for name, entry in existing["files"].items()}
    new = {name: entry["sha256"] for name, entry in manifest["files"].items()}
    return old == new


def read_manifest(root: str | Path, date: str | None = None) -> dict[str, Any]:
    """Return LATEST.json (or the manifest of a dated list) after checking the list's sha256."""
    root = Path(root)
    if date is not None:
        try:
            date = dt.date.fromisoformat(str(date)).isoformat()
        except ValueError:
            raise ChurnError(f"--date {date!r}: give an ISO date such as 2025-12-30") from None
    path = root / (LATEST_FILE if date is None else f"{date}/{MANIFEST_FILE}")
    manifest = _read_json(path)
    if manifest is None:
        if date is None:
            raise ChurnError(f"{path}: no list has been published yet; run `churn publish`")
        dates = published_dates(root)
        raise ChurnError(
            f"{path}: no list published for {date}; published dates: {dates or 'none'}"
        )
    folder = list_folder(root, manifest, path)
    if date is not None and folder.name != date:
        raise ChurnError(
            f"{path}: names the list folder {folder.name!r}, not {date!r}; restore the manifest "
            "from a backup or republish that date with `churn publish --force`"
        )
    if not _folder_matches(folder, manifest):
        raise ChurnError(
            f"{folder}: files do not match their manifest's sha256 (changed by hand?); "
            "republish with `churn publish --force`"
        )
    return manifest


def read_list(root: str | Path, manifest: dict[str, Any], group: str = TREATMENT) -> pd.DataFrame:
    """Return the published treatment (or control) list named by a manifest, as typed columns."""
    folder = list_folder(root, manifest)
    name = LIST_PARQUET if group == TREATMENT else CONTROL_PARQUET
    return pd.read_parquet(folder / name)


# --------------------------------------------------------------------------- imported past lists
LIST_ID = "list_id"
LIST_DATE = "list_date"
PAST_LIST_REQUIRED = (LIST_ID, LIST_DATE, CUSTOMER_ID, GROUP)
PAST_LIST_OPTIONAL = (SUGGESTED_ACTION, RISK_TIER, EXPECTED_VALUE)
PAST_LIST_COLUMNS = (*PAST_LIST_REQUIRED, *PAST_LIST_OPTIONAL)


@dataclass(frozen=True)
class PastLists:
    """A checked file of past campaign lists: the rows kept and the rows quarantined."""

    rows: pd.DataFrame  # list_id, list_date (date), customer_id, group[, optional columns]
    quarantine: pd.DataFrame  # source_row (1-based data row), reason, detail


def check_past_lists(raw: pd.DataFrame, source: str) -> PastLists:
    """Return the usable rows of a past-lists table and the rejected ones with their reason.

    Missing required columns, or a list id given two different dates, are errors naming the file
    and the fix; a row without a customer id, with a date that does not parse, a group other than
    treatment/control, a non-numeric expected value, or a customer repeated within one list is
    quarantined (the first occurrence of a repeated customer is kept).
    """
    missing = [column for column in PAST_LIST_REQUIRED if column not in raw.columns]
    if missing:
        raise ChurnError(
            f"{source}: column(s) {missing} missing (has {list(raw.columns)}); a past-lists file "
            f"needs {list(PAST_LIST_REQUIRED)} (optional: {list(PAST_LIST_OPTIONAL)}); rename the "
            "columns in the export and import it again"
        )
    unknown = [column for column in raw.columns if column not in PAST_LIST_COLUMNS]
    if unknown:
        raise ChurnError(
            f"{source}: unknown column(s) {unknown}; a past-lists file has {list(PAST_LIST_COLUMNS)}"
        )
    frame = raw.reset_index(drop=True).copy()
    source_row = pd.Series(range(1, len(frame) + 1), index=frame.index)
    for column in (LIST_ID, CUSTOMER_ID, GROUP, SUGGESTED_ACTION, RISK_TIER):
        if column in frame.columns:
            frame[column] = frame[column].astype("string").str.strip()
    dates = pd.to_datetime(frame[LIST_DATE].astype("string"), errors="coerce", format="%Y-%m-%d")
    reasons = pd.Series(pd.NA, index=frame.index, dtype="string")
    details = pd.Series(pd.NA, index=frame.index, dtype="string")

    def reject(mask: pd.Series, reason: str, detail: pd.Series | str) -> None:
        new = mask.fillna(False).astype(bool) & reasons.isna()
        reasons[new] = reason
        details[new] = detail[new].astype("string") if isinstance(detail, pd.Series) else detail

    reject(frame[LIST_ID].isna() | (frame[LIST_ID] == ""), "missing_list_id", "empty list_id")
    reject(frame[CUSTOMER_ID].isna() | (frame[CUSTOMER_ID] == ""), "missing_customer", "empty id")
    reject(dates.isna(), "bad_list_date", frame[LIST_DATE].astype("string").fillna("(empty)"))
    groups = frame[GROUP].str.lower()
    reject(~groups.isin([TREATMENT, CONTROL]), "bad_group", frame[GROUP].fillna("(empty)"))
    if EXPECTED_VALUE in frame.columns:
        value = pd.to_numeric(frame[EXPECTED_VALUE], errors="coerce")
        bad = value.isna() & frame[EXPECTED_VALUE].notna()
        reject(bad, "bad_expected_value", frame[EXPECTED_VALUE].astype("string"))
        frame[EXPECTED_VALUE] = value
    ok = reasons.isna()
    repeated = frame[ok].duplicated([LIST_ID, CUSTOMER_ID], keep="first")
    reject(
        repeated.reindex(frame.index, fill_value=False), "duplicate_customer", "in the same list"
    )
    ok = reasons.isna()
    frame[GROUP] = groups
    frame[LIST_DATE] = dates.dt.date
    kept = frame.loc[ok]
    per_list = kept.groupby(LIST_ID)[LIST_DATE].nunique()
    if (per_list > 1).any():
        bad_id = str(per_list[per_list > 1].index[0])
        seen = sorted(str(d) for d in kept.loc[kept[LIST_ID] == bad_id, LIST_DATE].unique())
        raise ChurnError(
            f"{source}: list_id {bad_id!r} has {len(seen)} list dates ({', '.join(seen[:3])}); "
            "one list has one date: give each campaign wave its own list_id"
        )
    quarantine = pd.DataFrame(
        {"source_row": source_row[~ok].to_numpy(), "reason": reasons[~ok], "detail": details[~ok]}
    ).reset_index(drop=True)
    return PastLists(kept.reset_index(drop=True), quarantine)


@dataclass(frozen=True)
class ImportResult:
    """What import_lists did: the manifest of every list of the file, and how many were new."""

    manifests: list[dict[str, Any]]
    imported: int
    unchanged: int


def _imported_files(rows: pd.DataFrame, list_date: str) -> tuple[dict[str, bytes], dict[str, int]]:
    columns = [c for c in (CUSTOMER_ID, GROUP, *PAST_LIST_OPTIONAL) if c in rows.columns]
    listed = rows.sort_values(CUSTOMER_ID, kind="stable")[[LIST_ID, *columns]].reset_index(
        drop=True
    )
    listed[CUSTOMER_ID] = listed[CUSTOMER_ID].astype("string")
    treatment = listed.loc[listed[GROUP] == TREATMENT].reset_index(drop=True)
    control = listed.loc[listed[GROUP] == CONTROL].reset_index(drop=True)
    scored = listed.assign(**{AT_RISK: True, AS_OF: list_date})
    files = {
        LIST_CSV: csv_bytes(treatment),
        CONTROL_CSV: csv_bytes(control),
        SCORED_PARQUET: parquet_bytes(scored),
    }
    rows_per_file = {
        LIST_CSV: len(treatment),
        CONTROL_CSV: len(control),
        SCORED_PARQUET: len(scored),
    }
    return files, rows_per_file


def import_lists(
    lists: PastLists, root: str | Path, source: str, *, now: dt.datetime | None = None
) -> ImportResult:
    """Bring checked past campaign lists into the record, one folder per list id; return them.

    Each list becomes <list_date>.imported-<sha12>/ (sha of its contents: a changed list is a
    new folder, the same list again changes nothing) with a manifest of origin "imported", no
    model version, and its treatment and control customers. LATEST.json is never touched: an
    imported list is history for the ledger, not a list to contact.
    """
    root = Path(root)
    when = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).replace(microsecond=0)
    manifests, imported, unchanged = [], 0, 0
    with explain_write_errors(root, "published lists are unchanged"):
        root.mkdir(parents=True, exist_ok=True)
        with _exclusive(root):
            _clean_leftovers(root)
            for list_id, rows in lists.rows.groupby(LIST_ID, sort=True):
                list_date = str(rows[LIST_DATE].iloc[0])
                files, rows_per_file = _imported_files(rows, list_date)
                content = sha256_bytes(files[SCORED_PARQUET] + files[LIST_CSV] + files[CONTROL_CSV])
                name = f"{list_date}{IMPORTED}{content[:12]}"
                base = {
                    "as_of": list_date,
                    "origin": ORIGIN_IMPORTED,
                    "list_id": str(list_id),
                    "model_version": None,
                    "content_sha256": content,
                    "source": source,
                    "imported_at": when.isoformat().replace("+00:00", "Z"),
                    "groups": {
                        TREATMENT: rows_per_file[LIST_CSV],
                        CONTROL: rows_per_file[CONTROL_CSV],
                    },
                }
                dest = root / name
                existing = _read_json(dest / MANIFEST_FILE) if dest.exists() else None
                if existing is not None and _folder_matches(dest, existing):
                    manifests.append(existing)
                    unchanged += 1
                    continue
                manifest = _manifest(name, files, rows_per_file, base)
                _install_folder(root, _stage_folder(root, name, files, manifest), dest)
                event = {"event": IMPORT_EVENT, **_summary(manifest), "content_sha256": content}
                _append_event(root, event, when)
                manifests.append(manifest)
                imported += 1
    return ImportResult(manifests, imported, unchanged)


def read_imported(root: str | Path) -> list[dict[str, Any]]:
    """Return the manifest of every imported past list of the record, sorted by list id: the
    newest import of each list id, by the order of events.jsonl (a list imported again with other
    rows is a new folder; the older one stays as history but is not measured twice).

    A folder whose files no longer match its manifest is an error naming it and the fix."""
    root = Path(root)
    # events.jsonl is appended in order: the later import of a list id is the newer one
    order = {
        str(event.get("content_sha256")): number
        for number, event in enumerate(read_events(root))
        if event.get("event") == IMPORT_EVENT
    }
    newest: dict[str, tuple[int, str, dict[str, Any]]] = {}
    for name in imported_folders(root):
        folder = root / name
        manifest = _read_json(folder / MANIFEST_FILE)
        if manifest is None or not _folder_matches(folder, manifest):
            raise ChurnError(
                f"{folder}: its files do not match its manifest.json; delete the folder and "
                "import the past lists again with `churn import-lists FILE`"
            )
        list_id = str(manifest.get("list_id"))
        key = (order.get(str(manifest.get("content_sha256")), -1), name)
        if list_id not in newest or key > newest[list_id][:2]:
            newest[list_id] = (*key, manifest)
    return [newest[list_id][2] for list_id in sorted(newest)]
