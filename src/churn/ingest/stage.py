"""Wiring of the ingest stage: open sources, clean, gate, then write every output or none."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb

from churn import columns as C
from churn.engine import open_duckdb, resource_error
from churn.errors import ChurnError
from churn.files import atomic_path
from churn.ingest import checks, integrity
from churn.ingest.aggregates import DuckDBAggregates
from churn.ingest.clean import (
    CleanedTable,
    clean_transactions,
    nullable,
    summarize_transactions,
)
from churn.ingest.side import clean_customers, clean_nps, mapped_columns
from churn.ingest.sources import RawTable, detect_format, ident, lit, open_source
from churn.ingest.sql import copy_sql_source, mask_url, resolve_sql_url
from churn.logs import get_logger

log = get_logger("ingest")

EMPTY_CUSTOMERS = (
    f"SELECT CAST(NULL AS VARCHAR) AS {ident(C.CUSTOMER_ID)}, "
    f"CAST(NULL AS DATE) AS {ident(C.SIGNUP_DATE)}, CAST(NULL AS VARCHAR) AS {ident(C.CHANNEL)}, "
    f"CAST(NULL AS VARCHAR) AS {ident(C.REGION)} WHERE false"
)
EMPTY_NPS = (
    f"SELECT CAST(NULL AS VARCHAR) AS {ident(C.CUSTOMER_ID)}, "
    f"CAST(NULL AS DATE) AS {ident(C.ANSWERED_AT)}, CAST(NULL AS INTEGER) AS {ident(C.NPS_SCORE)} "
    "WHERE false"
)


@dataclass(frozen=True)
class IngestOutputs:
    """Where the stage writes: the four tables (`run` writes the report and history)."""

    transactions: Path
    quarantine: Path
    customers: Path
    nps: Path

    @classmethod
    def in_folder(cls, folder: str | Path) -> IngestOutputs:
        """Return the standard file names inside `folder`."""
        folder = Path(folder)
        return cls(
            folder / "transactions.parquet",
            folder / "quarantine.parquet",
            folder / "customers.parquet",
            folder / "nps.parquet",
        )


def local_reject_after(params, now: datetime) -> datetime:
    """Return ingest.reject_after (or `now`) as naive wall-clock time in ingest.timezone."""
    zone = ZoneInfo(params.timezone)
    if params.reject_after is None:
        aware = now if now.tzinfo is not None else now.replace(tzinfo=UTC)
        return aware.astimezone(zone).replace(tzinfo=None)
    if params.reject_after.tzinfo is None:
        return params.reject_after  # already wall-clock time in the zone
    return params.reject_after.astimezone(zone).replace(tzinfo=None)


def source_key(params) -> str:
    """Return the key the volume history is kept under: the masked source plus table/query."""
    extra = params.sql.table or params.sql.query or ""
    return f"{mask_url(params.source)}|{extra}"


def integrity_source(params, label: str, source_columns: tuple[str, ...]) -> integrity.SourceInfo:
    """Return what the integrity checks name: the source, its amount column and the clean columns
    they check (passthrough columns, and the transaction id when mapped)."""
    checked = {name: name for name in params.passthrough}
    if params.columns.transaction_id:
        checked[C.TRANSACTION_ID] = params.columns.transaction_id
    required = {
        C.CUSTOMER_ID: params.columns.customer_id,
        C.TIMESTAMP: params.columns.timestamp,
        C.AMOUNT: params.columns.amount,
    }
    return integrity.SourceInfo(label, params.columns.amount, source_columns, checked, required)


def customer_categories(
    params, side: Mapping[str, CleanedTable], table: str
) -> tuple[str, str, dict[str, str]] | None:
    """Return the customers table, its source and the category columns the integrity check reads
    (channel, region by signup date), or None without a customers table or signup dates."""
    spec = params.customers
    if spec is None or "customers" not in side or not spec.columns.signup_date:
        return None
    mapped = {C.CHANNEL: spec.columns.channel, C.REGION: spec.columns.region}
    return table, mask_url(spec.source), {k: v for k, v in mapped.items() if v}


def _open(
    con: duckdb.DuckDBPyConnection,
    name: str,
    spec,
    required: list[str],
    sql_copies: Path,
    environ: Mapping[str, str],
    work_dir: Path,
    zone: str,
) -> tuple[RawTable, dict[str, Any] | None]:
    """Open a file source directly, or snapshot a SQL source to Parquet first."""
    fmt = detect_format(spec.source, spec.format)
    key = "ingest.source" if name == "transactions" else f"ingest.{name}.source"
    if fmt != "sql":
        raw = open_source(con, spec.source, fmt, spec.csv, required, work_dir, key=key, zone=zone)
        _log_skipped(name, raw)
        return raw, None
    url = resolve_sql_url(spec.source, spec.sql.password_env, environ)
    from_env = spec.source.startswith("env:")  # then even the host stays out of logs
    shown = mask_url(spec.source) if from_env else mask_url(url)
    path = sql_copies / f"{name}_snapshot.parquet"
    log.info("%s: reading %s into %s", name, shown, path)
    columns = required if spec.sql.table else []
    snap = copy_sql_source(
        url, spec.sql.table, spec.sql.query, spec.sql.query_params, columns, path, shown
    )
    label = f"{shown} ({spec.sql.table or 'query'})"
    raw = open_source(
        con, str(path), "parquet", spec.csv, required, work_dir, label=label, zone=zone
    )
    return raw, {"path": str(path), "rows": snap.rows, "sha256": snap.sha256}


SKIPPED_WORDS = {
    "hidden": "hidden or checkpoint copies (names starting with '.' or '_')",
    "other_types": "not of the source's format",
}


def _log_skipped(name: str, raw: RawTable) -> None:
    """Say which files of a folder source were not read, and why."""
    for why, paths in raw.skipped.items():
        shown = ", ".join(paths[:5]) + (f" and {len(paths) - 5} more" if len(paths) > 5 else "")
        log.warning("%s: %d files skipped, %s: %s", name, len(paths), SKIPPED_WORDS[why], shown)


def _copy(con: duckdb.DuckDBPyConnection, sql: str, path: Path) -> None:
    con.execute(f"COPY ({sql}) TO {lit(str(path))} (FORMAT parquet, COMPRESSION zstd)")


def _table_report(table: CleanedTable) -> dict[str, Any]:
    share = table.quarantined / table.rows_read if table.rows_read else 0.0
    return {
        "rows_read": table.rows_read,
        "rows_clean": table.rows_clean,
        "quarantined": table.quarantined,
        "quarantined_by_reason": table.quarantined_by_reason,
        "quarantine_share": round(share, 6),
        "duplicates_removed": table.duplicates_removed,
        **{k: v for k, v in table.stats.items() if k != "rows_clean"},
    }


# The row rules run elsewhere (the Spark engine): given the newest accepted timestamp, return
# the source as RawTable (label, columns, files; its relation unused) and the CleanedTable whose
# SQL reads what that engine wrote, with the integrity checks' numbers that engine counted in
# its `measures` (DuckDB then writes the outputs and decides every check); and, the same way,
# the side tables that engine cleaned (name -> (RawTable, CleanedTable); the customers' with
# their category check's numbers in `measures`). The side tables it left are cleaned here.
TransactionsCleaner = Callable[
    [datetime], tuple[RawTable, CleanedTable, dict[str, tuple[RawTable, CleanedTable]]]
]


def run_ingest(
    params,  # churn.config.IngestParams
    engine,  # churn.config.EngineParams
    outputs: IngestOutputs,
    sql_copies: Path,
    history: dict[str, Any],
    now: datetime,
    environ: Mapping[str, str],
    work_dir: Path,
    cleaner: TransactionsCleaner | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run the stage; return (report, new history). On any failure no output is replaced.

    `cleaner`: the transactions' row rules, and the checks' aggregates, run by another engine
    (churn.spark.ingest); the side tables, the checks' decisions and the outputs are this
    function's, whichever engine cleaned."""
    started = time.monotonic()
    reject_after = local_reject_after(params, now)
    con = open_duckdb(engine, work_dir)
    try:
        snapshot = None
        cleaned_elsewhere: dict[str, tuple[RawTable, CleanedTable]] = {}
        if cleaner is not None:
            raw, transactions, cleaned_elsewhere = cleaner(reject_after)
            _log_skipped("transactions", raw)
        elif params.format == "table":
            raise ChurnError(
                f"ingest.format is table: {params.source!r} names a table in the Spark catalog, "
                "which only the Spark engine reads; set engine.kind: spark, or export the table "
                "to Parquet and set ingest.format: parquet"
            )
        else:
            required = [params.columns.customer_id, params.columns.timestamp]
            required += [params.columns.amount]
            required += [params.columns.transaction_id] if params.columns.transaction_id else []
            required += list(params.passthrough)
            raw, snapshot = _open(
                con,
                "transactions",
                params,
                required,
                sql_copies,
                environ,
                work_dir,
                params.timezone,
            )
            log.info("transactions: %d rows read from %s", raw.rows_read, raw.label)
            transactions = clean_transactions(con, raw, params, reject_after)
        for warning in transactions.stats.get("warnings", []):
            log.warning("transactions: %s", warning)
        log.info(
            "transactions: %d quarantined, %d duplicates removed (%.1f s)",
            transactions.quarantined,
            transactions.duplicates_removed,
            time.monotonic() - started,
        )
        side: dict[str, CleanedTable] = {}
        side_snapshots: dict[str, Any] = {}
        side_skipped: dict[str, dict[str, tuple[str, ...]]] = {}
        for name, (raw_s, table_s) in cleaned_elsewhere.items():
            _log_skipped(name, raw_s)
            side[name] = table_s
            side_skipped[name] = raw_s.skipped
            for warning in table_s.stats.get("warnings", []):
                log.warning("%s: %s", name, warning)
        if params.customers is not None and "customers" not in side:
            spec = params.customers
            wanted = mapped_columns("customers", spec)
            raw_c, snap_c = _open(
                con, "customers", spec, wanted, sql_copies, environ, work_dir, params.timezone
            )
            side["customers"] = clean_customers(
                con, raw_c, spec, params.timezone, params.limits.min_date
            )
            side_skipped["customers"] = raw_c.skipped
            for warning in side["customers"].stats.get("warnings", []):
                log.warning("customers: %s", warning)
            if snap_c:
                side_snapshots["customers"] = snap_c
        if params.nps is not None and "nps" not in side:
            spec = params.nps
            wanted = mapped_columns("nps", spec)
            raw_n, snap_n = _open(
                con, "nps", spec, wanted, sql_copies, environ, work_dir, params.timezone
            )
            side["nps"] = clean_nps(
                con, raw_n, spec, params.timezone, reject_after, params.limits.min_date
            )
            side_skipped["nps"] = raw_n.skipped
            if snap_n:
                side_snapshots["nps"] = snap_n
        side = {name: side[name] for name in ("customers", "nps") if name in side}

        results = [
            checks.check_quarantine_share(table, params.max_quarantine_share)
            for table in (transactions, *side.values())
        ]
        checks.enforce(results)  # before writing anything: a broken export writes nothing

        quarantine_sql = " UNION ALL BY NAME ".join(
            f"({t.quarantine_sql})" for t in (transactions, *side.values())
        )
        names = [row[0] for row in con.execute(f"DESCRIBE {quarantine_sql}").fetchall()]
        quarantine_sql = (
            f"SELECT {', '.join(f'{nullable(ident(n))} AS {ident(n)}' for n in names)} "
            f"FROM ({quarantine_sql}) ORDER BY {ident(C.QUARANTINE_TABLE)}, {C.SOURCE_FILE}, {C.SOURCE_ROW}"
        )
        with contextlib.ExitStack() as stack:
            tmp = {
                name: stack.enter_context(atomic_path(getattr(outputs, name)))
                for name in ("transactions", "quarantine", "customers", "nps")
            }
            _copy(con, transactions.clean_sql, tmp["transactions"])
            log.info("transactions: sorted and written (%.1f s)", time.monotonic() - started)
            _copy(con, quarantine_sql, tmp["quarantine"])
            _copy(
                con,
                side["customers"].clean_sql if "customers" in side else EMPTY_CUSTOMERS,
                tmp["customers"],
            )
            _copy(con, side["nps"].clean_sql if "nps" in side else EMPTY_NPS, tmp["nps"])
            transactions = summarize_transactions(con, transactions, str(tmp["transactions"]))
            key = source_key(params)
            previous = checks.previous_run(history, key)
            source_columns = tuple(c for c in raw.types if not c.startswith("__"))
            source = integrity_source(params, raw.label, source_columns)
            quarantined = integrity.Quarantined(
                f"read_parquet({lit(str(tmp['quarantine']))})",
                integrity.quarantine_date_sql(
                    params.timestamp_format, params.dayfirst, params.timezone
                ),
                transactions.rows_read,
                transactions.quarantined_by_reason,
            )
            # the checks' numbers: from the engine that cleaned (Spark counted them on its
            # frames), else counted here on the written files; one decision step for both
            transactions_file = f"read_parquet({lit(str(tmp['transactions']))})"
            measures = transactions.measures or integrity.measure_integrity(
                DuckDBAggregates(con),
                transactions_file,
                params.integrity,
                list(source.checked),
                integrity.dated_quarantine(quarantined),
            )
            results.append(
                checks.check_freshness(
                    measures.newest_timestamp,
                    reject_after,
                    params.freshness.max_age_days,
                    params.freshness.action,
                )
            )
            volume = checks.check_volume(
                raw.rows_read,
                checks.volume_baseline(history, key, params.volume.baseline_runs),
                params.volume.max_drop_share,
                params.volume.action,
                params.volume.accept,
            )
            results.append(volume)
            integrity_results, integrity_detail = integrity.check_integrity(
                con,
                transactions_file,
                params.integrity,
                source,
                previous,
                customer_categories(params, side, f"read_parquet({lit(str(tmp['customers']))})"),
                quarantined,
                measures,
                side["customers"].measures if "customers" in side else None,
            )
            results += integrity_results
            checks.enforce(results)  # a failure here removes the temporary files: nothing lands
            for result in results:
                if result.status == "warn":
                    log.warning("check %s: %s", result.name, result.message)
    except (duckdb.Error, MemoryError, OSError) as error:
        friendly = resource_error(error, engine, "ingest", work_dir)
        if friendly is not None:
            raise friendly from None
        if not isinstance(error, duckdb.Error):
            raise
        first = str(error).strip().splitlines()[0]
        raise ChurnError(
            f"ingest of {mask_url(params.source)} failed in DuckDB: {first}; check the source "
            "and ingest.columns (run with -v for details)"
        ) from error
    finally:
        con.close()

    report: dict[str, Any] = {
        "source": mask_url(params.source),
        "format": raw.fmt if snapshot is None else "sql",
        "files": len(raw.files),
        "files_skipped": {why: list(paths) for why, paths in raw.skipped.items()},
        "timezone": params.timezone,
        # the run time is not recorded: the report is committed and must not change every run
        "reject_after": None
        if params.reject_after is None
        else reject_after.isoformat(sep=" ", timespec="seconds"),
        **_table_report(transactions),
        "checks": {r.name: r.as_dict() for r in results},
        "integrity": integrity_detail,
    }
    if snapshot is not None:
        report["snapshot"] = snapshot
    for name, table in side.items():
        report[f"{name}_table"] = _table_report(table)
        if side_skipped.get(name):
            report[f"{name}_table"]["files_skipped"] = {
                why: list(paths) for why, paths in side_skipped[name].items()
            }
        if name in side_snapshots:
            report[f"{name}_table"]["snapshot"] = side_snapshots[name]
    entry = {
        "run_at": now.astimezone(UTC).isoformat(timespec="seconds"),
        "rows_read": raw.rows_read,
        "rows_clean": transactions.rows_clean,
        "customers": transactions.stats.get("customers"),
        "columns": list(source_columns),  # the schema check's reference for the next run
        # rows without a usable timestamp fit in no period: the next run compares with this
        "undated_rows": integrity.undated_rows(transactions.quarantined_by_reason),
        # a run whose volume check warned never becomes the baseline (unless accepted)
        "volume_baseline": volume.status != "warn" or params.volume.accept,
        "volume_accepted": volume.status == "warn" and params.volume.accept,
    }
    log.info("ingest done in %.1f s", time.monotonic() - started)
    return report, checks.add_run(history, key, entry)


def run(
    params,  # churn.config.IngestParams
    engine,  # churn.config.EngineParams
    out: Path,
    report: Path,
    sql_copies: Path,
    state: Path,
) -> None:
    """The `ingest` stage: clean the source into the tables in `out`, write the report, and keep
    the run history in `state` (outside DVC's outputs) for the volume check. On Spark
    (engine.kind) a typed source's row rules run there; a text export or SQL source goes through
    the DuckDB ingest first."""
    import os
    import tempfile

    from churn.files import read_json, write_json

    try:
        history = read_json(state, "it is rebuilt on the next run") or {}
    except ChurnError:
        log.warning("%s: unreadable run history, the volume check starts afresh", state)
        history = {}
    with tempfile.TemporaryDirectory(prefix="churn-ingest-") as work_dir:
        cleaner = None
        if engine.kind == "spark":
            from churn.spark.ingest import spark_cleaner, typed_source

            if typed_source(params) is None:
                log.info(
                    "engine.kind is spark, but %s is a text export or SQL source: it goes "
                    "through the DuckDB ingest first (the Spark stages read its clean tables)",
                    mask_url(params.source),
                )
            else:  # the row rules on Spark; side tables and checks by the shared code
                cleaner = spark_cleaner(params, engine, Path(work_dir))
        result, history = run_ingest(
            params,
            engine,
            IngestOutputs.in_folder(out),
            sql_copies,
            history,
            datetime.now(UTC),
            os.environ,
            Path(work_dir),
            cleaner,
        )
    write_json(result, report)
    write_json(history, state)
    log.info("wrote %s and %s", out, report)
