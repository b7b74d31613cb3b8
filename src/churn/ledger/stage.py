"""The ledger stage's wiring: read the published-lists record, measure, write the tables.

`churn ledger` (the `ledger` DVC stage) runs this; the pure measurements are `churn.ledger`. It only
reads the record: past lists enter it through `churn import-lists` (`churn.lifecycle`).
The contact-log readers here are shared with the backtest (`churn.lifecycle`). What it reads from
the transactions (the list dates' features, the listed customers' purchases, the newest date, the
ids a contact log can match) comes from `LocalReads` (DuckDB and Arrow) or, with engine.kind
spark, `churn.spark.ledger.SparkReads`; the measurements are the same code on either.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from churn.errors import ChurnError
from churn.files import open_parquet_file
from churn.logs import get_logger

log = get_logger("ledger")


def read_contact_log(path: Path | None) -> pd.DataFrame | None:
    """Return the checked contact log at `path` (None without one)."""
    from churn.backtest import check_contacts
    from churn.columns import CUSTOMER_ID

    if path is None:
        return None
    if not path.exists():
        raise ChurnError(
            f"{path}: contact log not found; fix the ledger stage's --contacts in dvc.yaml (or "
            "remove it and its dep to run without a contact log)"
        )
    raw = pd.read_csv(path, dtype={CUSTOMER_ID: "string"})
    return check_contacts(raw, str(path))


def check_contact_ids(
    contact_log: pd.DataFrame | None, transactions: pd.DataFrame | Any, path: Path | None
) -> dict[str, Any] | None:
    """Return how the contact log's ids match the customers (None without a log); log a warning
    when some match no customer or lost their leading zeros in a spreadsheet. `transactions`:
    the transactions frame, or the customer ids of all transactions (any array of strings), or
    only those equal to a contact id once both lose their leading zeros (the same counts and
    warning: the ids the check can match; churn.spark.ledger.SparkReads.known_ids)."""
    from churn.columns import CUSTOMER_ID
    from churn.ids import check_id_matches

    if contact_log is None:
        return None
    customer_ids = (
        transactions[CUSTOMER_ID].astype("string").unique()
        if isinstance(transactions, pd.DataFrame)
        else transactions
    )
    matched, warning = check_id_matches(
        contact_log[CUSTOMER_ID].dropna().unique(),
        customer_ids,
        str(path),
        "so their contacts are not counted",
    )
    if warning:
        log.warning("%s", warning)
    return matched


@dataclass(frozen=True)
class LedgerInputs:
    """Where the ledger stage reads the clean tables and writes its tables (dvc.yaml's paths).

    Without customers and NPS no features are computed at the list dates (no values filled, no
    uplift rows); without an output path that table is not written."""

    transactions: Path
    customers: Path | None = None
    nps: Path | None = None
    uplift_out: Path | None = None
    contacted_out: Path | None = None


LEDGER_ROLE = "ledger"  # the role of the list dates' snapshot rows


def matured_list_dates(lists: list[Any], newest: dt.date) -> dict[dt.date, list[Any]]:
    """Return the matured lists (churn.ledger.is_matured) by their date: the dates whose
    features the uplift table and the expected values need."""
    from churn.ledger import is_matured

    by_date: dict[dt.date, list[Any]] = {}
    for published in lists:
        if is_matured(published, newest):
            day = dt.date.fromisoformat(str(published.manifest["as_of"]))
            by_date.setdefault(day, []).append(published)
    return by_date


def list_date_cutoff(settings: Any, day: dt.date) -> Any:
    """Return the (unlabelled) snapshot cutoff of a list date."""
    from churn.cutoffs import Cutoff

    return Cutoff(day, LEDGER_ROLE, day + dt.timedelta(days=settings.churn.horizon_days))


def spilled_dates(days: list[dt.date], compute: Callable[[dt.date], pd.DataFrame]) -> pd.DataFrame:
    """Return the frames `compute` gives for each date (in order) concatenated; each date's frame
    waits in a spill file while the next date's is computed."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from churn.engine import release_memory, spill_folder

    # the engine's memory (DuckDB's up to engine.memory_limit) never adds up with the frames of
    # the dates before it (at 50M transactions four dates' frames held 0.9 GB beside DuckDB: the
    # stage peaked at 2.8 GB)
    spill = spill_folder()
    spill.mkdir(parents=True, exist_ok=True)
    stem = f"ledger-{os.getpid()}-{uuid.uuid4().hex}"
    parts = [spill / f"{stem}-{number}.parquet" for number in range(len(days))]
    try:
        for day, part in zip(days, parts, strict=True):
            frame = compute(day)
            pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), part)
            del frame
            release_memory()
        return pd.concat([pq.read_table(part).to_pandas() for part in parts], ignore_index=True)
    finally:
        for part in parts:
            part.unlink(missing_ok=True)


def _list_date_snapshots(
    settings: Any, inputs: LedgerInputs, lists: list[Any], newest: dt.date
) -> pd.DataFrame | None:
    """Return the features at every matured list's date of the customers on that date's lists
    (one query per date), or None without inputs."""
    from churn.engine import open_duckdb, resource_errors
    from churn.features.build import compute_customer_snapshots, open_inputs

    if inputs.customers is None or inputs.nps is None or inputs.transactions is None:
        return None
    by_date = matured_list_dates(lists, newest)
    if not by_date:
        return None

    def compute(day: dt.date) -> pd.DataFrame:
        with resource_errors(settings.engine, "ledger"):
            con = open_duckdb(settings.engine, ordered=False)
            try:
                open_inputs(inputs.transactions, inputs.customers, inputs.nps, con)
                # no labels: the ledger measures outcomes itself (build_ledger), never reads
                # the churned column; only the customers on this date's lists (every
                # customer at every list date is 12M rows at 50M transactions)
                return compute_customer_snapshots(
                    con,
                    inputs.transactions,
                    [list_date_cutoff(settings, day)],
                    settings.churn,
                    settings.features,
                    _listed_ids(by_date[day]),
                )
            finally:
                con.close()  # DuckDB's memory goes back before the next date's query

    return spilled_dates(sorted(by_date), compute)


def _listed_ids(lists: list[Any]) -> Any:
    """Return the ids of the customers flagged on any list (an Arrow string array, sorted)."""
    import pyarrow as pa

    from churn.columns import CUSTOMER_ID
    from churn.ledger import flagged_customers

    ids = sorted(
        {
            str(value)
            for published in lists
            for value in flagged_customers(published)[CUSTOMER_ID].dropna().astype("string")
        }
    )
    return pa.array(ids, type=pa.string())


def _listed_purchases(path: Path, lists: list[Any]) -> pd.DataFrame:
    """Return purchase_dates of the transactions of the customers flagged on any list, dates as
    datetime64[s] (as the ledger compares them): the ledger's outcomes read nothing else.

    The clean transactions file is sorted by customer and time (ingest), so a customer's
    purchases on one date are neighbours: the first of each run is kept in Arrow, the same rows
    in the same order as pandas' drop_duplicates, without hashing millions of Python dates (the
    ledger's peak at 50M transactions). A file in any other order goes through purchase_dates."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from churn.backtest import purchase_dates
    from churn.columns import AMOUNT, CUSTOMER_ID, DATE

    ids = _listed_ids(lists)
    columns = [CUSTOMER_ID, DATE, AMOUNT]
    filters = [(CUSTOMER_ID, "in", ids.to_pylist()), (AMOUNT, ">", 0)] if len(ids) else None
    table = pq.read_table(path, columns=columns, filters=filters)
    if not len(ids):
        table = table.slice(0, 0)
    customers = table[CUSTOMER_ID].cast(pa.string()).combine_chunks()
    days = table[DATE].cast(pa.date32()).combine_chunks()
    if len(table) > 1:
        same_customer = pc.equal(customers[1:], customers[:-1])
        ordered = pc.all(
            pc.or_(
                pc.greater(customers[1:], customers[:-1]),
                pc.and_(same_customer, pc.greater_equal(days[1:], days[:-1])),
            ),
            skip_nulls=False,  # a null id or date: not known to be in order
        ).as_py()
        if not ordered:
            frame = purchase_dates(table.to_pandas())
            return frame.assign(**{DATE: pd.to_datetime(frame[DATE])})
        repeat = pc.and_(same_customer, pc.equal(days[1:], days[:-1]))
        keep = pa.concat_arrays([pa.array([True]), pc.invert(repeat)])
        table = table.filter(keep)
    purchases = pa.table(
        {CUSTOMER_ID: table[CUSTOMER_ID], DATE: table[DATE].cast(pa.timestamp("s"))}
    )
    return purchases.to_pandas()


def _customer_ids(path: Path) -> Any:
    """Return the distinct customer ids of the transactions file (Arrow, never one row each in
    Python)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from churn.columns import CUSTOMER_ID

    # one row group at a time: the column of every transaction is ~0.6 GB at 50M rows
    with open_parquet_file(path) as source:
        parts = [
            pc.unique(source.read_row_group(group, columns=[CUSTOMER_ID])[CUSTOMER_ID])
            for group in range(source.metadata.num_row_groups)
        ]
    if not parts:
        return pa.array([], pa.string())
    return pc.unique(pa.chunked_array(parts).cast("string"))


def _newest_date(path: Path) -> dt.date | None:
    """Return the newest transaction date of the clean transactions file (None when empty)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from churn.columns import DATE

    dates = pq.read_table(path, columns=[DATE])[DATE]
    newest = pc.max(dates).as_py() if len(dates) else None
    return newest.date() if isinstance(newest, dt.datetime) else newest


def read_lists(exports: Path, horizon_days: int) -> list[Any]:
    """Return every list of the record (churn's own, with their downloads, then the imported
    ones) as churn.ledger.PublishedList; `horizon_days`: the horizon of a list whose manifest
    names none (imported lists)."""
    from churn.ledger import PublishedList
    from churn.publish import record

    downloads: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for event in record.read_downloads(exports):
        key = (str(event.get("as_of")), str(event.get("list_sha256")))
        downloads.setdefault(key, []).append(record.read_download_record(exports, event))
    lists = []
    for as_of in record.published_dates(exports):
        manifest = record.read_manifest(exports, as_of)
        definition = manifest.get("definition") or {}
        horizon = int(definition.get("horizon_days") or horizon_days)
        lists.append(
            PublishedList(
                manifest,
                horizon,
                record.read_scored(exports, manifest),
                downloads.get((as_of, str(manifest.get("sha256"))), []),
            )
        )
    for manifest in record.read_imported(exports):
        scored = record.read_scored(exports, manifest)
        lists.append(PublishedList(manifest, horizon_days, scored))
    return lists


@dataclass(frozen=True)
class LocalReads:
    """The ledger's reads of the clean tables on this machine (DuckDB and Arrow): what
    run_ledger_report needs from the transactions. `churn.spark.ledger.SparkReads` gives the
    same on Spark (engine.kind: spark)."""

    settings: Any
    inputs: LedgerInputs

    def newest_date(self) -> dt.date | None:
        """Return the newest transaction date (None when there are no transactions)."""
        return _newest_date(self.inputs.transactions)

    def list_date_snapshots(self, lists: list[Any], newest: dt.date) -> pd.DataFrame | None:
        """Return the features at every matured list's date of that date's listed customers."""
        return _list_date_snapshots(self.settings, self.inputs, lists, newest)

    def listed_purchases(self, lists: list[Any], newest: dt.date) -> pd.DataFrame:
        """Return (customer_id, date as datetime64[s]) purchase dates the outcomes read."""
        return _listed_purchases(self.inputs.transactions, lists)

    def known_ids(self, contact_ids: Any) -> Any:
        """Return the transactions' customer ids check_contact_ids needs for these contact ids:
        here, every distinct one."""
        return _customer_ids(self.inputs.transactions)


@contextlib.contextmanager
def ledger_reads(settings: Any, inputs: LedgerInputs) -> Iterator[Any]:
    """Yield the reads of the engine params.yaml selects: Spark (one session for the stage,
    stopped after) or DuckDB and Arrow on this machine."""
    if settings.engine.kind == "spark":
        from churn.spark.ledger import SparkReads
        from churn.spark.session import spark_session

        with spark_session(settings.engine, "ledger") as spark:
            yield SparkReads(spark, settings, inputs)
    else:
        yield LocalReads(settings, inputs)


def run_ledger_report(
    settings: Any,
    exports: Path,
    contacts: Path | None,
    report: Path,
    inputs: LedgerInputs,
) -> list[dict[str, str]]:
    """Measure every list of the record's campaign (churn's own and imported past lists, treated vs
    control) into the ledger report, and write the uplift and contacted tables when `inputs`
    names them. Reads the record, never writes it."""
    from churn.columns import CHURNED, CUSTOMER_ID, CUTOFF, ROLE
    from churn.files import write_json, write_parquet
    from churn.ledger import (
        COLLECTING,
        UPLIFT_KEYS,
        build_ledger,
        contacted_table,
        ledger_rows,
        uplift_rows,
        with_expected_values,
    )
    from churn.score.targeting import estimate_expected_value

    lists = read_lists(exports, settings.churn.horizon_days)
    contact_path = contacts
    contact_log = read_contact_log(contact_path)
    if not inputs.transactions.is_file():
        raise ChurnError(f"{inputs.transactions}: not found; run `dvc repro ingest` first")
    with ledger_reads(settings, inputs) as reads:
        newest = reads.newest_date()
        # the list dates' features first, so DuckDB's memory and the transactions frame never
        # add up
        snapshots = reads.list_date_snapshots(lists, newest) if newest is not None else None
        if newest is None:
            raise ChurnError("transactions: empty; nothing to measure the published lists with")
        # only the listed customers' purchase dates: outcomes of anyone else are never read
        purchases = reads.listed_purchases(lists, newest)
        matched = (
            check_contact_ids(
                contact_log, reads.known_ids(contact_log[CUSTOMER_ID].dropna()), contact_path
            )
            if contact_log is not None
            else None
        )
    if settings.engine.kind == "spark":
        log.info("ledger: transactions aggregated on Spark")
    if snapshots is not None:
        by_date = {day: rows for day, rows in snapshots.groupby(CUTOFF)}
        for index, published in enumerate(lists):
            day = dt.date.fromisoformat(str(published.manifest["as_of"]))
            if day in by_date:
                snapshot = by_date[day]
                values = estimate_expected_value(snapshot, settings.score) if len(snapshot) else []
                lists[index] = with_expected_values(published, snapshot, values)
    ledger = build_ledger(
        lists, None, settings.backtest.confidence, contact_log, newest=newest, purchases=purchases
    )
    write_json(ledger if matched is None else {**ledger, "contact_log": matched}, report)
    if inputs.contacted_out is not None:
        # a list dated on or after the newest data date cannot overlap any labelled window (they
        # end on or before it): leaving it out keeps the table, and so train, unchanged when
        # `churn publish` adds today's list
        overlapping = [
            p
            for p in lists
            if newest is not None and dt.date.fromisoformat(str(p.manifest["as_of"])) < newest
        ]
        write_parquet(contacted_table(overlapping), inputs.contacted_out)
    if inputs.uplift_out is not None:
        keys = {CUSTOMER_ID, CUTOFF, ROLE, CHURNED}
        frames = []
        if snapshots is not None:
            features = [name for name in snapshots.columns if name not in keys]
            for published in lists:
                day = dt.date.fromisoformat(str(published.manifest["as_of"]))
                if day in by_date:
                    frames.append(
                        uplift_rows(published, by_date[day], purchases, contact_log, features)
                    )
        table = (
            pd.concat(frames, ignore_index=True).sort_values(
                ["list_date", "list_id", CUSTOMER_ID], kind="stable"
            )
            if frames
            else pd.DataFrame({name: pd.Series(dtype="object") for name in UPLIFT_KEYS})
        )
        write_parquet(table.reset_index(drop=True), inputs.uplift_out)
        log.info("uplift table: %d rows of matured lists -> %s", len(table), inputs.uplift_out)
    for entry in ledger["lists"]:
        label = f"{entry['as_of']} ({entry['list_id']})"
        if entry["status"] == COLLECTING:
            log.info(
                "ledger: list of %s is collecting outcomes until %s", label, entry["matures_on"]
            )
            continue
        overall = entry["slices"][0]
        if overall["ci_low"] is None:
            log.info("ledger: list of %s: no treated or no control customers", label)
        else:
            log.info(
                "ledger: list of %s: retention %.1f%% treated vs %.1f%% control, difference "
                "%+.1f points [%+.1f, %+.1f]: %s",
                label,
                100 * overall["treated_retention"],
                100 * overall["control_retention"],
                100 * overall["retention_difference"],
                100 * overall["ci_low"],
                100 * overall["ci_high"],
                overall["status"],
            )
        if not entry["campaign_known"]:
            log.info("ledger: list of %s: %s", label, entry["note"])
    if not ledger["lists"]:
        log.info("ledger: no list has been published yet (%s)", exports)
    return ledger_rows(ledger)


def show_rows(rows: list[dict[str, str]], title: str) -> None:
    """Print rows as a rich table on a terminal, else as plain log lines."""
    if not rows:
        return
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title)
        for column in rows[0]:
            table.add_column(column, justify="left" if column == "as of" else "right")
        for row in rows:
            table.add_row(*row.values())
        Console().print(table)
    else:
        for row in rows:
            log.info("  ".join(f"{k}={v}" for k, v in row.items()))


def run(
    settings: Any,
    exports: Path,
    contacts: Path | None,
    report: Path,
    inputs: LedgerInputs,
) -> None:
    """The `ledger` stage: measure every list of the record into `report`, write the uplift and
    contacted tables `inputs` names, and show the ledger's rows."""
    show_rows(
        run_ledger_report(settings, exports, contacts, report, inputs=inputs), "Campaign ledger"
    )
