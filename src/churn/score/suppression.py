"""The suppression list: customers never flagged (opted out, contacted recently)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from churn.columns import CUSTOMER_ID
from churn.errors import ChurnError


def read_suppression(path: str | Path) -> list[str]:
    """Return the customer ids of a suppression list CSV (a `customer_id` column; ids as text)."""
    import pyarrow.csv as pacsv

    path = Path(path)
    if not path.is_file():
        raise ChurnError(
            f"{path}: suppression list not found; create it (a CSV with a customer_id column, "
            "header only when nobody is suppressed) or point the score stage's --suppression "
            "in dvc.yaml elsewhere"
        )
    try:
        table = pacsv.read_csv(
            path,
            convert_options=pacsv.ConvertOptions(
                column_types={CUSTOMER_ID: pa.string()}, strings_can_be_null=False
            ),
        )
    except pa.ArrowInvalid as error:
        if "Empty CSV file" in str(error):
            raise ChurnError(
                f"{path}: empty file; write at least the header line 'customer_id'"
            ) from None
        raise ChurnError(f"{path}: not a readable CSV ({error})") from None
    if CUSTOMER_ID not in table.column_names:
        raise ChurnError(
            f"{path}: no 'customer_id' column (found {table.column_names}); "
            "name the id column customer_id"
        )
    ids = [str(v).strip() for v in table.column(CUSTOMER_ID).to_pylist() if v is not None]
    return sorted({v for v in ids if v})
