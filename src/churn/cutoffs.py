"""Cutoff roles and label windows: which dates are cutoffs, which role each plays, and the one
check that two label windows overlap (the leakage guard every stage uses)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from churn import columns as c
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

HASH_KEYS = {
    "early_stopping": "churn-es-split01",
    "calibration_cv": "churn-calib-cv01",
    # short histories (churn.cutoffs): customers held out from every model to measure it in time,
    # and customers held out from fitting to calibrate it
    "holdout": "churn-holdout-01",
    "calibration_slice": "churn-cal-slice1",
    # churn.training_rows: the customers whose rows the booster fits on when
    # train.sample_customers is set
    "train_sample": "churn-train-smp1",
    # churn.training_rows: the customers whose calibration and test rows are read when
    # train.sample_held_out_customers binds (an independent hash: not the fit sample)
    "held_out_sample": "churn-held-smp01",
    # churn.score.reasons: the scored customers whose mean contributions are the reasons' reference
    "reasons_reference": "churn-reasons-r1",
}


def customer_share(customer_ids: pd.Series, purpose: str) -> np.ndarray:
    """Return a stable pseudo-random number in [0, 1) per customer id (same id, same number)."""
    hashed = pd.util.hash_pandas_object(
        customer_ids.astype("string").astype(object), index=False, hash_key=HASH_KEYS[purpose]
    )
    return (hashed.to_numpy() % np.uint64(1_000_003)).astype("float64") / 1_000_003.0


# train.parquet's Parquet key-value metadata when the Spark features stage wrote only the training
# sample (churn.spark.sample): the caps it was drawn for and what the whole table held
TRAINING_SAMPLE_KEY = b"churn.training_sample"


UPLIFT_CAP = "uplift.sample_customers"


def labelled_where(last_cutoff: date) -> str:
    """Return the SQL condition of the training rows the uplift stage's risk model may learn
    from: cutoffs on or before `last_cutoff` (label windows ended by the first held-out
    campaign); their customers are the candidates of the uplift.sample_customers sample
    (churn.uplift.from_ledger reads them, churn.spark.sample writes them)."""
    return f"{c.CUTOFF} <= DATE '{last_cutoff}'"


def read_training_sample(path: str | Path) -> dict[str, Any] | None:
    """Return what the features stage recorded of the training sample written to `path` (the
    caps it was drawn for, the whole table's counts), or None for a whole table."""
    import json

    import pyarrow.parquet as pq

    metadata = pq.read_schema(path).metadata or {}
    text = metadata.get(TRAINING_SAMPLE_KEY)
    return None if text is None else json.loads(text)


def check_training_sample(path: str | Path, wanted: dict[str, int | None]) -> dict[str, Any] | None:
    """Return read_training_sample(path); raise ChurnError when the file holds a sample drawn
    for a smaller cap (or any cap, when a key of `wanted` is None: every customer) than a
    reader's params ask for, since its rows would then miss customers that reader chooses."""
    written = read_training_sample(path)
    if written is None:
        return None
    caps = written.get("caps", {})
    for key, want in wanted.items():
        have = caps.get(key)
        if have is not None and (want is None or want > have):
            raise ChurnError(
                f"{path}: holds only the training sample the Spark features stage drew for "
                f"{key} = {have}; this stage's params.yaml asks for {key} = {want}: rerun the "
                "features stage (`dvc repro features`) so it draws the sample for these params"
            )
    return written


def label_windows_overlap(start_a: Any, end_a: Any, start_b: Any, end_b: Any) -> Any:
    """Return whether the label windows (start_a, end_a] and (start_b, end_b] overlap: the one
    interval rule, for scalars (a bool) or element by element (pandas Series / numpy arrays).

    This is the leakage guard: rows whose label windows overlap share outcomes, so a model that
    learnt from one set must never be measured on, calibrated on or compared on the other.
    """
    return (start_a < end_b) & (start_b < end_a)


def windows_overlap(
    oldest_a: DateLike,
    newest_a: DateLike,
    oldest_b: DateLike,
    newest_b: DateLike,
    horizon_days: int,
) -> bool:
    """Return True when a label window (t, t + horizon] of a cutoff in [oldest_a, newest_a]
    overlaps one of a cutoff in [oldest_b, newest_b] (their union is (oldest, newest + horizon])."""
    window = pd.Timedelta(days=int(horizon_days))
    return bool(
        label_windows_overlap(
            pd.Timestamp(oldest_a),
            pd.Timestamp(newest_a) + window,
            pd.Timestamp(oldest_b),
            pd.Timestamp(newest_b) + window,
        )
    )


def cutoff_windows_overlap(
    cutoffs: pd.Series, horizon_days: int, starts: pd.Series, window_days: pd.Series
) -> pd.Series:
    """Return, row by row, whether the label window (cutoff, cutoff + horizon_days] overlaps the
    window (start, start + window_days] (e.g. a campaign list's contact window)."""
    when = pd.to_datetime(cutoffs)
    start = pd.to_datetime(starts)
    return label_windows_overlap(
        when,
        when + pd.Timedelta(days=int(horizon_days)),
        start,
        start + pd.to_timedelta(window_days.astype("int64"), unit="D"),
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


def check_role_windows(frame: pd.DataFrame, horizon_days: int, source: str = "snapshots") -> None:
    """Raise ChurnError when rows of two roles among fit, calibration and test share outcomes:
    their label windows overlap in time and a customer has rows in both (customers held out by
    id, as short histories do, may share dates but never a customer)."""
    when = pd.to_datetime(frame[c.CUTOFF])
    roles = frame[c.ROLE].astype("string")
    ids = frame[c.CUSTOMER_ID].astype("string")
    for earlier, later in ((FIT, CALIBRATION), (CALIBRATION, TEST), (FIT, TEST)):
        a, b = roles == earlier, roles == later
        if not a.any() or not b.any():
            continue
        old_a, new_a, old_b, new_b = when[a].min(), when[a].max(), when[b].min(), when[b].max()
        if not windows_overlap(old_a, new_a, old_b, new_b, horizon_days):
            continue
        shared = sorted(set(ids[a]) & set(ids[b]))
        if shared:
            raise ChurnError(
                f"{source}: {earlier} cutoffs {old_a.date()}..{new_a.date()} and {later} cutoffs "
                f"{old_b.date()}..{new_b.date()} have overlapping {horizon_days}-day label "
                f"windows and share {len(shared)} customer(s) (first: {shared[0]!r}); rows of "
                "different roles must differ in time or in customers — rebuild features with "
                "the same churn.horizon_days"
            )


def label_end(cutoff: Any, horizon_days: int) -> Any:
    """Return the last day of the label window (cutoff, cutoff + horizon]: a date for a date, a
    Timestamp for a Timestamp, datetimes for a Series (of dates, datetimes or ISO strings)."""
    if isinstance(cutoff, pd.Series):
        return pd.to_datetime(cutoff) + pd.Timedelta(days=int(horizon_days))
    if isinstance(cutoff, str):
        cutoff = date.fromisoformat(cutoff)
    return cutoff + timedelta(days=int(horizon_days))


def labelled_by(cutoffs: Any, horizon_days: int, day: DateLike) -> Any:
    """Return whether the label window (t, t + horizon] of each cutoff t has ended on or before
    `day` (its outcome is known): a bool for one cutoff, a boolean Series for a Series."""
    ends = label_end(cutoffs, horizon_days)
    if isinstance(ends, pd.Series):
        return ends <= pd.Timestamp(day)
    return bool(pd.Timestamp(ends) <= pd.Timestamp(day))


@dataclass(frozen=True)
class Cutoff:
    """One snapshot date and its role; label window (cutoff, label_end] for training cutoffs."""

    cutoff: date
    role: str
    label_end: date | None  # cutoff + horizon_days; None for the scored (unlabelled) snapshot


def minimum_history_days(churn: ChurnParams, params: FeaturesParams) -> int:
    """Return the fewest days of data (first date to as_of, inclusive) that train at all: the
    warm-up before one cutoff plus one label window (evaluated on an in-time holdout)."""
    return params.cutoffs.min_history_days + churn.horizon_days


def required_history_days(churn: ChurnParams, params: FeaturesParams) -> int:
    """Return the fewest days of data that give separate fit, calibration and test cutoffs."""
    step = params.cutoffs.step_days
    per_gap = -(-churn.horizon_days // step)  # cutoffs between two roles so windows don't overlap
    newest_fit = per_gap + (params.roles.calibration_cutoffs - 1) + per_gap
    return churn.horizon_days + newest_fit * step + params.cutoffs.min_history_days


def out_of_time_history_days(churn: ChurnParams, params: FeaturesParams) -> int:
    """Return the fewest days of data for an out-of-time test: a fit cutoff and a test cutoff
    at least one horizon later (calibration on held-out customers)."""
    step = params.cutoffs.step_days
    per_gap = -(-churn.horizon_days // step)
    return churn.horizon_days + per_gap * step + params.cutoffs.min_history_days


# how a plan measures the model: on a later cutoff (out of time) or on held-out customers
OUT_OF_TIME = "out_of_time"
IN_TIME = "in_time_holdout"
# how a plan calibrates: on its own cutoffs, or on customers held out at the newest fit cutoff
BY_CUTOFF = "cutoff"
BY_CUSTOMERS = "held_out_customers"
# keep a longer feature window (giving up the oldest cutoffs) while this share of fit cutoffs remains
KEEP_FIT_SHARE = 0.5


@dataclass(frozen=True)
class TrainingPlan:
    """Cutoffs with roles, how the model is evaluated and calibrated, and the feature windows
    every cutoff's history covers (longer ones are left out of training and scoring alike)."""

    cutoffs: list[Cutoff]
    evaluation: str  # OUT_OF_TIME | IN_TIME
    calibration: str  # BY_CUTOFF | BY_CUSTOMERS
    windows: tuple[int, ...]  # kept trailing windows (days)
    trend: bool  # the trend features' two trend_days windows fit in the history
    history_days: int  # days of data on or before the earliest cutoff
    calibration_share: float
    holdout_share: float

    def describe(self) -> dict[str, Any]:
        """Return the plan as JSON-ready facts for reports and model metadata."""
        return {
            "evaluation": self.evaluation,
            "calibration": self.calibration,
            "windows": list(self.windows),
            "trend": self.trend,
            "history_days_at_earliest_cutoff": self.history_days,
            "calibration_share": self.calibration_share
            if self.calibration == BY_CUSTOMERS
            else None,
            "holdout_share": self.holdout_share if self.evaluation == IN_TIME else None,
        }


def plan_training(
    first_date: date, as_of: date, churn: ChurnParams, params: FeaturesParams
) -> TrainingPlan:
    """Return the best training plan this much history allows; raise below the minimum.

    Best first: separate fit, calibration and test cutoffs (`plan_cutoffs`); else a fit cutoff
    and a test cutoff at least one horizon later, calibrating on customers held out by a stable
    id hash at the newest fit cutoff; else an in-time holdout: customers held out by a stable id
    hash at the newest cutoff (the same customers for every model) are the test rows. Feature
    windows longer than the history at the earliest cutoff are left out; the oldest cutoffs are
    given up to keep a longer window while the evaluation stays as good and at least
    KEEP_FIT_SHARE of the fit cutoffs (at least one) remain.
    """
    have = (as_of - first_date).days + 1
    least = minimum_history_days(churn, params)
    if have < least:
        raise ChurnError(
            f"transactions span {have} days ({first_date} to {as_of}); training needs at least "
            f"{least} days (features.cutoffs.min_history_days {params.cutoffs.min_history_days} "
            f"of warm-up + churn.horizon_days {churn.horizon_days}): supply {least - have} more "
            "days of history, or lower churn.horizon_days / features.cutoffs.min_history_days"
        )
    needs = sorted({*params.windows, 2 * params.trend_days}, reverse=True)
    base = _plan_with_history(first_date, as_of, churn, params, params.cutoffs.min_history_days)
    chosen = base
    for need in needs:
        if need <= params.cutoffs.min_history_days:
            break
        candidate = _plan_with_history(first_date, as_of, churn, params, need)
        if (
            candidate is not None
            and candidate[1:] == base[1:]
            and _fit_count(candidate[0]) >= max(1, math.ceil(KEEP_FIT_SHARE * _fit_count(base[0])))
        ):
            chosen = candidate
            break
    plan, evaluation, calibration = chosen
    earliest = min(item.cutoff for item in plan)
    history = (earliest - first_date).days + 1
    windows = tuple(w for w in params.windows if w <= history)
    trend = 2 * params.trend_days <= history
    result = TrainingPlan(
        sorted(plan, key=lambda item: item.cutoff),
        evaluation,
        calibration,
        windows,
        trend,
        history,
        params.roles.calibration_share,
        params.roles.holdout_share,
    )
    _log_plan(result, first_date, as_of, churn, params)
    return result


def _fit_count(plan: list[Cutoff]) -> int:
    return sum(item.role == FIT for item in plan)


def _plan_with_history(
    first_date: date, as_of: date, churn: ChurnParams, params: FeaturesParams, history: int
) -> tuple[list[Cutoff], str, str] | None:
    """Return (cutoffs, evaluation, calibration) using cutoffs with `history` days of data."""
    horizon, step = churn.horizon_days, params.cutoffs.step_days
    earliest = first_date + timedelta(days=max(history, params.cutoffs.min_history_days) - 1)
    candidates = [as_of - timedelta(days=horizon + k * step) for k in range(params.cutoffs.count)]
    usable = [cutoff for cutoff in candidates if cutoff >= earliest]
    if not usable:
        return None
    roles = _assign_roles(usable, horizon, params.roles.calibration_cutoffs)
    if roles is not None:
        return _with_roles(usable, roles, horizon), OUT_OF_TIME, BY_CUTOFF
    test = usable[0]
    later = [not windows_overlap(c, c, test, test, horizon) for c in usable]
    if any(later):
        roles = [TEST] + [FIT if ok else GAP for ok in later[1:]]
        return _with_roles(usable, roles, horizon), OUT_OF_TIME, BY_CUSTOMERS
    return _with_roles(usable, [FIT] * len(usable), horizon), IN_TIME, BY_CUSTOMERS


def _with_roles(cutoffs: list[date], roles: list[str], horizon: int) -> list[Cutoff]:
    return [
        Cutoff(cutoff, role, cutoff + timedelta(days=horizon))
        for cutoff, role in zip(cutoffs, roles, strict=True)
    ]


def _log_plan(
    plan: TrainingPlan, first_date: date, as_of: date, churn: ChurnParams, params: FeaturesParams
) -> None:
    have = (as_of - first_date).days + 1
    if plan.evaluation == IN_TIME:
        log.warning(
            "%d days of history (%s to %s) are fewer than the %d an out-of-time test needs: the "
            "model is measured on an in-time holdout (%.0f%% of customers by a stable id hash, "
            "never trained on); the promote gate applies only its floor",
            have,
            first_date,
            as_of,
            out_of_time_history_days(churn, params),
            100 * plan.holdout_share,
        )
    elif plan.calibration == BY_CUSTOMERS:
        log.warning(
            "%d days of history are fewer than the %d separate calibration cutoffs need: "
            "calibrating on %.0f%% of customers held out by a stable id hash at the newest fit "
            "cutoff; the test cutoff stays out of time",
            have,
            required_history_days(churn, params),
            100 * plan.calibration_share,
        )
    dropped = [w for w in params.windows if w not in plan.windows]
    if dropped or not plan.trend:
        log.warning(
            "the earliest training cutoff has %d days of history: feature windows %s%s are left "
            "out of training and scoring",
            plan.history_days,
            dropped,
            f" and the {params.trend_days}-day trends" if not plan.trend else "",
        )
    if len(plan.cutoffs) < params.cutoffs.count:
        log.warning(
            "only %d of %d training cutoffs fit in %d days of history (%s to %s); continuing "
            "with fewer cutoffs",
            len(plan.cutoffs),
            params.cutoffs.count,
            have,
            first_date,
            as_of,
        )


def assign_customer_roles(frame: pd.DataFrame, plan: TrainingPlan) -> pd.DataFrame:
    """Return labelled snapshot rows with the plan's per-customer roles applied.

    Cutoff roles come from the plan. Calibration on held-out customers: customers whose stable
    hash falls in calibration_share are calibration rows at the newest fit cutoff and gap rows
    at every other fit cutoff (no model fits on their labels). In-time holdout: customers in
    holdout_share are test rows at the newest cutoff and gap rows elsewhere, always the same
    customers, so no model of this definition ever trains on them.
    """
    if plan.calibration == BY_CUTOFF or frame.empty:
        return frame
    ids = frame[c.CUSTOMER_ID].reset_index(drop=True)
    role = frame[c.ROLE].astype("string").reset_index(drop=True).copy()
    when = pd.to_datetime(frame[c.CUTOFF]).reset_index(drop=True)
    # the newest fit cutoff of the plan, not of this frame: the features stage applies the
    # roles batch by batch, and a batch may hold no row of the newest fit cutoff
    fit_dates = [one.cutoff for one in plan.cutoffs if one.role == FIT]
    if not fit_dates:
        return frame
    newest_fit = pd.Timestamp(max(fit_dates))
    held_out = pd.Series(False, index=role.index)
    if plan.evaluation == IN_TIME:
        held_out = pd.Series(customer_share(ids, "holdout") < plan.holdout_share)
        is_fit = role == FIT
        role[is_fit & held_out & (when == newest_fit)] = TEST
        role[is_fit & held_out & (when != newest_fit)] = GAP
    calibrating = pd.Series(customer_share(ids, "calibration_slice") < plan.calibration_share)
    is_fit = (role == FIT) & ~held_out
    role[is_fit & calibrating & (when == newest_fit)] = CALIBRATION
    role[is_fit & calibrating & (when != newest_fit)] = GAP
    out = frame.copy()
    out[c.ROLE] = role.to_numpy()
    return out


def evaluation_kind(cutoffs: pd.Series, roles: pd.Series, horizon_days: int) -> str:
    """Return OUT_OF_TIME when the test rows' label windows start after every fit and
    calibration window ends, else IN_TIME (test customers held out, not test dates)."""
    when = pd.to_datetime(cutoffs)
    test = when[roles == TEST]
    trained = when[roles.isin([FIT, CALIBRATION])]
    if test.empty or trained.empty:
        return OUT_OF_TIME
    overlap = windows_overlap(trained.min(), trained.max(), test.min(), test.max(), horizon_days)
    return IN_TIME if overlap else OUT_OF_TIME


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
