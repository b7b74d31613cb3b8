"""The suppression list: customers never flagged (opted out, contacted recently)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from churn.columns import CUSTOMER_ID
from churn.errors import ChurnError
from churn.ids import check_id_matches

DELIMITERS = (",", ";", "\t")  # Excel writes ';' in locales with a decimal comma, tab as "Text"


def read_suppression(path: str | Path) -> list[str]:
    """Return the customer ids of a suppression list CSV (a `customer_id` column; ids as text).

    Reads what spreadsheets save: UTF-8 with or without a byte-order mark, UTF-16 with one, and
    ',' ';' or tab between columns. Ids are kept as written (only surrounding spaces go).
    """
    path = Path(path)
    if not path.is_file():
        raise ChurnError(
            f"{path}: suppression list not found; create it (a CSV with a customer_id column, "
            "header only when nobody is suppressed) or point the score stage's --suppression "
            "in dvc.yaml elsewhere"
        )
    text = _decode(path, path.read_bytes())
    if not text.strip():
        raise ChurnError(f"{path}: empty file; write at least the header line 'customer_id'")
    header_line = text.splitlines()[0]
    delimiter = next(
        (d for d in DELIMITERS if CUSTOMER_ID in [c.strip() for c in header_line.split(d)]), ","
    )
    header = [column.strip() for column in next(csv.reader([header_line], delimiter=delimiter))]
    if CUSTOMER_ID not in header:
        raise ChurnError(
            f"{path}: no 'customer_id' column (found {header}); name the id column customer_id"
        )
    try:
        table = pacsv.read_csv(
            io.BytesIO(text.encode("utf-8")),
            read_options=pacsv.ReadOptions(column_names=header, skip_rows=1),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(header, pa.string()), strings_can_be_null=False
            ),
        )
    except pa.ArrowInvalid as error:
        raise ChurnError(f"{path}: not a readable CSV ({error})") from None
    ids = pc.unique(pc.utf8_trim_whitespace(table.column(CUSTOMER_ID))).to_pylist()
    return sorted(value for value in ids if value)


def _decode(path: Path, data: bytes) -> str:
    # Excel's "Unicode Text" is UTF-16 (its BOM gives the byte order); its "CSV UTF-8" has a BOM
    utf16 = data.startswith((b"\xff\xfe", b"\xfe\xff"))
    encoding = "utf-16" if utf16 else "utf-8-sig"
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as error:
        byte = data[error.start : error.start + 1]
        raise ChurnError(
            f"{path}: not {encoding.upper()} text (byte {error.start}: {byte!r}); "
            "save the suppression list as 'CSV UTF-8'"
        ) from None


def check_suppression(
    suppressed_ids: Iterable[str], customer_ids: Iterable[str], source: str = "suppression list"
) -> tuple[dict[str, Any], str | None]:
    """Return (counts for reports/score.json, a warning or None) for a suppression list matched
    against the scored customers (`churn.ids.check_id_matches`).

    Customers no longer active are not scored, so a few unmatched ids are expected.
    """
    return check_id_matches(
        suppressed_ids,
        customer_ids,
        source,
        "so they suppress nobody (customers no longer active are not scored)",
        customers="scored customer",
    )
