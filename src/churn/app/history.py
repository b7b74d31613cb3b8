"""Earlier lists and what became of them: the page's history, from the published-lists record
(manifests, download events) and the backtest report (`churn backtest`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

MEASURED, MATURING, DUE = "measured", "maturing", "due"


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
    warnings: tuple[str, ...]
    downloads: int
    last_download: str | None


def matures_on(manifest: Mapping[str, Any], default_horizon_days: int) -> str:
    """Return the date a list's outcome is known: its as-of date + its model's horizon."""
    definition = manifest.get("definition") or {}
    horizon = int(definition.get("horizon_days") or default_horizon_days)
    return (dt.date.fromisoformat(str(manifest["as_of"])) + dt.timedelta(days=horizon)).isoformat()


def build_history(
    manifests: Sequence[Mapping[str, Any]],
    backtest: Mapping[str, Any] | None,
    download_events: Sequence[Mapping[str, Any]],
    latest_as_of: str | None,
    today: dt.date,
    default_horizon_days: int,
) -> list[ListOutcome]:
    """Return every published list, newest first, with its outcome when the backtest has it.

    A list the backtest judged shows its flagged customers' churn against the rest's and the
    campaign's effect (only when a campaign is known); a list whose horizon has not passed (by
    the calendar, or in the data the last backtest saw) says when it matures; one whose horizon
    has passed but that no backtest has judged yet is due.
    """
    runs = {str(run["as_of"]): run for run in (backtest or {}).get("runs", [])}
    pending = {str(p["as_of"]): str(p["matures_on"]) for p in (backtest or {}).get("pending", [])}
    downloads: dict[str, list[str]] = {}
    for event in download_events:
        downloads.setdefault(str(event.get("as_of")), []).append(str(event.get("at", "")))
    rows = []
    for manifest in sorted(manifests, key=lambda m: str(m["as_of"]), reverse=True):
        as_of = str(manifest["as_of"])
        run = runs.get(as_of)
        mature = pending.get(as_of) or matures_on(manifest, default_horizon_days)
        if run is not None:
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
                model_version=str(manifest.get("model_version", "")),
                published_at=str(manifest.get("created_at", "")),
                contacts=int(groups.get("treatment", manifest.get("rows", 0))),
                control=int(groups.get("control", 0)),
                latest=as_of == latest_as_of,
                status=status,
                matures_on=None if run is not None else mature,
                flagged=comparison.get("flagged"),
                rest=comparison.get("rest"),
                campaign=(run or {}).get("campaign"),
                warnings=tuple((run or {}).get("warnings", [])),
                downloads=len(seen),
                last_download=seen[-1] if seen else None,
            )
        )
    return rows
