"""Malformed-input corpus: every broken export gives a clear error or the right quarantine counts."""

from __future__ import annotations

import gzip

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from churn.errors import ChurnError
from churn.ingest.clean import _repeated_rows
from support.ingest_support import HEADER, ingest_params, reasons, run, write_csv

GOOD = "00001,a,2024-01-01 10:00:00,10.00\n00002,b,2024-01-02 11:00:00,20.50\n"


def _error(tmp_path, source, **overrides) -> str:
    with pytest.raises(ChurnError) as caught:
        run(tmp_path, source, **overrides)
    return str(caught.value)


# --------------------------------------------------------------------------- file-level problems
def test_empty_file_is_an_error_naming_the_file(tmp_path):
    path = tmp_path / "tx.csv"
    path.write_bytes(b"")
    message = _error(tmp_path, path)
    assert str(path) in message and "empty" in message


def test_header_only_file_is_an_error_not_an_empty_table(tmp_path):
    message = _error(tmp_path, write_csv(tmp_path, ""))
    assert "no data rows" in message


def test_missing_required_column_names_column_key_and_columns_present(tmp_path):
    path = write_csv(tmp_path, "00001,a,2024-01-01,1\n", header="customer,order_id,when,amount\n")
    message = _error(tmp_path, path)
    assert "'ordered_at'" in message
    assert "ingest.columns.timestamp" in message
    assert "'when'" in message  # lists what the file has


def test_misspelt_column_mapping_suggests_the_close_name(tmp_path):
    message = _error(tmp_path, write_csv(tmp_path, GOOD), columns={"amount": "ammount"})
    assert "did you mean 'amount'" in message


def test_column_mapping_with_wrong_case_says_names_are_case_sensitive(tmp_path):
    message = _error(tmp_path, write_csv(tmp_path, GOOD), columns={"amount": "Amount"})
    assert "case-sensitive" in message


def test_wrong_delimiter_says_so(tmp_path):
    path = write_csv(tmp_path, "00001;a;2024-01-01;1\n", header=HEADER.replace(",", ";"))
    message = _error(tmp_path, path)
    assert "delimiter" in message


def test_semicolon_file_reads_when_delimiter_is_detected(tmp_path):
    path = write_csv(tmp_path, "00001;a;2024-01-01;1\n", header=HEADER.replace(",", ";"))
    result = run(tmp_path, path, csv={"delimiter": None})
    assert result.transactions["customer_id"].tolist() == ["00001"]


def test_corrupted_gzip_is_an_error_asking_for_a_new_export(tmp_path):
    data = gzip.compress((HEADER + GOOD * 2000).encode())
    path = tmp_path / "tx.csv.gz"
    path.write_bytes(data[: len(data) // 2])
    message = _error(tmp_path, path)
    assert str(path) in message and "export it again" in message


def test_unbalanced_quote_is_an_error_pointing_at_quotes(tmp_path):
    body = '00001,a,2024-01-01 10:00:00,1\n00002,"b,2024-01-02 10:00:00,2\n00003,c,2024-01-03,3\n'
    message = _error(tmp_path, write_csv(tmp_path, body))
    assert "quote" in message


def test_non_utf8_file_is_an_error_naming_the_encoding_setting(tmp_path):
    path = tmp_path / "tx.csv"
    path.write_bytes((HEADER + "00001,caf\xe9,2024-01-01,1\n").encode("latin-1"))
    message = _error(tmp_path, path)
    assert "ingest.csv.encoding" in message


def test_latin1_file_reads_with_the_encoding_set(tmp_path):
    path = tmp_path / "tx.csv"
    path.write_bytes((HEADER + "00001,caf\xe9,2024-01-01,1\n").encode("latin-1"))
    result = run(tmp_path, path, csv={"encoding": "latin-1"})
    assert result.transactions["transaction_id"].tolist() == ["caf\xe9"]


def test_cp1252_file_is_transcoded(tmp_path):
    path = tmp_path / "tx.csv"
    path.write_bytes((HEADER + "00001,\u20ac1,2024-01-01,1\n").encode("cp1252"))
    result = run(tmp_path, path, csv={"encoding": "cp1252"})
    assert result.transactions["transaction_id"].tolist() == ["\u20ac1"]


def test_utf8_bom_does_not_hide_the_first_column(tmp_path):
    path = write_csv(tmp_path, GOOD, header="\ufeff" + HEADER)
    result = run(tmp_path, path)
    assert result.transactions["customer_id"].tolist() == ["00001", "00002"]


def test_missing_source_is_an_error(tmp_path):
    assert "not found" in _error(tmp_path, tmp_path / "nope.csv")


# --------------------------------------------------------------------------- malformed lines
def test_truncated_last_line_is_quarantined_as_malformed(tmp_path):
    result = run(tmp_path, write_csv(tmp_path, GOOD + "00003,c,2024-01-0"))
    assert reasons(result) == {"malformed_line": 1}
    assert result.report["rows_clean"] == 2
    assert result.quarantine["source_row"].tolist() == [3]


def test_line_with_too_many_fields_is_quarantined_and_later_rows_keep_their_numbers(tmp_path):
    body = "00001,a,2024-01-01,1\n00002,b,2024-01-02,2,extra\n00003,c,2024-01-03,oops\n"
    result = run(tmp_path, write_csv(tmp_path, body))
    assert reasons(result) == {"malformed_line": 1, "non_numeric_amount": 1}
    by_reason = result.quarantine.set_index("reason")["source_row"]
    assert by_reason["malformed_line"] == 2
    assert by_reason["non_numeric_amount"] == 3  # data row 3 = line 4 of the file


def test_quoted_newlines_stay_inside_their_field(tmp_path):
    body = '00001,"a\nb",2024-01-01 10:00:00,1\n00002,c,2024-01-02 10:00:00,2\n'
    result = run(tmp_path, write_csv(tmp_path, body))
    assert result.transactions["transaction_id"].tolist() == ["a\nb", "c"]
    assert result.report["quarantined"] == 0


# --------------------------------------------------------------------------- row-level problems
def test_wrong_types_in_amount_are_quarantined_with_the_value(tmp_path):
    body = GOOD + "00003,c,2024-01-03,abc\n00004,d,2024-01-03,\n"
    result = run(tmp_path, write_csv(tmp_path, body))
    assert reasons(result) == {"missing_amount": 1, "non_numeric_amount": 1}
    detail = result.quarantine.set_index("reason").loc["non_numeric_amount", "detail"]
    assert "'abc'" in detail and "amount" in detail
    assert result.quarantine.set_index("reason").loc["non_numeric_amount", "amount"] == "abc"


def test_nan_and_infinite_amounts_are_quarantined(tmp_path):
    body = "".join(
        f"0000{i},x{i},2024-01-01,{v}\n" for i, v in enumerate(["NaN", "inf", "-Infinity", "nan"])
    )
    result = run(tmp_path, write_csv(tmp_path, GOOD + body))
    assert reasons(result) == {"non_finite_amount": 4}


def test_missing_and_whitespace_customer_ids(tmp_path):
    body = ",a,2024-01-01,1\n   ,b,2024-01-01,1\n 00042 ,c,2024-01-01,1\n"
    result = run(tmp_path, write_csv(tmp_path, body))
    assert reasons(result) == {"missing_customer_id": 2}
    assert result.transactions["customer_id"].tolist() == ["00042"]
    assert result.report["customer_ids_trimmed"] == 1


def test_leading_zero_ids_stay_strings(tmp_path):
    body = "007,a,2024-01-01,1\n0007,b,2024-01-01,1\n7,c,2024-01-01,1\n"
    result = run(tmp_path, write_csv(tmp_path, body))
    assert sorted(result.transactions["customer_id"]) == ["0007", "007", "7"]
    assert result.report["customers"] == 3


def test_formula_strings_in_customer_ids_are_quarantined(tmp_path):
    body = '"=HYPERLINK(""http://x"")",a,2024-01-01,1\n@SUM(A1),b,2024-01-01,1\n+1,c,2024-01-01,1\n'
    result = run(tmp_path, write_csv(tmp_path, GOOD + body))
    assert reasons(result) == {"formula_customer_id": 3}
    assert "formula" in result.quarantine["detail"].iloc[0]


def test_future_dates_are_quarantined_against_reject_after(tmp_path):
    body = GOOD + "00003,c,2024-06-01 00:00:01,1\n00004,d,2024-05-31 23:59:59,1\n"
    result = run(tmp_path, write_csv(tmp_path, body), reject_after="2024-06-01 00:00:00")
    assert reasons(result) == {"future_timestamp": 1}
    assert result.report["rows_clean"] == 3


def test_future_dates_default_to_the_run_time(tmp_path):
    body = GOOD + "00003,c,2099-01-01 00:00:00,1\n"
    result = run(tmp_path, write_csv(tmp_path, body))
    assert reasons(result) == {"future_timestamp": 1}


def test_zero_amounts_are_kept_and_counted_refunds_kept(tmp_path):
    body = GOOD + "00003,c,2024-01-03,0\n00003,d,2024-01-04,-5.5\n00003,e,2024-01-05,0.00\n"
    result = run(tmp_path, write_csv(tmp_path, body))
    assert result.report["zero_amounts_kept"] == 2
    assert result.report["refunds_kept"] == 1
    assert result.report["rows_clean"] == 5


def test_thousands_separators_are_quarantined_with_a_hint_unless_configured(tmp_path):
    body = '00001,a,2024-01-01,"1,234.50"\n00002,b,2024-01-01,2\n'
    strict = run(tmp_path, write_csv(tmp_path, body))
    assert reasons(strict) == {"non_numeric_amount": 1}
    assert "ingest.csv.thousands" in strict.quarantine["detail"].iloc[0]
    configured = run(tmp_path, write_csv(tmp_path, body), csv={"thousands": ","})
    assert configured.transactions["amount"].tolist() == [1234.5, 2.0]


def test_decimal_comma_amounts(tmp_path):
    body = '00001,a,2024-01-01,"12,50"\n00002,b,2024-01-01,"1.234,50"\n00003,c,2024-01-01,7\n'
    plain = run(tmp_path, write_csv(tmp_path, body), csv={"decimal": ","})
    assert reasons(plain) == {"non_numeric_amount": 1}  # 1.234,50 is ambiguous without thousands
    grouped = run(tmp_path, write_csv(tmp_path, body), csv={"decimal": ",", "thousands": "."})
    assert grouped.transactions["amount"].tolist() == [12.5, 1234.5, 7.0]


# --------------------------------------------------------------------------- dates and time zones
def test_mixed_time_zones_convert_to_local_wall_clock(tmp_path):
    body = (
        "00001,a,2024-03-01T10:00:00+01:00,1\n"
        "00001,b,2024-03-01T09:00:00Z,1\n"
        "00001,c,2024-03-01 10:00:00,1\n"  # naive: already Berlin time
        "00001,d,2024-07-01 10:00:00-04:00,1\n"  # summer: Berlin is UTC+2
    )
    result = run(tmp_path, write_csv(tmp_path, body))
    clean = result.transactions
    stamps = dict(zip(clean["transaction_id"], clean["timestamp"], strict=True))
    assert stamps["a"] == stamps["b"] == stamps["c"] == pd.Timestamp("2024-03-01 10:00:00")
    assert stamps["d"] == pd.Timestamp("2024-07-01 16:00:00")
    assert result.report["timestamps_with_offset"] == 3


def test_date_is_the_local_calendar_date_after_conversion(tmp_path):
    body = "00001,a,2024-01-01T23:30:00Z,1\n"  # 00:30 on 2 January in Berlin
    result = run(tmp_path, write_csv(tmp_path, body))
    assert str(result.transactions["date"].iloc[0]) == "2024-01-02"


def test_day_first_dates_parse_with_dayfirst(tmp_path):
    body = "00001,a,03/04/2024 10:00,1\n00001,b,13/04/2024,1\n"
    result = run(tmp_path, write_csv(tmp_path, body), dayfirst=True)
    assert result.transactions["timestamp"].tolist() == [
        pd.Timestamp("2024-04-03 10:00"),
        pd.Timestamp("2024-04-13 00:00"),
    ]


def test_day_first_dates_without_dayfirst_are_quarantined_not_swapped(tmp_path):
    body = "00001,a,03/04/2024 10:00,1\n00001,b,13/04/2024,1\n"
    result = run(tmp_path, write_csv(tmp_path, body))
    assert reasons(result) == {"unparseable_timestamp": 1}
    assert result.transactions["timestamp"].tolist() == [pd.Timestamp("2024-03-04 10:00")]
    assert "ingest.dayfirst" in result.quarantine["detail"].iloc[0]


def test_explicit_timestamp_format(tmp_path):
    body = "00001,a,31.12.2024 23:15,1\n00001,b,2024-12-31 23:15,1\n"
    result = run(tmp_path, write_csv(tmp_path, body), timestamp_format="%d.%m.%Y %H:%M")
    assert reasons(result) == {"unparseable_timestamp": 1}
    assert result.transactions["timestamp"].tolist() == [pd.Timestamp("2024-12-31 23:15")]


def test_nonexistent_local_time_in_the_spring_gap_is_kept_as_written(tmp_path):
    result = run(tmp_path, write_csv(tmp_path, "00001,a,2024-03-31 02:30:00,1\n"))
    assert result.transactions["timestamp"].tolist() == [pd.Timestamp("2024-03-31 02:30:00")]


# --------------------------------------------------------------------------- duplicates
def test_identical_rows_with_one_transaction_id_are_duplicates_removed_and_counted(tmp_path):
    body = GOOD + "00001,a,2024-01-01 10:00:00,10.00\n00001,a,2024-01-01T09:00:00Z,10\n"
    result = run(tmp_path, write_csv(tmp_path, body))
    assert result.report["duplicates_removed"] == 2  # same values (09:00Z is 10:00 in Berlin)
    assert result.report["reused_transaction_ids"] == 0
    assert sorted(result.transactions["transaction_id"]) == ["a", "b"]


def test_lines_of_one_order_share_an_id_and_are_all_kept(tmp_path):
    body = (
        "00001,a,2024-01-01 10:00:00,10.00\n00001,a,2024-01-01 10:00:00,4.50\n"
        "00001,a,2024-01-01 10:00:00,-2\n00002,b,2024-01-02 11:00:00,20.50\n"
    )
    result = run(tmp_path, write_csv(tmp_path, body))
    assert result.report["duplicates_removed"] == 0 and result.report["quarantined"] == 0
    assert result.report["line_item_rows"] == 3
    assert sorted(result.transactions["amount"]) == [-2.0, 4.5, 10.0, 20.5]


def test_an_id_reused_by_another_customer_or_date_is_quarantined_never_dropped(tmp_path):
    body = GOOD + "00003,b,2024-01-09,99\n00001,c,2024-01-03,1\n00001,c,2024-02-03,1\n"
    result = run(tmp_path, write_csv(tmp_path, body))
    assert result.report["duplicates_removed"] == 0
    assert reasons(result) == {"reused_transaction_id": 4}  # every row of ids b and c
    assert result.report["reused_transaction_ids"] == 2
    assert result.transactions["transaction_id"].tolist() == ["a"]
    assert set(result.quarantine["transaction_id"]) == {"b", "c"}
    detail = result.quarantine["detail"].iloc[0]
    assert "'order_id'" in detail and "ingest.columns.transaction_id" in detail
    assert "ingest.columns.transaction_id" in result.report["warnings"][0]


def test_ids_restarting_per_store_fail_the_gate_with_the_line_id_hint(tmp_path):
    # 1,000 real orders whose numbers restart: id i % 500, another customer each time
    body = "".join(
        f"{i:05d},{i % 500},2024-01-{1 + i % 28:02d} 10:00:00,{1 + i % 7}\n" for i in range(1000)
    )
    message = _error(tmp_path, write_csv(tmp_path, body), max_quarantine_share=0.05)
    assert "reused_transaction_id: 1000" in message
    assert "map ingest.columns.transaction_id to a line or unique id, or set it to null" in message
    kept = run(tmp_path, write_csv(tmp_path, body), columns={"transaction_id": None})
    assert kept.report["rows_clean"] == 1000


def test_bad_first_copy_does_not_hide_the_good_second_copy(tmp_path):
    body = "00001,a,not a date,1\n00001,a,2024-01-01,1\n"
    result = run(tmp_path, write_csv(tmp_path, body))
    assert reasons(result) == {"unparseable_timestamp": 1}
    assert result.report["duplicates_removed"] == 0
    assert result.report["rows_clean"] == 1


def test_unique_transaction_ids_keep_every_valid_row_and_count_no_repeats(tmp_path):
    # an id shared only with a quarantined row is unique among the valid rows
    body = GOOD + "00003,c,2024-01-03 09:00:00,7\n00004,a,never,3\n"
    result = run(tmp_path, write_csv(tmp_path, body))
    assert reasons(result) == {"unparseable_timestamp": 1}
    assert result.report["duplicates_removed"] == 0
    assert result.report["reused_transaction_ids"] == 0
    assert result.report["line_item_rows"] == 0
    assert result.transactions["transaction_id"].tolist() == ["a", "b", "c"]


def test_reused_resent_and_line_item_ids_in_one_export_are_each_handled_as_alone(tmp_path):
    body = (
        GOOD  # a and b unique
        + "00003,r,2024-01-05 10:00:00,5\n00004,r,2024-01-05 10:00:00,5\n"  # reused by 2 customers
        + "00005,s,2024-01-06 10:00:00,6\n00005,s,2024-01-06 10:00:00,6\n"  # re-sent row
        + "00005,s,2024-01-06 10:00:00,6\n"  # and again
        + "00006,l,2024-01-07 10:00:00,1\n00006,l,2024-01-07 10:00:00,2\n"  # an order's lines
    )
    result = run(tmp_path, write_csv(tmp_path, body))
    assert reasons(result) == {"reused_transaction_id": 2}
    assert result.report["reused_transaction_ids"] == 1
    assert result.report["duplicates_removed"] == 2
    assert result.report["line_item_rows"] == 2
    assert result.report["rows_clean"] == 5
    assert sorted(result.transactions["transaction_id"]) == ["a", "b", "l", "l", "s"]
    assert sorted(result.quarantine["source_row"]) == [3, 4]


def test_repeated_rows_is_none_only_when_every_valid_id_is_unique():
    con = duckdb.connect()
    con.execute(
        "CREATE TEMP TABLE typed AS SELECT * FROM (VALUES "
        "('x', NULL), ('x', 'unparseable_timestamp'), ('y', NULL), (NULL, NULL), (NULL, NULL)"
        ") t(__tx, __reason)"
    )
    assert _repeated_rows(con, "typed") is None  # x repeats only with a quarantined row
    con.execute("INSERT INTO typed VALUES ('y', NULL)")
    repeated = _repeated_rows(con, "typed")
    assert con.execute(f"SELECT __tx FROM {repeated}").fetchall() == [("y",), ("y",)]


def test_exact_duplicates_without_transaction_id_are_kept_and_counted(tmp_path):
    body = "00001,a,2024-01-01 10:00,5\n00001,b,2024-01-01 10:00,5\n00001,c,2024-01-01 10:00,6\n"
    columns = {"transaction_id": None}
    kept = run(tmp_path, write_csv(tmp_path, body), columns=columns)
    assert kept.report["exact_duplicates"] == 1
    assert kept.report["rows_clean"] == 3 and kept.report["duplicates_removed"] == 0
    assert kept.transactions["transaction_id"].isna().all()
    dropped = run(tmp_path, write_csv(tmp_path, body), columns=columns, drop_exact_duplicates=True)
    assert dropped.report["rows_clean"] == 2 and dropped.report["duplicates_removed"] == 1


# --------------------------------------------------------------------------- Parquet sources
def _parquet(path, **columns):
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns), path)
    return path


def test_parquet_folder_with_a_file_missing_a_column_names_that_file(tmp_path):
    folder = tmp_path / "export"
    _parquet(
        folder / "part-0.parquet", customer=["1"], order_id=["a"], ordered_at=["2024-01-01"],
        amount=["1"],
    )  # fmt: skip
    bad = _parquet(
        folder / "part-1.parquet", customer=["2"], order_id=["b"], ordered_at=["2024-01-02"]
    )
    message = _error(tmp_path, folder)
    assert str(bad) in message and "'amount'" in message


def test_parquet_folder_with_mixed_column_types_is_united(tmp_path):
    folder = tmp_path / "export"
    _parquet(
        folder / "part-0.parquet", customer=["1"], order_id=["a"], ordered_at=["2024-01-01"],
        amount=["1.5"],
    )  # fmt: skip
    _parquet(
        folder / "part-1.parquet", customer=["2"], order_id=["b"], ordered_at=["2024-01-02"],
        amount=[2.5],
    )  # fmt: skip
    result = run(tmp_path, folder)
    assert result.transactions["amount"].tolist() == [1.5, 2.5]
    assert result.report["files"] == 2


def test_parquet_with_typed_columns_and_utc_timestamps(tmp_path):
    stamps = pa.array([1_704_103_200_000_000], type=pa.timestamp("us", tz="UTC"))  # 10:00 UTC
    path = _parquet(
        tmp_path / "tx.parquet", customer=pa.array(["00001"]), order_id=["a"], ordered_at=stamps,
        amount=pa.array([3.25]),
    )  # fmt: skip
    result = run(tmp_path, path)
    assert result.transactions["timestamp"].tolist() == [pd.Timestamp("2024-01-01 11:00:00")]


def test_parquet_integer_customer_ids_are_strings_with_a_warning(tmp_path):
    path = _parquet(
        tmp_path / "tx.parquet", customer=[1, 22], order_id=["a", "b"],
        ordered_at=["2024-01-01", "2024-01-02"], amount=[1.0, 2.0],
    )  # fmt: skip
    result = run(tmp_path, path)
    assert result.transactions["customer_id"].tolist() == ["1", "22"]
    assert "leading zeros" in result.report["warnings"][0]


def test_parquet_epoch_integer_timestamps_are_an_error_naming_the_column(tmp_path):
    path = _parquet(
        tmp_path / "tx.parquet", customer=["1"], order_id=["a"], ordered_at=[1704103200],
        amount=[1.0],
    )  # fmt: skip
    message = _error(tmp_path, path)
    assert "'ordered_at'" in message and "BIGINT" in message


def test_corrupted_parquet_is_an_error(tmp_path):
    path = tmp_path / "tx.parquet"
    path.write_bytes(b"PAR1 this is not parquet")
    assert "Parquet" in _error(tmp_path, path)


# --------------------------------------------------------------------------- the quarantine gate
def test_quarantine_share_above_the_limit_fails_and_writes_nothing(tmp_path):
    body = GOOD + "00003,c,never,1\n"
    out = tmp_path / "out"
    out.mkdir()
    (out / "transactions.parquet").write_bytes(b"previous run")
    message = _error(tmp_path, write_csv(tmp_path, body), max_quarantine_share=0.2)
    assert "unparseable_timestamp: 1" in message and "max_quarantine_share" in message
    assert (out / "transactions.parquet").read_bytes() == b"previous run"
    assert not (out / "quarantine.parquet").exists()


def test_output_schema_does_not_depend_on_the_data(tmp_path):
    run(tmp_path, write_csv(tmp_path, GOOD))  # no nulls anywhere, nothing quarantined
    for name in ("transactions", "quarantine", "customers", "nps"):
        schema = pq.read_schema(tmp_path / "out" / f"{name}.parquet")
        assert all(field.nullable for field in schema), name


def test_csv_folder_numbers_rows_per_file_around_malformed_lines(tmp_path):
    folder = tmp_path / "export"
    folder.mkdir()
    write_csv(folder, "00001,a,2024-01-01,1\n00002,b,2024-01-02,2\n", name="part-1.csv")
    second = write_csv(
        folder,
        "00003,c,2024-01-03,3\n00004,d,2024-01-04,4,x\n00005,e,2024-01-05,4,y\n00006,f,oops,6\n",
        name="part-2.csv",
    )
    result = run(tmp_path, folder)
    assert result.report["files"] == 2 and result.report["rows_read"] == 6
    quarantine = result.quarantine.set_index("source_row")
    assert set(quarantine["source_file"]) == {str(second)}
    assert quarantine["reason"].to_dict() == {
        2: "malformed_line",
        3: "malformed_line",
        4: "unparseable_timestamp",
    }


def test_zone_names_convert_and_am_pm_stays_local(tmp_path):
    body = (
        "00001,a,2024-01-01 10:00:00 UTC,1\n"
        "00001,b,2024-01-01 10:00:00 Europe/London,1\n"
        "00001,c,01/02/2024 10:00 PM,1\n"
    )
    result = run(tmp_path, write_csv(tmp_path, body))
    stamps = dict(
        zip(result.transactions["transaction_id"], result.transactions["timestamp"], strict=True)
    )
    assert stamps["a"] == stamps["b"] == pd.Timestamp("2024-01-01 11:00:00")
    assert stamps["c"] == pd.Timestamp("2024-01-02 22:00:00")
    assert result.report["timestamps_with_offset"] == 2


# --------------------------------------------------------------------------- control characters
@pytest.mark.parametrize(
    "bad", ["000\x071", "0000\x001", "00\x1b[31m1", "0001\x0b", "00\x7f01", "0\x8501"]
)
def test_customer_ids_with_control_characters_are_quarantined_never_altered(tmp_path, bad):
    body = f'00001,a,2024-01-01 10:00:00,1\n"{bad}",b,2024-01-02 10:00:00,2\n'
    path = tmp_path / "tx.csv"
    path.write_bytes((HEADER + body).encode("utf-8"))
    result = run(tmp_path, path)
    assert reasons(result) == {"control_character_customer_id": 1}
    assert result.transactions["customer_id"].tolist() == ["00001"]  # '00001' stays '00001'
    assert result.quarantine["customer_id"].tolist() == [bad]  # kept as it came
    assert "control character U+00" in result.quarantine["detail"].iloc[0]


def test_side_table_customer_ids_with_control_characters_are_quarantined(tmp_path):
    customers = tmp_path / "customers.csv"
    customers.write_text("customer,signup_date\n00001,2024-01-01\n0000\x072,2024-01-01\n")
    nps = tmp_path / "nps.csv"
    nps.write_text("customer,answered_at,score\n00001,2024-01-05,9\n000\x1f1,2024-01-05,3\n")
    result = run(
        tmp_path,
        write_csv(tmp_path, GOOD),
        customers={
            "source": str(customers),
            "columns": {"customer_id": "customer", "channel": None, "region": None},
        },
        nps={"source": str(nps), "columns": {"customer_id": "customer"}},
    )
    assert result.report["customers_table"]["quarantined_by_reason"] == {
        "control_character_customer_id": 1
    }
    assert result.report["nps_table"]["quarantined_by_reason"] == {
        "control_character_customer_id": 1
    }
    assert result.customers["customer_id"].tolist() == ["00001"]
    assert result.nps["customer_id"].tolist() == ["00001"]


# --------------------------------------------------------------------------- values beyond limits
def test_amounts_beyond_the_limit_are_quarantined_before_they_overflow_features(tmp_path):
    body = GOOD + "00003,c,2024-01-03,1e15\n00004,d,2024-01-03,-2.5e12\n00005,e,2024-01-03,1e12\n"
    result = run(tmp_path, write_csv(tmp_path, body))
    assert reasons(result) == {"amount_out_of_range": 2}
    assert sorted(result.transactions["amount"]) == [10.0, 20.5, 1e12]
    detail = result.quarantine["detail"].iloc[0]
    assert "'1e15'" in detail and "ingest.limits.max_abs_amount" in detail
    lowered = run(tmp_path, write_csv(tmp_path, body), limits={"max_abs_amount": 100})
    assert reasons(lowered) == {"amount_out_of_range": 3}


def test_amount_limit_cannot_be_set_beyond_what_features_can_sum():
    with pytest.raises(ChurnError, match="max_abs_amount"):
        ingest_params("x.csv", limits={"max_abs_amount": 1e15})


def test_dates_before_the_minimum_are_quarantined(tmp_path):
    body = GOOD + (
        "00003,c,0000-01-01 10:00:00,1\n00004,d,-0001-06-01,1\n00005,e,0001-01-01,1\n"
        "00006,f,1899-12-31 23:59:59,1\n00007,g,1900-01-01,1\n"
    )
    result = run(tmp_path, write_csv(tmp_path, body))
    assert reasons(result) == {"timestamp_out_of_range": 4}
    assert "ingest.limits.min_date 1900-01-01" in result.quarantine["detail"].iloc[0]
    assert result.report["date_min"] == "1900-01-01"


def test_parquet_timestamps_before_year_one_are_quarantined(tmp_path):
    stamps = pa.array([-62_200_000_000_000_000, 1_704_103_200_000_000], type=pa.timestamp("us"))
    path = _parquet(
        tmp_path / "tx.parquet", customer=["00001", "00002"], order_id=["a", "b"],
        ordered_at=stamps, amount=[1.0, 2.0],
    )  # fmt: skip
    result = run(tmp_path, path)
    assert reasons(result) == {"timestamp_out_of_range": 1}
    assert result.transactions["customer_id"].tolist() == ["00002"]


# --------------------------------------------------------------------------- encodings and sizes
@pytest.mark.parametrize("codec", ["utf-16", "utf-16-le", "utf-16-be"])
def test_utf16_file_read_as_utf8_is_an_error_naming_the_encoding_setting(tmp_path, codec):
    path = tmp_path / "tx.csv"
    path.write_bytes((HEADER + GOOD).encode(codec))
    message = _error(tmp_path, path)
    assert str(path) in message and "ingest.csv.encoding: utf-16" in message
    result = run(tmp_path, path, csv={"encoding": "utf-16"}) if codec == "utf-16" else None
    assert result is None or result.transactions["customer_id"].tolist() == ["00001", "00002"]


def test_gzipped_utf16_file_is_recognised_too(tmp_path):
    path = tmp_path / "tx.csv.gz"
    path.write_bytes(gzip.compress((HEADER + GOOD).encode("utf-16")))
    assert "ingest.csv.encoding: utf-16" in _error(tmp_path, path)


def test_a_field_beyond_the_line_limit_names_its_line_and_the_limit(tmp_path):
    lines = GOOD + "00003,c,2024-01-03 10:00:00,3\n"
    big = "00009," + "x" * 3_000_000 + ",2024-01-04 10:00:00,1\n"
    path = write_csv(tmp_path, lines + big + "00004,d,2024-01-05 10:00:00,4\n")
    message = _error(tmp_path, path)
    assert str(path) in message and "line 5 " in message  # header, 3 rows, then the long one
    assert "3,000," in message and "ingest.csv.max_line_bytes = 2,097,152" in message
    result = run(tmp_path, path, csv={"max_line_bytes": 4_000_000})
    assert result.report["rows_clean"] == 5


# --------------------------------------------------------------------------- duplicate columns
def test_csv_header_naming_a_column_twice_is_an_error(tmp_path):
    path = write_csv(tmp_path, "00001,a,2024-01-01,1,2\n", header=HEADER.strip() + ",amount\n")
    message = _error(tmp_path, path)
    assert str(path) in message and "column 'amount' more than once" in message


def test_csv_header_naming_a_column_twice_in_another_case_is_an_error(tmp_path):
    path = write_csv(tmp_path, "00001,a,2024-01-01,1,2\n", header=HEADER.strip() + ",Amount\n")
    message = _error(tmp_path, path)
    assert "'amount' and 'Amount'" in message


def test_parquet_naming_a_column_twice_is_an_error(tmp_path):
    path = tmp_path / "tx.parquet"
    arrays = [pa.array(v) for v in (["00001"], ["a"], ["2024-01-01"], [1.0], [99.0])]
    names = ["customer", "order_id", "ordered_at", "amount", "amount"]
    pq.write_table(pa.Table.from_arrays(arrays, names=names), path)
    message = _error(tmp_path, path)
    assert str(path) in message and "column 'amount' more than once" in message


# --------------------------------------------------------------------------- folders
def test_hidden_and_checkpoint_copies_in_a_folder_are_skipped_and_reported(tmp_path):
    folder = tmp_path / "export"
    (folder / ".ipynb_checkpoints").mkdir(parents=True)
    write_csv(folder, GOOD, name="a.csv")
    write_csv(folder / ".ipynb_checkpoints", GOOD, name="a-checkpoint.csv")
    write_csv(folder, GOOD, name=".~lock.a.csv")
    (folder / "README.txt.md").write_text("notes")
    (folder / "orders.xlsx").write_bytes(b"PK")
    result = run(tmp_path, folder)
    assert result.report["rows_read"] == 2 and result.report["files"] == 1
    skipped = result.report["files_skipped"]
    assert sorted(skipped["hidden"]) == sorted(
        [str(folder / ".ipynb_checkpoints" / "a-checkpoint.csv"), str(folder / ".~lock.a.csv")]
    )
    assert sorted(skipped["other_types"]) == [
        str(folder / "README.txt.md"), str(folder / "orders.xlsx")
    ]  # fmt: skip


def test_files_skipped_are_logged(tmp_path, caplog):
    folder = tmp_path / "export"
    folder.mkdir()
    write_csv(folder, GOOD, name="a.csv")
    (folder / "orders.xlsx").write_bytes(b"PK")
    with caplog.at_level("WARNING"):
        run(tmp_path, folder)
    assert "orders.xlsx" in caplog.text and "1 files skipped" in caplog.text


def test_the_same_table_twice_compressed_and_not_is_an_error_naming_both(tmp_path):
    folder = tmp_path / "export"
    folder.mkdir()
    plain = write_csv(folder, GOOD, name="a.csv")
    packed = folder / "a.csv.gz"
    packed.write_bytes(gzip.compress((HEADER + GOOD).encode()))
    message = _error(tmp_path, folder)
    assert str(plain) in message and str(packed) in message and "twice" in message


# --------------------------------------------------------------------------- damaged Parquet
def _damaged_parquet(path, checksums: bool):
    """Write 300 orders uncompressed and change one order id's bytes inside its data page."""
    table = pa.table(
        {
            "customer": [f"{i:05d}" for i in range(300)],
            "order_id": [f"order{i:04d}" for i in range(300)],
            "ordered_at": ["2024-01-01 10:00:00"] * 300,
            "amount": [1.0] * 300,
        }
    )
    pq.write_table(table, path, compression="none", write_page_checksum=checksums)
    data = path.read_bytes()
    assert data.count(b"order0123") == 1
    path.write_bytes(data.replace(b"order0123", b"order9123"))
    return path


def test_a_damaged_parquet_page_with_a_checksum_is_an_error_naming_the_file(tmp_path):
    path = _damaged_parquet(tmp_path / "tx.parquet", checksums=True)
    message = _error(tmp_path, path)
    assert str(path) in message and "checksum" in message and "export it again" in message


def test_a_damaged_parquet_page_without_checksums_cannot_be_detected(tmp_path):
    # the documented limitation (README, "Damaged Parquet files"): the changed id is read as data
    path = _damaged_parquet(tmp_path / "tx.parquet", checksums=False)
    result = run(tmp_path, path)
    assert "order9123" in set(result.transactions["transaction_id"])


def test_a_parquet_file_that_does_not_decode_is_an_error_naming_the_file(tmp_path):
    path = _parquet(
        tmp_path / "tx.parquet", customer=["00001"] * 500, order_id=[f"o{i}" for i in range(500)],
        ordered_at=["2024-01-01"] * 500, amount=[1.0] * 500,
    )  # fmt: skip
    data = bytearray(path.read_bytes())
    for i in range(100, 300):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    message = _error(tmp_path, path)
    assert str(path) in message and "Parquet" in message


# --------------------------------------------------------------------------- naive and zoned Parquet
def test_a_folder_mixing_naive_and_zoned_parquet_timestamps_reads_each_by_its_own_type(tmp_path):
    folder = tmp_path / "export"
    ten_utc = 1_704_103_200_000_000  # 2024-01-01 10:00:00
    _parquet(
        folder / "part-0.parquet", customer=["00001"], order_id=["naive"],
        ordered_at=pa.array([ten_utc], type=pa.timestamp("us")), amount=[1.0],
    )  # fmt: skip
    _parquet(
        folder / "part-1.parquet", customer=["00002"], order_id=["zoned"],
        ordered_at=pa.array([ten_utc], type=pa.timestamp("us", tz="UTC")), amount=[2.0],
    )  # fmt: skip
    result = run(tmp_path, folder)
    stamps = dict(
        zip(result.transactions["transaction_id"], result.transactions["timestamp"], strict=True)
    )
    assert stamps["naive"] == pd.Timestamp("2024-01-01 10:00:00")  # already Berlin wall clock
    assert stamps["zoned"] == pd.Timestamp("2024-01-01 11:00:00")  # 10:00 UTC is 11:00 in Berlin


# --------------------------------------------------------------------------- volume over runs
def _rows(n: int) -> str:
    return "".join(f"{i:05d},o{i},2024-01-01 10:00:00,1\n" for i in range(n))


def test_an_export_shrinking_step_by_step_fails_by_default(tmp_path):
    first = run(tmp_path, write_csv(tmp_path, _rows(1000)))
    message = _error(tmp_path, write_csv(tmp_path, _rows(100)), history=first.history)
    assert "90% fewer" in message and "ingest.volume.accept" in message


def test_an_export_shrinking_step_by_step_warns_on_every_run_when_set_to_warn(tmp_path):
    history: dict = {}
    for _ in range(4):
        history = run(tmp_path, write_csv(tmp_path, _rows(1000)), history=history).history
    for rows in (100, 10, 10):
        result = run(
            tmp_path, write_csv(tmp_path, _rows(rows)), history=history, volume={"action": "warn"}
        )
        assert result.report["checks"]["volume"]["status"] == "warn", rows
        assert "(1000" in result.report["checks"]["volume"]["message"]
        history = result.history
    accepted = run(
        tmp_path, write_csv(tmp_path, _rows(10)), history=history, volume={"accept": True}
    )
    after = run(tmp_path, write_csv(tmp_path, _rows(10)), history=accepted.history)
    assert after.report["checks"]["volume"]["status"] == "ok"


def test_side_table_dates_before_the_minimum_are_quarantined(tmp_path):
    customers = tmp_path / "customers.csv"
    customers.write_text("customer,signup_date\n00001,2024-01-01\n00002,0000-01-01\n")
    nps = tmp_path / "nps.csv"
    nps.write_text("customer,answered_at,score\n00001,2024-01-05,9\n00001,1066-10-14,3\n")
    result = run(
        tmp_path,
        write_csv(tmp_path, GOOD),
        customers={
            "source": str(customers),
            "columns": {"customer_id": "customer", "channel": None, "region": None},
        },
        nps={"source": str(nps), "columns": {"customer_id": "customer"}},
    )
    for table in ("customers_table", "nps_table"):
        assert result.report[table]["quarantined_by_reason"] == {"date_out_of_range": 1}
    assert "ingest.limits.min_date" in " ".join(result.quarantine["detail"])


@pytest.mark.parametrize(
    ("head", "kind"),
    [(b"PK\x03\x04\x14\x00\x06\x00", "Excel .xlsx"), (b"PAR1\x15\x04", "Parquet file"),
     (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\x00", "old Excel .xls")],
)  # fmt: skip
def test_a_workbook_or_parquet_file_named_csv_is_an_error_saying_what_it_is(tmp_path, head, kind):
    path = tmp_path / "tx.csv"
    path.write_bytes(head + b"\x00\x01binary rest" * 50)
    message = _error(tmp_path, path)
    assert str(path) in message and kind in message and "not CSV text" in message
