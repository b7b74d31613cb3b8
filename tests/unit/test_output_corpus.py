"""Every writer of user-facing tables against the hostile-cell corpus: no row split, no formula,
no crash, ids never altered (a leading quote on formula-like text is the only change)."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from churn import files
from churn.errors import ChurnError
from churn.files import write_csv
from churn.publish.formats import csv_bytes, render_list
from churn.publish.record import publish_lists
from support.output_corpus import (
    EXCEL_UNSTORABLE,
    HOSTILE_TEXT,
    spreadsheet_rows,
    would_run_as_formula,
)
from support.publish_checks import NOW
from support.score_data import AS_OF, make_scores


def _frame(value: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": pd.array([value, "00002"], dtype="string"),
            "note": pd.Series([value, "ok"], dtype=object),
            "amount": [-1.5, 2.0],
            "orders": [-3, 4],
            "segment": pd.Categorical([value, "north"]),
        }
    )


def _via_write_csv(frame: pd.DataFrame, tmp_path: Path) -> str:
    write_csv(frame, tmp_path / "table.csv")
    return (tmp_path / "table.csv").read_bytes().decode("utf-8")


# every writer of CSV that people open in a spreadsheet: add new ones here
CSV_WRITERS: dict[str, Callable[[pd.DataFrame, Path], str]] = {
    "publish csv_bytes": lambda frame, tmp_path: csv_bytes(frame).decode("utf-8"),
    "files.write_csv (reports, plots)": _via_write_csv,
    "at-risk --format csv": lambda frame, tmp_path: render_list(frame, "csv").decode("utf-8"),
    "files.csv_text (MLflow evaluation tables)": lambda frame, tmp_path: files.csv_text(frame),
}


def _assert_safe_cell(cell: str, value: str) -> None:
    assert not would_run_as_formula(cell), repr(cell)
    assert cell in (value, "'" + value), (cell, value)  # never altered beyond the quote
    if would_run_as_formula(value):
        assert cell == "'" + value


@pytest.mark.parametrize("case", sorted(HOSTILE_TEXT))
@pytest.mark.parametrize("writer", sorted(CSV_WRITERS))
def test_csv_writers_keep_rows_whole_and_neutralise_formulas(tmp_path, writer, case):
    value = HOSTILE_TEXT[case]
    text = CSV_WRITERS[writer](_frame(value), tmp_path)
    rows = spreadsheet_rows(text)
    assert len(rows) == 3 and all(len(row) == 5 for row in rows), rows
    header, first, second = rows
    assert header == ["customer_id", "note", "amount", "orders", "segment"]
    for cell in (first[0], first[1], first[4]):
        _assert_safe_cell(cell, value)
    assert (float(first[2]), int(first[3])) == (-1.5, -3)  # numbers stay numbers
    assert second == ["00002", "ok", "2.0", "4", "north"]


@pytest.mark.parametrize("case", sorted(HOSTILE_TEXT))
def test_excel_export_neutralises_formulas_or_refuses_what_it_cannot_store(case):
    value = HOSTILE_TEXT[case]
    frame = _frame(value)
    if case in EXCEL_UNSTORABLE or "\r" in value:
        with pytest.raises(ChurnError, match=r"row 2 \(customer .*\), column 'customer_id'"):
            render_list(frame, "xlsx")
        return
    sheet = openpyxl.load_workbook(io.BytesIO(render_list(frame, "xlsx"))).active
    rows = [[cell for cell in row] for row in sheet.iter_rows()]
    assert len(rows) == 3
    assert not [c.coordinate for row in rows for c in row if c.data_type == "f"]
    for cell in (rows[1][0], rows[1][1], rows[1][4]):
        _assert_safe_cell(cell.value, value)
    assert (rows[1][2].value, rows[1][3].value) == (-1.5, -3)


@pytest.mark.parametrize("case", sorted(HOSTILE_TEXT))
def test_published_list_csv_keeps_rows_whole_and_neutralises_formulas(tmp_path, case):
    value = HOSTILE_TEXT[case]
    scores = make_scores(300, seed=1)
    first = scores.index[scores["at_risk"] & (scores["group"] == "treatment")][0]
    scores.loc[first, "customer_id"] = value
    result = publish_lists(scores, tmp_path, now=NOW)
    text = (tmp_path / f"{AS_OF}/at_risk.csv").read_bytes().decode("utf-8")
    rows = spreadsheet_rows(text)
    assert len(rows) == result.manifest["rows"] + 1
    assert len({len(row) for row in rows}) == 1
    column = rows[0].index("customer_id")
    cells = [row[column] for row in rows[1:]]
    assert not [cell for cell in cells if would_run_as_formula(cell)]
    assert value in cells or "'" + value in cells
