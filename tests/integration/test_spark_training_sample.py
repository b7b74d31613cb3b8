"""The Spark features stage writes only the training sample to train.parquet: every reader of the
file (train, evaluate, promote, uplift, drift) gets from it exactly what it gets from the whole
table the DuckDB features stage writes, and the report still counts the whole table."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from churn.cli import app
from churn.columns import CHURN_PROBABILITY, CUSTOMER_ID, CUTOFF, ROLE
from churn.config import (
    ChurnParams,
    CutoffsParams,
    EngineParams,
    EvaluateParams,
    FeaturesParams,
    RolesParams,
)
from churn.errors import ChurnError
from churn.evaluate import evaluate_model
from churn.features.build import write_snapshots as write_on_duckdb
from churn.train import fit_model
from churn.training_rows import read_snapshots
from churn.uplift.from_ledger import read_labelled_snapshots
from support.paths import ROOT
from support.snapshot_helper import FAST
from support.spark_parity import frame_differences, require_spark

pytestmark = [pytest.mark.slow, pytest.mark.spark]

HORIZON = 90
FIT_CAP, HELD_CAP, UPLIFT_CAP = 60, 50, 70  # far below the 400 customers: the samples bind
TRAIN = FAST.model_copy(update={"sample_customers": FIT_CAP, "sample_held_out_customers": HELD_CAP})


@pytest.fixture(scope="module")
def tables(generated_interim, spark_session, tmp_path_factory):
    """(whole table written by DuckDB, sample written by Spark, both reports, work folder)."""
    require_spark()
    from churn.spark.features import write_snapshots as write_on_spark
    from churn.spark.sample import SampleParams

    source = generated_interim(customers=400, seed=5, days=1095)
    inputs = [source / f"{name}.parquet" for name in ("transactions", "customers", "nps")]
    work = tmp_path_factory.mktemp("spark-sample")
    # eight cutoffs (the sample's queries per cutoff stay few); more calibration cutoffs than fit
    # in: calibration on customers held out by id hash, so the roles are assigned per customer
    # on Spark before the samples are drawn (assign_customer_roles)
    churn = ChurnParams(horizon_days=HORIZON)
    features = FeaturesParams(
        cutoffs=CutoffsParams(count=8), roles=RolesParams(calibration_cutoffs=5)
    )
    whole = work / "duckdb" / "train.parquet"
    duckdb_report = write_on_duckdb(
        *inputs, churn, features, EngineParams(threads=1), whole, work / "duckdb" / "score.parquet"
    )
    sampled = work / "spark" / "train.parquet"
    spark_report = write_on_spark(
        spark_session(), *inputs, churn, features, sampled, work / "spark" / "score.parquet",
        work / "parts", SampleParams(FIT_CAP, HELD_CAP, UPLIFT_CAP, "test"),
    )  # fmt: skip
    return whole, sampled, duckdb_report, spark_report, work


def test_only_the_sample_is_written_and_the_report_counts_the_whole_table(tables):
    whole, sampled, duckdb_report, spark_report, _ = tables
    written = pd.read_parquet(sampled)
    every = pd.read_parquet(whole)
    # sampling really happens: fewer rows, and fit cutoffs hold fewer customers
    assert len(written) < len(every)
    fit = every[every[ROLE] == "fit"]
    assert written.loc[written[ROLE] == "fit", CUSTOMER_ID].nunique() < fit[CUSTOMER_ID].nunique()
    assert list(written.dtypes) == list(every.dtypes)
    assert set(every[ROLE]) == {"fit", "calibration", "gap", "test"}
    # the written rows are the whole table's rows, in its order
    keys = [CUSTOMER_ID, CUTOFF]
    inner = every.merge(written[keys], on=keys, how="inner")
    assert frame_differences(written, inner) == []
    extra = spark_report.pop("train_rows_written")
    assert spark_report == duckdb_report  # the whole table's counts, rows and null rates
    assert extra["rows"] == len(written) and extra["sample"] is True


def test_train_reads_the_same_rows_and_fits_the_same_models(tables):
    whole, sampled, *_ = tables
    frame, customers = read_snapshots(whole, FIT_CAP, HORIZON, HELD_CAP)
    again, customers_again = read_snapshots(sampled, FIT_CAP, HORIZON, HELD_CAP)
    assert customers_again == customers  # the whole table's count, from the file's metadata
    assert frame_differences(again, frame) == []
    first = fit_model(frame, TRAIN, HORIZON, customers_fit=customers)
    second = fit_model(again, TRAIN, HORIZON, customers_fit=customers_again)
    for one, other in ((first.model, second.model), (first.production, second.production)):
        assert other.booster.model_to_string() == one.booster.model_to_string()
        assert np.array_equal(other.predict_proba(frame), one.predict_proba(frame))
    assert second.diagnostics == first.diagnostics
    # smaller caps choose within the written sample too; larger ones (or none) are refused
    smaller = read_snapshots(whole, FIT_CAP // 2, HORIZON, HELD_CAP // 2)[0]
    assert (
        frame_differences(read_snapshots(sampled, FIT_CAP // 2, HORIZON, HELD_CAP // 2)[0], smaller)
        == []
    )
    for caps in ((FIT_CAP + 1, HELD_CAP), (FIT_CAP, None)):
        with pytest.raises(ChurnError, match="rerun the features stage"):
            read_snapshots(sampled, caps[0], HORIZON, caps[1])
    evaluation = [
        evaluate_model(read_snapshots(path, FIT_CAP, None, HELD_CAP)[0], first.model,
                       EvaluateParams(min_segment_rows=5, bootstrap=0), HORIZON, "snapshots", first.production)
        for path in (whole, sampled)
    ]  # fmt: skip
    assert json.dumps(evaluation[1].metrics, sort_keys=True, default=str) == json.dumps(
        evaluation[0].metrics, sort_keys=True, default=str
    )
    assert evaluation[1].segments == evaluation[0].segments
    for name, table in evaluation[0].curves.items():
        assert evaluation[1].curves[name].equals(table)


def test_the_uplift_risk_model_reads_the_same_rows_for_any_first_campaign(tables):
    whole, sampled, *_ = tables
    features = [name for name in pq.read_schema(whole).names if name.startswith("recency")]
    cutoffs = sorted(pd.read_parquet(whole, columns=[CUTOFF])[CUTOFF].unique())
    days = [cutoffs[0] - dt.timedelta(days=1), cutoffs[0], cutoffs[2] + dt.timedelta(days=9)]
    for last in [*days, cutoffs[-1]]:
        labels_end_by = last + dt.timedelta(days=HORIZON)
        for cap in (UPLIFT_CAP, UPLIFT_CAP // 2):
            want = read_labelled_snapshots(whole, HORIZON, labels_end_by, features, cap)
            got = read_labelled_snapshots(sampled, HORIZON, labels_end_by, features, cap)
            assert frame_differences(got, want) == [], (last, cap)


def test_drift_reports_the_same_on_the_sample(tables):
    whole, sampled, _, _, work = tables
    frame, customers = read_snapshots(whole, FIT_CAP, HORIZON, HELD_CAP)
    model = fit_model(frame, TRAIN, HORIZON, customers_fit=customers).production_model
    model.save(work / "champion")
    snapshot = work / "duckdb" / "score.parquet"
    rows = pd.read_parquet(snapshot)
    scores = pd.DataFrame(
        {CUSTOMER_ID: rows[CUSTOMER_ID], CHURN_PROBABILITY: model.predict_proba(rows)}
    )
    scores.to_parquet(work / "scores.parquet")
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    (work / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    reports = []
    for path in (whole, sampled):
        report = work / f"drift-{path.parent.name}.json"
        result = CliRunner().invoke(
            app,
            ["drift", "--champion", str(work / "champion"), "--training", str(path),
             "--snapshot", str(snapshot), "--scores", str(work / "scores.parquet"),
             "--report", str(report), "--params", str(work / "params.yaml")],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        reports.append(report.read_text(encoding="utf-8"))
    assert reports[1] == reports[0]


# --------------------------------------------------------------------------- the N + 1 guard
# Each sample on Spark brings its N + 1 smallest (hash, id) candidates to the driver: N + 1 ids
# tell "more than N candidates" (the cap binds: N chosen, the N + 1st written too, so a reader of
# the file still finds more than N and binds alike) from "N or fewer" (every candidate is read).
# A hand-built key table: four cutoffs, roles per customer (calibration on held-out customers),
# ids that differ by case, accent and leading zeros, and two pairs of ids whose hash ties
# (customer_share is an id hash mod 1,000,003: ties are rare, not impossible; the id breaks them).
DAYS = [dt.date(2024, 1, 1), dt.date(2024, 4, 6), dt.date(2024, 7, 11), dt.date(2024, 10, 15)]
TIED = {"train_sample": ("c0849", "c4022"), "held_out_sample": ("c2197", "c5616")}
# "00001" first: the customers at positions 0, 3, 6 ... calibrate, so both tied train ids are fit
KEY_IDS = ["00001", *TIED["train_sample"], *TIED["held_out_sample"], "1", "A", "a", "é"] + [
    f"k{n:02d}" for n in range(15)
]
ALWAYS = {*TIED["train_sample"], *TIED["held_out_sample"]}  # rows at every cutoff


def _key_rows() -> pd.DataFrame:
    """Return (customer_id, cutoff, role) rows: fit or gap, fit or calibration, gap, test; each
    customer misses some cutoffs, so every sample has its own candidates."""
    rng = np.random.default_rng(14)
    rows = []
    for number, customer in enumerate(KEY_IDS):
        calibrating = number % 3 == 0
        roles = ["gap" if calibrating else "fit", "calibration" if calibrating else "fit"]
        for day, role in zip(DAYS, [*roles, "gap", "test"], strict=True):
            if rng.random() < 0.75 or customer in ALWAYS:
                rows.append((customer, day, role))
    frame = pd.DataFrame(rows, columns=[CUSTOMER_ID, CUTOFF, ROLE])
    return frame.astype({CUSTOMER_ID: "string", ROLE: "string"})


@pytest.fixture(scope="module")
def key_table(tmp_path_factory):
    """(the key rows, the same rows as a Parquet file) for the DuckDB reader's SnapshotIds."""
    rows = _key_rows()
    path = tmp_path_factory.mktemp("keys") / "keys.parquet"
    rows.to_parquet(path, index=False)
    return rows, path


def _spark_ids(spark, rows):
    """The features stage's SnapshotIds on Spark over `rows` (churn.spark.sample.snapshot_ids)."""
    import pyarrow as pa

    from churn.spark.sample import snapshot_ids

    table = pa.Table.from_pandas(rows, preserve_index=False)
    return snapshot_ids(spark, spark.createDataFrame(table))


def _smallest(candidates, purpose, n):
    """The n smallest (hash, id) of the candidate ids: the oracle, from customer_share alone."""
    from churn.cutoffs import customer_share

    ids = pd.Series(sorted(set(candidates)), dtype="string")
    order = pd.DataFrame({"share": customer_share(ids, purpose), "id": ids.astype(str)})
    return order.sort_values(["share", "id"])["id"].head(n).tolist()


def test_each_spark_sample_binds_only_above_its_cap_and_brings_n_plus_one_ids(spark, key_table):
    """For the fit, held-out and uplift samples, at caps one under, at and one over the candidate
    count (and where two tied hashes straddle the Nth and N + 1st place): Spark chooses the ids
    DuckDB's reader chooses from the same table, None when the candidates are N or fewer, and
    remembers for the file exactly the N + 1 smallest (every candidate when N or fewer), so a
    reader of a file holding only those customers' rows chooses as from the whole table."""
    from churn.cutoffs import customer_share, labelled_where
    from churn.spark.sample import SparkSnapshotIds
    from churn.training_rows import (
        FIT_WHERE,
        HELD_OUT_HASH,
        HELD_OUT_WHERE,
        TRAIN_HASH,
        DuckDBSnapshotIds,
        connect_snapshot_ids,
        select_distinct,
    )

    rows, path = key_table
    for purpose, (first, second) in TIED.items():
        tied = customer_share(pd.Series([first, second], dtype="string"), purpose)
        assert tied[0] == tied[1]  # the ties this test is built on
    on_spark = _spark_ids(spark, rows)
    con = connect_snapshot_ids()
    duckdb_ids = DuckDBSnapshotIds(con, path)
    samples = [
        ("fit", FIT_WHERE, TRAIN_HASH),
        ("held out", HELD_OUT_WHERE, HELD_OUT_HASH),
        ("uplift", labelled_where(DAYS[1]), TRAIN_HASH),
    ]
    checked = 0
    try:
        for name, where, purpose in samples:
            candidates = select_distinct(con, path, CUSTOMER_ID, where)[CUSTOMER_ID].tolist()
            order = _smallest(candidates, purpose, len(candidates))
            count = len(order)
            caps = {count - 1, count, count + 1}
            tied = TIED[purpose]
            if set(tied) <= set(order):
                place = order.index(min(tied))
                assert order[place + 1] == max(tied)  # ties sort by id, as on Spark
                caps |= {place, place + 1}  # the tie across the Nth/N + 1st, N + 1st/N + 2nd
            for cap in sorted(cap for cap in caps if cap >= 1):
                fresh = SparkSnapshotIds(spark, on_spark.keys)
                got = fresh.sample(where, cap, purpose)
                want = duckdb_ids.sample(where, cap, purpose)
                case = (name, cap, count)
                if cap >= count:
                    assert got is None and want is None, case
                    assert fresh.written == set(order), case
                else:
                    assert got is not None and want is not None, case
                    assert got.tolist() == want.tolist() == order[:cap], case
                    assert fresh.written == set(order[: cap + 1]), case
                # a file of the remembered customers' rows: its reader chooses alike
                kept = rows[rows[CUSTOMER_ID].isin(sorted(fresh.written))]
                kept.to_parquet(path.with_name("kept.parquet"), index=False)
                again = DuckDBSnapshotIds(con, path.with_name("kept.parquet"))
                again = again.sample(where, cap, purpose)
                assert (again is None) == (want is None), case
                assert again is None or again.tolist() == want.tolist(), case
                checked += 1
    finally:
        con.close()
        on_spark.keys.unpersist()
    assert checked >= 12


def test_spark_training_samples_and_uplift_rows_equal_the_duckdb_readers_at_the_caps(
    spark, key_table
):
    """choose_snapshot_samples (the fit, production refit and held-out samples, a calibration
    row counting for the refit only when its customer is held out) gives the same customers on
    Spark as on DuckDB for caps one under, at and one over the candidate counts; the uplift
    sample's rows are read whole from the newest cutoff whose candidates fit the cap, and the N +
    1 smallest candidates of every newer cutoff are kept for the file."""
    from churn.cutoffs import labelled_where
    from churn.spark.sample import SparkSnapshotIds, _uplift_rows
    from churn.training_rows import (
        FIT_WHERE,
        HELD_OUT_WHERE,
        TRAIN_HASH,
        DuckDBSnapshotIds,
        choose_snapshot_samples,
        connect_snapshot_ids,
        refit_where,
        select_distinct,
    )

    rows, path = key_table
    on_spark = _spark_ids(spark, rows)
    con = connect_snapshot_ids()
    duckdb_ids = DuckDBSnapshotIds(con, path)
    try:
        fit = len(select_distinct(con, path, CUSTOMER_ID, FIT_WHERE))
        held = len(select_distinct(con, path, CUSTOMER_ID, HELD_OUT_WHERE))
        assert refit_where(duckdb_ids.pairs(), HORIZON) is not None  # the refit sample is drawn
        for caps in [(fit - 1, held - 1), (fit, held), (fit + 1, held + 1), (3, 2)]:
            fresh = SparkSnapshotIds(spark, on_spark.keys)
            got = choose_snapshot_samples(fresh, caps[0], HORIZON, caps[1])
            want = choose_snapshot_samples(duckdb_ids, caps[0], HORIZON, caps[1])
            assert got.fit == want.fit and got.customers_fit == want.customers_fit == fit, caps
            assert (got.held is None) == (want.held is None), caps
            if want.held is not None:
                assert got.held.tolist() == want.held.tolist(), caps
        assert want.fit is not None and len(want.fit) >= 3  # the small caps bind

        pairs = duckdb_ids.pairs()
        by_day = {
            day: select_distinct(con, path, CUSTOMER_ID, labelled_where(day))[CUSTOMER_ID].tolist()
            for day in DAYS
        }
        counts = sorted({len(ids) for ids in by_day.values()})
        assert len(counts) >= 3  # the cutoffs' candidates differ
        # none fits; one under, at and one over a middle cutoff's count
        for cap in (counts[0] - 1, counts[1] - 1, counts[1], counts[1] + 1):
            ids = SparkSnapshotIds(spark, on_spark.keys)
            got = _uplift_rows(ids, pairs, cap)
            fits = [
                day
                for day in DAYS
                if duckdb_ids.sample(labelled_where(day), cap, TRAIN_HASH) is None
            ]
            assert got == ([labelled_where(max(fits))] if fits else []), cap
            expected = set()
            for day in DAYS:
                if not fits or day > max(fits):
                    expected |= set(_smallest(by_day[day], TRAIN_HASH, cap + 1))
                elif day == max(fits):
                    expected |= set(by_day[day])
            assert ids.written == expected, cap
    finally:
        con.close()
        on_spark.keys.unpersist()
