"""Turning churn probabilities into a ranked, valued, targeted and randomised customer table."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from churn.columns import (
    AS_OF,
    AT_RISK,
    CHURN_PROBABILITY,
    CONTACT,
    COVERED,
    CUSTOMER_ID,
    CUTOFF,
    EXPECTED_NET_BENEFIT,
    EXPECTED_VALUE,
    EXPLORE,
    GROUP,
    MODEL_VERSION,
    PRIORITY,
    RISK_TIER,
    SPEND_TOTAL,
    SUPPRESSED,
    TENURE_DAYS,
    UPLIFT,
    VALUE_AT_RISK,
)
from churn.config import ScoreParams, TargetParams, TiersParams
from churn.errors import ChurnError
from churn.logs import get_logger
from churn.tiers import assign_tiers

log = get_logger("score")

TREATMENT = "treatment"
CONTROL = "control"
TIERS = ("high", "medium", "low")
TARGETING_ATTRS = "targeting"  # scores.attrs key: value cap, floor and save rates the rule used


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
    """Return the assumed save rate, `score.save_rate`, for each risk tier (the marketing page's
    what-if; the score stage uses `choose_save_rates`, which measured rates replace)."""
    return dict.fromkeys(TIERS, params.save_rate)


@dataclass(frozen=True)
class SaveRates:
    """The save rate used for each risk tier, and where each comes from (reports/score.json)."""

    rates: dict[str, float]
    sources: dict[str, dict[str, Any]]  # per tier: source (assumed / measured), campaigns, why

    def summary(self) -> dict[str, Any]:
        """Return the save rates with their sources, for reports/score.json."""
        return {"save_rates": self.rates, "save_rate_sources": self.sources}


def assumed_save_rates(params: ScoreParams, reason: str) -> SaveRates:
    """Return the assumed `score.save_rate` for every tier, with the reason it is assumed."""
    return SaveRates(
        dict.fromkeys(TIERS, params.save_rate),
        {tier: {"source": "assumed", "reason": reason} for tier in TIERS},
    )


def _tier_slices(ledger: Mapping[str, Any], tier: str) -> list[tuple[str, Mapping[str, Any]]]:
    """Return (list id, slice) for every matured list with a real campaign that measured `tier`
    with both groups present."""
    found = []
    for entry in ledger.get("lists", []):
        if entry.get("status") == "collecting" or not entry.get("campaign_known", True):
            continue
        for part in entry.get("slices", []):
            if part.get("slice") != "tier" or part.get("value") != tier:
                continue
            if not part.get("treated_customers") or not part.get("control_customers"):
                continue
            if part.get("treated_retention") is None or part.get("control_retention") is None:
                continue
            found.append((str(entry.get("list_id", entry.get("as_of"))), part))
    return found


def pool_tier_effect(slices: list[Mapping[str, Any]], z: float = 1.96) -> dict[str, Any]:
    """Return the save rate measured by several lists' slices of one tier.

    Effects are estimated within each list (treated minus control retention) and averaged with
    weights by list size (treated + control customers), so lists of different base churn are
    never compared with each other; the variance is the weighted sum of each list's binomial
    variances (Agresti-Caffo adjusted), the interval normal. Save rate = that retention difference / the control group's
    churn (the share of would-be churners a contact keeps, intention to treat: reached or not),
    the quantity `score.save_rate` assumes; its interval divides the difference's by the same
    churn (taken as known)."""
    weights = np.array([p["treated_customers"] + p["control_customers"] for p in slices], float)
    weights = weights / weights.sum()
    treated = np.array([p["treated_retention"] for p in slices], dtype="float64")
    control = np.array([p["control_retention"] for p in slices], dtype="float64")
    n_treated = np.array([p["treated_customers"] for p in slices], dtype="float64")
    n_control = np.array([p["control_customers"] for p in slices], dtype="float64")
    difference = float(weights @ (treated - control))
    # Agresti-Caffo: one success and one failure added to each group for the variance only, so
    # a small group that all stayed (or all left) does not get an interval of zero width
    adjusted_t = (treated * n_treated + 1) / (n_treated + 2)
    adjusted_c = (control * n_control + 1) / (n_control + 2)
    variance = float(
        (weights**2)
        @ (
            adjusted_t * (1 - adjusted_t) / (n_treated + 2)
            + adjusted_c * (1 - adjusted_c) / (n_control + 2)
        )
    )
    churn = float(weights @ (1 - control))
    low = max(difference - z * variance**0.5, -1.0)
    high = min(difference + z * variance**0.5, 1.0)
    rate = None if churn <= 0 else difference / churn
    return {
        "retention_difference": round(difference, 6),
        "ci_low": round(low, 6),
        "ci_high": round(high, 6),
        "control_churn": round(churn, 6),
        "save_rate": None if rate is None else round(rate, 6),
        "save_rate_ci": [None, None]
        if rate is None
        else [round(low / churn, 6), round(high / churn, 6)],
        "status": "separated" if low > 0 or high < 0 else "inconclusive",
        "treated_customers": int(n_treated.sum()),
        "control_customers": int(n_control.sum()),
    }


def choose_save_rates(ledger: Mapping[str, Any] | None, params: ScoreParams) -> SaveRates:
    """Return the save rate per risk tier: measured by the campaign ledger where a matured
    campaign measured that tier (`pool_tier_effect`, over every such list), else the assumed
    `score.save_rate`, each with its source and reason.

    A measured rate at or below zero is used as measured: contacting that tier is not expected
    to keep anyone, so its customers have negative net benefit and are not flagged. Tiers are
    the lists' own labels (an imported list's tier comes from the rule that made it)."""
    if not params.measured_save_rates:
        return assumed_save_rates(params, "score.measured_save_rates is false")
    if ledger is None:
        return assumed_save_rates(params, "no campaign ledger (reports/ledger.json) yet")
    rates, sources = {}, {}
    for tier in TIERS:
        found = _tier_slices(ledger, tier)
        pooled = pool_tier_effect([part for _, part in found]) if found else None
        if pooled is None or pooled["save_rate"] is None:
            rates[tier] = params.save_rate
            sources[tier] = {
                "source": "assumed",
                "reason": f"no matured campaign measured the {tier} tier (both groups, a known "
                "campaign)"
                if pooled is None
                else f"the {tier} tier's control group never churned: no save rate to measure",
            }
            continue
        rates[tier] = float(min(pooled["save_rate"], 1.0))
        sources[tier] = {
            "source": "measured",
            "campaigns": [list_id for list_id, _ in found],
            **pooled,
        }
    return SaveRates(rates, sources)


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


@dataclass(frozen=True)
class UpliftTargeting:
    """The uplift policy, when the uplift gate switched to it (reports/uplift.json): each
    customer's estimated uplift and whether past lists covered them (data/uplift/uplift.parquet),
    the exploration share and its seed (params uplift), and the gate's reason."""

    uplift: pd.DataFrame  # customer_id, uplift, covered (a Spark DataFrame on the Spark engine)
    exploration_share: float
    seed: int
    reason: str


def flag_by_uplift(
    customer_ids: np.ndarray,
    expected_value: np.ndarray,
    suppressed: np.ndarray,
    targeting: UpliftTargeting,
    contact_cost: float,
    max_customers: int | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return (uplift, expected incremental profit, flag, explored) per customer under the
    uplift policy.

    Flagged: customers past lists covered, not suppressed, with positive uplift and positive
    expected incremental profit (uplift x value - contact cost), best first, at most
    max_customers; then exploration_share x that many drawn at random outside the covered
    population (never a suppressed customer). A customer a contact pushes away (negative uplift)
    is never flagged by the policy; a customer missing from the uplift table has no estimate and
    is not flagged either."""
    from churn.uplift.policy import choose_contacts, expected_incremental_profit

    table = targeting.uplift
    missing = [c for c in (CUSTOMER_ID, UPLIFT, COVERED) if c not in table.columns]
    if missing:
        raise ChurnError(f"uplift table: column(s) {missing} missing; rerun `dvc repro uplift`")
    keyed = table.assign(**{CUSTOMER_ID: table[CUSTOMER_ID].astype("string")})
    by_id = keyed.drop_duplicates(CUSTOMER_ID).set_index(CUSTOMER_ID)
    ids = pd.Index(pd.array(customer_ids, dtype="string"))
    uplift = by_id[UPLIFT].reindex(ids).to_numpy(dtype="float64")
    covered = by_id[COVERED].reindex(ids).fillna(False).to_numpy(dtype=bool)
    known = ~np.isnan(uplift)
    uplift_or_zero = np.where(known, uplift, 0.0)
    open_ = ~np.asarray(suppressed, dtype=bool)
    candidates = pd.DataFrame(
        {
            CUSTOMER_ID: ids.to_numpy(dtype=object)[open_],
            EXPECTED_VALUE: np.asarray(expected_value, dtype="float64")[open_],
            COVERED: (covered & known)[open_],
        }
    )
    chosen = choose_contacts(
        candidates,
        uplift_or_zero[open_],
        contact_cost,
        max_customers,
        targeting.exploration_share,
        targeting.seed,
    )
    flagged = np.zeros(len(ids), dtype=bool)
    explored = np.zeros(len(ids), dtype=bool)
    flagged[np.flatnonzero(open_)] = chosen[CONTACT].to_numpy(dtype=bool)
    explored[np.flatnonzero(open_)] = chosen[EXPLORE].to_numpy(dtype=bool)
    profit = expected_incremental_profit(uplift, expected_value, contact_cost)
    return uplift, profit, flagged, explored


def policy_summary(uplift: UpliftTargeting | None) -> dict[str, str]:
    """The targeting summary's policy fields: which policy chose the list, and why."""
    if uplift is None:
        return {
            "policy": "risk_x_value",
            "policy_reason": "risk x value: the uplift gate did not switch (reports/uplift.json)",
        }
    return {"policy": "uplift", "policy_reason": f"uplift: {uplift.reason}"}


def uplift_net_benefit(profit: np.ndarray, contact_cost: float) -> np.ndarray:
    """Return the uplift policy's net benefit: the expected incremental profit, and for a
    customer without an estimate (not in the uplift table) no effect: minus the contact cost."""
    # no estimate: valued as no effect, never flagged by the policy
    profit = np.asarray(profit, dtype="float64")
    return np.where(np.isnan(profit), -float(contact_cost), profit)


def score_customers(
    snapshot: pd.DataFrame,
    probability: np.ndarray,
    params: ScoreParams,
    *,
    model_version: str,
    suppressed_ids: Iterable[str] = (),
    save_rates: SaveRates | None = None,
    uplift: UpliftTargeting | None = None,
) -> pd.DataFrame:
    """Return one row per customer: probability, tier, value, net benefit, priority, flag, group.

    Rows are sorted by priority. Reasons and actions are added later, for flagged rows only.
    `save_rates` (default: the assumed score.save_rate) set the risk x value policy's net
    benefit. With `uplift` (the uplift gate switched) the uplift policy replaces it: net benefit
    and priority are the expected incremental profit, and `flag_by_uplift` flags.
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
    save_rates = save_rates or assumed_save_rates(params, "no campaign ledger was given")
    rates = save_rates.rates
    tiers = assign_tiers(probability, params.tiers)
    save_rate = pd.Series(tiers, dtype=object).map(rates).to_numpy(dtype="float64")
    net_benefit = expected_net_benefit(probability, save_rate, expected_value, params.contact_cost)
    if uplift is not None:
        all_suppressed = ids.isin(set(suppressed_ids)).to_numpy(dtype=bool)
        uplift_values, net_benefit, uplift_flags, explored = flag_by_uplift(
            ids.to_numpy(dtype=object),
            expected_value,
            all_suppressed,
            uplift,
            params.contact_cost,
            params.target.max_customers,
        )
        net_benefit = uplift_net_benefit(net_benefit, params.contact_cost)
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
    if uplift is None:
        flagged = flag_at_risk(priority, probability, net_benefit, suppressed, params.target, floor)
    else:
        flagged = uplift_flags[order]
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
            AT_RISK: flagged,
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
    if uplift is not None:
        scores[UPLIFT] = uplift_values[order]
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
        **save_rates.summary(),
        **policy_summary(uplift),
    }
    if uplift is not None:
        scores.attrs[TARGETING_ATTRS]["explored"] = int(explored.sum())
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
    eligible = scores.loc[candidates].sort_values(PRIORITY, kind="stable")
    cumulative = np.concatenate([[0.0], np.cumsum(eligible[EXPECTED_NET_BENEFIT].to_numpy())])
    sizes = profit_curve_sizes(len(eligible), int(np.argmax(cumulative)), params)
    return profit_curve_frame(sizes, cumulative[sizes])


def profit_curve_sizes(candidates: int, best: int, params: ScoreParams) -> np.ndarray:
    """Return the list sizes the profit curve shows: about `params.profit_curve_points` evenly
    spaced sizes from 0 to `candidates`, the best size and the end (sorted, distinct)."""
    return np.unique(
        np.concatenate(
            [
                profit_curve_even_sizes(candidates, params),
                [int(best), int(candidates)],
            ]
        ).astype("int64")
    )


def profit_curve_even_sizes(candidates: int, params: ScoreParams) -> np.ndarray:
    """Return the evenly spaced list sizes of the profit curve (floats, whole numbers)."""
    points = params.profit_curve_points
    return np.linspace(0, candidates, num=min(points, candidates + 1)).round()


def profit_curve_frame(sizes: np.ndarray, net_benefit: np.ndarray) -> pd.DataFrame:
    """Return the profit curve's table: each list size and its expected net benefit (cents)."""
    return pd.DataFrame(
        {
            "list_size": np.asarray(sizes, dtype="int64"),
            EXPECTED_NET_BENEFIT: np.round(net_benefit, 2),
        }
    )


def summarise_scores(scores: pd.DataFrame, suppression_size: int) -> dict[str, object]:
    """Return the metrics written to reports/score.json (counts per tier, flagged, value at risk)."""
    return report_score_totals(
        total_scores(scores), suppression_size, scores.attrs.get(TARGETING_ATTRS)
    )


def total_scores(scores: pd.DataFrame) -> dict[str, Any]:
    """Return the counts, sums and minimum reports/score.json is made of, over `scores` (any
    part of the scores table: the totals of two parts add up with add_score_totals)."""
    flagged = scores[AT_RISK].to_numpy(dtype=bool)
    control = (scores[GROUP] == CONTROL).to_numpy(dtype=bool)
    tiers = scores[RISK_TIER].to_numpy(dtype=object)
    var = scores[VALUE_AT_RISK].to_numpy(dtype="float64")
    net = scores[EXPECTED_NET_BENEFIT].to_numpy(dtype="float64")
    suppressed = scores[SUPPRESSED].to_numpy(dtype=bool)
    probability = scores[CHURN_PROBABILITY].to_numpy(dtype="float64")
    return {
        "customers": int(len(scores)),
        "tier_customers": {tier: int((tiers == tier).sum()) for tier in TIERS},
        "tier_value_at_risk": {tier: float(var[tiers == tier].sum()) for tier in TIERS},
        "flagged": int(flagged.sum()),
        "flagged_treatment": int((flagged & ~control).sum()),
        "flagged_control": int((flagged & control).sum()),
        "control": int(control.sum()),
        "suppressed": int(suppressed.sum()),
        "value_at_risk": float(var.sum()),
        "value_at_risk_flagged": float(var[flagged].sum()),
        "expected_net_benefit_flagged": float(net[flagged].sum()),
        "expected_net_benefit_treatment": float(net[flagged & ~control].sum()),
        "churn_probability": float(probability.sum()),
        "lowest_flagged_probability": float(probability[flagged].min()) if flagged.any() else None,
        "flagged_by_tier": {tier: int((flagged & (tiers == tier)).sum()) for tier in TIERS},
    }


def add_score_totals(left: Mapping[str, Any], right: Mapping[str, Any]) -> dict[str, Any]:
    """Return the totals of two parts of a scores table (total_scores of each)."""
    out: dict[str, Any] = {}
    for key, value in left.items():
        other = right[key]
        if isinstance(value, Mapping):
            out[key] = {name: value[name] + other[name] for name in value}
        elif key == "lowest_flagged_probability":
            present = [item for item in (value, other) if item is not None]
            out[key] = min(present) if present else None
        else:
            out[key] = value + other
    return out


def report_score_totals(
    totals: Mapping[str, Any], suppression_size: int, targeting: Mapping[str, Any] | None = None
) -> dict[str, object]:
    """Return reports/score.json's metrics from the totals of the whole scores table
    (total_scores) and what the targeting rule used (scores.attrs['targeting'])."""
    customers = int(totals["customers"])
    lowest = totals["lowest_flagged_probability"]
    return {
        "customers": customers,
        "tiers": {
            tier: {
                "customers": int(totals["tier_customers"][tier]),
                "value_at_risk": round(float(totals["tier_value_at_risk"][tier]), 2),
            }
            for tier in TIERS
        },
        "flagged": int(totals["flagged"]),
        "flagged_treatment": int(totals["flagged_treatment"]),
        "flagged_control": int(totals["flagged_control"]),
        "control_share": round(totals["control"] / customers if customers else 0.0, 4),
        "suppressed": int(totals["suppressed"]),
        "suppression_list_size": int(suppression_size),
        "value_at_risk": round(float(totals["value_at_risk"]), 2),
        "value_at_risk_flagged": round(float(totals["value_at_risk_flagged"]), 2),
        "expected_net_benefit_flagged": round(float(totals["expected_net_benefit_flagged"]), 2),
        "expected_net_benefit_treatment": round(float(totals["expected_net_benefit_treatment"]), 2),
        "mean_churn_probability": round(float(totals["churn_probability"]) / customers, 4)
        if customers
        else 0.0,
        "lowest_flagged_probability": round(float(lowest), 4) if lowest is not None else None,
        "flagged_by_tier": {tier: int(totals["flagged_by_tier"][tier]) for tier in TIERS},
        **({"targeting": targeting} if targeting is not None else {}),
    }
