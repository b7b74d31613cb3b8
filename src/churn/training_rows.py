"""The training table's rows: which customers' rows the training readers read (the seeded
samples by stable id hash, one definition for DuckDB and Spark), reading them from the features
stage's Parquet file without holding the whole table, and the campaign-contacted rows the risk
model must not learn from. Shared by train, evaluate, promote, uplift and the Spark features stage,
which need these rows but not the training itself."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd

from churn.columns import CUSTOMER_ID, CUTOFF, ROLE
from churn.config import TrainParams
from churn.cutoffs import (
    CALIBRATION,
    FIT,
    GAP,
    TEST,
    check_training_sample,
    customer_share,
    cutoff_windows_overlap,
    labelled_by,
)
from churn.files import open_parquet_file

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa


def campaign_contacted_rows(
    snapshots: pd.DataFrame, contacted: pd.DataFrame, horizon_days: int
) -> np.ndarray:
    """Return True for each training row (customer, cutoff t) whose customer was in the treatment
    group of a list dated d whose contact window (d, d + list horizon] overlaps the row's label
    window (t, t + horizon_days]: a campaign may have changed that label, so the risk model must
    not learn from it (its control and never-listed rows stay)."""
    flags = np.zeros(len(snapshots), dtype=bool)
    if contacted.empty or snapshots.empty:
        return flags
    rows = pd.DataFrame(
        {
            CUSTOMER_ID: snapshots[CUSTOMER_ID].astype("string").to_numpy(),
            "cutoff": pd.to_datetime(snapshots[CUTOFF]).to_numpy(),
            "row": np.arange(len(snapshots)),
        }
    )
    lists = pd.DataFrame(
        {
            CUSTOMER_ID: contacted[CUSTOMER_ID].astype("string").to_numpy(),
            "list_date": pd.to_datetime(contacted["list_date"]).to_numpy(),
            "list_horizon": contacted["horizon_days"].astype("int64").to_numpy(),
        }
    )
    pairs = rows.merge(lists, on=CUSTOMER_ID, how="inner")
    overlap = cutoff_windows_overlap(
        pairs["cutoff"], horizon_days, pairs["list_date"], pairs["list_horizon"]
    )
    flags[pairs.loc[overlap.to_numpy(), "row"].to_numpy()] = True
    return flags


def exclude_campaign_contacts(
    snapshots: pd.DataFrame, contacted: pd.DataFrame | None, horizon_days: int
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Return the training rows without campaign-contacted ones, and what was left out (rows,
    customers, per role) for the model's metadata and the metrics report."""
    if contacted is None:
        return snapshots, {"campaign_table": False, "rows_excluded": 0}
    flags = campaign_contacted_rows(snapshots, contacted, horizon_days)
    excluded = snapshots.loc[flags]
    summary = {
        "campaign_table": True,
        "rows": int(len(snapshots)),
        "rows_excluded": int(flags.sum()),
        "customers_excluded": int(excluded[CUSTOMER_ID].nunique()),
        "rows_excluded_by_role": {
            str(k): int(v) for k, v in excluded[ROLE].value_counts().sort_index().items()
        }
        if ROLE in excluded.columns
        else {},
        "rule": "treatment-group rows whose label window overlaps the list's contact window",
    }
    return snapshots.loc[~flags].reset_index(drop=True), summary


def sample_customers(rows: pd.DataFrame, max_customers: int | None) -> pd.DataFrame:
    """Return the rows of at most `max_customers` customers, chosen by stable id hash.

    A chosen customer keeps every cutoff's row, the others none. The choice reads only
    customer_id (never a label or feature), so it is the same for any labels and row order, and
    each cutoff keeps about the same share of its customers (the hash is independent of the
    cutoff). All rows when `max_customers` is None or there are no more customers than that.
    """
    if max_customers is None:
        return rows
    chosen = sampled_ids(rows[CUSTOMER_ID], max_customers)
    if chosen is None:
        return rows
    kept = rows[rows[CUSTOMER_ID].astype("string").isin(chosen)]
    return kept.reset_index(drop=True)


def sampled_ids(
    customer_ids: pd.Series, max_customers: int, purpose: str = "train_sample"
) -> pd.Series | None:
    """Return the ids sample_customers keeps among `customer_ids`: the `max_customers` with the
    smallest stable hash for `purpose` (churn.cutoffs.HASH_KEYS) (None when there are no more
    customers than that: all are kept)."""
    ids = pd.Series(customer_ids.astype("string").unique()).sort_values(ignore_index=True)
    if len(ids) <= max_customers:
        return None
    order = pd.DataFrame({CUSTOMER_ID: ids, "share": customer_share(ids, purpose)})
    # the smallest hash values win; the id breaks (rare) ties, so the choice is total
    chosen = order.sort_values(["share", CUSTOMER_ID], kind="stable").head(max_customers)
    return chosen[CUSTOMER_ID].reset_index(drop=True)


HELD_OUT_ROLES = [CALIBRATION, TEST]  # the rows train.sample_held_out_customers thins
HELD_OUT_HASH = "held_out_sample"


def thin_held_out(snapshots: pd.DataFrame, max_customers: int | None) -> pd.DataFrame:
    """Return `snapshots` with the calibration and test rows of at most `max_customers` customers.

    The customers are those with the smallest stable hash (HELD_OUT_HASH, independent of the fit
    sample's) among the customers that have calibration or test rows: a chosen customer keeps
    all of its calibration and test rows, the others none; fit and gap rows are untouched. Only
    customer ids are read (never a label), so the sample is the same for any labels and row
    order. The same frame when `max_customers` is None or there are no more customers.
    """
    if max_customers is None:
        return snapshots
    held = snapshots[ROLE].astype("string").isin(HELD_OUT_ROLES).to_numpy(bool, na_value=False)
    chosen = sampled_ids(snapshots.loc[held, CUSTOMER_ID], max_customers, HELD_OUT_HASH)
    if chosen is None:
        return snapshots
    drop = held & ~snapshots[CUSTOMER_ID].astype("string").isin(chosen).to_numpy(bool)
    return snapshots[~drop].reset_index(drop=True)


TRAIN_HASH = "train_sample"
FIT_WHERE = f"{ROLE} = '{FIT}'"  # the fit sample's candidates: customers with a fit row
HELD_OUT_WHERE = f"{ROLE} IN ({', '.join(repr(role) for role in HELD_OUT_ROLES)})"
TRAIN_CAPS = ("train.sample_customers", "train.sample_held_out_customers")


class SnapshotIds(Protocol):
    """The distinct keys of a training table that the samples are chosen from: DuckDB on the
    written file (read_snapshots), or Spark on the features stage's frame (churn.spark.sample).
    `where` is SQL over customer_id, cutoff and role, the same text on both engines."""

    def pairs(self) -> pd.DataFrame:
        """Return the distinct (cutoff, role) of the table."""

    def count(self, where: str) -> int:
        """Return the number of distinct customers of the rows matching `where`."""

    def sample(
        self, where: str, max_customers: int, purpose: str, held: pd.Series | None = None
    ) -> pd.Series | None:
        """Return sampled_ids of the distinct customers of the rows matching `where`; with
        `held`, a calibration row counts only when its customer is in `held`."""


@dataclass(frozen=True)
class SnapshotSamples:
    """The customers whose rows read_snapshots reads: fit and gap rows of `fit` (None: every
    customer's), calibration and test rows of `held` (None: every customer's)."""

    fit: list[str] | None
    held: pd.Series | None
    customers_fit: int  # customers with fit rows (the fit sample's candidates)


def refit_where(pairs: pd.DataFrame, horizon_days: int | None) -> str | None:
    """Return the SQL condition of the production refit's rows (_production_model): fit,
    calibration and gap rows whose label window ends by the test cutoff, or None when no refit
    reads rows (no horizon given, no test cutoff, or no row labelled by it)."""
    tests = pd.to_datetime(pairs.loc[pairs[ROLE] == TEST, CUTOFF])
    if horizon_days is None or tests.empty:
        return None
    labelled = pairs[ROLE].isin([FIT, CALIBRATION, GAP]) & labelled_by(
        pairs[CUTOFF], horizon_days, tests.min()
    )
    terms = [
        f"({CUTOFF} = DATE '{pd.Timestamp(t).date()}' AND {ROLE} = '{r}')"
        for t, r in pairs.loc[labelled, [CUTOFF, ROLE]].itertuples(index=False)
    ]
    return " OR ".join(terms) if terms else None


def choose_snapshot_samples(
    ids: SnapshotIds,
    max_customers: int | None,
    horizon_days: int | None,
    held_out_customers: int | None,
) -> SnapshotSamples:
    """Return the samples fit_model draws, chosen from the ids alone: the one definition of
    which customers' rows the training readers read (read_snapshots on the file, the Spark
    features stage before it writes the file).

    Fit and gap rows: the customers sample_customers keeps for the evaluation model (among fit
    rows) and for the production refit (among the rows labelled by the test cutoff, a
    calibration row counting only for the held-out sample); calibration and test rows: the
    customers thin_held_out keeps (`held_out_customers`).
    """
    held = None
    if held_out_customers is not None:
        held = ids.sample(HELD_OUT_WHERE, held_out_customers, HELD_OUT_HASH)
    customers_fit = ids.count(FIT_WHERE)
    keep: list[pd.Series | None] = [None]
    if max_customers is not None:
        keep = [ids.sample(FIT_WHERE, max_customers, TRAIN_HASH)]
        where = refit_where(ids.pairs(), horizon_days)
        if where is not None:
            keep.append(ids.sample(where, max_customers, TRAIN_HASH, held))
    if any(chosen is None for chosen in keep):  # a population within the sample: every row
        return SnapshotSamples(None, held, customers_fit)
    return SnapshotSamples(sorted(set().union(*keep)), held, customers_fit)  # type: ignore[arg-type]


class DuckDBSnapshotIds:
    """SnapshotIds of a training snapshots Parquet file, read by DuckDB (three key columns)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, path: Path) -> None:
        self.con, self.path = con, path

    def pairs(self) -> pd.DataFrame:
        return select_distinct(self.con, self.path, f"{CUTOFF}, {ROLE}")

    def count(self, where: str) -> int:
        return len(select_distinct(self.con, self.path, CUSTOMER_ID, where))

    def sample(
        self, where: str, max_customers: int, purpose: str, held: pd.Series | None = None
    ) -> pd.Series | None:
        if held is None:
            rows = select_distinct(self.con, self.path, CUSTOMER_ID, where)
        else:
            rows = select_distinct(self.con, self.path, f"{CUSTOMER_ID}, {ROLE}", where)
            calibration = (rows[ROLE] == CALIBRATION).to_numpy(bool)
            rows = rows[~calibration | rows[CUSTOMER_ID].isin(held).to_numpy(bool)]
        # millions of ids at scale: only the chosen ones outlive this call
        return sampled_ids(rows[CUSTOMER_ID], max_customers, purpose)


def read_snapshots(
    path: str | Path,
    max_customers: int | None,
    horizon_days: int | None,
    held_out_customers: int | None = None,
) -> tuple[pd.DataFrame, int | None]:
    """Return the training snapshots a stage needs and the number of customers with fit rows.

    Fit and gap rows are read only for the customers sample_customers would keep for the
    evaluation model (among fit rows) or for the production refit (among the rows labelled by
    the test cutoff); calibration and test rows only for the customers thin_held_out keeps
    (`held_out_customers`; all when None): choose_snapshot_samples. The samples are chosen from
    the ids alone (DuckDB reads three columns), before any row is read into pandas, so memory
    follows the two caps, not the population. The frame equals thin_held_out of the whole file
    restricted to the samples, so fit_model gives exactly the model it gives on the whole file:
    each sample's candidates are a subset holding the whole sample. All rows when both caps are
    None; the count is None then (fit_model counts them). A file the Spark features stage wrote
    as the training sample (churn.spark.sample) gives the same frame, and the whole table's
    count; one drawn for smaller caps is refused (check_training_sample).
    """
    path = Path(path)
    written = check_training_sample(
        path, dict(zip(TRAIN_CAPS, (max_customers, held_out_customers), strict=True))
    )
    if max_customers is None and held_out_customers is None:
        return pd.read_parquet(path), None
    con = connect_snapshot_ids()
    try:
        samples = choose_snapshot_samples(
            DuckDBSnapshotIds(con, path), max_customers, horizon_days, held_out_customers
        )
    finally:
        con.close()
    customers_fit = samples.customers_fit if written is None else int(written["customers_fit"])
    held = samples.held
    if samples.fit is None and held is None:
        return pd.read_parquet(path), customers_fit
    frame = _read_customer_rows(path, samples.fit, None if held is None else sorted(held))
    return thin_held_out(frame, held_out_customers), customers_fit


def connect_snapshot_ids() -> duckdb.DuckDBPyConnection:
    """Return the small DuckDB connection the snapshot readers choose their ids with (one
    thread, 512 MB, UTC): it reads a few key columns, never the features."""
    from churn.config import EngineParams
    from churn.engine import open_duckdb

    return open_duckdb(EngineParams(threads=1, memory_limit="512MB"))


GLOB_CHARACTERS = frozenset("*?[]{}")  # DuckDB's read_parquet expands these in a path


def value_set(values: list[str], column_type: pa.DataType) -> pa.Array:
    """Return `values` as the value set pc.is_in takes against a column of `column_type` (a
    dictionary-encoded column matches against its values' type)."""
    import pyarrow as pa

    target = column_type.value_type if pa.types.is_dictionary(column_type) else column_type
    return pa.array(values, type=pa.string()).cast(target)


def select_distinct(
    con: duckdb.DuckDBPyConnection, path: Path, columns: str, where: str | None = None
) -> pd.DataFrame:
    """Return the distinct `columns` (SQL list) of the Parquet file's rows matching `where`
    (customer ids as pandas strings)."""
    if GLOB_CHARACTERS.intersection(str(path)):
        # read_parquet('...') would expand them (a sibling could match): this one file via Arrow
        import pyarrow.dataset as ds

        con.register("snapshot_file", ds.dataset(str(path), format="parquet"))
        rel = "snapshot_file"
    else:
        rel = f"read_parquet('{str(path).replace(chr(39), chr(39) * 2)}')"
    condition = "" if where is None else f" WHERE {where}"
    frame = con.sql(f"SELECT DISTINCT {columns} FROM {rel}{condition}").df()
    if CUSTOMER_ID in frame.columns:
        frame[CUSTOMER_ID] = frame[CUSTOMER_ID].astype("string")
    return frame


def read_snapshot_rows(
    path: Path,
    key_columns: list[str],
    keep: Callable[[pa.Table], pa.Array | pa.ChunkedArray],
    columns: list[str] | None = None,
) -> pd.DataFrame:
    """Return the rows of `path`, in file order, for which `keep` is true, with `columns` (in the
    order given; all when None), as the same frame a filtered pq.read_table(...).to_pandas() of
    those rows and columns gives. `keep` gets one row group's `key_columns` and returns a
    boolean mask (null: not kept).

    One row group and one column at a time: the key columns give the row mask, then each column
    is read, filtered and kept, so beside the kept rows only one column chunk is in memory (a
    filtered pq.read_table holds whole row groups, and pandas then copies the result: 3.5 GB
    peak for 0.6 GB of rows at 50M). The Arrow buffers are released as pandas takes them.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    source = open_parquet_file(path)
    schema = source.schema_arrow
    if columns is not None:
        schema = pa.schema([schema.field(name) for name in columns], metadata=schema.metadata)
    parts = []
    for group in range(source.num_row_groups):
        keys = source.read_row_group(group, columns=key_columns, use_threads=False)
        mask = pc.fill_null(keep(keys), False)
        del keys
        arrays = [
            source.read_row_group(group, columns=[name], use_threads=False).column(0).filter(mask)
            for name in schema.names
        ]
        parts.append(pa.Table.from_arrays(arrays, schema=schema))
    table = pa.concat_tables(parts) if parts else schema.empty_table()
    del parts
    return table.to_pandas(self_destruct=True, split_blocks=True)


def _read_customer_rows(
    path: Path, fit_ids: list[str] | None, held_ids: list[str] | None
) -> pd.DataFrame:
    """Return the rows of `path`, in file order, whose role is fit or gap and whose customer is
    in `fit_ids`, or any other role and customer in `held_ids` (None: every customer)."""
    import pyarrow.compute as pc

    schema = open_parquet_file(path).schema_arrow
    id_type = schema.field(CUSTOMER_ID).type

    def members(ids: list[str] | None) -> pa.Array | None:
        return None if ids is None else value_set(ids, id_type)

    fit_set, held_set = members(fit_ids), members(held_ids)
    fit_roles = value_set([FIT, GAP], schema.field(ROLE).type)

    def keep(keys: pa.Table) -> pa.ChunkedArray:
        ids, fit_or_gap = keys.column(CUSTOMER_ID), pc.is_in(keys.column(ROLE), fit_roles)
        fit_keep = fit_or_gap if fit_set is None else pc.and_(fit_or_gap, pc.is_in(ids, fit_set))
        other = pc.invert(fit_or_gap)
        other_keep = other if held_set is None else pc.and_(other, pc.is_in(ids, held_set))
        return pc.or_(fit_keep, other_keep)

    return read_snapshot_rows(path, [CUSTOMER_ID, ROLE], keep)


def read_training_snapshots(
    path: Path, train: TrainParams, horizon_days: int | None = None
) -> tuple[pd.DataFrame, Any]:
    """Read the training snapshots at `path` with fit and gap rows thinned to
    train.sample_customers and calibration and test rows to train.sample_held_out_customers before
    pandas holds them (read_snapshots). Without horizon_days, only the evaluation model's sample
    (no production refit's rows). A missing file names the fix."""
    from churn.files import existing_input

    return read_snapshots(
        existing_input(path, "training snapshots"),
        train.sample_customers,
        horizon_days,
        train.sample_held_out_customers,
    )
