"""Reason texts against a reference: the customer's own rhythm, or customers like them.

A reason names the feature that raises a customer's risk and compares its value with what would
be normal: the customer's own past ("no purchase for 94 days; usually buys every 21 days") or the
median of customers like them — customers of the same tenure band in the scored population
("3 purchases in the last 90 days; customers like them made 7") — or, for a customer with no
reason against those, the median of every scored customer ("1 purchase in the last 180 days;
customers overall made 2"). A phrase is written only when the
comparison goes against the customer; otherwise it returns None and the caller tries the next
driver, so no text reads as a fact that lowers risk ("spend up 84%", "gave an NPS of 10").
"""

from __future__ import annotations

import fnmatch
import functools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from churn.columns import (
    AOV,
    AS_OF,
    CHURNED,
    CUSTOMER_ID,
    CUTOFF,
    GAP_MEAN_DAYS,
    PURCHASE_DAYS,
    PURCHASES,
    RECENCY_DAYS,
    ROLE,
    SPEND_TOTAL,
    TENURE_DAYS,
)

Phrase = tuple[str, str]  # (template id, text)
LOWER = 0.9  # money and ratios: "lower than the reference" means below 90% of it
MIN_PURCHASE_DAYS_FOR_HABIT = 3  # "usually buys every N days" needs two gaps, not one
NPS_SCORES = ("nps_latest", "nps_last", "nps_score", "nps")
BOOKKEEPING = (CUSTOMER_ID, CUTOFF, ROLE, AS_OF, CHURNED)  # snapshot columns that are no feature


# --------------------------------------------------------------------------- references
@dataclass(frozen=True)
class References:
    """Per tenure band medians of the scored population: what "customers like them" means."""

    edges: tuple[
        int, ...
    ]  # tenure band edges in days: band b holds tenure in [edges[b-1], edges[b])
    medians: dict[str, np.ndarray]  # numeric column -> median per band (NaN: nobody has a value)
    answered: dict[str, np.ndarray]  # numeric column -> share with a value per band
    overall: dict[str, float]  # numeric column -> median over the whole population
    segment_risk: dict[str, dict[str, float]]  # categorical column -> value -> mean probability
    mean_risk: float  # mean churn probability of the population (NaN when not given)

    def band(self, tenure: object) -> int:
        """Return the tenure band of a tenure in days (band 0 when unknown)."""
        if not _finite(tenure):
            return 0
        return int(np.searchsorted(np.asarray(self.edges), float(tenure), side="right"))


def build_references(
    population: pd.DataFrame,
    tenure_bands_days: list[int] | tuple[int, ...],
    probability: np.ndarray | None = None,
) -> References:
    """Return the references of a scored population (every eligible customer, not only flagged).

    `probability` (the churn probability of each row) gives the segment references: the mean risk
    in a region or channel against the mean overall; without it, segments get no phrase.
    """
    edges = tuple(int(edge) for edge in tenure_bands_days)
    tenure = (
        pd.to_numeric(population[TENURE_DAYS], errors="coerce").to_numpy(
            dtype="float64", na_value=np.nan
        )
        if TENURE_DAYS in population.columns
        else np.full(len(population), np.nan)
    )
    bands = np.where(
        np.isnan(tenure), 0, np.searchsorted(np.asarray(edges), np.nan_to_num(tenure), "right")
    )
    medians: dict[str, np.ndarray] = {}
    answered: dict[str, np.ndarray] = {}
    overall: dict[str, float] = {}
    segment_risk: dict[str, dict[str, float]] = {}
    risk = None if probability is None else np.asarray(probability, dtype="float64")
    for name in population.columns:
        column = population[name]
        if name in BOOKKEEPING or pd.api.types.is_bool_dtype(column):
            continue
        if pd.api.types.is_numeric_dtype(column):
            values = pd.to_numeric(column, errors="coerce").to_numpy(
                dtype="float64", na_value=np.nan
            )
            per_band = np.full(len(edges) + 1, np.nan)
            shares = np.zeros(len(edges) + 1)
            for band in range(len(edges) + 1):
                part = values[bands == band]
                known = part[~np.isnan(part)]
                if len(known):
                    per_band[band] = float(np.median(known))
                    shares[band] = len(known) / len(part)
            medians[name], answered[name] = per_band, shares
            known = values[~np.isnan(values)]
            overall[name] = float(np.median(known)) if len(known) else math.nan
        elif risk is not None:
            labels = column.astype("string")
            means = pd.Series(risk).groupby(labels.to_numpy(), dropna=True).mean()
            segment_risk[name] = {str(k): float(v) for k, v in means.items()}
    mean_risk = float(risk.mean()) if risk is not None and len(risk) else math.nan
    return References(edges, medians, answered, overall, segment_risk, mean_risk)


class Customer:
    """One customer's values and references, for the phrase functions."""

    def __init__(
        self,
        columns: dict[str, np.ndarray],
        row: int,
        references: References,
        everyone: bool = False,
    ) -> None:
        self.columns = columns  # column name -> values of every row (object arrays)
        self.row = row
        self.references = references
        self.band = references.band(self.value(TENURE_DAYS))
        # compare with every scored customer instead of those in the same tenure band
        self.everyone = everyone

    def value(self, name: str) -> object:
        """Return the raw value of a column (None when missing or unknown)."""
        column = self.columns.get(name)
        value = None if column is None else column[self.row]
        if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
            return None
        return value

    def number(self, name: str) -> float | None:
        """Return the value as a finite float, or None."""
        value = self.value(name)
        return float(value) if _finite(value) else None  # type: ignore[arg-type]

    def peers(self, name: str) -> float | None:
        """Return the median of customers like this one (same tenure band), or None; with
        `everyone`, the median of every scored customer."""
        if self.everyone:
            median = self.references.overall.get(name, math.nan)
            return float(median) if math.isfinite(median) else None
        per_band = self.references.medians.get(name)
        if per_band is None or not math.isfinite(per_band[self.band]):
            return None
        return float(per_band[self.band])

    def answered_share(self, name: str) -> float:
        """Return the share of customers like this one with a value in `name`."""
        shares = self.references.answered.get(name)
        return 0.0 if shares is None else float(shares[self.band])


# --------------------------------------------------------------------------- formatting
def _finite(value: object) -> bool:
    return (
        isinstance(value, int | float | np.integer | np.floating)
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


def _count(value: float) -> str:
    return f"{round(value):,}"


def _money(value: float) -> str:
    return f"{value:,.2f}"


def _plural(n: float, word: str) -> str:
    return f"{_count(n)} {word}{'' if round(n) == 1 else 's'}"


def _span(days: float) -> str:
    return _plural(days, "day") if days < 365 else f"{days / 365.25:.1f} years"


def _show(value: float) -> str:
    return _count(value) if value == round(value) else f"{value:,.2f}"


def _more(value: float, reference: float | None) -> bool:
    """Return whether a count or day number reads higher than the reference once rounded."""
    return reference is not None and round(value) > round(reference)


def _less(value: float, reference: float | None) -> bool:
    return reference is not None and round(value) < round(reference)


def _usual_per(total: float | None, recent: float | None, tenure: float | None, days: int):
    """Return the customer's own amount per `days` before the last `days` (None: history short)."""
    if total is None or recent is None or tenure is None or tenure < 2 * days:
        return None
    return (total - recent) / (tenure - days) * days


def _window(name: str) -> tuple[str, int] | None:
    match = re.fullmatch(r"(purchases|spend)_(\d+)d", name)
    return (match.group(1), int(match.group(2))) if match else None


# --------------------------------------------------------------------------- phrases
def _usual_gap(customer: Customer) -> float | None:
    """Return the mean gap between purchase dates when it is a habit: two gaps or more."""
    dates = customer.number(PURCHASE_DAYS)
    if dates is not None and dates < MIN_PURCHASE_DAYS_FOR_HABIT:
        return None
    return customer.number(GAP_MEAN_DAYS)


def phrase_recency(feature: str, customer: Customer) -> Phrase | None:
    """No purchase for N days, against the customer's usual gap, else customers like them."""
    recency = customer.number(RECENCY_DAYS)
    if recency is None:
        return None
    gap = _usual_gap(customer)
    text = f"no purchase for {_plural(recency, 'day')}"
    if gap is not None and gap > 0 and _more(recency, gap):
        return "recency_vs_own_rhythm", f"{text}; usually buys every {_plural(gap, 'day')}"
    peers = customer.peers(RECENCY_DAYS)
    if peers is not None and _more(recency, peers):
        return (
            "recency_vs_peers",
            f"{text}; customers like them last bought {_plural(peers, 'day')} ago",
        )
    return None


def _gap_mean(feature: str, customer: Customer) -> Phrase | None:
    gap, peers = customer.number(feature), customer.peers(feature)
    if gap is None or peers is None or not _more(gap, peers):
        return None
    return (
        "gap_vs_peers",
        f"buys every {_plural(gap, 'day')} on average; "
        f"customers like them every {_plural(peers, 'day')}",
    )


def _gap_last(feature: str, customer: Customer) -> Phrase | None:
    last = customer.number(feature)
    if last is None:
        return None
    text = f"last gap between purchases {_plural(last, 'day')}"
    usual = _usual_gap(customer)
    if usual is not None and _more(last, usual):
        return "gap_last_vs_own_rhythm", f"{text}; usually {_plural(usual, 'day')}"
    peers = customer.peers(feature)
    if peers is not None and _more(last, peers):
        return "gap_last_vs_peers", f"{text}; customers like them {_plural(peers, 'day')}"
    return None


def _gap_spread(feature: str, customer: Customer) -> Phrase | None:
    value, peers = customer.number(feature), customer.peers(feature)
    if value is None or peers is None:
        return None
    if feature.endswith("_days"):
        if not _more(value, peers):
            return None
        return (
            "gap_spread_vs_peers",
            f"gaps between purchases vary by {_plural(value, 'day')}; customers like them "
            f"{_plural(peers, 'day')}",
        )
    if f"{value:.0%}" == f"{peers:.0%}" or value < peers:
        return None
    return (
        "gap_spread_vs_peers",
        f"irregular buying: gaps vary {value:.0%} around their average; "
        f"customers like them {peers:.0%}",
    )


def _purchases_window(feature: str, customer: Customer) -> Phrase | None:
    _, days = _window(feature)  # type: ignore[misc]
    recent = customer.number(feature)
    if recent is None:
        return None
    text = (
        f"no purchases in the last {days} days"
        if round(recent) == 0
        else f"{_plural(recent, 'purchase')} in the last {days} days"
    )
    usual = _usual_per(customer.number(PURCHASES), recent, customer.number(TENURE_DAYS), days)
    if usual is not None and round(usual) >= 1 and _less(recent, usual):
        return "purchases_window_vs_own_rhythm", f"{text}; usually about {_count(usual)}"
    peers = customer.peers(feature)
    if peers is not None and _less(recent, peers):
        return "purchases_window_vs_peers", f"{text}; customers like them made {_count(peers)}"
    return None


def _spend_window(feature: str, customer: Customer) -> Phrase | None:
    _, days = _window(feature)  # type: ignore[misc]
    recent = customer.number(feature)
    if recent is None:
        return None
    text = (
        f"no spend in the last {days} days"
        if recent <= 0
        else f"spent {_money(recent)} in the last {days} days"
    )
    usual = _usual_per(customer.number(SPEND_TOTAL), recent, customer.number(TENURE_DAYS), days)
    if usual is not None and usual > 0 and recent < LOWER * usual:
        return "spend_window_vs_own_rhythm", f"{text}; usually about {_money(usual)}"
    peers = customer.peers(feature)
    if peers is not None and peers > 0 and recent < LOWER * peers:
        return "spend_window_vs_peers", f"{text}; customers like them spent {_money(peers)}"
    return None


def _trend(feature: str, customer: Customer, kind: str) -> Phrase | None:
    recent, both = customer.number(f"{kind}_90d"), customer.number(f"{kind}_180d")
    if recent is not None and both is not None:
        before = both - recent
        if kind == "purchases":
            if not _less(recent, before):
                return None
            now = "no purchases" if round(recent) == 0 else _plural(recent, "purchase")
            return (
                "purchases_trend_vs_own",
                f"{now} in the last 90 days; {_count(before)} in the 90 days before",
            )
        if before <= 0 or recent >= LOWER * before:
            return None
        now = "no spend" if recent <= 0 else f"spent {_money(recent)}"
        return (
            "spend_trend_vs_own",
            f"{now} in the last 90 days; {_money(before)} in the 90 days before",
        )
    trend = customer.number(feature)  # (a - b) / (a + b) in [-1, 1]
    if trend is None or trend >= 0:
        return None
    down = round(-2 * trend / (1 - trend) * 100)
    if down < 10:
        return None
    label = "purchases" if kind == "purchases" else "spend"
    return f"{kind}_trend_vs_own", f"{label} down {down}% on the period before"


def _aov_trend(feature: str, customer: Customer) -> Phrase | None:
    ratio, aov = customer.number(feature), customer.number(AOV)
    if ratio is None or aov is None or ratio >= LOWER:
        return None
    return (
        "aov_trend_vs_own",
        f"recent orders average {_money(ratio * aov)}; usually {_money(aov)}",
    )


def _lower_than_peers(template: str, text: str):
    def phrase(feature: str, customer: Customer) -> Phrase | None:
        value, peers = customer.number(feature), customer.peers(feature)
        if value is None or peers is None or peers <= 0 or value >= LOWER * peers:
            return None
        return template, text.format(value=_money(value), peers=_money(peers))

    return phrase


def _fewer_than_peers(template: str, text: Callable[[float, float], str]):
    def phrase(feature: str, customer: Customer) -> Phrase | None:
        value, peers = customer.number(feature), customer.peers(feature)
        if value is None or peers is None or not _less(value, peers):
            return None
        return template, text(value, peers)

    return phrase


def _purchase_rate(feature: str, customer: Customer) -> Phrase | None:
    value, peers = customer.number(feature), customer.peers(feature)
    if value is None or peers is None or f"{value:.1f}" == f"{peers:.1f}" or value > peers:
        return None
    return (
        "purchase_rate_vs_peers",
        f"{value:.1f} purchases a month over the last year; customers like them {peers:.1f}",
    )


def _tenure(feature: str, customer: Customer) -> Phrase | None:
    # tenure defines the peer bands, so its reference is the whole population
    days = customer.number(feature)
    median = customer.references.overall.get(feature, math.nan)
    if days is None or not math.isfinite(median) or _span(days) == _span(median):
        return None
    if days < median:
        return (
            "tenure_vs_population",
            f"customer for only {_span(days)}; half of customers for over {_span(median)}",
        )
    return (
        "tenure_vs_population",
        f"customer for {_span(days)}; half of customers for under {_span(median)}",
    )


def _nps_column(feature: str, customer: Customer) -> str | None:
    score = customer.number(feature)
    if score is not None and 0 <= score <= 10:
        return feature
    for name in NPS_SCORES:
        if name in customer.columns:
            return name
    return feature if feature in customer.references.medians else None


def _nps(feature: str, customer: Customer) -> Phrase | None:
    name = _nps_column(feature, customer)
    if name is None:
        return None
    score = customer.number(name)
    if score is None:
        share = customer.answered_share(name)
        if share <= 0:
            return None
        return (
            "nps_unanswered",
            f"has not answered the NPS survey; {share:.0%} of customers like them have",
        )
    peers = customer.peers(name)
    if not _less(score, peers):
        return None
    return "nps_vs_peers", f"gave an NPS of {score:g}; customers like them gave {peers:g}"


def _nps_trend(feature: str, customer: Customer) -> Phrase | None:
    trend = customer.number(feature)
    latest = next((customer.number(n) for n in NPS_SCORES if customer.number(n) is not None), None)
    if trend is None or trend > -1:
        return None
    text = f"NPS down {_plural(-trend, 'point')} from their answer before"
    if latest is not None:
        text += f" ({latest - trend:g} to {latest:g})"
    return "nps_trend_vs_own", text


def _refund_count(word: str, template: str):
    def phrase(feature: str, customer: Customer) -> Phrase | None:
        value = customer.number(feature)
        peers = customer.peers(feature) or 0.0
        if value is None or round(value) == 0 or not _more(value, peers):
            return None
        return template, f"{_plural(value, word)}; customers like them {_count(peers)}"

    return phrase


def _refund_share(feature: str, customer: Customer) -> Phrase | None:
    value = customer.number(feature)
    peers = customer.peers(feature) or 0.0
    if value is None or value <= 0 or f"{value:.0%}" == f"{peers:.0%}" or value < peers:
        return None
    return (
        "refund_share_vs_peers",
        f"{value:.0%} of spending refunded; customers like them {peers:.0%}",
    )


def _category(feature: str, customer: Customer) -> Phrase | None:
    value = customer.value(feature)
    risks = customer.references.segment_risk.get(feature)
    overall = customer.references.mean_risk
    if value is None or risks is None or str(value) not in risks or not math.isfinite(overall):
        return None
    risk = risks[str(value)]
    if risk <= overall or f"{risk:.0%}" == f"{overall:.0%}":
        return None
    if feature.startswith("region"):
        where = f"in region {value}"
    elif feature.startswith("channel"):
        where = f"joined via {value}"
    else:
        where = f"{feature.replace('_', ' ')} {value}"
    return (
        "segment_vs_population",
        f"{where}: average risk there {risk:.0%}, {overall:.0%} overall",
    )


def _generic(feature: str, customer: Customer) -> Phrase | None:
    if isinstance(customer.value(feature), str):
        return _category(feature, customer)
    value, peers = customer.number(feature), customer.peers(feature)
    if value is None or peers is None or _show(value) == _show(peers):
        return None
    return (
        "generic_vs_peers",
        f"{feature.replace('_', ' ')}: {_show(value)}; customers like them {_show(peers)}",
    )


def _none(feature: str, customer: Customer) -> Phrase | None:
    return None  # a fact with no honest plain-word reading (e.g. days since the survey)


PhraseFunction = Callable[[str, Customer], Phrase | None]

RECENCY_PATTERNS = ("recency*", "days_since*", "*overdue*")  # features that state the recency
# feature-name globs, first match wins; the family only groups and picks the action
PHRASES: list[tuple[tuple[str, ...], PhraseFunction]] = [
    (RECENCY_PATTERNS, phrase_recency),
    (("gap_mean*", "*interpurchase*"), _gap_mean),
    (("gap_last*",), _gap_last),
    (("gap_std*", "gap_cv*"), _gap_spread),
    (("purchases_trend*",), lambda f, c: _trend(f, c, "purchases")),
    (("purchases_[0-9]*d",), _purchases_window),
    (
        ("purchases", "orders"),
        _fewer_than_peers(
            "purchases_total_vs_peers",
            lambda v, p: f"{_plural(v, 'purchase')} in total; customers like them made {_count(p)}",
        ),
    ),
    (
        ("purchase_days",),
        _fewer_than_peers(
            "purchases_total_vs_peers",
            lambda v, p: (
                f"bought on {_plural(v, 'day')} in total; customers like them on {_count(p)}"
            ),
        ),
    ),
    (("purchase_rate*",), _purchase_rate),
    (
        ("weekday*",),
        _fewer_than_peers(
            "weekdays_vs_peers",
            lambda v, p: (
                f"buys on {_plural(v, 'day')} of the week; customers like them on {_count(p)}"
            ),
        ),
    ),
    (("spend_trend*",), lambda f, c: _trend(f, c, "spend")),
    (("spend_[0-9]*d",), _spend_window),
    (("aov_trend*",), _aov_trend),
    (
        ("aov", "*order_value*"),
        _lower_than_peers("aov_vs_peers", "average order of {value}; customers like them {peers}"),
    ),
    (
        ("spend_total", "*monetary*"),
        _lower_than_peers(
            "spend_total_vs_peers", "spent {value} in total; customers like them {peers}"
        ),
    ),
    (
        ("spend_max",),
        _lower_than_peers(
            "spend_max_vs_peers", "largest order {value}; customers like them {peers}"
        ),
    ),
    (("tenure*", "signup_tenure*"), _tenure),
    (("*nps_trend*",), _nps_trend),
    (("*nps_days*", "*nps_answers*"), _none),
    (("*nps*",), _nps),
    (("refund_share*", "*refund_rate*"), _refund_share),
    (("zero_amount*",), _refund_count("zero-amount transaction", "zero_amount_vs_peers")),
    (("refunds", "*refund*", "*return*", "*cancel*"), _refund_count("refund", "refunds_vs_peers")),
    (("channel*", "region*"), _category),
]


@functools.cache
def states_recency(feature: str) -> bool:
    """Return whether a feature is a form of the days since the last purchase."""
    return any(fnmatch.fnmatchcase(feature, pattern) for pattern in RECENCY_PATTERNS)


@functools.cache
def _phrase_of(feature: str) -> PhraseFunction:
    for patterns, phrase in PHRASES:
        if any(fnmatch.fnmatchcase(feature, pattern) for pattern in patterns):
            return phrase
    return _generic


def phrase_feature(feature: str, customer: Customer) -> Phrase | None:
    """Return (template, text) saying how `feature` is worse than its reference, or None."""
    return _phrase_of(feature)(feature, customer)


PEERS, EVERYONE = "customers like them", "customers overall"


def phrase_against_everyone(feature: str, customer: Customer) -> Phrase | None:
    """Return (template, text) saying how `feature` is worse than the median of every scored
    customer — the average customer the contributions are measured from — or None.

    Only for a customer with no reason against their own rhythm or customers like them: a new
    customer with one purchase is like the other new customers, yet below everyone scored.
    """
    everyone = Customer(customer.columns, customer.row, customer.references, everyone=True)
    phrase = phrase_feature(feature, everyone)
    if phrase is None or not phrase[0].endswith("_vs_peers") or PEERS not in phrase[1]:
        return None
    template, text = phrase
    return template.removesuffix("_vs_peers") + "_vs_everyone", text.replace(PEERS, EVERYONE)
