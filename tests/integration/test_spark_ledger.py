"""The ledger stage with engine.kind: spark against DuckDB: the same report and tables, and only
what is proportional to the lists comes back from Spark.

Generated data (1,500 customers, three years) with one of the generator's simulated campaigns
imported as a past list, a churn-published list on the same date and a collecting one, the generator's contact log plus ids that match no customer or lost their leading zeros,
and edge customers: one with only a refund and a zero amount inside its outcome window, ones
buying on the list date, the window's last day and the day after it."""

from __future__ import annotations

import json
import math
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from churn.cli import app
from churn.config import EngineParams, load_params
from churn.ledger.stage import (
    LedgerInputs,
    LocalReads,
    read_contact_log,
    read_lists,
    run_ledger_report,
)
from churn.publish import record
from support.app_data import example_scores
from support.paths import ROOT
from support.spark_parity import (
    assert_same_output_files,
    connect_remote,
    require_spark,
    spark_engine,
)

pytestmark = pytest.mark.spark

# (id, days after the matured published list's date, amount); outcome window (d, d + 90]
EDGE = [
    ("edge-refund", -40, 30.0),  # eligible at the list date, then only a refund and a zero
    ("edge-refund", 10, -30.0),
    ("edge-refund", 20, 0.0),
    ("edge-on-date", -50, 20.0),
    ("edge-on-date", 0, 20.0),  # on the list date: not in the window
    ("edge-last-day", -50, 20.0),
    ("edge-last-day", 90, 20.0),  # the window's last day: kept
    ("edge-after", -50, 20.0),
    ("edge-after", 91, 20.0),  # the day after the window: churned
]


def _write_transactions(source, target, day):
    generated = pq.read_table(source)
    edge = {
        "customer_id": pa.array([r[0] for r in EDGE], pa.string()),
        "date": pa.array([day + timedelta(days=r[1]) for r in EDGE], pa.date32()),
        "amount": pa.array([r[2] for r in EDGE], pa.float64()),
    }
    columns = {}
    for field in generated.schema:
        if field.name in edge:
            columns[field.name] = edge[field.name].cast(field.type)
        elif pa.types.is_timestamp(field.type):
            columns[field.name] = pc.cast(edge["date"], field.type)
        else:
            columns[field.name] = pa.nulls(len(EDGE), field.type)
    table = pa.concat_tables([generated, pa.table(columns, schema=generated.schema)])
    # the ingest's order (customer, then time): the DuckDB path's fast run-length dedupe
    order = pc.sort_indices(table, [("customer_id", "ascending"), ("date", "ascending")])
    pq.write_table(table.take(order), target)


@pytest.fixture(scope="module")
def campaign(generated_interim, tmp_path_factory):
    """Return (folder, settings, inputs, exports, contacts) of the campaign described above, with
    the DuckDB run's outputs in folder/duckdb."""
    interim = generated_interim(1500, 7, days=1095, chunk_customers=1000)
    raw = interim.parent / "raw"
    folder = tmp_path_factory.mktemp("spark-ledger")
    settings = load_params(ROOT / "params.yaml")
    newest = pd.Timestamp(pq.read_table(interim / "transactions.parquet")["date"].to_pandas().max())
    newest = newest.date()
    past = pd.read_csv(raw / "campaign_lists.csv", dtype=str)
    # one matured list date keeps Spark's work small (test_ledger_snapshots: several dates)
    dates = sorted(past["list_date"].unique())[-2:-1]
    past[past["list_date"].isin(dates)].to_csv(folder / "past_lists.csv", index=False)
    exports = folder / "exports"
    imported = CliRunner().invoke(
        app, ["import-lists", str(folder / "past_lists.csv"), "--exports", str(exports)]
    )
    assert imported.exit_code == 0, imported.output
    day = pd.Timestamp(dates[0]).date()
    _write_transactions(interim / "transactions.parquet", folder / "transactions.parquet", day)

    # churn's own list on the first imported date: generated customers and the edge ones
    ids = sorted(set(pq.read_table(interim / "customers.parquet")["customer_id"].to_pylist()))
    chosen = list(np.random.default_rng(3).choice(ids, 300, replace=False))
    scores = example_scores(len(chosen) + 5, seed=11, as_of=day)
    # the edge customers on rows flagged for treatment, "never-bought" anywhere
    treated = scores["at_risk"].to_numpy(dtype=bool) & (scores["group"] == "treatment").to_numpy()
    edges = sorted({r[0] for r in EDGE})
    first = list(np.flatnonzero(treated)[: len(edges)])
    others = [n for n in range(len(scores)) if n not in first]
    names = np.empty(len(scores), dtype=object)
    names[first] = edges
    names[others] = chosen + ["never-bought"]
    scores = scores.assign(customer_id=pd.array(names, dtype="string"))
    record.publish_lists(scores, exports, about={"definition": {"horizon_days": 90}})
    later = example_scores(200, seed=12, as_of=newest - timedelta(days=30))
    later = later.assign(customer_id=pd.array(sorted(chosen)[:200], dtype="string"))
    record.publish_lists(later, exports, about={"definition": {"horizon_days": 90}})

    contacts = pd.read_csv(raw / "contacts.csv", dtype={"customer_id": str})
    # three listed customers with transactions (the contact check matches transaction ids)
    bought = set(pq.read_table(folder / "transactions.parquet")["customer_id"].to_pylist())
    digits = [i for i in chosen if i.isdigit() and i.startswith("0") and i in bought][:3]
    extra = pd.DataFrame(
        {
            # a spreadsheet dropped the zeros of three listed ids; two ids match nobody
            "customer_id": [i.lstrip("0") for i in digits] + ["nobody", "0nobody"],
            "contacted_at": f"{day + timedelta(days=3)} 10:00:00",
        }
    )
    pd.concat([contacts, extra], ignore_index=True).to_csv(folder / "contacts.csv", index=False)
    inputs = LedgerInputs(
        folder / "transactions.parquet",
        interim / "customers.parquet",
        interim / "nps.parquet",
        folder / "duckdb" / "uplift.parquet",
        folder / "duckdb" / "contacted.parquet",
    )
    (folder / "duckdb").mkdir()
    run_ledger_report(
        settings, exports, folder / "contacts.csv", folder / "duckdb" / "ledger.json", inputs
    )
    return folder, settings, inputs, exports, folder / "contacts.csv"


def _json_differences(got, want, path="") -> list[tuple]:
    """Return (path, got, want) of every value that differs: floats within 1e-9 relative."""
    if isinstance(want, dict) and isinstance(got, dict):
        if set(got) != set(want):
            return [(path, sorted(got), sorted(want))]
        return [d for key in want for d in _json_differences(got[key], want[key], f"{path}.{key}")]
    if isinstance(want, list) and isinstance(got, list):
        if len(got) != len(want):
            return [(path, len(got), len(want))]
        return [
            d for n, (a, b) in enumerate(zip(got, want, strict=True))
            for d in _json_differences(a, b, f"{path}[{n}]")
        ]  # fmt: skip
    if isinstance(want, float) and isinstance(got, float | int) and not isinstance(got, bool):
        return [] if math.isclose(got, want, rel_tol=1e-9, abs_tol=0.0) else [(path, got, want)]
    return [] if type(got) is type(want) and got == want else [(path, got, want)]


SPARK_READS = ("newest_date", "list_date_snapshots", "listed_purchases", "known_ids")


def _outputs_beside(inputs: LedgerInputs, out: Path) -> tuple[Path, LedgerInputs]:
    """Return a new folder `out` and `inputs` with their uplift and contacted tables in it."""
    out.mkdir()
    return out, LedgerInputs(
        inputs.transactions,
        inputs.customers,
        inputs.nps,
        out / "uplift.parquet",
        out / "contacted.parquet",
    )


def _recording(monkeypatch, reads_class, names):
    """Record what each named method of `reads_class` returns (the frames the stage works from)
    and the module of the session class it ran on."""
    results = {}
    for name in names:
        method = getattr(reads_class, name)

        def record(self, *args, _method=method, _name=name):
            results["session"] = type(self.spark).__module__
            results[_name] = _method(self, *args)
            return results[_name]

        monkeypatch.setattr(reads_class, name, record)
    return results


def _inside_windows(purchases, windows):
    """Return the purchases dated inside an outcome window of their customer, sorted."""
    rows = purchases.reset_index(names="row").merge(windows, on="customer_id")
    day = rows["date"].dt.date
    inside = sorted(set(rows.loc[(day >= rows["first_day"]) & (day <= rows["last_day"]), "row"]))
    chosen = purchases.iloc[inside].sort_values(["customer_id", "date"], kind="stable")
    return chosen.reset_index(drop=True)


def test_ledger_on_spark_writes_duckdbs_files_from_the_listed_customers_rows(
    campaign, local_reads, tmp_path, caplog, monkeypatch
):
    """The report and both tables equal DuckDB's; the frames Spark sent back hold the listed
    customers' features only (equal to DuckDB's), the purchases inside the matured lists' outcome
    windows (those of DuckDB's listed purchases) and the transactions' ids a contact id can
    match (the exact and zero-padded matches), never every customer's."""
    require_spark()
    from churn.spark.ledger import SparkReads

    folder, settings, inputs, exports, contacts = campaign
    on_spark = settings.model_copy(update={"engine": spark_engine(tmp_path / "spark-tmp")})
    out, spark_inputs = _outputs_beside(inputs, tmp_path / "spark")
    sent = _recording(monkeypatch, SparkReads, SPARK_READS)
    with caplog.at_level("INFO", logger="churn"):
        run_ledger_report(on_spark, exports, contacts, out / "ledger.json", spark_inputs)
    assert "ledger: transactions aggregated on Spark" in caplog.text
    want = json.loads((folder / "duckdb" / "ledger.json").read_text())
    got = json.loads((out / "ledger.json").read_text())
    assert _json_differences(got, want) == []
    frames = {
        name: want_frame
        for name, want_frame, _ in assert_same_output_files(
            folder / "duckdb", out, ("uplift", "contacted")
        )
    }

    # the comparison covers what the report and tables hold
    matured = [entry for entry in want["lists"] if entry["status"] != "collecting"]
    assert len(matured) == 2 and len(want["lists"]) == 3
    assert want["contact_log"]["match_after_zero_padding"] == 3
    assert want["contact_log"]["unmatched"] >= 5  # the padded ids, "nobody" and "0nobody"
    uplift = frames["uplift"]
    assert uplift["has_features"].sum() > 100 and uplift["bgnbd_p_alive"].notna().sum() > 100
    assert uplift["contacted"].sum() > 0 and 0 < uplift["churned"].mean() < 1
    edge = uplift.set_index("customer_id")["churned"]
    assert edge["edge-refund"] == 1 and edge["edge-on-date"] == 1 and edge["edge-after"] == 1
    assert edge["edge-last-day"] == 0
    assert len(frames["contacted"]) > 0

    _assert_spark_sent_only_the_lists_rows(sent, local_reads)


@pytest.fixture(scope="module")
def local_reads(campaign):
    """The same reads on this machine (LocalReads, DuckDB and Arrow), once for the module:
    (newest date, list-date snapshots, listed purchases, those inside the outcome windows,
    every transaction id, the contact log's ids)."""
    from churn.ledger import outcome_windows

    _, settings, inputs, exports, contacts = campaign
    lists = read_lists(exports, settings.churn.horizon_days)
    ids = read_contact_log(contacts)["customer_id"].dropna()
    local = LocalReads(settings.model_copy(update={"engine": EngineParams()}), inputs)
    newest = local.newest_date()
    snapshots = local.list_date_snapshots(lists, newest)
    purchases = local.listed_purchases(lists, newest)
    inside = _inside_windows(purchases, outcome_windows(lists, newest))
    everyone = set(local.known_ids(ids).to_pylist())
    return newest, snapshots, purchases, inside, everyone, ids


def _assert_spark_sent_only_the_lists_rows(sent, local_reads):
    """What came back from Spark (`sent`: SparkReads' results), against the same reads on this
    machine: the listed customers' features, the purchases inside the outcome windows and the
    ids a contact id can match, never every customer's."""
    from support.spark_parity import frame_differences

    newest, snapshots, purchases, inside, everyone, ids = local_reads
    assert sent["newest_date"] == newest
    assert len(sent["list_date_snapshots"]) == len(snapshots) < 700  # of 1,500 customers
    assert frame_differences(sent["list_date_snapshots"], snapshots) == []
    assert 0 < len(sent["listed_purchases"]) < len(purchases)
    assert frame_differences(sent["listed_purchases"], inside) == []
    found = set(sent["known_ids"].to_pylist())
    assert found <= everyone and len(found) < len(everyone) / 2
    width = max(len(i) for i in everyone if i.isdigit())  # generated: zero-padded digits
    padded = {i.zfill(width) for i in ids if i.isdigit() and len(i) < width}
    assert set(ids) & everyone <= found and padded & everyone <= found and len(padded) == 3


@pytest.mark.slow
def test_ledger_over_spark_connect_writes_duckdbs_files(
    campaign, local_reads, tmp_path, caplog, monkeypatch
):
    """The ledger stage with engine.spark.remote set to a Spark Connect server (a local Spark
    with the Connect plugin in a child process, as in test_spark_connect.py; the stage opens and
    stops its own Connect session): the same report and tables as DuckDB's, and the same reads
    sent back as on a classic session. Runs after the classic test: the Connect server stops
    this worker's local session first."""
    from churn.spark.ledger import SparkReads

    folder, settings, inputs, exports, contacts = campaign
    out, on_connect_inputs = _outputs_beside(inputs, tmp_path / "connect")
    sent = _recording(monkeypatch, SparkReads, SPARK_READS)
    with connect_remote(tmp_path / "server") as url:
        engine = spark_engine(tmp_path / "spark-tmp", remote=url)
        assert engine.spark.master is None
        on_connect = settings.model_copy(update={"engine": engine})
        with caplog.at_level("INFO", logger="churn"):
            run_ledger_report(on_connect, exports, contacts, out / "ledger.json", on_connect_inputs)
    assert "ledger: transactions aggregated on Spark" in caplog.text
    assert sent["session"].startswith("pyspark.sql.connect")
    want = json.loads((folder / "duckdb" / "ledger.json").read_text())
    got = json.loads((out / "ledger.json").read_text())
    assert _json_differences(got, want) == []
    assert len(want["lists"]) == 3 and want["contact_log"]["match_after_zero_padding"] == 3
    assert_same_output_files(folder / "duckdb", out, ("uplift", "contacted"))
    _assert_spark_sent_only_the_lists_rows(sent, local_reads)
