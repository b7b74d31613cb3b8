"""Seeded synthetic customers that behave like real non-contractual buyers (the default data)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from churn.config import GenerateParams, TiersParams
from churn.tiers import assign_tiers

# Raw export column names: deliberately not the canonical ones, so the default run exercises
# ingest.columns mapping exactly as a user's own export would.
RAW_CUSTOMER = "customer"
RAW_ORDER_ID = "order_id"
RAW_TIMESTAMP = "ordered_at"
RAW_AMOUNT = "amount"

CHANNELS = np.array(["web", "app", "store", "marketplace"])
CHANNEL_WEIGHTS = np.array([0.4, 0.25, 0.2, 0.15])
# Multipliers on purchase rate and on lifetime per channel: app users buy more and stay longer,
# marketplace buyers are fickle. Gives the customers table real (but modest) signal.
CHANNEL_RATE = np.array([1.0, 1.3, 0.9, 0.8])
CHANNEL_LIFETIME = np.array([1.0, 1.4, 1.1, 0.6])
REGIONS = np.array(["north", "south", "east", "west"])
# Monday..Sunday purchase intensity.
WEEKDAY_FACTOR = np.array([0.85, 0.85, 0.9, 0.95, 1.1, 1.3, 1.05])
FADE_DAYS = 120  # before dropping out, customers buy less often and spend less
FADE_RATE = 0.45
FADE_SPEND = 0.75
PRE_PERIOD_DAYS = 730  # how long before the export starts the existing customers joined
MAX_INTENSITY = 1.75  # thinning bound on the default weekly x yearly intensity (about 1.69)
EARLY_DROPOUT_SHARE = 0.25  # one-and-done buyers: drop out within a month of joining
DIRTY_KINDS = (
    "missing_customer",
    "bad_timestamp",
    "non_numeric_amount",
    "nan_amount",
    "inf_amount",
    "future_timestamp",
)


@dataclass(frozen=True)
class GeneratedChunk:
    """One chunk of simulated customers: raw export rows plus side tables and the ground truth."""

    transactions: pd.DataFrame  # raw export: customer, order_id, ordered_at, amount (all text)
    customers: pd.DataFrame  # customer, signup_date, channel, region
    nps: pd.DataFrame  # customer, answered_at, score
    truth: pd.DataFrame  # customer_id, first_purchase, dropout_date, early_dropout, rate_per_year
    campaign_lists: pd.DataFrame  # list_id, list_date, customer_id, group, suggested_action, ...
    contacts: pd.DataFrame  # customer_id, contacted_at, action, channel, cost
    campaign_truth: pd.DataFrame  # per list and customer: true type, potential outcomes, effect


def customer_ids(start: int, stop: int, total: int) -> np.ndarray:
    """Return zero-padded string ids (leading zeros are part of the id, as in real CRMs)."""
    width = max(6, len(str(total)))
    return np.array([str(i).zfill(width) for i in range(start + 1, stop + 1)], dtype=object)


def seasonality(day_index: np.ndarray, start: pd.Timestamp, amplitude: float = 0.3) -> np.ndarray:
    """Return the purchase intensity multiplier (weekly x yearly; max about 1.7 at the default
    yearly amplitude 0.3) for day offsets."""
    dates = start + pd.to_timedelta(day_index, unit="D")
    weekday = WEEKDAY_FACTOR[np.asarray(dates.day_of_week)]
    doy = np.asarray(dates.day_of_year, dtype=float)
    # peak around mid-December, trough in early summer
    yearly = 1.0 + amplitude * np.cos(2 * np.pi * (doy - 350) / 365.25)
    return weekday * yearly


def max_intensity(amplitude: float) -> float:
    """Return the thinning bound for a yearly amplitude (the default's 1.75 whenever it suffices,
    so the default data does not change)."""
    return max(MAX_INTENSITY, float(WEEKDAY_FACTOR.max()) * (1.0 + amplitude))


def _chunk_rng(seed: int, chunk: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, chunk, stream])


def simulate_chunk(
    params: GenerateParams, chunk: int, first: int, last: int, tiers: TiersParams | None = None
) -> GeneratedChunk:
    """Simulate customers [first, last): purchases, refunds, dirty rows, side tables, truth;
    past campaign lists tiered by `tiers` (score.tiers; default: its defaults)."""
    rng = _chunk_rng(params.seed, chunk, 0)
    n = last - first
    start = pd.Timestamp(params.start)
    days = params.days
    ids = customer_ids(first, last, params.customers)

    channel_idx = rng.choice(len(CHANNELS), size=n, p=CHANNEL_WEIGHTS)
    region_idx = rng.integers(0, len(REGIONS), size=n)
    # A share of the customers (a fifth by default) joined up to two years before the export
    # starts: their earlier purchases are cut off (left-censored, as in any real extract) and some
    # are already gone. The rest join over the first acquisition_days (default: the whole period;
    # short = a closed cohort, like CDNOW's first-quarter buyers).
    acquisition = days - 1 if params.acquisition_days is None else params.acquisition_days
    join = np.where(
        rng.random(n) < params.pre_period_share,
        rng.uniform(-PRE_PERIOD_DAYS, 0, n),
        rng.uniform(0, min(acquisition, days - 1), n),
    )
    shape = params.rate_shape
    rate_year = (
        rng.gamma(shape, params.mean_purchases_per_year / shape, n) * CHANNEL_RATE[channel_idx]
    )
    rate_day = np.maximum(rate_year, 0.3) / 365.25
    lifetime = rng.exponential(params.mean_lifetime_days, n) * CHANNEL_LIFETIME[channel_idx]
    early = rng.random(n) < EARLY_DROPOUT_SHARE
    lifetime = np.where(early, rng.uniform(0, 30, n), lifetime)
    dropout = join + lifetime
    active_end = np.minimum(dropout, days)
    spend_mean = rng.gamma(4.0, params.mean_order_value / 4.0, n)

    # Purchases: inhomogeneous Poisson process by thinning, plus the joining purchase.
    bound = max_intensity(params.seasonality)
    duration = np.maximum(active_end - join, 0.0)
    counts = rng.poisson(rate_day * bound * duration)
    owner = np.repeat(np.arange(n), counts)
    t = join[owner] + rng.random(owner.size) * duration[owner]
    fading = t > dropout[owner] - FADE_DAYS
    accept = seasonality(np.floor(t).astype(np.int64), start, params.seasonality)
    accept = accept * np.where(fading, FADE_RATE, 1.0)
    keep = rng.random(owner.size) * bound < accept
    owner = np.concatenate([np.arange(n), owner[keep]])
    t = np.concatenate([join, t[keep]])
    fading = np.concatenate([np.zeros(n, bool), fading[keep]])
    campaigns = simulate_campaigns(
        params,
        _chunk_rng(params.seed, chunk, 3),
        ids,
        Purchases(owner, t, fading),
        CustomerTraits(channel_idx, region_idx, rate_day, spend_mean, dropout),
        tiers=tiers,
    )
    owner, t, fading = campaigns.purchases.owner, campaigns.purchases.t, campaigns.purchases.fading
    dropout = campaigns.dropout
    active_end = np.minimum(dropout, days)
    amount = rng.gamma(6.0, spend_mean[owner] / 6.0) * np.where(fading, FADE_SPEND, 1.0)
    amount = np.round(np.maximum(amount, 0.5), 2)

    # Refunds: a share of purchases is partly or fully returned 1-30 days later.
    refund_mask = rng.random(owner.size) < params.refund_share
    r_owner = owner[refund_mask]
    r_t = t[refund_mask] + rng.uniform(1, 30, r_owner.size)
    r_amount = -np.round(
        amount[refund_mask] * rng.choice([1.0, 0.5], r_owner.size, p=[0.7, 0.3]), 2
    )
    owner = np.concatenate([owner, r_owner])
    t = np.concatenate([t, r_t])
    amount = np.concatenate([amount, r_amount])
    inside = (t >= 0) & (t < days)  # the export covers [start, start + days) only
    owner, t, amount = owner[inside], t[inside], amount[inside]

    # Time of day: mostly daytime and evening.
    day = np.floor(t)
    hour_frac = np.clip(rng.normal(15.0, 4.0, t.size), 0.0, 23.99) / 24.0
    when = start + pd.to_timedelta(np.round((day + hour_frac) * 86400).astype(np.int64), unit="s")
    order = np.lexsort((owner, when.values))
    owner, when, amount = owner[order], when[order], amount[order]
    txn = pd.DataFrame(
        {
            RAW_CUSTOMER: ids[owner],
            RAW_ORDER_ID: [f"O{chunk:03d}-{i:09d}" for i in range(owner.size)],
            RAW_TIMESTAMP: when.strftime("%Y-%m-%d %H:%M:%S"),
            RAW_AMOUNT: np.char.mod("%.2f", amount),
        }
    )
    txn = _add_export_defects(txn, params, _chunk_rng(params.seed, chunk, 1))

    signup = start + pd.to_timedelta(
        np.floor(join - rng.uniform(0, 60, n)).astype(np.int64), unit="D"
    )
    customers = pd.DataFrame(
        {
            RAW_CUSTOMER: ids,
            "signup_date": signup.strftime("%Y-%m-%d"),
            "channel": CHANNELS[channel_idx],
            "region": REGIONS[region_idx],
        }
    )
    nps = _simulate_nps(
        ids, join, active_end, dropout, params, _chunk_rng(params.seed, chunk, 2), start
    )
    first_purchase = start + pd.to_timedelta(np.floor(join).astype(np.int64), unit="D")
    dropout_date = start + pd.to_timedelta(np.floor(dropout).astype(np.int64), unit="D")
    truth = pd.DataFrame(
        {
            "customer_id": pd.array(ids, dtype="string"),
            "first_purchase": first_purchase.normalize(),  # true join: may precede the export
            "dropout_date": dropout_date.normalize(),
            "early_dropout": early,
            "rate_per_year": rate_year,
        }
    )
    return GeneratedChunk(
        txn, customers, nps, truth, campaigns.lists, campaigns.contacts, campaigns.truth
    )


# --------------------------------------------------------------------------- past campaigns
PERSUADABLE = "persuadable"  # leaves without a contact, stays with one
SURE_THING = "sure thing"  # stays either way
LOST_CAUSE = "lost cause"  # leaves either way
SLEEPING_DOG = "sleeping dog"  # stays without a contact, leaves because of one
WIN_BACK, LOYALTY = "win-back offer", "loyalty invitation"
# how each action reaches customers and what one contact costs (in the margin's currency)
ACTION_CHANNEL = {WIN_BACK: ("email", 1.5), LOYALTY: ("phone", 6.0)}
CONTACT_DELAY_DAYS = 14  # contacts go out within two weeks of the list date
REDEMPTION_DAYS = 21  # a kept customer buys again within three weeks of the contact
LOYALTY_SHARE = 0.2  # the listed customers with the highest recent spend get the phone call
CAMPAIGN_LISTS_COLUMNS = [
    "list_id",
    "list_date",
    "customer_id",
    "group",
    "suggested_action",
    "risk_tier",
]
CONTACTS_COLUMNS = ["customer_id", "contacted_at", "action", "channel", "cost"]
CAMPAIGN_TRUTH_COLUMNS = [
    "list_id",
    "list_date",
    "customer_id",
    "group",
    "true_type",
    "contacted",
    "retained_without_contact",
    "retained_with_contact",
    "true_effect",
    "true_itt_effect",
]


@dataclass(frozen=True)
class Purchases:
    """Simulated purchases of one chunk: owner index, day offset (float), fading flag."""

    owner: np.ndarray
    t: np.ndarray
    fading: np.ndarray


@dataclass(frozen=True)
class CustomerTraits:
    """What the campaign simulation knows of each customer of a chunk."""

    channel_idx: np.ndarray
    region_idx: np.ndarray
    rate_day: np.ndarray
    spend_mean: np.ndarray
    dropout: np.ndarray  # day offset of the silent dropout (moved by a campaign's effect)


@dataclass(frozen=True)
class SimulatedCampaigns:
    """Purchases after the campaigns' effects, with the lists, the contact log and the truth."""

    purchases: Purchases
    dropout: np.ndarray
    lists: pd.DataFrame
    contacts: pd.DataFrame
    truth: pd.DataFrame


def campaign_days(params: GenerateParams) -> list[int]:
    """Return the day offsets of the simulated list dates, oldest first (inside the period)."""
    settings = params.campaigns
    if not settings.enabled:
        return []
    last = params.days - 1
    days = [last - k * settings.every_days for k in range(1, settings.count + 1)]
    return sorted(day for day in days if day >= 365)  # a year of history to judge the rhythm


def type_probabilities(
    channel_idx: np.ndarray, region_idx: np.ndarray, recent_purchases: np.ndarray, scale: float
) -> tuple[np.ndarray, np.ndarray]:
    """Return (P(persuadable | leaves without contact), P(sleeping dog | stays without contact)).

    Heterogeneous on purpose, by traits an uplift model can see: app and web customers and
    frequent buyers respond to a contact; marketplace customers (and a little, the south) are
    pushed away by one. `scale` multiplies both (0 = contacts change nothing).
    """
    channel = CHANNELS[channel_idx]
    persuadable = (
        0.05
        + 0.20 * (channel == "app")
        + 0.10 * (channel == "web")
        + 0.05 * (recent_purchases >= 6)
    )
    sleeping = 0.03 + 0.25 * (channel == "marketplace") + 0.05 * (REGIONS[region_idx] == "south")
    return np.clip(persuadable * scale, 0, 1), np.clip(sleeping * scale, 0, 1)


def overdue_churn_probability(
    overdue_ratio: np.ndarray, purchases: np.ndarray, churned: np.ndarray
) -> np.ndarray:
    """Return a calibrated churn probability for each listed customer: a logistic fit of whether
    they would churn without a contact (`churned`) on log(days since the last purchase / usual
    gap) and log(purchases in the past year), over the list itself.

    A stand-in for our model's probability on simulated lists (which our model never scored):
    maximum likelihood makes the fitted probabilities match the observed churn overall and along
    both inputs, so cutting them at score.tiers gives tiers whose churn rates mean what the
    pipeline's tiers mean. Deterministic (Newton steps from the base rate; a small ridge on the
    slopes keeps a list that all churned, or all stayed, finite).
    """
    y = np.asarray(churned, dtype="float64")
    n = y.size
    if n == 0 or y.min() == y.max():  # nothing to fit: everyone churned, or no one did
        return np.full(n, y.mean() if n else 0.0)
    x = np.column_stack(
        [
            np.ones(n),
            np.log(np.maximum(np.asarray(overdue_ratio, dtype="float64"), 1e-9)),
            np.log(np.maximum(np.asarray(purchases, dtype="float64"), 1.0)),
        ]
    )
    x[:, 1:] -= x[:, 1:].mean(axis=0)  # centred: the intercept stays the log-odds of the base rate
    beta = np.array([np.log(y.mean() / (1 - y.mean())), 0.0, 0.0])
    ridge = np.diag([0.0, 1e-3, 1e-3]) * n
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-np.clip(x @ beta, -35, 35)))
        gradient = x.T @ (y - p) - ridge @ beta
        hessian = (x * (p * (1 - p))[:, None]).T @ x + ridge + np.eye(3) * 1e-9
        step = np.linalg.solve(hessian, gradient)
        beta = beta + step
        if np.max(np.abs(step)) < 1e-10:
            break
    return 1.0 / (1.0 + np.exp(-np.clip(x @ beta, -35, 35)))


def simulate_campaigns(
    params: GenerateParams,
    rng: np.random.Generator,
    ids: np.ndarray,
    purchases: Purchases,
    traits: CustomerTraits,
    horizon_days: int = 90,
    tiers: TiersParams | None = None,
) -> SimulatedCampaigns:
    """Run the past campaigns on a chunk's purchases, oldest list first.

    At each list date d the list is every customer active in the past year whose days since
    their last purchase reach max(min_overdue_days, overdue_factor x their usual gap (365 /
    purchases in the past year)): a rule computed from the purchases alone, without our model.
    A random control_share is held out. Each listed customer gets a latent type from whether they
    would buy in (d, d + horizon] without a contact: persuadable or lost cause if not, sleeping
    dog or sure thing if so (type_probabilities). Contacted customers (treated and reached, or
    control contacted by mistake) get the contact's effect from the contact day on: a persuadable
    buys within REDEMPTION_DAYS and keeps buying for a new lifetime; a sleeping dog stops buying.
    Each listed customer's risk tier is `tiers` (the pipeline's score.tiers) applied to
    overdue_churn_probability, as our pipeline would have tiered them.
    """
    tiers = TiersParams() if tiers is None else tiers
    owner, t, fading = purchases.owner, purchases.t, purchases.fading
    dropout = traits.dropout.copy()
    start = pd.Timestamp(params.start)
    settings = params.campaigns
    n = ids.size
    lists, contacts, truth = [], [], []
    for day in campaign_days(params):
        when = np.floor(t)
        seen = (when >= 0) & (when <= day)
        last_day = np.full(n, -np.inf)
        np.maximum.at(last_day, owner[seen], when[seen])
        recent = np.bincount(owner[seen & (when > day - 365)], minlength=n)
        recency = day - last_day
        gap = 365.0 / np.maximum(recent, 1)
        overdue = np.maximum(settings.min_overdue_days, settings.overdue_factor * gap)
        listed = np.flatnonzero((recent >= 2) & (recency >= overdue))
        if listed.size == 0:
            continue
        k = listed.size
        window = (when > day) & (when <= day + horizon_days)
        retained0 = np.bincount(owner[window], minlength=n)[listed] > 0
        p_persuadable, p_sleeping = type_probabilities(
            traits.channel_idx[listed], traits.region_idx[listed], recent[listed], settings.effect
        )
        draw = rng.random(k)
        types = np.where(
            retained0,
            np.where(draw < p_sleeping, SLEEPING_DOG, SURE_THING),
            np.where(draw < p_persuadable, PERSUADABLE, LOST_CAUSE),
        )
        control = rng.random(k) < settings.control_share
        reach_if_treated = rng.random(k) < settings.reach_rate
        reach_if_control = rng.random(k) < settings.crossover_rate
        contacted = np.where(control, reach_if_control, reach_if_treated)
        contact_t = day + rng.uniform(1.0, CONTACT_DELAY_DAYS, k)
        value = recent[listed] * traits.spend_mean[listed]
        loyalty = value >= np.quantile(value, 1 - LOYALTY_SHARE)
        action = np.where(loyalty, LOYALTY, WIN_BACK)
        # the tier our pipeline would give: its thresholds on a calibrated churn probability,
        # here the no-contact churn rate of customers as overdue and as frequent as this one
        tier = assign_tiers(
            overdue_churn_probability(recency[listed] / gap[listed], recent[listed], ~retained0),
            tiers,
        )
        # potential outcome with a contact: a persuadable buys again; a sleeping dog keeps only
        # the purchases made before the contact
        position = np.full(n, -1)
        position[listed] = np.arange(k)
        slot = position[owner]
        before = window & (slot >= 0)
        before[before] = t[before] <= contact_t[slot[before]]
        bought_before_contact = np.bincount(slot[before], minlength=k) > 0
        retained1 = np.where(
            types == PERSUADABLE,
            True,
            np.where(types == SLEEPING_DOG, bought_before_contact, retained0),
        )

        # apply the effect to the contacted customers
        pushed = listed[contacted & (types == SLEEPING_DOG)]
        if pushed.size:
            gone = np.isin(owner, pushed)
            gone[gone] = t[gone] > contact_t[slot[gone]]
            owner, t, fading = owner[~gone], t[~gone], fading[~gone]
            dropout[pushed] = np.minimum(dropout[pushed], contact_t[position[pushed]])
        kept = listed[contacted & (types == PERSUADABLE)]
        if kept.size:
            c = contact_t[position[kept]]
            life = rng.exponential(params.mean_lifetime_days, kept.size)
            new_end = np.minimum(c + life, params.days)
            counts = rng.poisson(traits.rate_day[kept] * np.maximum(new_end - c, 0.0))
            redeemed = c + rng.uniform(1.0, REDEMPTION_DAYS, kept.size)
            extra_owner = np.concatenate([kept, np.repeat(kept, counts)])
            extra_t = np.concatenate(
                [
                    redeemed,
                    np.repeat(c, counts)
                    + rng.random(counts.sum()) * np.repeat(new_end - c, counts),
                ]
            )
            owner = np.concatenate([owner, extra_owner])
            t = np.concatenate([t, extra_t])
            fading = np.concatenate([fading, np.zeros(extra_owner.size, bool)])
            dropout[kept] = np.maximum(dropout[kept], np.maximum(c + life, redeemed))

        list_date = (start + pd.Timedelta(days=day)).strftime("%Y-%m-%d")
        list_id = f"sim-{list_date}"
        group = np.where(control, "control", "treatment")
        lists.append(
            pd.DataFrame(
                {
                    "list_id": list_id,
                    "list_date": list_date,
                    "customer_id": ids[listed],
                    "group": group,
                    "suggested_action": action,
                    "risk_tier": tier,
                }
            )
        )
        effect = retained1.astype(int) - retained0.astype(int)
        truth.append(
            pd.DataFrame(
                {
                    "list_id": list_id,
                    "list_date": pd.Timestamp(list_date),
                    "customer_id": pd.array(ids[listed], dtype="string"),
                    "group": group,
                    "true_type": types,
                    "contacted": contacted,
                    "retained_without_contact": retained0,
                    "retained_with_contact": retained1,
                    "true_effect": effect,
                    # the effect of being assigned to treatment rather than control: what a
                    # list's treated-minus-control retention estimates (non-compliance included)
                    "true_itt_effect": (reach_if_treated.astype(int) - reach_if_control.astype(int))
                    * effect,
                }
            )
        )
        reached = np.flatnonzero(contacted)
        channel_cost = [ACTION_CHANNEL[a] for a in action[reached]]
        contact_when = start + pd.to_timedelta(
            np.round(contact_t[reached] * 86400).astype(np.int64), unit="s"
        )
        contacts.append(
            pd.DataFrame(
                {
                    "customer_id": ids[listed[reached]],
                    "contacted_at": contact_when.strftime("%Y-%m-%d %H:%M:%S"),
                    "action": action[reached],
                    "channel": [channel for channel, _ in channel_cost],
                    "cost": [cost for _, cost in channel_cost],
                }
            )
        )
    return SimulatedCampaigns(
        Purchases(owner, t, fading),
        dropout,
        _frames(lists, CAMPAIGN_LISTS_COLUMNS),
        _frames(contacts, CONTACTS_COLUMNS),
        _frames(truth, CAMPAIGN_TRUTH_COLUMNS),
    )


def _frames(frames: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    if not frames:
        return pd.DataFrame({column: pd.Series(dtype="object") for column in columns})
    return pd.concat(frames, ignore_index=True)


def _add_export_defects(
    txn: pd.DataFrame, params: GenerateParams, rng: np.random.Generator
) -> pd.DataFrame:
    """Append re-exported duplicates and malformed copies of rows, the way real exports break."""
    n = len(txn)
    if n == 0:
        return txn
    dup = txn.iloc[rng.choice(n, size=int(n * params.duplicate_share), replace=False)]
    bad = txn.iloc[rng.choice(n, size=int(n * params.dirty_share), replace=False)].copy()
    bad[RAW_ORDER_ID] = [f"{oid}-X" for oid in bad[RAW_ORDER_ID]]
    kinds = rng.integers(0, len(DIRTY_KINDS), len(bad))
    for k, kind in enumerate(DIRTY_KINDS):
        rows = bad.index[kinds == k]
        if kind == "missing_customer":
            bad.loc[rows, RAW_CUSTOMER] = ""
        elif kind == "bad_timestamp":
            bad.loc[rows, RAW_TIMESTAMP] = "not a date"
        elif kind == "non_numeric_amount":
            bad.loc[rows, RAW_AMOUNT] = "N/A"
        elif kind == "nan_amount":
            bad.loc[rows, RAW_AMOUNT] = "NaN"
        elif kind == "inf_amount":
            bad.loc[rows, RAW_AMOUNT] = "inf"
        elif kind == "future_timestamp":
            bad.loc[rows, RAW_TIMESTAMP] = "2099-01-01 00:00:00"
    out = pd.concat([txn, dup, bad], ignore_index=True)
    # exports come roughly in time order; malformed timestamps end up wherever they were
    return (
        out.iloc[rng.permutation(len(out))]
        .sort_values(RAW_TIMESTAMP, kind="stable")
        .reset_index(drop=True)
    )


def _simulate_nps(
    ids: np.ndarray,
    join: np.ndarray,
    active_end: np.ndarray,
    dropout: np.ndarray,
    params: GenerateParams,
    rng: np.random.Generator,
    start: pd.Timestamp,
) -> pd.DataFrame:
    """Survey answers 0-10; customers within 90 days of dropping out answer lower."""
    if not params.with_nps:
        return pd.DataFrame({RAW_CUSTOMER: [], "answered_at": [], "score": []})
    n = ids.size
    answers = np.where(rng.random(n) < params.nps_response_rate, rng.integers(1, 4, n), 0)
    owner = np.repeat(np.arange(n), answers)
    t = join[owner] + rng.random(owner.size) * np.maximum(active_end[owner] - join[owner], 1.0)
    inside = (t >= 0) & (t < params.days)  # answers before the export starts are not in it
    owner, t = owner[inside], t[inside]
    near_dropout = (dropout[owner] - t) < 90
    happy = rng.choice(11, owner.size, p=_nps_probs(shift=0.0))
    unhappy = rng.choice(11, owner.size, p=_nps_probs(shift=3.0))
    score = np.where(near_dropout, unhappy, happy)
    when = start + pd.to_timedelta(np.floor(t).astype(np.int64), unit="D")
    return pd.DataFrame(
        {RAW_CUSTOMER: ids[owner], "answered_at": when.strftime("%Y-%m-%d"), "score": score}
    )


def _nps_probs(shift: float) -> np.ndarray:
    scores = np.arange(11)
    weights = np.exp(-0.5 * ((scores - (8.3 - shift)) / 1.8) ** 2)
    return weights / weights.sum()


def simulate(params: GenerateParams, tiers: TiersParams | None = None) -> Iterator[GeneratedChunk]:
    """Yield chunks of at most params.chunk_customers customers; memory stays bounded by the chunk.
    `tiers`: the pipeline's score.tiers, for the past campaign lists' risk tiers."""
    for chunk, first in enumerate(range(0, params.customers, params.chunk_customers)):
        last = min(first + params.chunk_customers, params.customers)
        yield simulate_chunk(params, chunk, first, last, tiers)


# --------------------------------------------------------------------------- synthetic snapshots
SNAPSHOT_AS_OF = dt.date(2025, 6, 30)
SNAPSHOT_CHANNELS = ("app", "store", "web")
SNAPSHOT_REGIONS = ("east", "north", "south", "west")


def synthetic_snapshot(
    customers: int, seed: int = 0, as_of: dt.date = SNAPSHOT_AS_OF, labelled: bool = False
) -> pd.DataFrame:
    """Return a synthetic snapshot of the features contract (core features, NPS, refunds; `churned`
    when labelled), for benchmarks and tests that need many rows fast, not the pipeline (kept
    here as their one shared copy: tests and benchmarks may not import each other)."""
    rng = np.random.default_rng(seed)
    tenure = rng.integers(30, 1000, customers).astype("int64")
    gap = rng.gamma(2.0, 15.0, customers) + 3
    purchases = np.maximum(1, (tenure / gap).astype("int64"))
    recency = np.minimum(tenure, rng.exponential(gap * 1.5)).astype("int64")
    aov = rng.gamma(3.0, 15.0, customers)
    spend_total = purchases * aov
    purchases_90d = rng.poisson(np.where(recency < 90, 90 / gap, 0.0))
    spend_90d = purchases_90d * aov * rng.uniform(0.3, 1.2, customers)
    nps = np.where(rng.random(customers) < 0.4, rng.integers(0, 11, customers), np.nan)
    refunds = rng.poisson(0.3, customers).astype("int64")
    channel = rng.choice(SNAPSHOT_CHANNELS, customers)
    snapshot = pd.DataFrame(
        {
            "customer_id": pd.array([f"{i:07d}" for i in range(customers)], dtype="string"),
            "cutoff": [as_of] * customers,
            "role": pd.array(["score"] * customers, dtype="string"),
            "recency_days": recency,
            "tenure_days": tenure,
            "purchases": purchases,
            "purchase_days": purchases,
            "spend_total": spend_total,
            "aov": aov,
            "spend_max": aov * 1.8,
            "spend_90d": spend_90d,
            "purchases_90d": purchases_90d,
            "gap_mean_days": gap,
            "nps_last": nps,
            "refunds": refunds,
            "channel": pd.array(channel, dtype="string"),
            "region": pd.array(rng.choice(SNAPSHOT_REGIONS, customers), dtype="string"),
        }
    )
    if labelled:
        logit = (
            1.6 * (recency / gap - 1.5)
            - 0.8 * (spend_90d > 0)
            + 0.25 * np.nan_to_num(6 - nps, nan=0.0)
            + 0.5 * refunds
            + 0.4 * (channel == "web")
            - 1.0
        )
        churned = rng.random(customers) < 1 / (1 + np.exp(-logit))
        snapshot.insert(3, "churned", churned.astype("int8"))
    return snapshot


SNAPSHOT_FEATURES = [
    "recency_days",
    "tenure_days",
    "purchases",
    "purchase_days",
    "spend_total",
    "aov",
    "spend_max",
    "spend_90d",
    "purchases_90d",
    "gap_mean_days",
    "nps_last",
    "refunds",
    "channel",
    "region",
]


def run(
    settings: GenerateParams,
    tiers: TiersParams,
    out: Path,
    file_format: str,
    customers: int | None = None,
) -> None:
    """The `generate` stage: stream the simulated customers into the raw files in `out`
    (transactions as gzip CSV or Parquet; customers and NPS only when enabled). `customers`
    overrides generate.customers (benchmarks)."""
    from churn.errors import ChurnError
    from churn.files import TableStream
    from churn.logs import get_logger, track

    if customers is not None:
        settings = settings.model_copy(update={"customers": customers})
    if file_format not in ("csv", "parquet"):
        raise ChurnError(f"--format {file_format!r}: use 'csv' or 'parquet'")
    txn_name = "transactions.csv.gz" if file_format == "csv" else "transactions.parquet"
    chunks = -(-settings.customers // settings.chunk_customers)
    with (
        TableStream(out / txn_name) as transactions,
        TableStream(out / "customers.csv") as customer_table,
        TableStream(out / "nps.csv") as nps,
        TableStream(out / "truth.parquet") as truth,
        TableStream(out / "campaign_lists.csv") as campaign_lists,
        TableStream(out / "contacts.csv") as contacts,
        TableStream(out / "campaign_truth.parquet") as campaign_truth,
    ):
        for chunk in track(simulate(settings, tiers), "simulating customers", total=chunks):
            transactions.write(chunk.transactions)
            truth.write(chunk.truth)
            for stream, frame in (
                (campaign_lists, chunk.campaign_lists),
                (contacts, chunk.contacts),
                (campaign_truth, chunk.campaign_truth),
            ):
                if len(frame):  # a chunk may list nobody; an empty frame has no typed schema
                    stream.write(frame)
            # every chunk's customers and answers, once each
            if settings.with_customers:
                customer_table.write(chunk.customers)
            if settings.with_nps:
                nps.write(chunk.nps)
        for stream, names in (
            (campaign_lists, CAMPAIGN_LISTS_COLUMNS),
            (contacts, CONTACTS_COLUMNS),
            (campaign_truth, CAMPAIGN_TRUTH_COLUMNS),
        ):
            if stream.rows == 0:  # campaigns off (or nobody listed): the files keep their header
                stream.write(pd.DataFrame({name: pd.Series(dtype="string") for name in names}))
    for name, enabled in (
        ("customers.csv", settings.with_customers),
        ("nps.csv", settings.with_nps),
    ):
        if not enabled:
            (out / name).unlink(missing_ok=True)
    get_logger("generate").info(
        "generated %d customers, %d rows into %s", settings.customers, transactions.rows, out
    )
