"""The ledger's list-date features: only the listed customers' rows, equal to every customer's."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pyarrow as pa
import pytest

from churn.config import load_params
from churn.cutoffs import Cutoff
from churn.engine import open_duckdb
from churn.features.bgnbd_columns import EXPECTED
from churn.features.build import compute_customer_snapshots, compute_snapshots, open_inputs
from support.paths import ROOT


def _inputs(interim):
    return tuple(interim / f"{name}.parquet" for name in ("transactions", "customers", "nps"))


@pytest.mark.parametrize("bgnbd", [True, False])
def test_chosen_customers_rows_equal_the_all_customer_snapshot_rows(generated_interim, bgnbd):
    interim = generated_interim(1500, 7, days=1095, chunk_customers=1000)
    params = load_params(ROOT / "params.yaml")
    features = params.features.model_copy(update={"bgnbd": bgnbd})
    transactions = pd.read_parquet(
        interim / "transactions.parquet", columns=["customer_id", "date"]
    )
    last = pd.Timestamp(max(transactions["date"])).date()
    cutoffs = [
        Cutoff(day, "ledger", day + timedelta(days=params.churn.horizon_days))
        for day in (last - timedelta(days=300), last - timedelta(days=120))
    ]
    con = open_duckdb(params.engine, ordered=False)
    open_inputs(*_inputs(interim), con)
    everyone = compute_snapshots(con, cutoffs, params.churn, features, labelled=False)
    con.close()
    ids = sorted(set(everyone["customer_id"]))[::7] + ["not-a-customer"]
    con = open_duckdb(params.engine, ordered=False)
    open_inputs(*_inputs(interim), con)
    chosen = compute_customer_snapshots(
        con, interim / "transactions.parquet", cutoffs, params.churn, features, pa.array(ids)
    )
    con.close()
    expected = everyone[everyone["customer_id"].isin(ids)].reset_index(drop=True)
    assert 0 < len(chosen) < len(everyone)
    # the BG/NBD columns come from fits on every customer, not on the chosen ones
    pd.testing.assert_frame_equal(chosen.reset_index(drop=True), expected, check_exact=True)
    if bgnbd:
        assert chosen[EXPECTED].notna().all()


def test_list_date_snapshots_equal_each_dates_chosen_rows_through_the_spill(
    generated_interim, monkeypatch
):
    """The ledger stage keeps each list date's frame in a spill file while the next date's query
    runs: the frame it returns is every date's compute_customer_snapshots, dtypes included, and
    no spill file is left behind."""
    from types import SimpleNamespace

    from churn.engine import spill_folder
    from churn.ledger import stage

    interim = generated_interim(1500, 7, days=1095, chunk_customers=1000)
    params = load_params(ROOT / "params.yaml")
    transactions = pd.read_parquet(interim / "transactions.parquet", columns=["customer_id"])
    ids = sorted(set(transactions["customer_id"].astype(str)))
    last = pd.Timestamp(max(pd.read_parquet(interim / "transactions.parquet")["date"])).date()
    days = [last - timedelta(days=300), last - timedelta(days=150)]
    lists = [
        SimpleNamespace(manifest={"as_of": day.isoformat()}, horizon_days=90, ids=ids[n::5])
        for n, day in enumerate(days)
    ]
    monkeypatch.setattr(
        stage, "_listed_ids", lambda chosen: pa.array(sorted({i for p in chosen for i in p.ids}))
    )
    before = set(spill_folder().glob("ledger-*")) if spill_folder().exists() else set()
    inputs = stage.LedgerInputs(*_inputs(interim))
    got = stage._list_date_snapshots(params, inputs, lists, last)
    expected = []
    for published, day in zip(lists, days, strict=True):
        cutoff = Cutoff(day, "ledger", day + timedelta(days=params.churn.horizon_days))
        con = open_duckdb(params.engine, ordered=False)
        open_inputs(*_inputs(interim), con)
        expected.append(
            compute_customer_snapshots(
                con, interim / "transactions.parquet", [cutoff], params.churn, params.features,
                pa.array(published.ids),
            )
        )  # fmt: skip
        con.close()
    assert len(got) > 0 and got["cutoff"].nunique() == 2
    pd.testing.assert_frame_equal(got, pd.concat(expected, ignore_index=True), check_exact=True)
    assert set(spill_folder().glob("ledger-*")) == before
