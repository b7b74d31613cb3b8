"""Which dates are cutoffs and which role (fit / calibration / test / gap) each one plays."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from churn.config import FeaturesParams
from churn.errors import ChurnError
from churn.logs import get_logger

log = get_logger("features")

FIT = "fit"
CALIBRATION = "calibration"
TEST = "test"
GAP = "gap"
SCORE = "score"
ROLES = (FIT, CALIBRATION, TEST, GAP, SCORE)


@dataclass(frozen=True)
class Cutoff:
    """One snapshot date and its role; label window (cutoff, label_end] for training cutoffs."""

    cutoff: date
    role: str
    label_end: date | None  # cutoff + horizon_days; None for the scored (unlabelled) snapshot


def required_history_days(params: FeaturesParams) -> int:
    """Return the fewest days of data (first to as_of date, inclusive) that give fit, calibration and test."""
    step = params.cutoffs.step_days
    per_gap = -(-params.horizon_days // step)  # cutoffs between two roles so windows don't overlap
    newest_fit = per_gap + (params.roles.calibration_cutoffs - 1) + per_gap
    span = params.horizon_days + newest_fit * step + params.cutoffs.min_history_days
    return span + 1


def plan_cutoffs(first_date: date, as_of: date, params: FeaturesParams) -> list[Cutoff]:
    """Return training cutoffs, oldest first, each with its role; raise when history is too short.

    Cutoff k (k = 0 newest) is as_of - horizon - k * step, so every label window ends on or
    before as_of. A cutoff needs min_history_days of data on or before it. Roles by time:
    test = the newest; calibration = the newest `calibration_cutoffs` whose label windows end on
    or before the test cutoff; fit = every cutoff whose label window ends on or before the oldest
    calibration cutoff; cutoffs in between are `gap` (their labels overlap a later role's).
    """
    horizon = params.horizon_days
    step = params.cutoffs.step_days
    earliest = first_date + timedelta(days=params.cutoffs.min_history_days)
    candidates = [as_of - timedelta(days=horizon + k * step) for k in range(params.cutoffs.count)]
    usable = [cutoff for cutoff in candidates if cutoff >= earliest]
    have = (as_of - first_date).days + 1
    need = required_history_days(params)
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
            "features.horizon_days / features.cutoffs.step_days / features.cutoffs.min_history_days"
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
    horizon_delta = timedelta(days=horizon)
    calibration_at = [i for i, c in enumerate(newest_first) if c + horizon_delta <= test]
    calibration_at = calibration_at[:calibration]
    if len(calibration_at) < calibration:
        return None
    for i in calibration_at:
        roles[i] = CALIBRATION
    oldest_calibration = newest_first[calibration_at[-1]]
    fit_at = [i for i, c in enumerate(newest_first) if c + horizon_delta <= oldest_calibration]
    if not fit_at:
        return None
    for i in fit_at:
        roles[i] = FIT
    return roles
