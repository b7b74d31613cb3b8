"""Run the feature SQL on DuckDB: inputs in, training and scoring snapshots (pandas) out."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from churn import columns as c
from churn.config import ChurnParams, EngineParams, FeaturesParams
from churn.cutoffs import SCORE, Cutoff, TrainingPlan, assign_customer_roles, plan_training
from churn.definition import resolve_as_of
from churn.engine import (
    memory_limit_bytes,
    open_duckdb,
    release_memory,
    resource_errors,
    spill_folder,
)
from churn.errors import ChurnError
from churn.features.bgnbd_columns import (
    SUMMARY_COLUMNS,
    BGNBDFits,
    CutoffFailed,
    add_bgnbd_features,
    cutoff_positions,
)
from churn.features.definitions import feature_list, sql_feature_list, window_features
from churn.features.sql import day_number, snapshot_sql, summary_sql
from churn.files import atomic_path, open_parquet_file
from churn.logs import get_logger

log = get_logger("features")

TableSource = pd.DataFrame | pa.Table | Path

# column -> the type the clean contract gives it (written by ingest), for each input table
CONTRACT = {
    "transactions": {c.CUSTOMER_ID: "string", c.DATE: "date32", c.AMOUNT: "float64"},
    "customers": {
        c.CUSTOMER_ID: "string",
        c.SIGNUP_DATE: "date32",
        c.CHANNEL: "string",
        c.REGION: "string",
    },
    "nps": {c.CUSTOMER_ID: "string", c.ANSWERED_AT: "date32", c.NPS_SCORE: "int"},
}
# contract type -> the DuckDB types that hold it
DUCKDB_TYPES = {
    "string": {"VARCHAR"},
    "date32": {"DATE"},
    "float64": {"DOUBLE", "FLOAT"},
    "int": {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER"},
}
DUPLICATE_CUSTOMERS_SQL = (
    "SELECT customer_id, COUNT(*) AS n FROM customers GROUP BY customer_id HAVING COUNT(*) > 1 "
    "ORDER BY customer_id LIMIT 1"
)


def check_contract(
    label: str,
    name: str,
    types: dict[str, str],
    engine_types: dict[str, set[str]],
    engine: str = "",
) -> None:
    """Raise a clear error when input table `name` (read as `label`, with column -> engine
    type `types`) misses a contract column or holds it in a type the engine can't use as such."""
    kind = f"{engine} type" if engine else "type"
    for column, contract in CONTRACT[name].items():
        if column not in types:
            raise ChurnError(
                f"{label}: column '{column}' is missing (has {', '.join(types) or 'none'}); "
                f"the clean {name} contract needs it as {contract}: rerun `churn ingest`"
            )
        if types[column] not in engine_types[contract]:
            raise ChurnError(
                f"{label}: column '{column}' has {kind} {types[column]}, expected {contract}; "
                f"rerun `churn ingest` so the clean {name} table follows the contract"
            )


def check_unique_customers(duplicate: tuple[Any, ...] | None) -> None:
    """Raise when DUPLICATE_CUSTOMERS_SQL found a customer id twice in the customers table."""
    if duplicate:
        raise ChurnError(
            f"customers: customer_id {duplicate[0]!r} appears {duplicate[1]} times; the customers "
            "table needs one row per customer (fix the export or dedupe it at ingest)"
        )


@dataclass(frozen=True)
class Snapshots:
    """Training rows (labelled cutoffs) and the as-of snapshot to score, with their plan."""

    train: pd.DataFrame
    score: pd.DataFrame
    cutoffs: list[Cutoff]
    as_of: date
    first_date: date
    plan: TrainingPlan | None = None
    dropped: tuple[str, ...] = ()  # features whose windows the earliest cutoff's history misses


def register_table(con: duckdb.DuckDBPyConnection, name: str, source: TableSource) -> None:
    """Expose a frame, Arrow table or Parquet file to the connection as view `name`, checked."""
    if isinstance(source, Path):
        if not source.exists():
            raise ChurnError(f"{source}: not found; run `churn ingest` first (dvc repro ingest)")
        quoted = str(source).replace("'", "''")
        con.execute(f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM read_parquet('{quoted}')")
        label = str(source)
    else:
        con.register(f"{name}_input", source)
        con.execute(f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM {name}_input")
        label = f"{name} table"
    types = {row[0]: row[1] for row in con.sql(f"DESCRIBE {name}").fetchall()}
    check_contract(label, name, types, DUCKDB_TYPES)


def _span(con: duckdb.DuckDBPyConnection, churn: ChurnParams) -> tuple[date, date]:
    """Return (first transaction date, as-of date) of the opened inputs, logged."""
    first_date, last_date, rows = _date_range(con)
    as_of = resolve_as_of(churn, first_date, last_date)
    log.info("transactions: %d rows from %s to %s; as_of %s", rows, first_date, last_date, as_of)
    return first_date, as_of


def _date_range(con: duckdb.DuckDBPyConnection) -> tuple[date, date, int]:
    first, last, rows = con.sql(
        "SELECT MIN(date), MAX(date), COUNT(*) FROM transactions"
    ).fetchall()[0]
    if rows == 0 or first is None:
        raise ChurnError("transactions: no rows; the features stage needs clean transactions")
    return first, last, rows


def _check_unique_customers(con: duckdb.DuckDBPyConnection) -> None:
    found = con.sql(DUPLICATE_CUSTOMERS_SQL).fetchall()
    check_unique_customers(tuple(found[0]) if found else None)


def _fetch(con: duckdb.DuckDBPyConnection, sql: str) -> pd.DataFrame:
    table = con.sql(sql).to_arrow_table()
    return table.to_pandas(split_blocks=True, self_destruct=True)


def _cutoff_table(plan: list[Cutoff]) -> pa.Table:
    return pa.table(
        {
            c.CUTOFF: pa.array([item.cutoff for item in plan], pa.date32()),
            "cutoff_day": pa.array([day_number(item.cutoff) for item in plan], pa.int32()),
            c.ROLE: pa.array([item.role for item in plan], pa.string()),
        }
    )


def open_inputs(
    transactions: TableSource,
    customers: TableSource,
    nps: TableSource,
    con: duckdb.DuckDBPyConnection,
) -> duckdb.DuckDBPyConnection:
    """Return the connection with the three input tables registered and checked."""
    register_table(con, "transactions", transactions)
    register_table(con, "customers", customers)
    register_table(con, "nps", nps)
    _check_unique_customers(con)
    return con


def compute_snapshots(
    con: duckdb.DuckDBPyConnection,
    cutoffs: list[Cutoff],
    churn: ChurnParams,
    params: FeaturesParams,
    labelled: bool,
) -> pd.DataFrame:
    """Return one row per eligible (customer, cutoff) for the given cutoffs, in one query.

    One cutoff without labels runs as a plain filtered scan; otherwise all cutoffs are computed
    in one pass over each customer's timeline (churn.features.sql), never rescanned per cutoff.
    """
    frame = _fetch(con, _snapshot_query(con, cutoffs, churn, params, labelled))
    if params.bgnbd:
        _check_sql_columns(frame, params, labelled)
        frame = add_bgnbd_features(frame, churn.horizon_days)
    return normalize_snapshot(frame, params, labelled=labelled)


def _snapshot_query(
    con: duckdb.DuckDBPyConnection,
    cutoffs: list[Cutoff],
    churn: ChurnParams,
    params: FeaturesParams,
    labelled: bool,
) -> str:
    """Return the feature SQL for the cutoffs (registering the cutoffs table it joins)."""
    newest = max(item.cutoff for item in cutoffs)
    if len(cutoffs) == 1 and not labelled:
        single = (cutoffs[0].cutoff, cutoffs[0].role)
        return snapshot_sql(churn, params, newest, with_labels=False, single_cutoff=single)
    con.register("cutoffs", _cutoff_table(sorted(cutoffs, key=lambda item: item.cutoff)))
    return snapshot_sql(churn, params, newest, with_labels=labelled)


def _summary_query(
    con: duckdb.DuckDBPyConnection,
    cutoffs: list[Cutoff],
    churn: ChurnParams,
    params: FeaturesParams,
) -> str:
    """Return the summary-only SQL (SUMMARY_COLUMNS of _snapshot_query's unlabelled rows) for the
    cutoffs, registering the cutoffs table it joins when there are several."""
    newest = max(item.cutoff for item in cutoffs)
    if len(cutoffs) == 1:
        return summary_sql(
            churn, params, newest, single_cutoff=(cutoffs[0].cutoff, cutoffs[0].role)
        )
    con.register("cutoffs", _cutoff_table(sorted(cutoffs, key=lambda item: item.cutoff)))
    return summary_sql(churn, params, newest)


def _check_sql_columns(frame: pd.DataFrame, params: FeaturesParams, labelled: bool) -> None:
    keys = snapshot_columns(params, labelled)[: 4 if labelled else 3]
    expected = keys + [feature.name for feature in sql_feature_list(params)]
    if list(frame.columns) != expected:
        raise AssertionError(f"feature SQL returned {list(frame.columns)}, expected {expected}")


def build_snapshots(
    transactions: TableSource,
    customers: TableSource,
    nps: TableSource,
    churn: ChurnParams,
    params: FeaturesParams,
    engine: EngineParams,
    con: duckdb.DuckDBPyConnection | None = None,
    with_train: bool = True,
) -> Snapshots:
    """Return labelled training snapshots at every planned cutoff and the as-of snapshot."""
    # the query, its result turned into pandas frames and the frames' clean-up all run inside
    with resource_errors(engine, "features"):
        con = open_inputs(transactions, customers, nps, con or open_duckdb(engine, ordered=False))
        return _snapshots(con, churn, params, with_train)


def _snapshots(
    con: duckdb.DuckDBPyConnection, churn: ChurnParams, params: FeaturesParams, with_train: bool
) -> Snapshots:
    first_date, as_of = _span(con, churn)
    return assemble_snapshots(compute_snapshots, con, first_date, as_of, churn, params, with_train)


def assemble_snapshots(
    compute: Callable[[Any, list[Cutoff], ChurnParams, FeaturesParams, bool], pd.DataFrame],
    source: Any,
    first_date: date,
    as_of: date,
    churn: ChurnParams,
    params: FeaturesParams,
    with_train: bool,
    engine_note: str = "",
) -> Snapshots:
    """Return the Snapshots of one engine: `compute(source, cutoffs, churn, params, labelled)` is
    its compute_snapshots (DuckDB connection here, SparkSession in churn.spark.features); the plan,
    roles and dropped features are decided here once for both engines."""
    cutoffs: list[Cutoff] = []
    plan: TrainingPlan | None = None
    train = normalize_snapshot(pd.DataFrame(), params, labelled=True)
    if with_train:
        plan = plan_training(first_date, as_of, churn, params)
        cutoffs = plan.cutoffs
        train = compute(source, cutoffs, churn, params, True)
        train = assign_customer_roles(train, plan)
        log_training_snapshots(len(train), plan, engine_note)
    score = compute(source, [Cutoff(as_of, SCORE, None)], churn, params, False)
    log.info("as-of snapshot %s: %d eligible customers%s", as_of, len(score), engine_note)
    dropped = uncovered_features(params, plan) if plan else ()
    if dropped:
        # the scored snapshot never sees longer histories than the training cutoffs did
        train = train.drop(columns=list(dropped))
        score = score.drop(columns=list(dropped))
    return Snapshots(train, score, cutoffs, as_of, first_date, plan, dropped)


def log_training_snapshots(rows: int, plan: TrainingPlan, engine_note: str = "") -> None:
    """Log the training snapshots' size and plan (engine_note: e.g. " (Spark)")."""
    log.info(
        "training snapshots: %d rows over %d cutoffs (%s); evaluation %s, calibration on %s%s",
        rows,
        len(plan.cutoffs),
        ", ".join(f"{item.cutoff} {item.role}" for item in plan.cutoffs),
        plan.evaluation,
        plan.calibration,
        engine_note,
    )


# --------------------------------------------------------------------------- streamed to Parquet
STREAM_ROWS = 1 << 20  # rows per written row group: pyarrow's default, so the files are the same


def write_snapshots(
    transactions: TableSource,
    customers: TableSource,
    nps: TableSource,
    churn: ChurnParams,
    params: FeaturesParams,
    engine: EngineParams,
    train_path: Path,
    score_path: Path,
    chunk_rows: int | None = None,
) -> dict[str, Any]:
    """Write the training and as-of snapshots to Parquet and return the features report.

    The same rows, columns and dtypes as build_snapshots + write_parquet, without holding a
    snapshot in memory: DuckDB writes both queries' results to spill files (spilling beyond
    engine.memory_limit) and is closed before Python reads them, so the engine's memory and the
    batches' never add up; each result is then read, given its roles and written in batches of
    STREAM_ROWS rows. BG/NBD features (features.bgnbd), fitted per cutoff on all of its rows, are
    fitted in one pass over both results' small (x, t_x, T) columns first (all cutoffs in one
    pool) and computed per batch while it is written (BGNBDFits).

    Customers are cut into ranges of ids holding about `chunk_rows` transactions (default:
    chunk_transactions(engine); _customer_ranges), and both queries run once per range: every feature of a
    customer comes from their own rows, so a range's rows are exactly those customers' rows of
    the whole query, and each range's query fits in engine.memory_limit instead of spilling
    (at 10M generated transactions the whole training query already spilled 1.2 GB beyond the
    default 2GB; benchmarks/results/features_50M_session12.md). The ranges' results are read
    back as one, in the query's order (_ChunkedResult).
    """
    with resource_errors(engine, "features"):
        con = open_inputs(transactions, customers, nps, open_duckdb(engine, ordered=False))
        try:
            limit = chunk_transactions(engine) if chunk_rows is None else chunk_rows
            return _write_snapshots(con, churn, params, train_path, score_path, limit)
        finally:
            con.close()


def _write_snapshots(
    con: duckdb.DuckDBPyConnection,
    churn: ChurnParams,
    params: FeaturesParams,
    train_path: Path,
    score_path: Path,
    chunk_rows: int,
) -> dict[str, Any]:
    first_date, as_of = _span(con, churn)
    plan = plan_training(first_date, as_of, churn, params)
    dropped = uncovered_features(params, plan)
    names = [f.name for f in feature_list(params) if f.name not in dropped]
    spill = spill_folder()
    spill.mkdir(parents=True, exist_ok=True)
    stem = f"snapshot-{os.getpid()}-{uuid.uuid4().hex}"
    train_results: list[Path] = []
    score_results: list[Path] = []
    try:
        ranges = _customer_ranges(con, chunk_rows)
        score_cutoff = [Cutoff(as_of, SCORE, None)]
        for index, bounds in enumerate(ranges):
            if len(ranges) > 1:
                _restrict_customers(con, bounds)
                log.info("customers %d/%d: ids %s to %s", index + 1, len(ranges), *bounds)
            train_results.append(spill / f"{stem}-train-{index}.parquet")
            score_results.append(spill / f"{stem}-score-{index}.parquet")
            train_sql = _snapshot_query(con, plan.cutoffs, churn, params, True)
            # ranges' results are read side by side: small row groups, so each open file holds
            # little (a reader keeps its row group's column chunks)
            group_rows = RANGE_GROUP_ROWS if len(ranges) > 1 else None
            _copy_result(con, train_sql, train_results[-1], group_rows)
            score_sql = _snapshot_query(con, score_cutoff, churn, params, False)
            _copy_result(con, score_sql, score_results[-1], group_rows)
        con.close()  # DuckDB's memory is released before Python reads the batches
        # the training cutoffs' and the as-of fits in one pool: the as-of fit no longer runs
        # alone on one core after the training snapshot is written
        fits = None
        if params.bgnbd:
            fits = _fit_bgnbd(train_results + score_results, churn.horizon_days)
        train = _SnapshotStats(names, plan.cutoffs)
        _write_batches(
            train_results, params, True, lambda f: assign_customer_roles(f, plan),
            dropped, train_path, train, fits,
        )  # fmt: skip
        log_training_snapshots(train.rows, plan)
        score = _SnapshotStats(names, [])
        _write_batches(score_results, params, False, lambda f: f, dropped, score_path, score, fits)
        log.info("as-of snapshot %s: %d eligible customers", as_of, score.rows)
        if fits is not None:
            fits.warn()
    finally:
        for result in train_results + score_results:
            result.unlink(missing_ok=True)
    return features_report(as_of, first_date, churn, plan, dropped, train, score)


# transactions per range of customers whose snapshots are computed in one query, per GB of
# engine.memory_limit: measured on the generated data (benchmarks/results/features_50M_session12.md)
CHUNK_TRANSACTIONS_PER_GB = 1_500_000


def chunk_transactions(engine: EngineParams) -> int:
    """Return the most transactions whose customers' snapshots are computed in one query."""
    return max(1, int(CHUNK_TRANSACTIONS_PER_GB * memory_limit_bytes(engine) / 1e9))


def _customer_ranges(
    con: duckdb.DuckDBPyConnection, chunk_rows: int
) -> list[tuple[str | None, str | None]]:
    """Return ranges [first id, next range's first id) of customer ids, in id order: a range
    starts at each customer whose transactions (counted in id order) start at or past the next
    multiple of `chunk_rows`, so a range holds at most `chunk_rows` transactions plus its last
    customer's; [(None, None)] when there is one range.

    Bounds compare as DuckDB compares VARCHARs (bytes), the order of the query's ORDER BY."""
    first_ids = [
        row[0]
        for row in con.sql(
            f"""
            SELECT MIN(customer_id) AS first_id FROM (
              SELECT customer_id, SUM(n) OVER (ORDER BY customer_id) - n AS before
              FROM (
                SELECT customer_id, COUNT(*) AS n FROM transactions
                WHERE customer_id IS NOT NULL GROUP BY customer_id
              )
            ) GROUP BY before // {int(chunk_rows)} ORDER BY first_id
            """
        ).fetchall()
    ]
    if len(first_ids) <= 1:
        return [(None, None)]
    return list(zip([None, *first_ids[1:]], [*first_ids[1:], None], strict=True))


def _restrict_customers(
    con: duckdb.DuckDBPyConnection, bounds: tuple[str | None, str | None]
) -> None:
    """Point the views `transactions`, `customers` and `nps` at the customers in `bounds`
    (their whole tables stay as `<name>_whole`); a null id is in the last range, where the
    query's ORDER BY puts it (ingest quarantines such rows)."""
    lower, upper = (
        None if bound is None else "'" + bound.replace("'", "''") + "'" for bound in bounds
    )
    if lower is None:
        where = f"customer_id < {upper}"
    elif upper is None:
        where = f"customer_id >= {lower} OR customer_id IS NULL"
    else:
        where = f"customer_id >= {lower} AND customer_id < {upper}"
    for name in ("transactions", "customers", "nps"):
        existing = {row[0] for row in con.sql("SELECT view_name FROM duckdb_views()").fetchall()}
        if f"{name}_whole" not in existing:
            con.execute(f"ALTER VIEW {name} RENAME TO {name}_whole")
        con.execute(f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM {name}_whole WHERE {where}")


def features_report(
    as_of: date,
    first_date: date,
    churn: ChurnParams,
    plan: TrainingPlan,
    dropped: tuple[str, ...],
    train: _SnapshotStats,
    score: _SnapshotStats,
) -> dict[str, Any]:
    """The features report of two written snapshots: one layout for the DuckDB and Spark engines."""
    return {
        "as_of": as_of.isoformat(),
        "first_date": first_date.isoformat(),
        "horizon_days": churn.horizon_days,
        "plan": plan.describe(),
        "dropped_features": list(dropped),
        "cutoffs": train.per_cutoff(),
        "train_rows": train.rows,
        "score_rows": score.rows,
        "null_rates": {"train": train.null_rates(), "score": score.null_rates()},
    }


PARTIAL_COLUMNS = ("kind", "cutoff", "role", "name", "n")


class _SnapshotStats:
    """The features report's counts, accumulated over the batches of a written snapshot."""

    def __init__(self, names: list[str], cutoffs: list[Cutoff]) -> None:
        self.names, self.cutoffs, self.rows = names, cutoffs, 0
        self.nulls = dict.fromkeys(names, 0)
        self.roles: dict[date, dict[str, int]] = {item.cutoff: {} for item in cutoffs}
        self.churners: dict[date, int] = {item.cutoff: 0 for item in cutoffs}
        self.counts: dict[date, int] = {item.cutoff: 0 for item in cutoffs}

    def clear(self) -> None:
        """Forget every batch added (the snapshot is written again)."""
        self.__init__(self.names, self.cutoffs)  # type: ignore[misc]

    def add(self, frame: pd.DataFrame) -> None:
        self.rows += len(frame)
        for name in self.names:
            self.nulls[name] += int(frame[name].isna().sum())
        if not self.cutoffs or frame.empty:
            return
        roles = frame[c.ROLE].astype("string")
        for cutoff, positions in cutoff_positions(frame).items():
            if cutoff not in self.counts:
                continue
            part = frame[c.CHURNED].iloc[positions]
            for role, labels in part.groupby(roles.iloc[positions], sort=False):
                self.counts[cutoff] += len(labels)
                self.churners[cutoff] += int(labels.sum())
                self.roles[cutoff][role] = self.roles[cutoff].get(role, 0) + len(labels)

    def partial_counts(self) -> pd.DataFrame:
        """Return the counts added so far as rows (kind, cutoff, role, name, n):
        partial sums that merge_counts adds up, so a table's counts can be summed over parts
        counted apart (the Spark features stage's tasks, churn.spark.sample)."""
        rows: list[tuple[Any, ...]] = [("rows", None, None, None, self.rows)]
        rows += [("nulls", None, None, name, n) for name, n in self.nulls.items()]
        for cutoff, roles in self.roles.items():
            rows += [("role", cutoff, role, None, n) for role, n in roles.items()]
            rows.append(("churners", cutoff, None, None, self.churners[cutoff]))
        return pd.DataFrame(rows, columns=list(PARTIAL_COLUMNS))

    def merge_counts(self, partials: pd.DataFrame) -> None:
        """Add partial_counts rows (of any number of parts, summed or not) to these counts."""
        for kind, cutoff, role, name, n in partials[list(PARTIAL_COLUMNS)].itertuples(index=False):
            n = int(n)
            if kind == "rows":
                self.rows += n
            elif kind == "nulls":
                self.nulls[name] += n
            elif kind == "churners":
                self.churners[cutoff] += n
            elif kind == "role":
                self.counts[cutoff] += n
                self.roles[cutoff][role] = self.roles[cutoff].get(role, 0) + n

    def per_cutoff(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for item in self.cutoffs:
            n = self.counts[item.cutoff]
            out[item.cutoff.isoformat()] = {
                "role": item.role,
                "rows_by_role": dict(sorted(self.roles[item.cutoff].items())),
                "label_end": item.label_end.isoformat() if item.label_end else None,
                "rows": n,
                "churn_rate": round(float(self.churners[item.cutoff] / n), 6) if n else None,
            }
        return out

    def null_rates(self) -> dict[str, float]:
        if not self.rows:
            return {name: 0.0 for name in self.names}
        return {name: round(float(self.nulls[name] / self.rows), 6) for name in self.names}


def _copy_result(
    con: duckdb.DuckDBPyConnection, sql: str, result: Path, group_rows: int | None = None
) -> None:
    quoted = str(result).replace("'", "''")
    # a spill file read back at once by this process: LZ4 (about the size of DuckDB's default
    # Snappy) because pyarrow decodes it ~5x faster (0.7 instead of 3.5 CPU s for the training
    # result at 10M transactions) for ~0.7 CPU s more in DuckDB's write
    groups = "" if group_rows is None else f", ROW_GROUP_SIZE {int(group_rows)}"
    con.execute(f"COPY ({sql}) TO '{quoted}' (FORMAT parquet, COMPRESSION lz4_raw{groups})")


def _fit_bgnbd(results: list[Path], horizon_days: int) -> BGNBDFits:
    """Return the per-cutoff BG/NBD fits of snapshot results (distinct cutoffs), read in one
    pass over their (customer_id, cutoff, core features) columns: the same fits as on each
    whole snapshot. A fit whose features fail on some row is dropped while the batches are
    written (`_write_batches`), not in a pass of its own: the features are computed once."""
    fits = BGNBDFits(horizon_days)
    for result in results:
        with open_parquet_file(result) as source:
            for batch in source.iter_batches(batch_size=STREAM_ROWS, columns=SUMMARY_COLUMNS):
                fits.add_fit_rows(batch.to_pandas())
    fits.fit()
    return fits


READ_ROWS = 1 << 16  # rows per batch read from the ranges' results together, while interleaved
RANGE_GROUP_ROWS = 1 << 14  # rows per row group of a range's result (_copy_result)


class _ChunkedResult:
    """The results of one query run per range of customers (in id order), read as the one
    result of the whole query: rows ordered by cutoff, then customer id.

    Each range's result is in that order, and every id of a range precedes the next range's,
    so the whole result is, per cutoff, each range's rows of that cutoff in range order: the
    files are read side by side, one batch of READ_ROWS rows held per file."""

    def __init__(self, results: list[Path]) -> None:
        self.files = [open_parquet_file(result) for result in results]

    def integer_columns_with_nulls(self) -> list[str]:
        found = {name for source in self.files for name in _integer_columns_with_nulls(source)}
        return sorted(found)

    def iter_tables(self, rows: int) -> Iterator[pa.Table]:
        """Yield the whole result in tables of `rows` rows (the last one: the rest)."""
        if len(self.files) == 1:
            for batch in self.files[0].iter_batches(batch_size=rows):
                yield pa.Table.from_batches([batch])
            return
        counts = [_cutoff_counts(source) for source in self.files]
        n = len(self.files)
        readers = [
            # the files are read side by side: READ_ROWS rows between them, not per file
            _BatchRows(source.iter_batches(batch_size=min(rows, max(1024, READ_ROWS // n))))
            for source in self.files
        ]
        pending: list[pa.RecordBatch] = []
        held = 0
        for cutoff in sorted(set().union(*counts)):
            for reader, count in zip(readers, counts, strict=True):
                for batch in reader.take(count.get(cutoff, 0)):
                    pending.append(batch)
                    held += batch.num_rows
                    if held >= rows:
                        table = pa.Table.from_batches(pending)
                        # one chunk per column, as a batch of one file: pyarrow-backed string
                        # columns keep their chunks through pandas, and the written pages with them
                        yield table.slice(0, rows).combine_chunks()
                        rest = table.slice(rows)
                        del table
                        pending, held = rest.to_batches(), rest.num_rows
        if held:
            yield pa.Table.from_batches(pending).combine_chunks()

    def close(self) -> None:
        for source in self.files:
            source.close()


def _cutoff_counts(source: pq.ParquetFile) -> dict[Any, int]:
    """Return cutoff -> rows of a query result (read from its cutoff column only)."""
    values = source.read(columns=[c.CUTOFF]).column(c.CUTOFF).to_numpy()
    cutoffs, counts = np.unique(values, return_counts=True)
    return dict(zip(cutoffs.tolist(), counts.tolist(), strict=True))


class _BatchRows:
    """Rows taken from a stream of record batches in order, any number at a time."""

    def __init__(self, batches: Iterator[pa.RecordBatch]) -> None:
        self.batches = batches
        self.current: pa.RecordBatch | None = None
        self.offset = 0

    def take(self, rows: int) -> list[pa.RecordBatch]:
        taken = []
        while rows > 0:
            if self.current is None or self.offset == self.current.num_rows:
                self.current, self.offset = next(self.batches), 0
            piece = self.current.slice(self.offset, rows)
            taken.append(piece)
            self.offset += piece.num_rows
            rows -= piece.num_rows
        return taken


def _write_batches(
    results: list[Path],
    params: FeaturesParams,
    labelled: bool,
    transform: Callable[[pd.DataFrame], pd.DataFrame],
    dropped: tuple[str, ...],
    path: Path,
    stats: _SnapshotStats,
    fits: BGNBDFits | None,
) -> None:
    """Write the query result in `results` (one file per range of customers, _ChunkedResult)
    to `path` in batches: dtypes, BG/NBD (`fits`, with params.bgnbd), roles, stats."""
    source = _ChunkedResult(results)
    # pandas turns an integer column with a null into float64: widen the same columns in
    # every batch as in the whole result, so every batch has the in-memory path's dtypes
    widen = source.integer_columns_with_nulls()
    while True:
        try:
            _write_pass(source, params, labelled, transform, dropped, path, stats, fits, widen)
            break
        except CutoffFailed:
            # a cutoff's features failed on a row: its fit is dropped (null at that cutoff on
            # every row, as in memory) and the snapshot is written again from the first batch
            stats.clear()
    source.close()
    release_memory()


def _write_pass(
    source: _ChunkedResult,
    params: FeaturesParams,
    labelled: bool,
    transform: Callable[[pd.DataFrame], pd.DataFrame],
    dropped: tuple[str, ...],
    path: Path,
    stats: _SnapshotStats,
    fits: BGNBDFits | None,
    widen: list[str],
) -> None:
    """Write every batch of the result once (CutoffFailed: start again, nothing is kept).

    Parquet encoding and zstd run in one background thread (pyarrow releases the GIL there)
    while the next batch is read and converted: the same writes, in the same order."""
    pending: list[pa.Table] = []
    with atomic_path(path) as tmp, ThreadPoolExecutor(1) as background:
        writer: pq.ParquetWriter | None = None
        writing: Future[list[pa.Table]] | None = None
        try:
            for table in source.iter_tables(STREAM_ROWS):
                for name in widen:
                    index = table.schema.get_field_index(name)
                    table = table.set_column(index, name, table[name].cast(pa.float64()))
                frame = table.to_pandas(split_blocks=True, self_destruct=True)
                del table
                if fits is not None:
                    _check_sql_columns(frame, params, labelled)
                    frame = fits.add_columns(frame)
                frame = normalize_snapshot(frame, params, labelled)
                frame = transform(frame).drop(columns=list(dropped))
                stats.add(frame)
                out = pa.Table.from_pandas(frame, preserve_index=False)
                del frame
                writer = writer or pq.ParquetWriter(tmp, out.schema, compression="zstd")
                if writing is not None:
                    pending = writing.result()
                pending.append(out)
                writing = background.submit(_flush, writer, pending, False)
            if writing is not None:
                pending, writing = writing.result(), None
        except BaseException:
            if writing is not None:  # let the background write end before the file goes
                writing.exception()
            if writer is not None:
                writer.close()
            raise
        if writer is None:  # no rows: the empty frame of the documented columns
            empty = normalize_snapshot(pd.DataFrame(), params, labelled)
            empty = empty.drop(columns=list(dropped))
            pq.write_table(
                pa.Table.from_pandas(empty, preserve_index=False), tmp, compression="zstd"
            )
        else:
            _flush(writer, pending, final=True)
            writer.close()


def _integer_columns_with_nulls(source: pq.ParquetFile) -> list[str]:
    meta = source.metadata
    out = []
    for index, field in enumerate(source.schema_arrow):
        if not pa.types.is_integer(field.type):
            continue
        for group in range(meta.num_row_groups):
            stats = meta.row_group(group).column(index).statistics
            if stats is None or not stats.has_null_count or stats.null_count > 0:
                out.append(field.name)
                break
    return out


def _flush(writer: pq.ParquetWriter, pending: list[pa.Table], final: bool) -> list[pa.Table]:
    """Write whole STREAM_ROWS row groups of the pending rows (all of them when final)."""
    rows = sum(len(t) for t in pending)
    if not pending or (rows < STREAM_ROWS and not final):
        return pending
    table = pa.concat_tables(pending)
    whole = len(table) if final else len(table) - len(table) % STREAM_ROWS
    writer.write_table(table.slice(0, whole), row_group_size=STREAM_ROWS)
    rest = table.slice(whole)
    return [rest] if len(rest) else []


def uncovered_features(params: FeaturesParams, plan: TrainingPlan) -> tuple[str, ...]:
    """Return the features whose windows are longer than the history at the earliest cutoff."""
    names = [
        f.name for f in window_features(tuple(w for w in params.windows if w not in plan.windows))
    ]
    if not plan.trend:
        names += [f.name for f in sql_feature_list(params) if f.group == "trend"]
    return tuple(names)


def snapshot_columns(params: FeaturesParams, labelled: bool) -> list[str]:
    """Return the snapshot column order: keys, role, label (training only), then features."""
    keys = [c.CUSTOMER_ID, c.CUTOFF, c.ROLE] + ([c.CHURNED] if labelled else [])
    return keys + [feature.name for feature in feature_list(params)]


def normalize_snapshot(frame: pd.DataFrame, params: FeaturesParams, labelled: bool) -> pd.DataFrame:
    """Return the frame with the documented column order and dtypes (strings as string dtype)."""
    expected = snapshot_columns(params, labelled)
    if len(frame.columns) and list(frame.columns) != expected:
        raise AssertionError(f"feature SQL returned {list(frame.columns)}, expected {expected}")
    if not len(frame.columns):  # nothing was computed (e.g. no training cutoffs asked for)
        frame = pd.DataFrame(
            {name: pd.Series(dtype=_empty_dtype(name, params)) for name in expected}
        )
    strings = [c.CUSTOMER_ID, c.ROLE] + [f.name for f in feature_list(params) if f.categorical]
    return frame.astype({name: "string" for name in strings})


def _empty_dtype(name: str, params: FeaturesParams) -> Any:
    if name == c.CUTOFF:
        return "object"
    if name == c.CHURNED:
        return "int8"
    categorical = {f.name for f in feature_list(params) if f.categorical}
    return "string" if name in categorical or name in (c.CUSTOMER_ID, c.ROLE) else "float64"


def summarize_snapshots(
    snapshots: Snapshots, churn: ChurnParams, params: FeaturesParams
) -> dict[str, Any]:
    """Return the features report: rows, churn rate and role per cutoff, feature null rates."""
    train = snapshots.train
    per_cutoff: dict[str, Any] = {}
    for item in snapshots.cutoffs:
        rows = train[train[c.CUTOFF] == item.cutoff]
        roles = rows[c.ROLE].astype("string").value_counts().sort_index()
        per_cutoff[item.cutoff.isoformat()] = {
            "role": item.role,
            "rows_by_role": {str(role): int(count) for role, count in roles.items()},
            "label_end": item.label_end.isoformat() if item.label_end else None,
            "rows": len(rows),
            "churn_rate": round(float(rows[c.CHURNED].mean()), 6) if len(rows) else None,
        }
    names = [feature.name for feature in feature_list(params)]

    def null_rates(frame: pd.DataFrame) -> dict[str, float]:
        if frame.empty:
            return {name: 0.0 for name in names}
        return {name: round(float(frame[name].isna().mean()), 6) for name in names}

    names = [name for name in names if name not in snapshots.dropped]
    return {
        "as_of": snapshots.as_of.isoformat(),
        "first_date": snapshots.first_date.isoformat(),
        "horizon_days": churn.horizon_days,
        "plan": snapshots.plan.describe() if snapshots.plan else None,
        "dropped_features": list(snapshots.dropped),
        "cutoffs": per_cutoff,
        "train_rows": len(train),
        "score_rows": len(snapshots.score),
        "null_rates": {"train": null_rates(train), "score": null_rates(snapshots.score)},
    }


# --------------------------------------------------------------------------- some customers
def compute_customer_snapshots(
    con: duckdb.DuckDBPyConnection,
    transactions: Path,
    cutoffs: list[Cutoff],
    churn: ChurnParams,
    params: FeaturesParams,
    customer_ids: pa.Array,
) -> pd.DataFrame:
    """Return compute_snapshots' unlabelled rows (`labelled=False`) of the customers in
    `customer_ids` only, without ever holding every customer's row.

    Every feature of a customer comes from their own rows, so the feature SQL runs on their
    transactions alone, except the BG/NBD columns (features.bgnbd): each cutoff's fit takes every
    customer's (x, t_x, T). Those columns come from BGNBDFits over the summary columns of all
    customers, which DuckDB writes to a spill file (the summary-only SQL, churn.features.sql.
    summary_sql: no window features) and Python reads in batches. The connection
    must have the three inputs open (open_inputs) with `transactions` as the transactions file;
    its `transactions` view is left restricted to the chosen customers."""
    fits = None
    summary = spill_folder() / f"summary-{os.getpid()}-{uuid.uuid4().hex}.parquet"
    try:
        if params.bgnbd:
            summary.parent.mkdir(parents=True, exist_ok=True)
            _copy_result(con, _summary_query(con, cutoffs, churn, params), summary)
            fits = _fit_bgnbd([summary], churn.horizon_days)
            # a cutoff whose features fail on any customer's row is null for the chosen ones too
            # (the features stage finds it while writing; here only the chosen rows are written)
            with open_parquet_file(summary) as source:
                for batch in source.iter_batches(batch_size=STREAM_ROWS):
                    fits.check_rows(batch.to_pandas())
            fits.warn()
        con.register("chosen_customers", pa.table({c.CUSTOMER_ID: customer_ids.cast(pa.string())}))
        quoted = str(transactions).replace("'", "''")
        con.execute(
            "CREATE OR REPLACE VIEW transactions AS SELECT t.* FROM read_parquet("
            f"'{quoted}') t SEMI JOIN chosen_customers k ON t.{c.CUSTOMER_ID} = k.{c.CUSTOMER_ID}"
        )
        frame = _fetch(con, _snapshot_query(con, cutoffs, churn, params, False))
    finally:
        summary.unlink(missing_ok=True)
    if fits is not None:
        _check_sql_columns(frame, params, False)
        frame = fits.add_columns(frame)
    return normalize_snapshot(frame, params, labelled=False)
