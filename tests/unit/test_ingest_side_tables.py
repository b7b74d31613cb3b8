"""The optional customers table and NPS answers: typed, deduplicated, bad rows quarantined."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from churn.errors import ChurnError, DataCheckFailed
from support.ingest_support import run, write_csv

TX = "00001,a,2024-01-01 10:00:00,1\n"


def _side(tmp_path, customers: str | None = None, nps: str | None = None, **extra):
    overrides = dict(extra)
    if customers is not None:
        path = write_csv(
            tmp_path, customers, "customers.csv", "customer,signup_date,channel,region\n"
        )
        overrides["customers"] = {
            "source": str(path),
            "columns": {"customer_id": "customer", "signup_date": "signup_date"},
        }
    if nps is not None:
        path = write_csv(tmp_path, nps, "nps.csv", "customer,answered_at,score\n")
        overrides["nps"] = {
            "source": str(path),
            "columns": {"customer_id": "customer", "answered_at": "answered_at", "score": "score"},
        }
    return run(tmp_path, write_csv(tmp_path, TX), **overrides)


def test_without_side_tables_the_outputs_are_empty_with_the_contract_schema(tmp_path):
    result = _side(tmp_path)
    assert result.customers.empty and result.nps.empty
    customers = pq.read_schema(tmp_path / "out/customers.parquet")
    nps = pq.read_schema(tmp_path / "out/nps.parquet")
    assert [(f.name, str(f.type)) for f in customers] == [
        ("customer_id", "string"), ("signup_date", "date32[day]"), ("channel", "string"),
        ("region", "string"),
    ]  # fmt: skip
    assert [(f.name, str(f.type)) for f in nps] == [
        ("customer_id", "string"), ("answered_at", "date32[day]"), ("nps_score", "int32"),
    ]  # fmt: skip


def test_customers_keep_the_first_row_per_id_and_quarantine_bad_rows(tmp_path):
    body = (
        "00001,2024-01-05,web,north\n"
        "00001,2024-02-05,app,south\n"  # repeated id: removed, counted
        "00002,,store,\n"  # no signup date: kept as null
        "00003,05/01/2024,app,east\n"  # month-first by default: 1 May... kept
        "00004,not a date,web,west\n"
        ",2024-01-01,web,west\n"
    )
    result = _side(tmp_path, customers=body)
    table = result.report["customers_table"]
    assert table["duplicates_removed"] == 1
    assert table["duplicate_ids_conflicting"] == 1  # it said app/south, not web/north
    assert "'00001'" in table["warnings"][0] and "first is kept" in table["warnings"][0]
    assert table["quarantined_by_reason"] == {"missing_customer_id": 1, "unparseable_date": 1}
    customers = result.customers.set_index("customer_id")
    assert customers.loc["00001", "channel"] == "web"
    assert customers["signup_date"].isna().sum() == 1
    assert str(customers.loc["00003", "signup_date"]) == "2024-05-01"
    assert set(result.quarantine["table"]) == {"customers"}


def test_identical_repeated_customer_rows_are_not_counted_as_conflicting(tmp_path):
    body = "00001,2024-01-05,web,north\n00001, 2024-01-05 ,web,north\n00002,2024-01-06,app,east\n"
    table = _side(tmp_path, customers=body).report["customers_table"]
    assert table["duplicates_removed"] == 1 and table["duplicate_ids_conflicting"] == 0
    assert "warnings" not in table


def test_nps_scores_must_be_integers_from_0_to_10(tmp_path):
    body = (
        "00001,2024-01-01,9\n00001,2024-01-01,9\n"  # repeated answers are kept
        "00002,2024-01-02,11\n00002,2024-01-02,7.5\n00003,2024-01-02,ten\n"
        "00004,,5\n00005,2099-01-01,5\n00006,2024-01-03,\n00007,2024-01-03,0\n"
    )
    result = _side(tmp_path, nps=body)
    assert result.report["nps_table"]["quarantined_by_reason"] == {
        "future_date": 1,
        "missing_date": 1,
        "missing_score": 1,
        "non_numeric_score": 1,
        "score_out_of_range": 2,
    }
    assert result.nps["nps_score"].tolist() == [9, 9, 0]
    assert result.report["nps_table"]["rows_read"] == 9


def test_too_many_bad_customer_rows_fail_the_stage(tmp_path):
    with pytest.raises(DataCheckFailed, match="customers"):
        _side(tmp_path, customers="x,bad,web,n\n,2024-01-01,web,n\n", max_quarantine_share=0.4)


def test_missing_side_table_file_names_its_own_params_key(tmp_path):
    with pytest.raises(ChurnError, match="fix ingest.nps.source"):
        run(tmp_path, write_csv(tmp_path, TX), nps={"source": str(tmp_path / "nps.csv")})
