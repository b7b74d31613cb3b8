"""Earlier lists and what became of them: the page's history, from the published-lists record
(manifests, download events), the backtest report (`churn backtest`: flagged customers against
the rest) and the campaign ledger (`churn ledger`: customers to contact against the control group).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# the ledger's statuses, from the module that writes them: horizon not passed / the interval of
# the difference includes 0 / it excludes 0
from churn.cutoffs import label_end
from churn.ledger import COLLECTING, INCONCLUSIVE

MEASURED, MATURING, DUE = "measured", "maturing", "due"
IMPORTED = "imported"  # a past campaign list brought in (churn import-lists): no backtest
SLICE_KINDS = ("action", "tier", "download")  # the ledger's slices below the whole list


@dataclass(frozen=True)
class Effect:
    """Retention of the customers to contact against the control group, for a list or a slice."""

    label: str  # "all" for the whole list, else the action, tier or download
    kind: str  # list / action / tier / download
    status: str  # inconclusive / separated
    treated: int
    control: int
    treated_retention: float | None
    control_retention: float | None
    difference: float | None  # treated minus control retention
    ci_low: float | None
    ci_high: float | None
    kept: float | None  # incremental customers kept (difference x treated)
    kept_ci: tuple[float | None, float | None]
    margin: float | None  # incremental margin (difference x the treated customers' value)
    margin_ci: tuple[float | None, float | None]
    reached: float | None  # share of the customers to contact that the contact log shows reached


@dataclass(frozen=True)
class CampaignResult:
    """What the campaign ledger measured for one published list."""

    status: str  # collecting / inconclusive / separated
    matures_on: str | None
    confidence: float | None
    campaign_known: bool  # a download or the contact log shows a campaign used the list
    note: str | None
    overall: Effect | None  # None while collecting
    slices: tuple[Effect, ...]
    stale: bool  # measured on another version of this date's list (republished since)
    newest_data_date: str | None


@dataclass(frozen=True)
class ListOutcome:
    """One published list on the history page."""

    as_of: str
    model_version: str
    published_at: str
    contacts: int  # customers to contact (treatment)
    control: int  # held out, never contacted
    latest: bool
    status: str  # measured / maturing (horizon not passed) / due (passed, backtest not run since)
    matures_on: str | None
    flagged: Mapping[str, Any] | None  # churn_rate, ci_low, ci_high, predicted (backtest)
    rest: Mapping[str, Any] | None
    campaign: Mapping[str, Any] | None  # backtest's campaign block: effect only when known
    ledger: CampaignResult | None  # the campaign ledger's measurement (None: not in the ledger)
    warnings: tuple[str, ...]
    downloads: int
    last_download: str | None


def matures_on(manifest: Mapping[str, Any], default_horizon_days: int) -> str:
    """Return the date a list's outcome is known: its as-of date + its model's horizon."""
    definition = manifest.get("definition") or {}
    horizon = int(definition.get("horizon_days") or default_horizon_days)
    return label_end(dt.date.fromisoformat(str(manifest["as_of"])), horizon).isoformat()


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def _bounds(values: Any) -> tuple[float | None, float | None]:
    if not isinstance(values, Sequence) or len(values) != 2:
        return (None, None)
    return (_number(values[0]), _number(values[1]))


def _download_label(value: str) -> str:
    """Return a ledger download slice's label ('<at> <file name>') as a person reads it:
    2026-01-05T09:00:00Z at_risk.csv -> 2026-01-05 09:00 UTC, at_risk.csv."""
    at, _, name = value.partition(" ")
    try:
        when = dt.datetime.fromisoformat(at.replace("Z", "+00:00"))
    except ValueError:
        return value
    stamp = f"{when:%Y-%m-%d %H:%M} UTC" if when.utcoffset() == dt.timedelta(0) else str(when)
    return f"{stamp}, {name}" if name else stamp


def _effect(part: Mapping[str, Any]) -> Effect:
    """Return one of the ledger's slices (its measured effect) as the page shows it."""
    log = part.get("contact_log") or {}
    value = str(part.get("value", ""))
    return Effect(
        label=_download_label(value) if part.get("slice") == "download" else value,
        kind=str(part.get("slice", "")),
        status=str(part.get("status", INCONCLUSIVE)),
        treated=int(part.get("treated_customers") or 0),
        control=int(part.get("control_customers") or 0),
        treated_retention=_number(part.get("treated_retention")),
        control_retention=_number(part.get("control_retention")),
        difference=_number(part.get("retention_difference")),
        ci_low=_number(part.get("ci_low")),
        ci_high=_number(part.get("ci_high")),
        kept=_number(part.get("incremental_customers")),
        kept_ci=_bounds(part.get("incremental_customers_ci")),
        margin=_number(part.get("incremental_margin")),
        margin_ci=_bounds(part.get("incremental_margin_ci")),
        reached=_number(log.get("compliance")),
    )


def campaign_result(
    entry: Mapping[str, Any], manifest: Mapping[str, Any], ledger: Mapping[str, Any]
) -> CampaignResult:
    """Return a list's ledger entry (reports/ledger.json, `churn ledger`) as the page shows it:
    while collecting, when it matures; once measured, the whole list's effect with its interval
    and the effect per suggested action, risk tier and download."""
    slices = [part for part in entry.get("slices") or [] if isinstance(part, Mapping)]
    whole = [part for part in slices if part.get("slice") == "list"]
    status = str(entry.get("status", COLLECTING))
    listed_sha = entry.get("list_sha256")
    return CampaignResult(
        status=status,
        matures_on=None if entry.get("matures_on") is None else str(entry["matures_on"]),
        confidence=_number(ledger.get("confidence")),
        campaign_known=bool(entry.get("campaign_known", False)),
        note=None if entry.get("note") is None else str(entry["note"]),
        overall=_effect(whole[0]) if whole and status != COLLECTING else None,
        slices=tuple(
            _effect(part)
            for kind in SLICE_KINDS
            for part in slices
            if part.get("slice") == kind and status != COLLECTING
        ),
        stale=listed_sha is not None and str(listed_sha) != str(manifest.get("sha256")),
        newest_data_date=None
        if ledger.get("newest_data_date") is None
        else str(ledger["newest_data_date"]),
    )


def build_history(
    manifests: Sequence[Mapping[str, Any]],
    backtest: Mapping[str, Any] | None,
    download_events: Sequence[Mapping[str, Any]],
    latest_as_of: str | None,
    today: dt.date,
    default_horizon_days: int,
    ledger: Mapping[str, Any] | None = None,
) -> list[ListOutcome]:
    """Return every published list, newest first, with its outcome when the reports have it.

    A list the backtest judged shows its flagged customers' churn against the rest's; a list
    whose horizon has not passed (by the calendar, or in the data the last backtest saw) says
    when it matures; one whose horizon has passed but that no backtest has judged yet is due.
    Next to it, the campaign ledger's measurement of the list (customers to contact against the
    control group) when the ledger has the list, else the backtest's campaign block.
    """
    entries = [
        entry
        for entry in (ledger or {}).get("lists", [])
        if isinstance(entry, Mapping) and "as_of" in entry
    ]
    # churn's own lists by date; imported past lists by their id (one date may hold both)
    measured = {str(e["as_of"]): e for e in entries if e.get("origin") != IMPORTED}
    measured_imported = {str(e.get("list_id")): e for e in entries if e.get("origin") == IMPORTED}
    runs = {str(run["as_of"]): run for run in (backtest or {}).get("runs", [])}
    pending = {str(p["as_of"]): str(p["matures_on"]) for p in (backtest or {}).get("pending", [])}
    downloads: dict[str, list[str]] = {}
    for event in download_events:
        downloads.setdefault(str(event.get("as_of")), []).append(str(event.get("at", "")))
    rows = []
    for manifest in sorted(manifests, key=lambda m: str(m["as_of"]), reverse=True):
        as_of = str(manifest["as_of"])
        imported = manifest.get("origin") == IMPORTED
        run = None if imported else runs.get(as_of)
        mature = pending.get(as_of) or matures_on(manifest, default_horizon_days)
        entry = (
            measured_imported.get(str(manifest.get("list_id"))) if imported else measured.get(as_of)
        )
        if imported:
            status = IMPORTED  # only its own customers are known: no "who left" comparison
        elif run is not None:
            status = MEASURED
        elif as_of in pending or dt.date.fromisoformat(mature) > today:
            status = MATURING  # the backtest's newest data has not reached the date, or time
        else:
            status = DUE
        comparison = (run or {}).get("flagged_vs_rest") or {}
        groups = manifest.get("groups") or {}
        seen = sorted(downloads.get(as_of, []))
        rows.append(
            ListOutcome(
                as_of=as_of,
                model_version=str(manifest.get("model_version") or ""),
                published_at=str(manifest.get("created_at", "")),
                contacts=int(groups.get("treatment", manifest.get("rows", 0))),
                control=int(groups.get("control", 0)),
                latest=as_of == latest_as_of and not imported,
                status=status,
                matures_on=None if run is not None else mature,
                flagged=comparison.get("flagged"),
                rest=comparison.get("rest"),
                campaign=(run or {}).get("campaign"),
                ledger=None if entry is None else campaign_result(entry, manifest, ledger or {}),
                warnings=tuple((run or {}).get("warnings", [])),
                downloads=len(seen),
                last_download=seen[-1] if seen else None,
            )
        )
    return rows
