"""Files marketing opens: list CSV/JSON/Excel bytes with spreadsheet formulas neutralised."""

from __future__ import annotations

import datetime as dt
import io
import json
import re

import numpy as np
import pandas as pd

from churn.columns import CUSTOMER_ID
from churn.errors import ChurnError
from churn.files import csv_bytes, neutralise_formulas

__all__ = ["FORMATS", "csv_bytes", "excel_bytes", "neutralise_formulas", "render_list"]

FORMATS = ("csv", "json", "xlsx")
EXCEL_MAX_CELL = 32_767  # characters Excel keeps in one cell


def render_list(frame: pd.DataFrame, file_format: str) -> bytes:
    """Return the list as CSV, JSON (records) or Excel bytes; spreadsheet formats are neutralised."""
    if file_format == "csv":
        return csv_bytes(frame)
    if file_format == "json":
        records = frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
        text = json.dumps(records, indent=2, ensure_ascii=False, default=_json_value)
        return (text + "\n").encode("utf-8")
    if file_format == "xlsx":
        return excel_bytes(frame)
    raise ChurnError(f"--format {file_format!r}: use one of {', '.join(FORMATS)}")


def excel_bytes(frame: pd.DataFrame, sheet: str = "at_risk") -> bytes:
    """Return the list as an Excel workbook, text cells neutralised like the CSV.

    A cell Excel cannot hold exactly (a control character other than tab and line feed: the file
    format cannot store most of them and turns CR into a line feed; more than 32,767 characters)
    is an error naming the row, column and character. The value is never stripped, replaced or
    cut, because an id that changes on its way to the campaign tool is worse than no file; CSV
    and JSON carry such values exactly.
    """
    from openpyxl.utils.exceptions import IllegalCharacterError

    safe = neutralise_formulas(frame)
    check_excel_cells(safe)
    buffer = io.BytesIO()
    try:
        # openpyxl stores a text cell starting with '=' as a formula: neutralised above
        safe.to_excel(buffer, index=False, sheet_name=sheet)
    except IllegalCharacterError as error:  # a character check_excel_cells does not know yet
        raise ChurnError(
            f"--format xlsx: a cell holds a character Excel cannot store ({error}); "
            "use --format csv or json, which keep every value exactly"
        ) from None
    return buffer.getvalue()


def check_excel_cells(frame: pd.DataFrame) -> None:
    """Raise ChurnError at the first text cell (or column name) Excel cannot store unchanged."""
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    # what openpyxl refuses, and CR, which the workbook's XML reads back as a line feed
    unstorable = re.compile(f"{ILLEGAL_CHARACTERS_RE.pattern}|\r")
    fix = "fix the value at its source, or use --format csv or json, which keep every value exactly"
    for column in frame.columns:
        bad = unstorable.search(str(column))
        if bad:
            raise ChurnError(
                f"--format xlsx: column name {str(column)!r} holds control character "
                f"U+{ord(bad.group()):04X}, which Excel cannot store; {fix}"
            )
        values = frame[column]
        if pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(values.dtype):
            continue
        for row, cell in enumerate(values.to_numpy(dtype=object, na_value=None), start=2):
            if not isinstance(cell, str):
                continue
            bad = unstorable.search(cell)
            if bad:
                raise ChurnError(
                    f"--format xlsx: row {row}{_customer(frame, row)}, column {column!r}: "
                    f"{cell!r} holds control "
                    f"character U+{ord(bad.group()):04X}, which Excel cannot store; {fix}"
                )
            if len(cell) > EXCEL_MAX_CELL:
                raise ChurnError(
                    f"--format xlsx: row {row}{_customer(frame, row)}, column {column!r}: "
                    f"{len(cell):,} characters, more "
                    f"than the {EXCEL_MAX_CELL:,} Excel keeps in a cell; {fix}"
                )


def _customer(frame: pd.DataFrame, row: int) -> str:
    if CUSTOMER_ID not in frame.columns:
        return ""
    return f" (customer {frame[CUSTOMER_ID].iloc[row - 2]!r})"


def _json_value(value: object) -> object:
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")
