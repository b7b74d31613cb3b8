"""Unit tests of the ingest building blocks: params, URLs and identifiers, checks, reject_after."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from churn.config import parse_params
from churn.errors import ChurnError, DataCheckFailed
from churn.ingest import check_freshness, check_quarantine_share, check_volume, mask_url
from churn.ingest.checks import add_run, enforce, previous_run, volume_baseline
from churn.ingest.clean import CleanedTable
from churn.ingest.sql import check_query, parse_table_name, resolve_sql_url
from churn.ingest.stage import local_reject_after
from support.ingest_support import ingest_params


def test_password_in_the_source_url_is_an_error_that_does_not_repeat_it():
    with pytest.raises(ChurnError) as caught:
        parse_params({"ingest": {"source": "postgresql://bob:s3cret@db/x", "sql": {"table": "t"}}})
    assert "password" in str(caught.value)
    assert "s3cret" not in str(caught.value)


@pytest.mark.parametrize(
    "query",
    ["password=s3cret", "PWD=s3cret", "sslpassword=s3cret", "token=s3cret", "Secret=s3cret",
     "access_token=s3cret", "api_key=s3cret", "sslmode=require&client_secret=s3cret"],
)  # fmt: skip
def test_secret_in_the_source_urls_query_string_is_refused_without_repeating_it(query):
    for key in ("", "customers."):
        settings = {"source": f"postgresql://bob@db/x?{query}", "sql": {"table": "t"}}
        if key:
            settings = {"customers": settings}
        with pytest.raises(ChurnError) as caught:
            parse_params({"ingest": settings})
        assert "query string" in str(caught.value) and "password_env" in str(caught.value)
        assert "s3cret" not in str(caught.value)


def test_harmless_query_options_in_the_source_url_are_accepted():
    url = "postgresql://bob@db/x?sslmode=require&passfile=/home/bob/.pgpass&application_name=churn"
    assert parse_params({"ingest": {"source": url, "sql": {"table": "t"}}}).ingest.source == url


def test_sql_source_needs_exactly_one_of_table_or_query():
    with pytest.raises(ChurnError, match="exactly one"):
        parse_params({"ingest": {"source": "postgresql://bob@db/x"}})
    with pytest.raises(ChurnError, match="exactly one"):
        parse_params(
            {
                "ingest": {
                    "source": "postgresql://bob@db/x",
                    "sql": {"table": "t", "query": "select 1"},
                }
            }
        )


def test_table_without_a_sql_source_is_an_error():
    with pytest.raises(ChurnError, match="not a SQL URL"):
        parse_params({"ingest": {"source": "x.csv", "sql": {"table": "t"}}})


def test_unknown_time_zone_is_an_error():
    with pytest.raises(ChurnError, match="IANA"):
        parse_params({"ingest": {"timezone": "Berlin"}})


def test_passthrough_may_not_reuse_a_mapped_or_reserved_name():
    with pytest.raises(ChurnError, match="reserved"):
        parse_params({"ingest": {"passthrough": ["date"]}})


def test_misspelt_ingest_key_is_an_error_naming_it():
    with pytest.raises(ChurnError, match="ingest.dayfrist"):
        parse_params({"ingest": {"dayfrist": True}})


# --------------------------------------------------------------------------- SQL helpers
def test_mask_url_hides_the_password():
    assert mask_url("postgresql://bob:s3cret@db:5432/x") == "postgresql://bob:***@db:5432/x"
    assert mask_url("env:CHURN_DB_URL") == "env:CHURN_DB_URL"


def test_mask_url_hides_secrets_in_the_query_string():
    shown = mask_url(
        "postgresql://bob:pw1@db/x?sslmode=require&PassWord=pw2&sslpassword=pw3&token=pw4"
    )
    assert "pw1" not in shown and "pw2" not in shown and "pw3" not in shown and "pw4" not in shown
    assert "sslmode=require" in shown and "PassWord=***" in shown
    assert mask_url("weird-url://h/x?api_key=pw5&a=1") == "weird-url://h/x?api_key=***&a=1"


def test_password_comes_from_the_named_environment_variable():
    url = resolve_sql_url("postgresql://bob@db/x", "PGPASSWORD", {"PGPASSWORD": "pw"})
    assert url.password == "pw"
    assert url.drivername == "postgresql+psycopg"


def test_whole_url_can_come_from_the_environment():
    url = resolve_sql_url("env:CHURN_DB_URL", "PGPASSWORD", {"CHURN_DB_URL": "sqlite:///x.db"})
    assert url.database == "x.db"


def test_missing_url_variable_is_an_error_naming_it():
    with pytest.raises(ChurnError, match="CHURN_DB_URL is not set"):
        resolve_sql_url("env:CHURN_DB_URL", "PGPASSWORD", {})


@pytest.mark.parametrize(
    "name", ["t; DROP TABLE x", "a.b.c", "t--", '"t"', "1abc", "t where 1=1", ""]
)
def test_table_names_must_be_plain_identifiers(name):
    with pytest.raises(ChurnError, match="plain"):
        parse_table_name(name)


def test_schema_qualified_table_name_is_split():
    assert parse_table_name("sales.orders") == ("sales", "orders")
    assert parse_table_name("orders") == (None, "orders")


def test_query_must_be_a_single_select():
    assert check_query("SELECT * FROM t WHERE x = ';';") == "SELECT * FROM t WHERE x = ';'"
    with pytest.raises(ChurnError, match="more than one statement"):
        check_query("SELECT 1; DROP TABLE t")
    with pytest.raises(ChurnError, match="must be a SELECT"):
        check_query("DELETE FROM t")


# --------------------------------------------------------------------------- checks
def _table(rows_read: int, quarantined: int) -> CleanedTable:
    return CleanedTable(
        "transactions", "", "", rows_read, {"missing_amount": quarantined}, 0,
        {"rows_clean": rows_read - quarantined},
    )  # fmt: skip


def test_quarantine_share_at_the_limit_passes_and_above_fails():
    assert check_quarantine_share(_table(100, 5), 0.05).status == "ok"
    failed = check_quarantine_share(_table(100, 6), 0.05)
    assert failed.status == "fail" and "missing_amount: 6" in failed.message


def test_failed_quarantine_gate_dominated_by_timestamps_points_at_dayfirst():
    table = CleanedTable(
        "transactions", "", "", 100, {"unparseable_timestamp": 58, "missing_customer_id": 2}, 0,
        {"rows_clean": 40},
    )  # fmt: skip
    failed = check_quarantine_share(table, 0.05)
    assert failed.status == "fail"
    assert "ingest.dayfirst" in failed.message and "ingest.timestamp_format" in failed.message


def test_rows_not_conserved_is_an_assertion_error():
    broken = CleanedTable("transactions", "", "", 10, {"missing_amount": 1}, 1, {"rows_clean": 9})
    with pytest.raises(AssertionError, match="not conserved"):
        broken.assert_rows_conserved()


def test_freshness_warns_or_fails_as_configured():
    newest = datetime(2024, 1, 1)
    now = datetime(2024, 1, 11)
    assert check_freshness(newest, now, 30, "fail").status == "ok"
    assert check_freshness(newest, now, 5, "warn").status == "warn"
    assert check_freshness(newest, now, 5, "fail").status == "fail"
    assert check_freshness(newest, now, None, "fail").status == "skipped"


def test_volume_compares_with_the_previous_run_of_the_same_source():
    history = add_run({}, "src", {"rows_read": 1000, "run_at": "yesterday"})
    assert check_volume(400, previous_run(history, "src"), 0.5, "fail").status == "fail"
    assert check_volume(600, previous_run(history, "src"), 0.5, "fail").status == "ok"
    assert check_volume(10, previous_run(history, "other"), 0.5, "fail").status == "skipped"


def test_a_warned_run_never_lowers_the_volume_baseline():
    history = add_run({}, "src", {"rows_read": 1000, "run_at": "day 1", "volume_baseline": True})
    for rows in (100, 10, 1):  # an export shrinking step by step, each run only warned
        result = check_volume(rows, volume_baseline(history, "src", 5), 0.5, "warn")
        assert result.status == "warn" and "1000" in result.message
        history = add_run(history, "src", {"rows_read": rows, "volume_baseline": False})
    assert volume_baseline(history, "src", 5)["rows_read"] == 1000
    assert check_volume(10, volume_baseline(history, "src", 5), 0.5, "fail").status == "fail"


def test_volume_baseline_is_the_median_of_the_last_clean_runs():
    history: dict = {}
    for rows in (5000, 1000, 1100, 900, 1050, 980):  # an old, bigger export drops out
        history = add_run(history, "src", {"rows_read": rows, "run_at": f"r{rows}"})
    baseline = volume_baseline(history, "src", 5)
    assert baseline == {"rows_read": 1000, "runs": 5, "run_at": "r980"}
    assert check_volume(480, baseline, 0.5, "fail").status == "fail"  # a single odd run is no help
    assert volume_baseline(history, "other", 5) is None


def test_an_accepted_volume_drop_passes_with_a_warning():
    result = check_volume(100, {"rows_read": 1000}, 0.5, "fail", accept=True)
    assert result.status == "warn" and "ingest.volume.accept" in result.message


def test_volume_check_fails_by_default():
    assert ingest_params("x.csv").volume.action == "fail"
    assert parse_params({}).ingest.volume.action == "fail"


def test_history_keeps_only_recent_runs():
    history: dict = {}
    for i in range(30):
        history = add_run(history, "src", {"rows_read": i})
    assert len(history["sources"]["src"]) == 20
    assert previous_run(history, "src") == {"rows_read": 29}


def test_enforce_raises_with_every_failed_message():
    a = check_freshness(datetime(2024, 1, 1), datetime(2024, 3, 1), 1, "fail")
    b = check_volume(1, {"rows_read": 100}, 0.5, "fail")
    with pytest.raises(DataCheckFailed) as caught:
        enforce([a, b])
    assert "days old" in str(caught.value) and "fewer" in str(caught.value)


# --------------------------------------------------------------------------- reject_after
def test_reject_after_defaults_to_now_in_the_local_zone():
    params = ingest_params("x.csv")
    assert local_reject_after(params, datetime(2024, 7, 1, 10, tzinfo=UTC)) == datetime(
        2024, 7, 1, 12
    )


def test_reject_after_with_an_offset_is_converted_and_naive_is_local():
    aware = ingest_params("x.csv", reject_after="2024-01-01T00:00:00+00:00")
    naive = ingest_params("x.csv", reject_after="2024-01-01T00:00:00")
    now = datetime(2030, 1, 1, tzinfo=UTC)
    assert local_reject_after(aware, now) == datetime(2024, 1, 1, 1)
    assert local_reject_after(naive, now) == datetime(2024, 1, 1)
