"""The marketing page's selection: filters parsed from the page, rows selected, pages, suppression."""

from __future__ import annotations

import numpy as np

from churn.app.selection import (
    Filters,
    group_query,
    page_of,
    parse_filters,
    parse_number,
    select,
    suppressed_mask,
)
from support.app_data import example_loaded


def _ids(loaded, rows, group="treatment"):
    columns = loaded.treatment if group == "treatment" else loaded.control
    return columns.frame["customer_id"].iloc[rows].tolist()


def _select(query: list[tuple[str, str]], suppressed=()):
    loaded = example_loaded()
    filters, errors = parse_filters(group_query(query), loaded.choices)
    masks = (
        suppressed_mask(loaded.treatment, suppressed),
        suppressed_mask(loaded.control, suppressed),
    )
    return loaded, select(loaded.treatment, loaded.control, filters, *masks), errors


def test_no_filter_selects_the_whole_list_in_priority_order_with_control_apart():
    loaded, selection, errors = _select([])
    assert errors == []
    assert _ids(loaded, selection.rows) == ["0001", "0002", "0004", "0005", "0107", "0008"]
    assert _ids(loaded, selection.control_rows, "control") == ["0003", "0006"]
    assert selection.count == 6
    # value at risk = probability x value, rounded as published: 273 + 200 + 124 + 180 + 150 + 25
    assert selection.value_at_risk == 952.0


def test_every_filter_applies_to_both_groups():
    query = [("tier", "high"), ("seg_channel", "web"), ("action", "win-back offer")]
    loaded, selection, errors = _select(query)
    assert errors == []
    assert _ids(loaded, selection.rows) == ["0001", "0004"]
    assert _ids(loaded, selection.control_rows, "control") == ["0003"]


def test_several_values_of_one_filter_are_alternatives():
    loaded, selection, _ = _select([("seg_channel", "app"), ("seg_channel", "store")])
    assert _ids(loaded, selection.rows) == ["0002", "0005", "0008"]


def test_main_reason_filter_uses_the_reason_family():
    loaded, selection, _ = _select([("reason", "nps")])
    assert _ids(loaded, selection.rows) == ["0002", "0008"]
    assert _ids(loaded, selection.control_rows, "control") == ["0006"]


def test_ranges_are_inclusive_and_chance_is_in_percent():
    loaded, selection, errors = _select([("chance_min", "45"), ("chance_max", "80")])
    assert errors == []
    assert _ids(loaded, selection.rows) == ["0002", "0004", "0005"]
    loaded, selection, _ = _select([("value_min", "250"), ("value_max", "1,000")])
    assert _ids(loaded, selection.rows) == ["0001", "0002", "0005", "0107"]


def test_customer_search_is_a_literal_case_insensitive_substring():
    loaded, selection, _ = _select([("customer", "010")])
    assert _ids(loaded, selection.rows) == ["0107"]
    # pattern and SQL characters are text to look for, never syntax: nothing matches, no error
    for attempt in ("0.*", "%", "' OR '1'='1", "0001'; DROP TABLE x; --", "{{7*7}}"):
        loaded, selection, errors = _select([("customer", attempt)])
        assert selection.count == 0 and errors == [], attempt


def test_values_the_list_does_not_offer_are_reported_not_matched():
    loaded, selection, errors = _select(
        [("tier", "critical"), ("seg_channel", "fax"), ("seg_nope", "x"), ("value_min", "lots")]
    )
    assert errors == [
        "Risk of leaving: 'critical' is not in this list (choose from High, Medium)",
        "'Nope' is not a column of this list",
        "Channel: 'fax' is not in this list (choose from app, store, web)",
        "Customer value from: 'lots' is not a number",
    ]
    assert selection.count == 6  # the unusable values are dropped (and downloads refuse them)


def test_messages_name_reasons_in_the_words_the_page_shows_not_their_family_names():
    _, selection, errors = _select([("reason", "recency"), ("reason", "churny")])
    assert errors == [
        "Main reason: 'churny' is not in this list (choose from Unhappy in a survey, "
        "Stopped buying (overdue), Spending less)"
    ]
    assert not any(family in errors[0] for family in ("recency", "nps", "spend_trend"))
    assert selection.count == 3  # the offered value is still applied: 0001, 0004, 0107


def test_chance_outside_zero_to_hundred_is_an_error():
    _, _, errors = _select([("chance_min", "120")])
    assert errors == ["Chance of leaving from: give a percentage from 0 to 100"]


def test_suppressed_customers_leave_both_groups_and_are_counted():
    loaded, selection, _ = _select([("tier", "high")], suppressed=("0002", "0003", "9999"))
    assert _ids(loaded, selection.rows) == ["0001", "0004"]
    assert _ids(loaded, selection.control_rows, "control") == []
    assert selection.suppressed == 1  # only treatment rows count as left out of the download


def test_filters_survive_the_round_trip_through_the_query_string():
    loaded = example_loaded()
    filters = Filters(
        tiers=("high",),
        segments=(("channel", ("app", "web")),),
        reasons=("nps",),
        actions=("service call",),
        value_min=100.5,
        value_max=None,
        chance_min=0.25,
        chance_max=0.9,
        customer="00",
    )
    parsed, errors = parse_filters(group_query(filters.query()), loaded.choices)
    assert errors == [] and parsed == filters


def test_pages_are_clamped_to_the_pages_there_are():
    loaded = example_loaded()
    rows = np.arange(6)
    page = page_of(loaded.treatment, rows, 2, size=4)
    assert (page.number, page.pages, page.first, page.last) == (2, 2, 5, 6)
    assert page.frame["customer_id"].tolist() == ["0107", "0008"]
    assert page_of(loaded.treatment, rows, 99, size=4).number == 2
    empty = page_of(loaded.treatment, rows[:0], 1, size=4)
    assert (empty.first, empty.last, empty.pages, len(empty.frame)) == (0, 0, 1, 0)


def test_numbers_typed_on_the_page():
    errors: list[str] = []
    assert parse_number(" 1,200.50 ", "x", errors) == 1200.5
    assert parse_number("1 200", "x", errors) == 1200
    assert parse_number("", "x", errors) is None
    assert parse_number("nan", "Budget", errors) is None
    assert parse_number("1e999", "Budget", errors) is None
    assert errors == ["Budget: 'nan' is not a number", "Budget: '1e999' is not a number"]


def test_a_chance_outside_0_to_100_is_reported_and_not_applied():
    loaded, everyone, _ = _select([])
    for query in ([("chance_min", "150")], [("chance_max", "-5")]):
        loaded, selection, errors = _select(query)
        assert any("give a percentage from 0 to 100" in error for error in errors), query
        assert _ids(loaded, selection.rows) == _ids(loaded, everyone.rows), query
