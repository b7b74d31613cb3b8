"""Durable publishing: score archive, gates, dated at-risk lists with LATEST.json, SQL export.

Publishing is the one step whose files people act on, so every file is written to a temporary
name, fsynced and renamed into place; a dated folder is complete before LATEST.json names it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import io
import json
import os
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

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
    REASON_FAMILY,
    REASONS,
    RISK_TIER,
    SUGGESTED_ACTION,
    SUPPRESSED,
    VALUE_AT_RISK,
)
from churn.config import PublishParams
from churn.errors import ChurnError, DataCheckFailed
from churn.score.targeting import CONTROL, TREATMENT

LATEST_FILE = "LATEST.json"
MANIFEST_FILE = "manifest.json"
LIST_CSV = "at_risk.csv"
LIST_PARQUET = "at_risk.parquet"
CONTROL_CSV = "control.csv"
CONTROL_PARQUET = "control.parquet"
LIST_FILES = (LIST_CSV, LIST_PARQUET, CONTROL_CSV, CONTROL_PARQUET)

# the scores table's schema (data/scores/scores.parquet); any other column is a segment attribute
SCORE_SCHEMA: dict[str, str] = {
    CUSTOMER_ID: "string",
    AS_OF: "date",
    CHURN_PROBABILITY: "float",
    RISK_TIER: "string",
    EXPECTED_VALUE: "float",
    VALUE_AT_RISK: "float",
    EXPECTED_NET_BENEFIT: "float",
    PRIORITY: "int",
    AT_RISK: "bool",
    SUPPRESSED: "bool",
    GROUP: "string",
    MODEL_VERSION: "string",
    REASONS: "string",
    REASON_FAMILY: "string",
    SUGGESTED_ACTION: "string",
}
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
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


# --------------------------------------------------------------------------- durable files
def sha256_bytes(data: bytes) -> str:
    """Return the hex sha256 of `data`."""
    return hashlib.sha256(data).hexdigest()


def write_file(path: Path, data: bytes) -> None:
    """Write bytes to `path` and fsync them (no rename: callers rename or stage a folder)."""
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def fsync_dir(path: Path) -> None:
    """Flush a folder's entries (renames into it) to disk."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: str | Path, data: bytes) -> None:
    """Write `data` to a temporary file beside `path`, fsync, rename into place, fsync the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        write_file(tmp, data)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    fsync_dir(path.parent)


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    """Return a frame as Parquet bytes (zstd, no index): identical frames give identical bytes."""
    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), sink, compression="zstd")
    return sink.getvalue().to_pybytes()


def archive_scores(data: bytes, archive_root: str | Path, as_of: str) -> tuple[Path, str]:
    """Keep every run's full scores table under <archive_root>/<as_of>/scores.parquet.

    Returns (path, status) with status new / unchanged / replaced. A different table for the same
    date replaces the current file only after the old one is kept as scores.superseded-<sha>.parquet.
    """
    path = Path(archive_root) / as_of / "scores.parquet"
    if path.exists():
        old = path.read_bytes()
        if old == data:
            return path, "unchanged"
        kept = path.with_name(f"scores.superseded-{sha256_bytes(old)[:12]}.parquet")
        if not kept.exists():
            write_atomic(kept, old)
        write_atomic(path, data)
        return path, "replaced"
    write_atomic(path, data)
    return path, "new"


# --------------------------------------------------------------------------- gates
@dataclass(frozen=True)
class Gate:
    """The outcome of one publishing check."""

    name: str
    passed: bool
    detail: str


def validate_scores(scores: pd.DataFrame, source: str = "scores") -> None:
    """Raise DataCheckFailed unless `scores` is a non-empty scores table of the expected schema."""
    problems = []
    for column, kind in SCORE_SCHEMA.items():
        if column not in scores.columns:
            problems.append(f"column '{column}' is missing")
            continue
        if not _has_kind(scores[column], kind):
            problems.append(f"column '{column}' should be {kind}, is {scores[column].dtype}")
    if problems:
        raise DataCheckFailed(
            f"{source}: not a scores table: {'; '.join(problems)}; rerun `churn score`"
        )
    if scores.empty:
        raise DataCheckFailed(f"{source}: no customers were scored; nothing to publish")
    if scores[AS_OF].nunique() != 1 or scores[MODEL_VERSION].nunique() != 1:
        raise DataCheckFailed(f"{source}: expected one as_of date and one model version per table")
    if scores[CUSTOMER_ID].isna().any() or scores[CUSTOMER_ID].duplicated().any():
        raise DataCheckFailed(f"{source}: customer_id must be present and unique")
    probability = scores[CHURN_PROBABILITY].to_numpy(dtype="float64")
    if not (np.isfinite(probability).all() and ((probability >= 0) & (probability <= 1)).all()):
        raise DataCheckFailed(f"{source}: churn_probability has values outside [0, 1]")
    flagged = scores[AT_RISK].to_numpy(dtype=bool)
    if (flagged & scores[SUPPRESSED].to_numpy(dtype=bool)).any():
        raise DataCheckFailed(f"{source}: suppressed customers are flagged; rerun `churn score`")
    if scores.loc[flagged, REASONS].isna().any():
        raise DataCheckFailed(f"{source}: flagged customers without reasons; rerun `churn score`")


def _has_kind(values: pd.Series, kind: str) -> bool:
    if kind == "string":
        return pd.api.types.is_string_dtype(values) or bool(values.isna().all())
    if kind == "date":
        return values.dtype == object and all(isinstance(v, dt.date) for v in values.dropna())
    if kind == "float":
        return pd.api.types.is_float_dtype(values)
    if kind == "int":
        return pd.api.types.is_integer_dtype(values)
    return pd.api.types.is_bool_dtype(values)


def check_ingest_report(report: dict[str, Any] | None, params: PublishParams) -> Gate:
    """Return the quarantine gate from reports/ingest.json (passes, noting it, when absent)."""
    if report is None:
        return Gate("quarantine", True, "no ingest report; not checked")
    share = report.get("quarantine_share")
    if share is None:
        rows_in = next(
            (
                report[k]
                for k in ("rows_read", "rows_in", "rows_source", "rows_total")
                if k in report
            ),
            None,
        )
        quarantined = report.get("rows_quarantined", report.get("quarantined"))
        if rows_in and quarantined is not None:
            share = quarantined / rows_in
    if share is None:
        return Gate("quarantine", True, "ingest report has no quarantine share; not checked")
    passed = float(share) <= params.max_quarantine_share
    return Gate(
        "quarantine",
        passed,
        f"{float(share):.2%} of source rows quarantined (limit {params.max_quarantine_share:.2%})",
    )


def check_freshness(as_of: dt.date, today: dt.date, params: PublishParams) -> Gate:
    """Return the freshness gate: the as-of date must be at most publish.max_age_days old."""
    age = (today - as_of).days
    if params.max_age_days is None:
        return Gate("freshness", True, f"as_of {as_of} is {age} days old; no limit set")
    return Gate(
        "freshness",
        age <= params.max_age_days,
        f"as_of {as_of} is {age} days old (limit {params.max_age_days})",
    )


def check_volume(scores: pd.DataFrame, params: PublishParams) -> Gate:
    """Return the volume gate: at least publish.min_customers customers were scored."""
    return Gate(
        "volume",
        len(scores) >= params.min_customers,
        f"{len(scores)} customers scored (minimum {params.min_customers})",
    )


def check_drift_gate(drift_report: dict[str, Any] | None) -> Gate:
    """Return the drift gate. Hook for the retraining issue: passes when no drift report exists.

    A report (reports/drift.json) fails the gate when it says `"passed": false`; its `detail`
    (or `summary`) is shown. `churn publish --accept-drift` publishes anyway.
    """
    if drift_report is None:
        return Gate("drift", True, "no drift report; not checked")
    passed = bool(drift_report.get("passed", True))
    detail = str(drift_report.get("detail", drift_report.get("summary", "")))
    return Gate("drift", passed, detail or ("no drift" if passed else "drift detected"))


def enforce_gates(gates: list[Gate], accept_drift: bool = False) -> list[Gate]:
    """Raise DataCheckFailed naming every failed gate (drift is waived by accept_drift)."""
    failed = [g for g in gates if not g.passed and not (g.name == "drift" and accept_drift)]
    if failed:
        lines = "; ".join(f"{g.name}: {g.detail}" for g in failed)
        fix = (
            " (rerun with --accept-drift after review)"
            if any(g.name == "drift" for g in failed)
            else ""
        )
        raise DataCheckFailed(f"publish refused by gate(s): {lines}{fix}")
    return gates


# --------------------------------------------------------------------------- lists
def select_lists(scores: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (treatment, control) lists of flagged customers, sorted by priority, for marketing."""
    segments = [c for c in scores.columns if c not in SCORE_SCHEMA]
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


def neutralise_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """Return a copy where text cells a spreadsheet would run as formulas start with a quote.

    Only text columns are touched (=, +, -, @, tab, CR at the start); numbers stay numbers.
    """
    out = frame.copy()
    for column in out.columns:
        values = out[column]
        if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            continue
        if not (pd.api.types.is_string_dtype(values) or values.dtype == object):
            continue
        text = values.astype("string")
        risky = text.str.startswith(FORMULA_STARTS).fillna(False).to_numpy(dtype=bool)
        if risky.any():
            text = text.copy()
            text[risky] = "'" + text[risky]
            out[column] = text
    return out


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """Return a list as UTF-8 CSV bytes with formulas neutralised (deterministic)."""
    buffer = io.StringIO()
    neutralise_formulas(frame).to_csv(buffer, index=False, lineterminator="\n")
    return buffer.getvalue().encode("utf-8")


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
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ChurnError(f"{path}: unreadable ({error}); restore it from a dated folder") from None
    return data if isinstance(data, dict) else None


def _json_bytes(data: dict[str, Any]) -> bytes:
    return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode("utf-8")


def _folder_matches(folder: Path, manifest: dict[str, Any] | None) -> bool:
    """Return True when every file the manifest lists exists in `folder` with its sha256."""
    if not manifest or not isinstance(manifest.get("files"), dict):
        return False
    for name, entry in manifest["files"].items():
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
    for file_name, data in files.items():
        write_file(staging / file_name, data)
    write_file(staging / MANIFEST_FILE, _json_bytes(manifest))
    fsync_dir(staging)
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
) -> PublishResult:
    """Publish the flagged customers of `scores` as exports/at_risk/<as_of>/ and switch LATEST.json.

    The dated folder is written under a staging name and renamed into place when complete; only
    then is LATEST.json (a copy of the folder's manifest) replaced. Publishing identical content
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
    }
    rows = {
        LIST_CSV: len(treatment),
        LIST_PARQUET: len(treatment),
        CONTROL_CSV: len(control),
        CONTROL_PARQUET: len(control),
    }
    created = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).replace(microsecond=0)
    base = {
        "as_of": as_of,
        "model_version": str(scores[MODEL_VERSION].iloc[0]),
        "created_at": created.isoformat().replace("+00:00", "Z"),
        "groups": {TREATMENT: len(treatment), CONTROL: len(control)},
    }
    manifest = _manifest(as_of, files, rows, base)
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
        if dest.exists() and _same_content(existing, manifest) and _folder_matches(dest, existing):
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
                write_atomic(latest_path, (superseded / MANIFEST_FILE).read_bytes())
            _install_folder(root, _stage_folder(root, as_of, files, manifest), dest)
            status = "replaced"
        else:
            _install_folder(root, _stage_folder(root, as_of, files, manifest), dest)
            status = "published"
        manifest_bytes = (dest / MANIFEST_FILE).read_bytes()
        if not latest_path.exists() or latest_path.read_bytes() != manifest_bytes:
            write_atomic(latest_path, manifest_bytes)
    return PublishResult(status, dest, json.loads(manifest_bytes), superseded)


def _same_content(existing: dict[str, Any] | None, manifest: dict[str, Any]) -> bool:
    if not existing or not isinstance(existing.get("files"), dict):
        return False
    old = {name: entry.get("sha256") for name, entry in existing["files"].items()}
    new = {name: entry["sha256"] for name, entry in manifest["files"].items()}
    return old == new


def read_manifest(root: str | Path, date: str | None = None) -> dict[str, Any]:
    """Return LATEST.json (or the manifest of a dated list) after checking the list's sha256."""
    root = Path(root)
    path = root / (LATEST_FILE if date is None else f"{date}/{MANIFEST_FILE}")
    manifest = _read_json(path)
    if manifest is None:
        if date is None:
            raise ChurnError(f"{path}: no list has been published yet; run `churn publish`")
        dates = (
            sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
            if root.exists()
            else []
        )
        raise ChurnError(
            f"{path}: no list published for {date}; published dates: {dates or 'none'}"
        )
    folder = root / str(manifest["path"]).split("/", 1)[0]
    if not _folder_matches(folder, manifest):
        raise ChurnError(
            f"{folder}: files do not match their manifest's sha256 (changed by hand?); "
            "republish with `churn publish --force`"
        )
    return manifest


def read_list(root: str | Path, manifest: dict[str, Any], group: str = TREATMENT) -> pd.DataFrame:
    """Return the published treatment (or control) list named by a manifest, as typed columns."""
    folder = Path(root) / str(manifest["path"]).split("/", 1)[0]
    name = LIST_PARQUET if group == TREATMENT else CONTROL_PARQUET
    return pd.read_parquet(folder / name)


# --------------------------------------------------------------------------- SQL
def _sql_type(values: pd.Series) -> Any:
    import sqlalchemy as sa

    if pd.api.types.is_bool_dtype(values):
        return sa.Boolean()
    if pd.api.types.is_integer_dtype(values):
        return sa.BigInteger()
    if pd.api.types.is_float_dtype(values):
        return sa.Float(precision=53)
    if values.map(lambda v: isinstance(v, dt.date)).any() or values.name == AS_OF:
        return sa.Date()
    return sa.Text()


def export_to_sql(frame: pd.DataFrame, url: str, table: str, schema_name: str | None = None) -> int:
    """Replace the as_of date's rows of a SQL table with `frame` in one transaction; return rows.

    Creates the table (with an index on as_of) when missing; an existing table must already have
    every column of the list. Other dates' rows are left alone.
    """
    import sqlalchemy as sa
    from sqlalchemy.exc import SQLAlchemyError

    if frame.empty:
        raise ChurnError("SQL export: the list is empty; nothing to export")
    as_of = frame[AS_OF].iloc[0]
    as_of = as_of if isinstance(as_of, dt.date) else dt.date.fromisoformat(str(as_of))
    engine = sa.create_engine(url)
    shown = sa.engine.make_url(url).render_as_string(hide_password=True)
    metadata = sa.MetaData(schema=schema_name)
    target = sa.Table(
        table,
        metadata,
        *(sa.Column(name, _sql_type(frame[name])) for name in frame.columns),
        sa.Index(f"ix_{table}_as_of", AS_OF),
    )
    records = frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
    try:
        with engine.begin() as connection:
            metadata.create_all(connection, checkfirst=True)
            present = {c["name"] for c in sa.inspect(connection).get_columns(table, schema_name)}
            missing = [name for name in frame.columns if name not in present]
            if missing:
                raise ChurnError(
                    f"SQL export to {shown} table {table}: the table has no column(s) {missing}; "
                    "add them or export to a new table (publish.sql.table)"
                )
            connection.execute(sa.delete(target).where(target.c[AS_OF] == as_of))
            connection.execute(sa.insert(target), records)
    except SQLAlchemyError as error:
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        raise ChurnError(
            f"SQL export to {shown} table {table} failed and was rolled back: {reason}"
        ) from None
    finally:
        engine.dispose()
    return len(records)


# --------------------------------------------------------------------------- inputs
def read_suppression(path: str | Path) -> list[str]:
    """Return the customer ids of a suppression list CSV (a `customer_id` column; ids as text)."""
    import pyarrow.csv as pacsv

    path = Path(path)
    if not path.is_file():
        raise ChurnError(
            f"{path}: suppression list not found; create it (a CSV with a customer_id column, "
            "header only when nobody is suppressed) or change score.suppression_file"
        )
    try:
        table = pacsv.read_csv(
            path,
            convert_options=pacsv.ConvertOptions(
                column_types={CUSTOMER_ID: pa.string()}, strings_can_be_null=False
            ),
        )
    except pa.ArrowInvalid as error:
        if "Empty CSV file" in str(error):
            raise ChurnError(
                f"{path}: empty file; write at least the header line 'customer_id'"
            ) from None
        raise ChurnError(f"{path}: not a readable CSV ({error})") from None
    if CUSTOMER_ID not in table.column_names:
        raise ChurnError(
            f"{path}: no 'customer_id' column (found {table.column_names}); "
            "name the id column customer_id"
        )
    ids = [str(v).strip() for v in table.column(CUSTOMER_ID).to_pylist() if v is not None]
    return sorted({v for v in ids if v})
