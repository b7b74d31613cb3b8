"""The suppression list as spreadsheets save it, and the check that it suppresses anybody."""

from __future__ import annotations

import pytest

from churn.errors import ChurnError
from churn.score import suppression

CUSTOMERS = ["00123", "00124", "00999", "A-7"]


@pytest.mark.parametrize(
    "data",
    [
        b"customer_id\n00123\n00124\n",
        b"\xef\xbb\xbfcustomer_id\r\n00123\r\n00124\r\n",  # Excel "CSV UTF-8"
        "customer_id\tname\r\n00123\tA\r\n00124\tB\r\n".encode("utf-16"),  # Excel "Unicode Text"
        b"name;customer_id\r\nA;00123\r\nB; 00124 \r\n",  # Excel with a decimal-comma locale
        b'customer_id,note\n"00123","a, b"\n00124,\n\n',
    ],
    ids=["plain", "utf-8 with bom", "utf-16 tab", "semicolon", "quoted with blank line"],
)
def test_suppression_lists_saved_by_spreadsheets_are_read_with_ids_as_written(tmp_path, data):
    path = tmp_path / "suppression.csv"
    path.write_bytes(data)
    assert suppression.read_suppression(path) == ["00123", "00124"]


def test_a_suppression_list_in_another_encoding_names_the_fix(tmp_path):
    path = tmp_path / "suppression.csv"
    path.write_bytes("customer_id\nJürgen\n".encode("cp1252"))
    with pytest.raises(ChurnError, match=r"suppression\.csv: not UTF-8-SIG text.*'CSV UTF-8'"):
        suppression.read_suppression(path)


def test_a_list_matching_its_customers_is_counted_without_a_warning():
    counts, warning = suppression.check_suppression(["00123", "A-7", "gone"], CUSTOMERS)
    assert warning is None
    assert counts == {
        "list_size": 3,
        "matched": 2,
        "unmatched": 1,
        "unmatched_share": 0.3333,
        "match_after_zero_padding": 0,
    }


def test_ids_that_lost_their_leading_zeros_are_named_not_rewritten():
    counts, warning = suppression.check_suppression(
        ["123", "124", "00999"], CUSTOMERS, "suppression.csv"
    )
    assert counts["matched"] == 1 and counts["unmatched"] == 2
    assert counts["match_after_zero_padding"] == 2
    assert warning is not None and warning.startswith("suppression.csv: 2 of 3 ids (67%)")
    assert "'123' → '00123'" in warning and "leading zeros" in warning


def test_a_list_that_mostly_matches_nobody_warns():
    counts, warning = suppression.check_suppression(["x1", "x2", "00123"], CUSTOMERS)
    assert counts["unmatched_share"] == 0.6667 and counts["match_after_zero_padding"] == 0
    assert warning is not None and "2 of 3 ids (67%) match no scored customer" in warning
    assert "check that the file holds this data's customer ids" in warning


def test_an_empty_list_is_fine():
    assert suppression.check_suppression([], CUSTOMERS) == (
        {
            "list_size": 0,
            "matched": 0,
            "unmatched": 0,
            "unmatched_share": 0.0,
            "match_after_zero_padding": 0,
        },
        None,
    )
