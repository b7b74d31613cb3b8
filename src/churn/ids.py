"""Matching customer ids from files people keep by hand (suppression lists, contact logs)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

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
    wanted = set(ids)
    known = set(customer_ids)
    unmatched = sorted(wanted - known)
    widths = sorted({len(c) for c in known if c.isdigit()})
    padded: dict[str, str] = {}
    for value in unmatched:
        if value.isdigit():
            full = next((value.zfill(w) for w in widths if value.zfill(w) in known), None)
            if full is not None and full != value:
                padded[value] = full
    share = len(unmatched) / len(wanted) if wanted else 0.0
    counts = {
        "list_size": len(wanted),
        "matched": len(wanted) - len(unmatched),
        "unmatched": len(unmatched),
        "unmatched_share": round(share, 4),
        "match_after_zero_padding": len(padded),
    }
    if not padded and not (wanted and share > MOSTLY_UNMATCHED):
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
