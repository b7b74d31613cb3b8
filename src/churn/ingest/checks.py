"""Data gates after cleaning: quarantine share, freshness, volume against the previous run."""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from churn.errors import DataCheckFailed
from churn.ingest.clean import CleanedTable

HISTORY_RUNS_KEPT = 20


@dataclass(frozen=True)
class CheckResult:
    """Outcome of one data check: ok, warn, fail or skipped, with a message saying why."""

    name: str
    status: str
    message: str
    value: float | None = None
    limit: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """Return the result as a plain dict for the report."""
        return asdict(self)


# What to try first when one reason dominates a failed quarantine gate.
_REASON_HINTS = {
    "unparseable_timestamp": (
        "Most rejected rows have timestamps that do not parse: check ingest.timestamp_format and "
        "ingest.dayfirst (31/12/2024 needs dayfirst: true — and then 01/09/2024 is 1 September). "
    ),
    "non_numeric_amount": (
        "Most rejected rows have non-numeric amounts: check ingest.csv decimal and thousands "
        "separators and the ingest.columns.amount mapping. "
    ),
    "missing_customer_id": "Most rejected rows have no customer id: check ingest.columns.customer_id. ",
    "reused_transaction_id": (
        "Transaction ids are reused by other customers or dates (order numbers that restart per "
        "store or per year?): map ingest.columns.transaction_id to a line or unique id, or set it "
        "to null (then identical rows are counted, not removed). "
    ),
}


def check_quarantine_share(table: CleanedTable, max_share: float) -> CheckResult:
    """Fail when more than max_share of the rows read were quarantined (a broken export)."""
    share = table.quarantined / table.rows_read if table.rows_read else 0.0
    name = f"quarantine_share_{table.name}"
    if share <= max_share:
        return CheckResult(name, "ok", f"{share:.2%} of rows quarantined", share, max_share)
    reasons = ", ".join(
        f"{reason}: {count}"
        for reason, count in sorted(table.quarantined_by_reason.items(), key=lambda kv: -kv[1])
    )
    top_reason = max(table.quarantined_by_reason.items(), key=lambda kv: kv[1], default=("", 0))[0]
    hints = [top_reason] + [
        r for r in ("reused_transaction_id",) if r in table.quarantined_by_reason
    ]
    return CheckResult(
        name,
        "fail",
        f"{table.name}: {table.quarantined} of {table.rows_read} rows ({share:.1%}) would be "
        f"quarantined, more than ingest.max_quarantine_share = {max_share:.1%} ({reasons}); "
        "nothing was written. "
        + "".join(dict.fromkeys(_REASON_HINTS.get(r, "") for r in hints))
        + "Fix the export or the mapping (see the reasons), or raise "
        "ingest.max_quarantine_share if this is expected",
        share,
        max_share,
    )


def check_freshness(
    newest: datetime | None, reference: datetime, max_age_days: int | None, action: str
) -> CheckResult:
    """Warn or fail when the newest clean transaction is older than max_age_days."""
    if max_age_days is None:
        return CheckResult("freshness", "skipped", "ingest.freshness.max_age_days is null")
    if newest is None:
        return CheckResult("freshness", action, "no clean transactions at all")
    age = (reference - newest).total_seconds() / 86400
    if age <= max_age_days:
        return CheckResult(
            "freshness", "ok", f"newest transaction {age:.1f} days old", age, max_age_days
        )
    return CheckResult(
        "freshness",
        action,
        f"newest transaction ({newest:%Y-%m-%d %H:%M}) is {age:.0f} days old, more than "
        f"ingest.freshness.max_age_days = {max_age_days}: is the export stale?",
        age,
        max_age_days,
    )


def check_volume(
    rows_read: int,
    baseline: dict[str, Any] | None,
    max_drop_share: float | None,
    action: str,
    accept: bool = False,
) -> CheckResult:
    """Warn or fail when rows read fell by more than max_drop_share against the baseline (the
    median of the last clean runs: see volume_baseline); `accept` lets a reviewed drop pass."""
    if max_drop_share is None:
        return CheckResult("volume", "skipped", "ingest.volume.max_drop_share is null")
    if not baseline or not baseline.get("rows_read"):
        return CheckResult("volume", "skipped", "no previous run of this source to compare with")
    before = int(baseline["rows_read"])
    runs = int(baseline.get("runs", 1))
    against = (
        f"the previous run ({before} at {baseline.get('run_at', '?')})"
        if runs == 1
        else f"the median of the last {runs} clean runs ({before}, newest at "
        f"{baseline.get('run_at', '?')})"
    )
    drop = (before - rows_read) / before
    if drop <= max_drop_share:
        return CheckResult(
            "volume", "ok", f"{rows_read} rows read, {against}", drop, max_drop_share
        )
    message = (
        f"{rows_read} rows read, {drop:.0%} fewer than {against}, more than "
        f"ingest.volume.max_drop_share = {max_drop_share:.0%}: is the export incomplete?"
    )
    if accept:
        return CheckResult(
            "volume",
            "warn",
            f"{message} Accepted (ingest.volume.accept: true): this run becomes the baseline; "
            "set accept back to false",
            drop,
            max_drop_share,
        )
    if action == "warn":
        message += " This run does not become the baseline: every run this far below it warns again"
    else:
        message += (
            " Nothing was written. Fix the export, or if the drop is real, set "
            "ingest.volume.accept: true for one run"
        )
    return CheckResult("volume", action, message, drop, max_drop_share)


def volume_baseline(history: dict[str, Any], key: str, runs: int) -> dict[str, Any] | None:
    """Return the baseline of the volume check: the median rows read of the last `runs` clean
    runs of the source `key` (a run whose volume check warned never lowers it; an accepted drop
    starts the baseline afresh), or None."""
    recorded = history.get("sources", {}).get(key, [])
    accepted = [i for i, r in enumerate(recorded) if r.get("volume_accepted")]
    since = recorded[accepted[-1] :] if accepted else recorded
    clean = [r for r in since if r.get("volume_baseline", True) and r.get("rows_read")][-runs:]
    if not clean:
        return None
    return {
        "rows_read": int(statistics.median_low(int(r["rows_read"]) for r in clean)),
        "runs": len(clean),
        "run_at": clean[-1].get("run_at", "?"),
    }


def enforce(results: list[CheckResult]) -> list[CheckResult]:
    """Raise DataCheckFailed naming every failed check; return the results otherwise."""
    failed = [r for r in results if r.status == "fail"]
    if failed:
        raise DataCheckFailed("; ".join(r.message for r in failed))
    return results


def previous_run(history: dict[str, Any], key: str) -> dict[str, Any] | None:
    """Return the newest recorded run of the source `key`, if any."""
    runs = history.get("sources", {}).get(key, [])
    return runs[-1] if runs else None


def add_run(history: dict[str, Any], key: str, entry: dict[str, Any]) -> dict[str, Any]:
    """Return a new history with `entry` appended for `key` (the oldest runs are dropped)."""
    sources = dict(history.get("sources", {}))
    sources[key] = [*sources.get(key, []), entry][-HISTORY_RUNS_KEPT:]
    return {"version": 1, "sources": sources}
