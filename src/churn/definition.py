"""The churn definition: label rule, as-of date and the fingerprint that says which models compare."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from churn.config import ChurnParams
from churn.errors import ChurnError
from churn.logs import get_logger

log = get_logger("definition")

# Bump when the label rule itself changes (not its parameters): older models stop comparing.
LABEL_RULE = "no purchase (amount > 0) dated in (cutoff, cutoff + horizon_days]; v1"


def resolve_as_of(churn: ChurnParams, first_date: date, last_date: date) -> date:
    """Return the as-of date: churn.as_of, or the last transaction date when it is null."""
    as_of = churn.as_of or last_date
    if as_of > last_date:
        raise ChurnError(
            f"churn.as_of = {as_of} is after the last transaction date {last_date}: label "
            "windows would count unobserved days as 'no purchase'; set it on or before "
            f"{last_date} or null"
        )
    if as_of < first_date:
        raise ChurnError(
            f"churn.as_of = {as_of} is before the first transaction date {first_date}; "
            "set it inside the data or null"
        )
    if as_of < last_date:
        log.info(
            "churn.as_of %s is before the last transaction date %s: later rows are not read",
            as_of,
            last_date,
        )
    return as_of


def describe_definition(churn: ChurnParams, feature_names: Iterable[str]) -> dict[str, Any]:
    """Return what a model's numbers mean: horizon, active window, label rule, feature set, and
    the fingerprint of all four (models with different fingerprints are never compared)."""
    parts = {
        "horizon_days": int(churn.horizon_days),
        "active_within_days": int(churn.active_within_days),
        "label_rule": LABEL_RULE,
        "features": sorted(str(name) for name in feature_names),
    }
    return {**parts, "fingerprint": _fingerprint(parts)}


def _fingerprint(parts: Mapping[str, Any]) -> str:
    text = json.dumps(dict(parts), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def recorded_definition(metadata: Mapping[str, Any]) -> dict[str, Any] | None:
    """Return a model's recorded definition; for a folder written before definitions were
    recorded, what it does record (its horizon), marked `legacy`; None when it records neither."""
    if metadata.get("definition"):
        return dict(metadata["definition"])
    if metadata.get("horizon_days"):
        return {"horizon_days": int(metadata["horizon_days"]), "legacy": True}
    return None


def definition_changes(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> list[str]:
    """Return how two recorded definitions differ in ways that make their numbers incomparable,
    in words (empty when comparable).

    Labels must match: horizon, active window, label rule. Features the challenger adds (a short
    history grows into longer feature windows) keep the two comparable on the same rows; features
    it lacks do not. A champion from before definitions were recorded (`legacy`) is compared by
    its horizon, the one part it recorded.
    """
    if not old or not new:
        missing = "the champion" if not old else "the challenger"
        return [f"{missing} records no churn definition (trained before definitions were recorded)"]
    if old.get("legacy"):
        if old.get("horizon_days") != new.get("horizon_days"):
            return [f"horizon_days {old.get('horizon_days')} -> {new.get('horizon_days')}"]
        log.info(
            "the champion predates recorded definitions; compared by its horizon (%s days), the "
            "one part it recorded",
            old.get("horizon_days"),
        )
        return []
    changes = []
    for key in ("horizon_days", "active_within_days", "label_rule"):
        if old.get(key) != new.get(key):
            changes.append(f"{key} {old.get(key)} -> {new.get(key)}")
    before, after = set(old.get("features", [])), set(new.get("features", []))
    removed = sorted(before - after)
    if removed:
        changes.append("feature set removed " + ", ".join(removed))
    added = sorted(after - before)
    if added and not changes:
        log.info("the challenger adds feature(s) %s; still comparable", ", ".join(added))
    return changes
