"""`churn init` detection: delimiter, encoding, column roles, number and date formats."""

from __future__ import annotations

import pytest

from churn.errors import ChurnError
from churn.init.detect import (
    guess_date,
    map_columns,
    name_score,
    number_format,
    read_table,
    settle_dayfirst,
)
from churn.init.sample import detect_encoding, read_sample
from support.init_data import (
    cdnow_like,
    write_iso_offset,
    write_parquet,
    write_semicolon_dayfirst,
    write_whitespace,
)


def _table(text: str, delimiter: str | None = None):
    return read_table(text, "tx.csv", delimiter)


# --------------------------------------------------------------------------- CDNOW-like variants
def test_cdnow_whitespace_layout_is_read_as_aligned_columns(tmp_path):
    sample = read_sample(str(write_whitespace(cdnow_like(), tmp_path / "CDNOW_master.txt")))
    mapping = map_columns(sample.table, {})
    assert sample.table.delimiter == "whitespace" and sample.encoding == "utf-8"
    assert mapping.columns == {"customer_id": "customer_id", "timestamp": "date",
                               "amount": "dollar_value", "transaction_id": None}  # fmt: skip
    assert mapping.date.fmt == "%Y%m%d"
    assert (mapping.decimal, mapping.thousands) == (".", None)


def test_semicolon_decimal_comma_day_first_export_with_german_header(tmp_path):
    sample = read_sample(str(write_semicolon_dayfirst(cdnow_like(), tmp_path / "tx.csv")))
    mapping = map_columns(sample.table, {})
    assert sample.table.delimiter == ";"
    assert mapping.columns == {"customer_id": "Kunden-Nr", "timestamp": "Datum",
                               "amount": "Betrag", "transaction_id": None}  # fmt: skip
    assert (mapping.date.fmt, mapping.date.dayfirst) == ("%d/%m/%Y", True)
    assert mapping.decimal == ","


def test_iso_timestamps_with_offset_keep_the_auto_format_and_map_the_order_id(tmp_path):
    sample = read_sample(str(write_iso_offset(cdnow_like(), tmp_path / "tx.csv.gz")))
    mapping = map_columns(sample.table, {})
    assert mapping.columns == {"customer_id": "client", "timestamp": "created_at",
                               "amount": "total", "transaction_id": "order_ref"}  # fmt: skip
    assert mapping.date.fmt is None and mapping.date.with_offset == len(sample.table.rows)


def test_parquet_typed_columns_need_no_formats(tmp_path):
    sample = read_sample(str(write_parquet(cdnow_like(), tmp_path / "tx.parquet")))
    mapping = map_columns(sample.table, {})
    assert sample.fmt == "parquet"
    assert mapping.columns == {"customer_id": "customer_id", "timestamp": "ordered_at",
                               "amount": "revenue", "transaction_id": None}  # fmt: skip
    assert mapping.date is None


def test_odd_header_names_month_first_dates():
    table = _table("Cust Ref,Purchase Day,Qty,Paid (EUR)\n00001,01/13/1997,1,11.77\n"
                   "00002,02/01/1997,2,20.00\n00002,03/01/1997,1,9.50\n")  # fmt: skip
    mapping = map_columns(table, {})
    assert mapping.columns["customer_id"] == "Cust Ref"
    assert mapping.columns["amount"] == "Paid (EUR)"  # Qty is a count, not the amount
    assert (mapping.date.fmt, mapping.date.dayfirst) == ("%m/%d/%Y", False)


# --------------------------------------------------------------------------- pieces
def test_delimiter_prefers_a_character_over_whitespace_and_tab_is_found():
    assert _table("a\tb c\tamount\n1\t2 3\t4\n").delimiter == "\t"
    assert _table("id date amount\n1 2024-01-01 3\n").delimiter == "whitespace"


def test_a_file_whose_first_line_is_data_has_no_header_and_is_mapped_by_content():
    lines = "".join(
        f" {i:05d} 199701{1 + i % 28:02d}  {1 + i % 3}  {i % 9}.77\n" for i in range(40)
    )
    table = _table(lines + lines)
    assert not table.has_header and len(table.rows) == 80
    assert table.header == ("column0", "column1", "column2", "column3")
    mapping = map_columns(table, {})
    assert mapping.columns == {"customer_id": "column0", "timestamp": "column1",
                               "amount": "column3", "transaction_id": None}  # fmt: skip


def test_encoding_is_utf8_when_it_decodes_else_cp1252_or_latin1():
    assert detect_encoding("café".encode(), True) == "utf-8"
    assert detect_encoding("café €".encode("cp1252"), True) == "cp1252"
    assert detect_encoding("café".encode("latin-1"), True) == "latin-1"
    assert detect_encoding("x".encode("utf-16"), True) == "utf-16"


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["11,77", "5"], (",", None)),
        (["11.77", "1,234.50"], (".", ",")),
        (["1.234,50", "7,10"], (",", ".")),
        (["12", "1 234,50"], (",", " ")),
        (["12", "30"], (".", None)),
    ],
)
def test_decimal_mark_and_thousands_separator_from_amounts(values, expected):
    assert number_format(values, "tx.csv", "amount", None, None) == expected


def test_amounts_that_read_both_ways_need_decimal_option():
    with pytest.raises(ChurnError, match="'1,500'.*--decimal"):
        number_format(["1,500", "2,250"], "tx.csv", "amount", None, None)
    assert number_format(["1,500"], "tx.csv", "amount", ".", None) == (".", ",")


def test_mixed_decimal_marks_are_an_error():
    with pytest.raises(ChurnError, match="mixes decimal commas and points"):
        number_format(["1,50", "2.25"], "tx.csv", "amount", None, None)


def test_day_first_is_settled_by_a_day_above_12_anywhere_in_the_sample():
    assert guess_date(["03/04/2024", "13/04/2024"]).dayfirst is True
    assert guess_date(["03/04/2024", "04/13/2024"]).dayfirst is False
    assert guess_date(["03/04/2024", "04/03/2024"]).dayfirst is None
    assert guess_date(["03.04.2024 10:15", "13.04.2024 11:00"]).fmt == "%d.%m.%Y %H:%M"


def test_dates_that_read_both_ways_in_the_whole_file_need_a_flag():
    guess = guess_date(["03/04/2024", "04/03/2024"])
    assert settle_dayfirst(guess, "tx.csv", "d", 25, 12).fmt == "%d/%m/%Y"
    assert settle_dayfirst(guess, "tx.csv", "d", 12, 31).fmt == "%m/%d/%Y"
    with pytest.raises(ChurnError, match="--dayfirst or --monthfirst"):
        settle_dayfirst(guess, "tx.csv", "d", 12, 12)


def test_day_first_and_month_first_mixed_in_one_column_is_an_error():
    table = _table("customer,date,amount\n1,13/01/2024,1.5\n2,01/13/2024,2.5\n")
    with pytest.raises(ChurnError, match="mixes day-first and month-first"):
        map_columns(table, {})


def test_header_names_in_several_languages():
    assert name_score("Kundennummer", "customer_id") == 2
    assert name_score("id_cliente", "customer_id") == 2
    assert name_score("customer_name", "customer_id") == 0
    assert name_score("InvoiceDate", "timestamp") == 2
    assert name_score("Montant TTC", "amount") == 2
    assert name_score("number_of_cds", "amount") == 0
    assert name_score("Bestellnummer", "transaction_id") == 2


# --------------------------------------------------------------------------- undecidable inputs
def test_no_date_column_is_an_error_naming_the_columns_and_the_option():
    with pytest.raises(ChurnError, match=r"no column holds dates.*'customer'.*--timestamp COL"):
        map_columns(_table("customer,amount\na1,1.5\na2,2.5\n"), {})


def test_two_candidate_id_columns_is_an_error_asking_to_choose():
    table = _table("a,b,day,amount\nx1,y1,2024-01-01,1.5\nx1,y1,2024-01-02,2.5\n")
    with pytest.raises(
        ChurnError, match=r"2 columns could be the customer id: 'a', 'b'; pass --customer-id"
    ):
        map_columns(table, {})
    assert map_columns(table, {"customer_id": "b"}).columns["customer_id"] == "b"


def test_an_override_naming_a_missing_column_suggests_the_close_one():
    table = _table("customer,date,amount\na1,2024-01-01,1.5\n")
    with pytest.raises(
        ChurnError, match=r"--amount 'amout': no such column \(did you mean 'amount'\?\)"
    ):
        map_columns(table, {"amount": "amout"})


def test_a_date_named_column_with_unknown_format_asks_for_date_format():
    table = _table("customer,date,amount\na1,Jan 01 2024,1.5\na2,Feb 02 2024,2\n")
    with pytest.raises(ChurnError, match="named like a date.*--date-format"):
        map_columns(table, {})
    mapping = map_columns(table, {"timestamp": "date"}, date_format="%b %d %Y")
    assert mapping.date.fmt == "%b %d %Y"


def test_invoice_numbers_of_line_items_are_not_mapped_as_transaction_id():
    table = _table("InvoiceNo,CustomerID,InvoiceDate,Price\n536365,17850,2010-12-01 08:26,2.55\n"
                   "536365,17850,2010-12-01 08:26,3.39\n536366,17850,2010-12-01 08:28,1.85\n")  # fmt: skip
    mapping = map_columns(table, {})
    assert mapping.columns["transaction_id"] is None
    assert mapping.columns["customer_id"] == "CustomerID"
    assert any("InvoiceNo" in note and "line items" in note for note in mapping.notes)


# --------------------------------------------------------------------------- the ingest hook
def test_ingest_reads_column_aligned_text_with_source_rows_and_cp1252(tmp_path):
    from support.ingest_support import run

    path = tmp_path / "tx.txt"
    path.write_bytes(
        " customer  when      amount\r\n 00001  2024-01-02   11.77\r\n"
        " 00002  2024-13-45   12.00\r\n  00003 2024-01-03  \u20ac5.00\r\n".encode("cp1252")
    )
    result = run(
        tmp_path,
        path,
        columns={
            "customer_id": "customer",
            "timestamp": "when",
            "amount": "amount",
            "transaction_id": None,
        },  # fmt: skip
        csv={"delimiter": "whitespace", "encoding": "cp1252"},
    )
    assert result.transactions["customer_id"].tolist() == ["00001"]
    bad = result.quarantine.set_index("source_row")["reason"].to_dict()
    assert bad == {2: "unparseable_timestamp", 3: "non_numeric_amount"}
    assert "€5.00" in result.quarantine.iloc[-1]["detail"]


def test_csv_delimiter_is_one_character_or_whitespace():
    from churn.config import CsvOptions

    assert CsvOptions(delimiter="whitespace").delimiter == "whitespace"
    with pytest.raises(ValueError, match="single character or 'whitespace'"):
        CsvOptions(delimiter="ab")


def test_without_header_hints_the_customer_id_is_the_column_with_many_distinct_values():
    rows = "".join(f"{i:05d};{1 + i % 3};2024-01-{1 + i % 28:02d};{i % 7}.50\n" for i in range(60))
    mapping = map_columns(_table("a;b;c;d\n" + rows + rows), {})
    assert mapping.columns == {"customer_id": "a", "timestamp": "c", "amount": "d",
                               "transaction_id": None}  # fmt: skip


def test_amounts_with_currency_signs_are_an_error_naming_the_column():
    table = _table("customer,date,amount\na1,2024-01-01,$1.50\na2,2024-01-02,$2.50\n")
    with pytest.raises(ChurnError, match=r"'amount' is named like the amount.*'\$1.50'"):
        map_columns(table, {})


def test_of_several_date_columns_the_orders_own_date_is_the_timestamp():
    table = _table("customer,signup_date,order_date,ship_date,amount\n"
                   "a1,2023-01-01,2024-01-02,2024-01-04,1.5\na1,2023-01-01,2024-02-01,2024-02-03,2\n")  # fmt: skip
    assert map_columns(table, {}).columns["timestamp"] == "order_date"
    table = _table("customer,signup_date,ship_date,amount\na1,2023-01-01,2024-01-04,1.5\n")
    with pytest.raises(ChurnError, match="2 columns could be the timestamp.*--timestamp COL"):
        map_columns(table, {})
