"""How the marketing page writes numbers: currency, percentages that never overstate, reasons."""

from __future__ import annotations

import math

import pytest

from churn.app.formatting import money_text, percent_text, points_text, reason_list


@pytest.mark.parametrize(
    ("value", "currency", "digits", "expected"),
    [
        (1234.5, "¤", 2, "¤1,234.50"),
        (1234.5, "€", 0, "€1,234"),
        (1234.5, "EUR", 0, "1,234 EUR"),
        (-12.0, "$", 0, "-$12"),
        (-0.004, "¤", 2, "¤0.00"),  # no "-0.00"
        (5.0, "US$", 2, "US$5.00"),
        (None, "¤", 0, "–"),
        (math.nan, "¤", 0, "–"),
    ],
)
def test_money_carries_its_currency_a_symbol_before_a_code_after(value, currency, digits, expected):
    assert money_text(value, currency, digits) == expected


@pytest.mark.parametrize(
    ("value", "digits", "expected"),
    [
        (1.0, 0, "100%"),
        (0.0, 0, "0%"),
        (0.9996, 0, ">99%"),
        (0.9996, 1, ">99.9%"),
        (0.996, 1, "99.6%"),
        (0.995, 0, ">99%"),
        (0.004, 0, "<1%"),
        (0.0004, 1, "<0.1%"),
        (0.985, 0, "98%"),  # rounds half to even, but never to 100
        (0.42, 1, "42.0%"),
        (-0.0001, 1, ">-0.1%"),
        (None, 1, "–"),
    ],
)
def test_a_share_that_is_not_exactly_0_or_1_never_reads_0_or_100_percent(value, digits, expected):
    assert percent_text(value, digits) == expected


def test_points_are_signed_and_a_tiny_difference_is_not_shown_as_none():
    assert points_text(0.023) == "+2.3 points"
    assert points_text(-0.05) == "-5.0 points"
    assert points_text(0.0) == "+0.0 points"
    assert points_text(0.0002) == "less than +0.1 points"
    assert points_text(-0.0002) == "less than -0.1 points"
    assert points_text(None) == "–"


def test_reasons_are_split_into_a_list_keeping_the_semicolons_inside_one_reason():
    text = "no purchase for 94 days; usually buys every 21 days | spending less | 2 refunds"
    assert reason_list(text) == [
        "no purchase for 94 days; usually buys every 21 days",
        "spending less",
        "2 refunds",
    ]
    assert reason_list("") == [] and reason_list(None) == []
