"""Files marketing opens: list CSV/JSON/Excel bytes with spreadsheet formulas neutralised."""

from __future__ import annotations

import datetime as dt
import io
import json

import numpy as np
import pandas as pd

from churn.errors import ChurnError

FORMATS = ("csv", "json", "xlsx")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """Return a copy where text cells a spreadsheet would run as formulas start with a quote.

    Only text columns are touched (=, +, -, @, tab, CR at the start); numbers stay numbers.
    """
    out = frame.copy()
    for column in out.columns:
        values = out[column]
        if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            continue
        if not (pd.api.types.is_string_dtype(values) or values.dtype == object):
            continue
        text = values.astype("string")
        risky = text.str.startswith(FORMULA_STARTS).fillna(False).to_numpy(dtype=bool)
        if risky.any():
            text = text.copy()
            text[risky] = "'" + text[risky]
            out[column] = text
    return out


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """Return a list as UTF-8 CSV bytes with formulas neutralised (deterministic)."""
    buffer = io.StringIO()
    neutralise_formulas(frame).to_csv(buffer, index=False, lineterminator="\n")
    return buffer.getvalue().encode("utf-8")


def render_list(frame: pd.DataFrame, file_format: str) -> bytes:
    """Return the list as CSV, JSON (records) or Excel bytes; spreadsheet formats are neutralised."""
    if file_format == "csv":
        return csv_bytes(frame)
    if file_format == "json":
        records = frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
        text = json.dumps(records, indent=2, ensure_ascii=False, default=_json_value)
        return (text + "\n").encode("utf-8")
    if file_format == "xlsx":
        buffer = io.BytesIO()
        # openpyxl stores a text cell starting with '=' as a formula, so neutralise here too
        neutralise_formulas(frame).to_excel(buffer, index=False, sheet_name="at_risk")
        return buffer.getvalue()
    raise ChurnError(f"--format {file_format!r}: use one of {', '.join(FORMATS)}")


def _json_value(value: object) -> object:
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")
