"""Cutoff roles and label windows: which dates are cutoffs, which role each plays, and the one
check that two label windows overlap (the leakage guard every stage uses)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pandas as pd

from churn.config import ChurnParams, FeaturesParams
from churn.errors import ChurnError
from churn.logs import get_logger

log = get_logger("cutoffs")

FIT = "fit"
CALIBRATION = "calibration"
TEST = "test"
GAP = "gap"
SCORE = "score"
ROLES = (FIT, CALIBRATION, TEST, GAP, SCORE)
LABELLED_ROLES = (FIT, CALIBRATION, TEST, GAP)

DateLike = date | pd.Timestamp | str


def windows_overlap(
    oldest_a: DateLike,
    newest_a: DateLike,
    oldest_b: DateLike,
    newest_b: DateLike,
    horizon_days: int,
) -> bool:
    """Return True when a label window (t, t + horizon] of a cutoff in [oldest_a, newest_a]
    overlaps one of a cutoff in [oldest_b, newest_b].

    This is the leakage guard: rows whose label windows overlap share outcomes, so a model that
    learnt from one set must never be measured on, calibrated on or compared on the other.
    """
    window = pd.Timedelta(days=int(horizon_days))
    return bool(
        pd.Timestamp(oldest_a) < pd.Timestamp(newest_b) + window
        and pd.Timestamp(oldest_b) < pd.Timestamp(newest_a) + window
    )


def labels_overlap(
    span: Iterable[Any] | None, cutoffs: pd.Series, horizon_days: int | None
) -> bool:
    """Return True when the label windows of cutoffs [oldest, newest] in `span` overlap those of
    any of `cutoffs` (False when the span or horizon is unknown, or there are no cutoffs)."""
    oldest, newest = (list(span) + [None, None])[:2] if span else (None, None)
    if not oldest or not newest or not horizon_days or len(cutoffs) == 0:
        return False
    evaluated = pd.to_datetime(cutoffs)
    return windows_overlap(oldest, newest, evaluated.min(), evaluated.max(), horizon_days)


def check_role_windows(
    cutoffs: pd.Series, roles: pd.Series, horizon_days: int, source: str = "snapshots"
) -> None:
    """Raise ChurnError when fit, calibration and test cutoffs' label windows overlap in time."""
    when = pd.to_datetime(cutoffs)
    span = {
        role: (when[roles == role].min(), when[roles == role].max())
        for role in (FIT, CALIBRATION, TEST)
    }
    for earlier, later in ((FIT, CALIBRATION), (CALIBRATION, TEST)):
        (old_a, new_a), (old_b, new_b) = span[earlier], span[later]
        if pd.isna(new_a) or pd.isna(old_b):
            continue
        if windows_overlap(old_a, new_a, old_b, new_b, horizon_days):
            raise ChurnError(
                f"{source}: {earlier} cutoff {new_a.date()} + {horizon_days} days overlaps "
                f"{later} cutoff {old_b.date()}; label windows of different roles must not "
                "overlap — rebuild features with the same churn.horizon_days"
            )


def labelled_by(cutoffs: pd.Series, horizon_days: int, day: DateLike) -> pd.Series:
    """Return which cutoffs' label windows (t, t + horizon] end on or before `day`."""
    return pd.to_datetime(cutoffs) + pd.Timedelta(days=int(horizon_days)) <= pd.Timestamp(day)


@dataclass(frozen=True)
class Cutoff:
    """One snapshot date and its role; label window (cutoff, label_end] for training cutoffs."""

    cutoff: date
    role: str
    label_end: date | None  # cutoff + horizon_days; None for the scored (unlabelled) snapshot


def required_history_days(churn: ChurnParams, params: FeaturesParams) -> int:
    """Return the fewest days of data (first to as_of date, inclusive) that give fit, calibration and test."""
    step = params.cutoffs.step_days
    per_gap = -(-churn.horizon_days // step)  # cutoffs between two roles so windows don't overlap
    newest_fit = per_gap + (params.roles.calibration_cutoffs - 1) + per_gap
    span = churn.horizon_days + newest_fit * step + params.cutoffs.min_history_days
    return span + 1


def plan_cutoffs(
    first_date: date, as_of: date, churn: ChurnParams, params: FeaturesParams
) -> list[Cutoff]:
    """Return training cutoffs, oldest first, each with its role; raise when history is too short.

    Cutoff k (k = 0 newest) is as_of - horizon - k * step, so every label window ends on or
    before as_of. A cutoff needs min_history_days of data on or before it. Roles by time:
    test = the newest; calibration = the newest `calibration_cutoffs` whose label windows end on
    or before the test cutoff; fit = every cutoff whose label window ends on or before the oldest
    calibration cutoff; cutoffs in between are `gap` (their labels overlap a later role's).
    """
    horizon = churn.horizon_days
    step = params.cutoffs.step_days
    earliest = first_date + timedelta(days=params.cutoffs.min_history_days)
    candidates = [as_of - timedelta(days=horizon + k * step) for k in range(params.cutoffs.count)]
    usable = [cutoff for cutoff in candidates if cutoff >= earliest]
    have = (as_of - first_date).days + 1
    need = required_history_days(churn, params)
    per_gap = -(-horizon // step)
    fewest = 2 * per_gap + params.roles.calibration_cutoffs
    if params.cutoffs.count < fewest:
        raise ChurnError(
            f"features.cutoffs.count = {params.cutoffs.count} is too few: with {step}-day steps "
            f"and a {horizon}-day horizon, fit, calibration and test need at least {fewest} "
            "cutoffs; raise features.cutoffs.count or features.cutoffs.step_days"
        )
    roles = _assign_roles(usable, horizon, params.roles.calibration_cutoffs)
    if roles is None:
        raise ChurnError(
            f"transactions span {have} days ({first_date} to {as_of}); fit, calibration and test "
            f"cutoffs with non-overlapping {horizon}-day label windows need at least {need} days "
            f"(horizon {horizon} + cutoff spacing + min_history_days "
            f"{params.cutoffs.min_history_days}); supply more history or lower "
            "churn.horizon_days / features.cutoffs.step_days / features.cutoffs.min_history_days"
        )
    if len(usable) < params.cutoffs.count:
        log.warning(
            "only %d of %d training cutoffs fit in %d days of history (%s to %s): each needs "
            "%d days of data before it and its %d-day label window must end by as_of; "
            "continuing with fewer cutoffs",
            len(usable),
            params.cutoffs.count,
            have,
            first_date,
            as_of,
            params.cutoffs.min_history_days,
            horizon,
        )
    plan = [
        Cutoff(cutoff, role, cutoff + timedelta(days=horizon))
        for cutoff, role in zip(usable, roles, strict=True)
    ]
    return sorted(plan, key=lambda item: item.cutoff)


def _assign_roles(newest_first: list[date], horizon: int, calibration: int) -> list[str] | None:
    """Return roles aligned with newest_first, or None when fit, calibration or test is missing."""
    if not newest_first:
        return None
    test = newest_first[0]
    roles = [GAP] * len(newest_first)
    roles[0] = TEST
    calibration_at = [
        i
        for i, c in enumerate(newest_first)
        if i > 0 and not windows_overlap(c, c, test, test, horizon)
    ]
    calibration_at = calibration_at[:calibration]
    if len(calibration_at) < calibration:
        return None
    for i in calibration_at:
        roles[i] = CALIBRATION
    oldest_calibration = newest_first[calibration_at[-1]]
    fit_at = [
        i
        for i, c in enumerate(newest_first)
        if c < oldest_calibration
        and not windows_overlap(c, c, oldest_calibration, oldest_calibration, horizon)
    ]
    if not fit_at:
        return None
    for i in fit_at:
        roles[i] = FIT
    return roles
