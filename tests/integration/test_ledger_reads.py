"""The ledger stage's reads of the clean transactions file: the same values as whole-frame reads."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from churn.backtest import purchase_dates
from churn.ledger import PublishedList
from churn.ledger.stage import _customer_ids, _listed_purchases

# (customer, date, amount): repeats on a date, refunds, zero amounts, unlisted customers
ROWS = [
    ("0001", date(2024, 1, 3), 10.0),
    ("0001", date(2024, 1, 3), 5.0),
    ("0001", date(2024, 1, 3), -5.0),
    ("0001", date(2024, 2, 1), 0.0),
    ("0001", date(2024, 2, 9), 7.0),
    ("0002", date(2024, 1, 3), -3.0),
    ("0002", date(2024, 1, 4), 3.0),
    ("0003", date(2024, 1, 1), 9.0),
    ("0003", date(2024, 1, 1), 9.0),
    ("0004", date(2024, 3, 1), 2.0),
    ("0004", date(2024, 3, 2), 2.0),
    ("0004", date(2024, 3, 2), 2.0),
    ("0005", date(2024, 3, 2), 1.0),
]
LISTED = ["0001", "0002", "0004", "0009"]


def _write(path, rows, row_group_size=4):
    table = pa.table(
        {
            "customer_id": pa.array([r[0] for r in rows], pa.string()),
            "date": pa.array([r[1] for r in rows], pa.date32()),
            "amount": pa.array([r[2] for r in rows], pa.float64()),
        }
    )
    pq.write_table(table, path, row_group_size=row_group_size)
    return path


def _lists(ids):
    scored = pd.DataFrame({"customer_id": pd.array(ids, dtype="string"), "at_risk": True})
    return [PublishedList({"as_of": "2024-01-01"}, 90, scored)]


def _expected(path, ids):
    """The whole-frame read the stage made before: every listed row in pandas, purchase_dates."""
    frame = pd.read_parquet(path, filters=[("customer_id", "in", ids)])
    purchases = purchase_dates(frame)
    return purchases.assign(date=pd.to_datetime(purchases["date"]))


@pytest.mark.parametrize("order", ["sorted", "shuffled"])
def test_listed_purchases_equal_purchase_dates_of_the_listed_transactions(tmp_path, order):
    rows = ROWS if order == "sorted" else ROWS[7:] + ROWS[:7]  # shuffled: the pandas path
    path = _write(tmp_path / "transactions.parquet", rows)
    purchases = _listed_purchases(path, _lists(LISTED))
    expected = _expected(path, LISTED)
    assert len(purchases) == 5  # 0001 x2 dates, 0002 x1, 0004 x2: refunds and repeats gone
    pd.testing.assert_frame_equal(purchases, expected, check_exact=True)


def test_listed_purchases_of_no_listed_customer_are_empty_with_the_same_columns(tmp_path):
    path = _write(tmp_path / "transactions.parquet", ROWS)
    purchases = _listed_purchases(path, _lists([]))
    assert purchases.empty
    assert list(purchases.columns) == ["customer_id", "date"]
    assert purchases["date"].dtype == "datetime64[s]"


def test_customer_ids_read_by_row_group_equal_the_whole_column(tmp_path):
    path = _write(tmp_path / "transactions.parquet", ROWS, row_group_size=3)
    assert pq.ParquetFile(path).metadata.num_row_groups > 2
    whole = pc.unique(pq.read_table(path, columns=["customer_id"])["customer_id"].cast("string"))
    assert _customer_ids(path).to_pylist() == whole.to_pylist()
    assert _customer_ids(path).to_pylist() == ["0001", "0002", "0003", "0004", "0005"]
