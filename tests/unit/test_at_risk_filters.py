"""The at-risk list's filters and file formats on a hand-built list."""

from __future__ import annotations

import io
import json

import openpyxl
import pandas as pd
import pytest

from churn.errors import ChurnError
from churn.publish.formats import render_list
from churn.publish.lists import filter_list, parse_where


def _list() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "priority": [1, 2, 3, 4, 5],
            "customer_id": pd.array(["05", "01", "03", "02", "04"], dtype="string"),
            "risk_tier": pd.array(["high", "high", "medium", "low", "high"], dtype="string"),
            "expected_value": [500.0, 40.0, 300.0, 900.0, 120.0],
            "value_at_risk": [300.0, 30.0, 90.0, 100.0, 70.0],
            "channel": pd.array(["app", "web", "app", "app", "app"], dtype="string"),
            "reasons": pd.array(["=cmd", "a", "b", "c", "d"], dtype="string"),
        }
    )


def test_filters_combine_and_top_n_applies_last_in_priority_order():
    listed = _list()
    picked = filter_list(listed, tiers=["high"], where={"channel": "app"}, top=1)
    assert picked["customer_id"].tolist() == ["05"]
    picked = filter_list(listed, tiers=["high", "medium"], min_value=100.0)
    assert picked["customer_id"].tolist() == ["05", "03", "04"]
    assert len(filter_list(listed)) == 5


def test_bad_filters_name_the_fix():
    with pytest.raises(ChurnError, match="column=value"):
        parse_where(["channel"])
    with pytest.raises(ChurnError, match="no column 'country'"):
        filter_list(_list(), where={"country": "de"})
    with pytest.raises(ChurnError, match="unknown tier"):
        filter_list(_list(), tiers=["urgent"])


def test_excel_and_json_outputs_are_readable_and_excel_is_neutralised():
    book = openpyxl.load_workbook(io.BytesIO(render_list(_list(), "xlsx")))
    rows = list(book.active.values)
    assert rows[0][:2] == ("priority", "customer_id") and len(rows) == 6
    assert rows[1][6] == "'=cmd"  # text, not a formula
    records = json.loads(render_list(_list(), "json"))
    assert records[0]["customer_id"] == "05" and records[0]["reasons"] == "=cmd"
