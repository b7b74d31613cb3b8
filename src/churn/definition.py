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


def definition_changes(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> list[str]:
    """Return how two recorded definitions differ, in words (empty when they are the same)."""
    if not old or not new:
        missing = "the champion" if not old else "the challenger"
        return [f"{missing} records no churn definition (trained before definitions were recorded)"]
    changes = []
    for key in ("horizon_days", "active_within_days", "label_rule"):
        if old.get(key) != new.get(key):
            changes.append(f"{key} {old.get(key)} -> {new.get(key)}")
    before, after = set(old.get("features", [])), set(new.get("features", []))
    if before != after:
        added, removed = sorted(after - before), sorted(before - after)
        words = []
        if added:
            words.append(f"added {', '.join(added)}")
        if removed:
            words.append(f"removed {', '.join(removed)}")
        changes.append("feature set " + "; ".join(words))
    if not changes and old.get("fingerprint") != new.get("fingerprint"):
        changes.append(f"fingerprint {old.get('fingerprint')} -> {new.get('fingerprint')}")
    return changes
