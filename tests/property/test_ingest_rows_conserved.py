"""Invariants of ingest on random exports: rows are conserved and each lands where an oracle says."""

from __future__ import annotations

import csv
import io
import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support.ingest_support import NOW, run

# (text in the export, is it valid?) per column
CUSTOMERS = [("00001", True), ("0002", True), (" 00003 ", True), ("", False), ("=cmd()", False)]
STAMPS = [
    ("2024-01-01 10:00:00", True),
    ("2024-02-29T23:59:59", True),
    ("2024-03-01T10:00:00+01:00", True),
    ("2024-03-31 02:30:00", True),
    ("12/31/2024", True),
    ("2099-01-01 00:00:00", False),  # after NOW: future
    ("31/12/2024", False),  # day-first without dayfirst
    ("yesterday", False),
    ("", False),
]
AMOUNTS = [("10.5", True), ("-3", True), ("0", True), ("1e2", True), ("NaN", False),
           ("inf", False), ("N/A", False), ("", False), ("1,5", False)]  # fmt: skip

rows = st.lists(
    st.tuples(
        st.sampled_from(CUSTOMERS),
        st.sampled_from(["t1", "t2", "t3", "t4", "t5", "t6"]),
        st.sampled_from(STAMPS),
        st.sampled_from(AMOUNTS),
    ),
    min_size=1,
    max_size=40,
)


def _write(path, sample) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["customer", "order_id", "ordered_at", "amount"])
    for (cust, _), tx, (stamp, _), (amount, _) in sample:
        writer.writerow([cust, tx, stamp, amount])
    path.write_text(buffer.getvalue(), encoding="utf-8")


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(sample=rows)
def test_rows_are_conserved_and_match_an_independent_oracle(tmp_path, sample):
    source = tmp_path / "tx.csv"
    _write(source, sample)
    result = run(tmp_path, source)
    report = result.report

    valid = [
        (tx, cust.strip(), stamp, amount)
        for (cust, ok_c), tx, (stamp, ok_t), (amount, ok_a) in sample
        if ok_c and ok_t and ok_a
    ]
    # every valid stamp falls on its own date: one (customer, stamp) per id is one order
    orders: dict[str, set] = {}
    for tx, cust, stamp, _ in valid:
        orders.setdefault(tx, set()).add((cust, stamp))
    reused = [row for row in valid if len(orders[row[0]]) > 1]
    kept = [row for row in valid if len(orders[row[0]]) == 1]
    invalid = len(sample) - len(valid)
    assert report["rows_read"] == len(sample)
    assert report["rows_read"] == (
        report["rows_clean"] + report["quarantined"] + report["duplicates_removed"]
    )
    assert report["quarantined"] == invalid + len(reused) == len(result.quarantine)
    assert report["quarantined_by_reason"].get("reused_transaction_id", 0) == len(reused)
    assert report["duplicates_removed"] == len(kept) - len(set(kept))
    assert len(result.transactions) == report["rows_clean"] == len(set(kept))

    clean = result.transactions
    assert clean.groupby("transaction_id")["customer_id"].nunique().eq(1).all()
    assert not clean.duplicated().any()
    assert all(math.isfinite(a) for a in clean["amount"])
    assert clean["customer_id"].str.strip().eq(clean["customer_id"]).all()
    assert (clean["timestamp"] <= NOW.replace(tzinfo=None)).all()
    keys = list(zip(clean["customer_id"], clean["timestamp"], strict=True))
    assert keys == sorted(keys)
