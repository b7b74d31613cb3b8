"""Matching customer ids from files people keep by hand (suppression lists, contact logs)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc


def ids_in(ids: Any, values: Any) -> Any:
    """Return a bool numpy array: whether each of `ids` is among `values` (both read as pandas
    strings; a missing id matches a missing value), as `Series.astype("string").isin(values)`.

    Arrow's is_in on the strings: pandas' isin builds a Python object per value first, seconds
    per call on the hundreds of thousands of ids of a campaign's outcome window."""
    left = pa.array(pd.Series(ids).astype("string")).cast(pa.large_string())
    right = pa.array(pd.Series(values).astype("string").unique()).cast(pa.large_string())
    if len(right) == 0:
        return np.zeros(len(left), dtype=bool)
    return np.array(pc.is_in(left, value_set=right), dtype=np.bool_)


# most of a list matching nobody is a sign of a wrong or mangled file, not of lost customers
MOSTLY_UNMATCHED = 0.5


def check_id_matches(
    ids: Iterable[str],
    customer_ids: Iterable[str],
    source: str,
    consequence: str,
    customers: str = "customer",
) -> tuple[dict[str, Any], str | None]:
    """Return (counts, a warning or None) for the ids of a hand-kept file matched against the
    customers they should name; ids appear only in the warning (for the log), not in the counts.

    Ids that match no customer have no effect (`consequence`). A few are normal; when most of
    the file matches nobody the warning says so, and when such ids match a customer once
    zero-padded to the customers' id width (`123` → `00123`: a spreadsheet dropped the leading
    zeros) it names that cause. Ids are never rewritten: the fix belongs in the file.
    """
    wanted = _unique_ids(ids)
    known = _unique_ids(customer_ids)
    unmatched = wanted.filter(pc.invert(pc.is_in(wanted, value_set=known)))
    unmatched = unmatched.take(pc.array_sort_indices(unmatched))
    widths = sorted(set(pc.utf8_length(known.filter(pc.utf8_is_digit(known))).to_pylist()))
    # an unmatched all-digit id that matches a customer once left-padded with zeros
    padded: dict[str, str] = {}
    digits = unmatched.filter(pc.utf8_is_digit(unmatched))
    for width in widths:
        shorter = digits.filter(pc.less(pc.utf8_length(digits), width))
        full = pc.utf8_lpad(shorter, width=width, padding="0")
        hit = pc.is_in(full, value_set=known)
        pairs = zip(shorter.filter(hit).to_pylist(), full.filter(hit).to_pylist(), strict=True)
        for short, long in pairs:
            padded.setdefault(short, long)
    unmatched = unmatched.to_pylist()
    share = len(unmatched) / len(wanted) if len(wanted) else 0.0
    counts = {
        "list_size": int(len(wanted)),
        "matched": len(wanted) - len(unmatched),
        "unmatched": len(unmatched),
        "unmatched_share": round(share, 4),
        "match_after_zero_padding": len(padded),
    }
    if not padded and not (len(wanted) and share > MOSTLY_UNMATCHED):
        return counts, None
    warning = (
        f"{source}: {len(unmatched):,} of {len(wanted):,} ids ({share:.0%}) match no {customers}, "
        f"{consequence} (e.g. {', '.join(map(repr, unmatched[:3]))})"
    )
    if padded:
        first, full = next(iter(padded.items()))
        warning += (
            f"; {len(padded):,} of them match a customer once zero-padded ({first!r} → {full!r}): "
            "leading zeros were probably lost in a spreadsheet. Re-export the file with the id "
            "column as text; ids are not rewritten"
        )
    else:
        warning += "; check that the file holds this data's customer ids"
    return counts, warning


def _unique_ids(ids: Iterable[str]) -> pa.Array:
    """Return the distinct non-null ids as a pyarrow string array (fast set operations)."""
    values = ids if isinstance(ids, pa.Array) else pa.array(list(ids), type=pa.string())
    return pc.unique(values.drop_null())
