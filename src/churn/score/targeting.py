"""Turning churn probabilities into a ranked, valued, targeted and randomised customer table."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np
import pandas as pd

from churn.columns import (
    AS_OF,
    AT_RISK,
    CHURN_PROBABILITY,
    CUSTOMER_ID,
    CUTOFF,
    EXPECTED_NET_BENEFIT,
    EXPECTED_VALUE,
    GROUP,
    MODEL_VERSION,
    PRIORITY,
    RISK_TIER,
    SPEND_TOTAL,
    SUPPRESSED,
    TENURE_DAYS,
    VALUE_AT_RISK,
)
from churn.config import ScoreParams, TargetParams, TiersParams
from churn.errors import ChurnError
from churn.logs import get_logger

log = get_logger("score")

TREATMENT = "treatment"
CONTROL = "control"
TIERS = ("high", "medium", "low")
TARGETING_ATTRS = "targeting"  # scores.attrs key: value cap, floor and save rates the rule used


def assign_tiers(probability: np.ndarray, tiers: TiersParams) -> np.ndarray:
    """Return 'high' / 'medium' / 'low' for each probability (thresholds are inclusive)."""
    probability = np.asarray(probability, dtype="float64")
    return np.where(
        probability >= tiers.high, "high", np.where(probability >= tiers.medium, "medium", "low")
    ).astype(object)


def estimate_expected_value(snapshot: pd.DataFrame, params: ScoreParams) -> np.ndarray:
    """Return the margin each customer would bring over `expected_value_days` if they stay.

    Estimate: the customer's average daily spend over their observed life
    (spend_total / max(tenure_days + 1, min_tenure_days)) x expected_value_days x gross_margin.
    The floor on the days keeps one big first order from looking like a huge yearly spend.
    Negative net spend (more refunds than purchases) counts as zero value.
    """
    for column in (SPEND_TOTAL, TENURE_DAYS):
        if column not in snapshot.columns:
            raise ChurnError(
                f"score snapshot: column '{column}' is missing; it is a core feature the expected "
                "value is computed from — rebuild features with the current code"
            )
    spend = pd.to_numeric(snapshot[SPEND_TOTAL], errors="coerce").to_numpy(dtype="float64")
    tenure = pd.to_numeric(snapshot[TENURE_DAYS], errors="coerce").to_numpy(dtype="float64")
    days = np.maximum(np.nan_to_num(tenure, nan=0.0) + 1.0, float(params.min_tenure_days))
    daily = np.clip(np.nan_to_num(spend, nan=0.0), 0.0, None) / days
    return daily * params.expected_value_days * params.gross_margin


def cap_expected_value(
    value: np.ndarray, quantile: float | None
) -> tuple[np.ndarray, float | None]:
    """Return the expected values capped at their `quantile` (over the scored customers), and the cap.

    A few huge spenders would otherwise top the list on value alone; None (no cap) when `quantile`
    is None or there is nothing to cap. The quantile is numpy's default (linear interpolation).
    """
    value = np.asarray(value, dtype="float64")
    if quantile is None or not len(value):
        return value, None
    cap = float(np.quantile(value, quantile))
    return np.minimum(value, cap), cap


def save_rates_by_tier(params: ScoreParams) -> dict[str, float]:
    """Return the save rate used for each risk tier: today the assumed `score.save_rate` for all.

    The seam for measured save rates: once the campaign ledger measures them per tier, they are
    returned here instead, and the probability floor (`target.min_probability_floor`) can go.
    """
    return dict.fromkeys(TIERS, params.save_rate)


def expected_net_benefit(
    probability: np.ndarray,
    save_rate: np.ndarray | float,
    expected_value: np.ndarray,
    contact_cost: float,
) -> np.ndarray:
    """Return the expected net benefit of contacting each customer, in money.

    probability x save_rate x expected_value - contact_cost: the value kept by the share of
    churners the action saves, less what the contact costs. The score stage ranks and flags by it;
    the marketing page's what-if recomputes it with an edited contact cost (one formula, here).
    """
    probability = np.asarray(probability, dtype="float64")
    return probability * np.asarray(save_rate, dtype="float64") * np.asarray(
        expected_value, dtype="float64"
    ) - float(contact_cost)


def resolve_probability_floor(
    target: TargetParams, tiers: TiersParams, probability: np.ndarray | None = None
) -> float:
    """Return the probability floor of the net_benefit / top_n rules (0.0 when there is none):
    the tier or number of `min_probability_floor`, raised to the mean of `probability` (the
    scored customers' average risk) when `above_average` is set."""
    floor = target.min_probability_floor
    if floor is None:
        value = 0.0
    elif isinstance(floor, str):
        value = float(getattr(tiers, floor))
    else:
        value = float(floor)
    if target.above_average and probability is not None and len(probability):
        values = np.asarray(probability, dtype="float64")
        mean = float(np.mean(values))
        if target.rule == "net_benefit" and len(values) > 1 and float(np.ptp(values)) == 0.0:
            # a model that gives everyone the same risk ranks no one: nobody is above average
            # (with ">= mean" everyone would be, and value alone would fill the list; top_n
            # and probability rules say how many or how risky themselves)
            mean = float(np.nextafter(mean, np.inf))
        value = max(value, mean)
    return value


def assign_groups(customer_ids: Iterable[str], salt: str, control_share: float) -> np.ndarray:
    """Return 'control' or 'treatment' per id: sha256(salt + id) mapped to [0, 1) < share → control.

    Stable per customer across runs and models (only the salt and the share change it), and
    independent of the customer's risk, so the control group is comparable with the treated one.
    The first 8 bytes of the digest, read as a big-endian integer over 2**64, give the [0, 1) draw.
    """
    salt_bytes = salt.encode("utf-8")
    digests = b"".join(
        hashlib.sha256(salt_bytes + cid.encode("utf-8")).digest()[:8] for cid in customer_ids
    )
    draws = np.frombuffer(digests, dtype=">u8")
    control = draws < np.uint64(min(int(control_share * 2**64), 2**64 - 1))
    return np.where(control, CONTROL, TREATMENT).astype(object)


def priority_order(customer_ids: np.ndarray, net_benefit: np.ndarray) -> np.ndarray:
    """Return row positions in priority order: highest net benefit first, ties by customer_id."""
    net = np.asarray(net_benefit, dtype="float64")
    order = np.argsort(-net, kind="stable")
    ranked = net[order]
    # equal net benefits are rare but real (same probability and value): order them by id
    starts = np.flatnonzero(np.diff(ranked) == 0)
    if len(starts):
        run_start = np.concatenate([[True], np.diff(starts) != 1])
        for begin, end in _runs(starts, run_start):
            block = order[begin : end + 2]
            order[begin : end + 2] = block[np.argsort(customer_ids[block], kind="stable")]
    return order


def _runs(starts: np.ndarray, run_start: np.ndarray) -> list[tuple[int, int]]:
    """Return (first, last) index pairs of consecutive runs in `starts`."""
    firsts = starts[run_start]
    lasts = np.concatenate([starts[np.flatnonzero(run_start)[1:] - 1], [starts[-1]]])
    return list(zip(firsts.tolist(), lasts.tolist(), strict=True))


def targeting_candidates(
    probability: np.ndarray, suppressed: np.ndarray, target: TargetParams, floor: float = 0.0
) -> np.ndarray:
    """Return who a list under the targeting rule may hold, whatever its size: customers not
    suppressed whose probability reaches `floor` (net_benefit and top_n rules; resolved by
    `resolve_probability_floor`) or `target.min_probability` (probability rule)."""
    threshold = target.min_probability if target.rule == "probability" else floor
    return ~np.asarray(suppressed, dtype=bool) & (
        np.asarray(probability, dtype="float64") >= threshold
    )


def flag_at_risk(
    priority: np.ndarray,
    probability: np.ndarray,
    net_benefit: np.ndarray,
    suppressed: np.ndarray,
    target: TargetParams,
    floor: float = 0.0,
) -> np.ndarray:
    """Return the at-risk flag from the targeting rule: the targeting candidates (never a
    suppressed customer), in priority order, with positive net benefit (net_benefit rule), the
    first top_n (top_n rule) or all (probability rule), and at most target.max_customers."""
    # below the floor a customer is not a candidate, so they do not take a top-N place either;
    # ranks count candidates only, so suppression does not shrink a top-N list
    eligible = targeting_candidates(probability, suppressed, target, floor)
    order = np.argsort(priority, kind="stable")
    eligible_rank = np.zeros(len(priority), dtype="int64")
    eligible_rank[order] = np.cumsum(eligible[order])
    if target.rule == "net_benefit":
        candidate = np.asarray(net_benefit) > 0
    elif target.rule == "top_n":
        candidate = eligible_rank <= target.top_n
    else:
        candidate = np.ones(len(priority), dtype=bool)
    flagged = candidate & eligible
    if target.max_customers is not None:
        flagged &= eligible_rank <= target.max_customers
    return flagged


def score_customers(
    snapshot: pd.DataFrame,
    probability: np.ndarray,
    params: ScoreParams,
    *,
    model_version: str,
    suppressed_ids: Iterable[str] = (),
) -> pd.DataFrame:
    """Return one row per customer: probability, tier, value, net benefit, priority, flag, group.

    Rows are sorted by priority. Reasons and actions are added later, for flagged rows only.
    """
    if CUSTOMER_ID not in snapshot.columns:
        raise ChurnError("score snapshot: column 'customer_id' is missing; rebuild features")
    if snapshot.empty:
        raise ChurnError(
            "score snapshot: no customers to score (nobody is eligible as of the as-of date); "
            "check the data's date range and features.active_within_days"
        )
    probability = np.asarray(probability, dtype="float64")
    if len(probability) != len(snapshot):
        raise ChurnError(
            f"score: {len(probability)} probabilities for {len(snapshot)} customers; "
            "the model output does not match the snapshot"
        )
    if not np.isfinite(probability).all() or ((probability < 0) | (probability > 1)).any():
        raise ChurnError("score: the model returned probabilities outside [0, 1]; retrain it")
    ids = snapshot[CUSTOMER_ID].astype("string")
    if ids.isna().any():
        raise ChurnError(
            "score snapshot: column 'customer_id' has missing values; rebuild features"
        )
    duplicated = ids[ids.duplicated()]
    if len(duplicated):
        raise ChurnError(
            f"score snapshot: {len(duplicated)} duplicated customer_id values "
            f"(first {duplicated.iloc[0]!r}); the as-of snapshot must have one row per customer"
        )
    as_of = _single_as_of(snapshot)
    raw_value = estimate_expected_value(snapshot, params)
    expected_value, value_cap = cap_expected_value(raw_value, params.value_cap_quantile)
    rates = save_rates_by_tier(params)
    tiers = assign_tiers(probability, params.tiers)
    save_rate = pd.Series(tiers, dtype=object).map(rates).to_numpy(dtype="float64")
    net_benefit = expected_net_benefit(probability, save_rate, expected_value, params.contact_cost)
    floor = resolve_probability_floor(params.target, params.tiers, probability)
    if (
        params.target.above_average
        and params.target.rule == "net_benefit"
        and len(probability) > 1
        and float(np.ptp(probability)) == 0
    ):
        log.warning(
            "every scored customer has the same churn probability (%.4f): the model ranks no one, "
            "so nobody is flagged; check the model (reports/metrics.json) before publishing",
            float(probability[0]),
        )
    id_values = ids.to_numpy(dtype=object)
    # build every column directly in priority order (cheaper than sorting the frame afterwards)
    order = priority_order(id_values, net_benefit)
    ordered_ids = id_values[order]
    probability, expected_value, net_benefit = (
        probability[order],
        expected_value[order],
        net_benefit[order],
    )
    priority = np.arange(1, len(order) + 1, dtype="int64")
    ordered_id_array = pd.array(ordered_ids, dtype="string")
    suppressed = pd.Series(ordered_id_array).isin(set(suppressed_ids)).to_numpy(dtype=bool)
    scores = pd.DataFrame(
        {
            CUSTOMER_ID: ordered_id_array,
            AS_OF: np.full(len(order), as_of, dtype=object),
            CHURN_PROBABILITY: probability,
            RISK_TIER: pd.array(assign_tiers(probability, params.tiers), dtype="string"),
            EXPECTED_VALUE: expected_value,
            VALUE_AT_RISK: probability * expected_value,
            EXPECTED_NET_BENEFIT: net_benefit,
            PRIORITY: priority,
            AT_RISK: flag_at_risk(
                priority, probability, net_benefit, suppressed, params.target, floor
            ),
            SUPPRESSED: suppressed,
            GROUP: pd.array(
                assign_groups(ordered_ids, params.control_salt, params.control_share),
                dtype="string",
            ),
            MODEL_VERSION: pd.array(
                np.full(len(order), model_version, dtype=object), dtype="string"
            ),
        }
    )
    for column in params.segment_columns:
        if column in snapshot.columns:
            values = snapshot[column].astype("string").to_numpy(dtype=object)[order]
            scores[column] = pd.array(values, dtype="string")
    # what the rule used, for reports/score.json (summarise_scores) and the log
    scores.attrs[TARGETING_ATTRS] = {
        "expected_value_cap": None if value_cap is None else round(value_cap, 2),
        "value_cap_quantile": params.value_cap_quantile,
        "expected_value_capped": int((raw_value > value_cap).sum()) if value_cap is not None else 0,
        "rule": params.target.rule,
        "min_probability_floor": round(floor, 6),
        # the customers any list could hold (the profit curve's end): suppressed and below-floor out
        "candidates": int(
            targeting_candidates(probability, suppressed, params.target, floor).sum()
        ),
        "above_average": params.target.above_average,
        "save_rates": rates,
    }
    return scores


def _single_as_of(snapshot: pd.DataFrame) -> object:
    """Return the one cutoff date of the as-of snapshot (ChurnError if it has several)."""
    if CUTOFF not in snapshot.columns:
        raise ChurnError("score snapshot: column 'cutoff' is missing; rebuild features")
    cutoffs = pd.Series(snapshot[CUTOFF]).dropna().unique()
    if len(cutoffs) != 1:
        raise ChurnError(
            f"score snapshot: expected one cutoff (the as-of date), found {len(cutoffs)} "
            f"({sorted(map(str, cutoffs))[:3]}); pass data/features/score.parquet, not train.parquet"
        )
    return pd.Timestamp(cutoffs[0]).date()


def build_profit_curve(scores: pd.DataFrame, params: ScoreParams) -> pd.DataFrame:
    """Return (list_size, expected_net_benefit) for lists of the top-k targeting candidates.

    The lists the pipeline could publish: customers below the probability floor (or suppressed)
    are on no list whatever its size, so they are not counted. Sampled at about
    `params.profit_curve_points` evenly spaced sizes, always including the best size and the end,
    so the DVC plot shows where adding customers stops paying for the contact.
    """
    probability = scores[CHURN_PROBABILITY].to_numpy(dtype="float64")
    # the floor of the scored population, as score_customers resolved it (same mean probability)
    floor = resolve_probability_floor(params.target, params.tiers, probability)
    candidates = targeting_candidates(
        probability, scores[SUPPRESSED].to_numpy(dtype=bool), params.target, floor
    )
    points = params.profit_curve_points
    eligible = scores.loc[candidates].sort_values(PRIORITY, kind="stable")
    cumulative = np.concatenate([[0.0], np.cumsum(eligible[EXPECTED_NET_BENEFIT].to_numpy())])
    sizes = np.unique(
        np.concatenate(
            [
                np.linspace(0, len(eligible), num=min(points, len(eligible) + 1)).round(),
                [int(np.argmax(cumulative)), len(eligible)],
            ]
        ).astype("int64")
    )
    return pd.DataFrame({"list_size": sizes, EXPECTED_NET_BENEFIT: np.round(cumulative[sizes], 2)})


def summarise_scores(scores: pd.DataFrame, suppression_size: int) -> dict[str, object]:
    """Return the metrics written to reports/score.json (counts per tier, flagged, value at risk)."""
    flagged = scores[AT_RISK].to_numpy(dtype=bool)
    control = (scores[GROUP] == CONTROL).to_numpy(dtype=bool)
    tiers = scores[RISK_TIER].to_numpy(dtype=object)
    var = scores[VALUE_AT_RISK].to_numpy(dtype="float64")
    net = scores[EXPECTED_NET_BENEFIT].to_numpy(dtype="float64")
    suppressed = scores[SUPPRESSED].to_numpy(dtype=bool)
    probability = scores[CHURN_PROBABILITY].to_numpy(dtype="float64")
    return {
        "customers": int(len(scores)),
        "tiers": {
            tier: {
                "customers": int((tiers == tier).sum()),
                "value_at_risk": round(float(var[tiers == tier].sum()), 2),
            }
            for tier in TIERS
        },
        "flagged": int(flagged.sum()),
        "flagged_treatment": int((flagged & ~control).sum()),
        "flagged_control": int((flagged & control).sum()),
        "control_share": round(float(control.mean()) if len(scores) else 0.0, 4),
        "suppressed": int(suppressed.sum()),
        "suppression_list_size": int(suppression_size),
        "value_at_risk": round(float(var.sum()), 2),
        "value_at_risk_flagged": round(float(var[flagged].sum()), 2),
        "expected_net_benefit_flagged": round(float(net[flagged].sum()), 2),
        "expected_net_benefit_treatment": round(float(net[flagged & ~control].sum()), 2),
        "mean_churn_probability": round(float(scores[CHURN_PROBABILITY].mean()), 4)
        if len(scores)
        else 0.0,
        "lowest_flagged_probability": round(float(probability[flagged].min()), 4)
        if flagged.any()
        else None,
        "flagged_by_tier": {tier: int((flagged & (tiers == tier)).sum()) for tier in TIERS},
        **({"targeting": scores.attrs[TARGETING_ATTRS]} if TARGETING_ATTRS in scores.attrs else {}),
    }
