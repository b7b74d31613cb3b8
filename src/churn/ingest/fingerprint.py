"""Fingerprints of the configured sources (the `sources` stage): byte-identical while no source
changes, so the ingest stage, which depends on them, reruns exactly when one does."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from churn.errors import ChurnError
from churn.files import sha256_bytes, sha256_file
from churn.ingest.sources import detect_format, list_files
from churn.ingest.sql import mask_url, read_source_stats, resolve_sql_url
from churn.ingest.table_formats import table_format
from churn.logs import get_logger

log = get_logger("sources")

# A file modified this shortly before it was hashed may change again within the same mtime tick
# and keep its size ("racily clean"); its hash is not kept, so the next run hashes it again.
RACY_NS = 2_000_000_000


@dataclass(frozen=True)
class Fingerprints:
    """The `sources` stage's result: what it writes, the hashes to keep, and what it read."""

    report: dict[str, Any]  # {"sources": {name: fingerprint or None}}: no times, no secrets
    cache: dict[str, dict[str, Any]]  # absolute path -> size, mtime_ns, inode, sha256
    files_hashed: int
    bytes_hashed: int
    files_cached: int


@dataclass
class _Hasher:
    previous: Mapping[str, Any]
    now_ns: int
    kept: dict[str, dict[str, Any]]
    files_hashed: int = 0
    bytes_hashed: int = 0
    files_cached: int = 0

    def file_entry(self, path: Path) -> dict[str, Any]:
        """Return {path, bytes, sha256} of a file, hashing it only when its stat changed."""
        stat = path.stat()
        key = os.path.abspath(path)
        stamp = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "inode": stat.st_ino}
        old = self.previous.get(key)
        if (
            isinstance(old, Mapping)
            and isinstance(old.get("sha256"), str)
            and all(old.get(name) == value for name, value in stamp.items())
        ):
            digest = old["sha256"]
            self.files_cached += 1
        else:
            digest = sha256_file(path)
            after = path.stat()
            if (after.st_size, after.st_mtime_ns) != (stat.st_size, stat.st_mtime_ns):
                raise ChurnError(
                    f"{path}: changed while it was being read (still being written?); run again "
                    "once the export is complete"
                )
            self.files_hashed += 1
            self.bytes_hashed += stat.st_size
        if self.now_ns - stat.st_mtime_ns >= RACY_NS:
            self.kept[key] = {**stamp, "sha256": digest}
        return {"path": str(path), "bytes": stat.st_size, "sha256": digest}


def _sql_fingerprint(
    spec, timestamp_column: str | None, environ: Mapping[str, str]
) -> dict[str, Any]:
    """Return a SQL source's fingerprint: masked URL, table or query, row count, newest time."""
    url = resolve_sql_url(spec.source, spec.sql.password_env, environ)
    from_env = spec.source.startswith("env:")  # then even the host stays out of logs and files
    rendered = mask_url(url.render_as_string(hide_password=True))
    shown = mask_url(spec.source) if from_env else rendered
    stats = read_source_stats(
        url, spec.sql.table, spec.sql.query, spec.sql.query_params, timestamp_column, shown
    )
    fingerprint: dict[str, Any] = {
        "source": mask_url(spec.source),
        "format": "sql",
        "table": spec.sql.table,
        "query": spec.sql.query,
        "query_params": dict(spec.sql.query_params),
        "timestamp_column": timestamp_column,
        "rows": stats.rows,
        "newest": stats.newest,
    }
    if from_env:
        # a URL moved to another database changes the fingerprint without showing the URL
        fingerprint["url_sha256"] = sha256_bytes(rendered.encode("utf-8"))
    return fingerprint


def _file_fingerprint(spec, fmt: str, key: str, hasher: _Hasher) -> dict[str, Any]:
    """Return a file or folder source's fingerprint: the files ingest reads, with their hashes."""
    files = list_files(spec.source, fmt, key)
    return {
        "source": spec.source,
        "format": fmt,
        "files": [hasher.file_entry(path) for path in files],
    }


def _delta_fingerprint(spec, hasher: _Hasher) -> dict[str, Any]:
    """Return a Delta table's fingerprint: the files of its transaction log (every change to the
    table adds a commit there), not its data files (which keep deleted rows until VACUUM)."""
    log_folder = Path(spec.source) / "_delta_log"
    files = sorted(p for p in log_folder.rglob("*") if p.is_file())
    return {
        "source": spec.source,
        "format": "delta",
        "files": [hasher.file_entry(path) for path in files],
    }


def fingerprint_sources(
    params,  # churn.config.IngestParams
    previous: Mapping[str, Any],
    environ: Mapping[str, str],
    now_ns: int,
) -> Fingerprints:
    """Return the fingerprint of every configured source (None for an unused side table).

    Files: the sorted files ingest would read, with size and sha256; a hash in `previous` (from
    the last run) is reused while the file's size, mtime and inode are unchanged. SQL: the masked
    URL, the table or query, and a read-only count(*) and newest timestamp, so new rows show.
    """
    hasher = _Hasher(previous, now_ns, {})
    customers, nps = params.customers, params.nps
    specs = {
        "transactions": (params, "ingest.source", params.columns.timestamp),
        "customers": (
            customers,
            "ingest.customers.source",
            customers.columns.signup_date if customers is not None else None,
        ),
        "nps": (nps, "ingest.nps.source", nps.columns.answered_at if nps is not None else None),
    }
    sources: dict[str, Any] = {}
    for name, (spec, key, timestamp_column) in specs.items():
        if spec is None:
            sources[name] = None
            continue
        if spec.format == "table":
            # a Spark catalog table cannot be read without Spark: no content fingerprint
            log.warning(
                "%s is a table in the Spark catalog: its content is not fingerprinted, so "
                "`dvc repro` reruns ingest only when params change; run `dvc repro -f ingest` "
                "after the table gets new rows",
                spec.source,
            )
            sources[name] = {"source": spec.source, "format": "table"}
            continue
        if spec.format == "auto" and table_format(Path(spec.source)) == "Delta Lake":
            sources[name] = _delta_fingerprint(spec, hasher)
            continue
        fmt = detect_format(spec.source, spec.format)
        if fmt == "sql":
            sources[name] = _sql_fingerprint(spec, timestamp_column, environ)
        else:
            sources[name] = _file_fingerprint(spec, fmt, key, hasher)
    return Fingerprints(
        report={"sources": sources},
        cache=hasher.kept,
        files_hashed=hasher.files_hashed,
        bytes_hashed=hasher.bytes_hashed,
        files_cached=hasher.files_cached,
    )


def run(params, out: Path, state: Path) -> None:  # noqa: ANN001 - churn.config.IngestParams
    """The `sources` stage: fingerprint every configured source into `out` (the ingest stage's
    dependency), reusing the hashes in `state` of files unchanged since the last run."""
    import time

    from churn.files import read_json, write_json

    try:
        kept = (read_json(state, "it is rebuilt on the next run") or {}).get("files")
    except ChurnError as error:
        log.warning("%s; hashing every file afresh", error)
        kept = None
    previous = kept if isinstance(kept, dict) else {}
    started = time.monotonic()
    result = fingerprint_sources(params, previous, os.environ, time.time_ns())
    write_json(result.report, out)
    write_json({"files": result.cache}, state)
    log.info(
        "wrote %s: %d file(s) hashed (%.0f MB), %d unchanged (%.1f s)",
        out,
        result.files_hashed,
        result.bytes_hashed / 1e6,
        result.files_cached,
        time.monotonic() - started,
    )
