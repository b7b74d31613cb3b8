"""Every snapshot column: name, feature group, unit and definition (the source of docs/features.md)."""

from __future__ import annotations

from dataclasses import dataclass

from churn import columns as c
from churn.config import FeaturesParams


@dataclass(frozen=True)
class Feature:
    """One model feature: its column name, group (for ablations), unit and definition."""

    name: str
    group: str
    unit: str
    definition: str
    categorical: bool = False


def window_features(windows: tuple[int, ...]) -> list[Feature]:
    """Return the trailing-window count and spend features for the configured windows."""
    out = []
    for days in windows:
        out.append(
            Feature(
                f"purchases_{days}d",
                "windows",
                "count",
                f"purchases dated in (cutoff - {days} days, cutoff]",
            )
        )
        out.append(
            Feature(
                f"spend_{days}d",
                "windows",
                "currency",
                f"sum of purchase amounts dated in (cutoff - {days} days, cutoff]; 0 when none",
            )
        )
    return out


def bgnbd_features(params: FeaturesParams) -> list[Feature]:
    """Return the optional BG/NBD features (features.bgnbd), computed after the SQL."""
    if not params.bgnbd:
        return []
    fitted = (
        "from a BG/NBD model fitted by maximum likelihood on the (repeat purchases, "
        "last purchase age, first purchase age) of the customers eligible at the same cutoff "
        "(no labels; a fixed hash sample of 200,000 when larger); null when the fit is degenerate"
    )
    return [
        Feature(
            "bgnbd_expected_purchases",
            "bgnbd",
            "count",
            f"expected purchases in (cutoff, cutoff + churn.horizon_days], {fitted}",
        ),
        Feature(
            "bgnbd_p_alive",
            "bgnbd",
            "probability",
            f"probability the customer is still active at the cutoff, {fitted}; 1 for "
            "one-time buyers (the model's convention)",
        ),
        Feature(
            "bgnbd_p_no_purchase",
            "bgnbd",
            "probability",
            "probability of no purchase in (cutoff, cutoff + churn.horizon_days] (the churn "
            f"label's event), {fitted}",
        ),
    ]


def feature_list(params: FeaturesParams) -> list[Feature]:
    """Return every model feature, in output column order, for these params."""
    return sql_feature_list(params) + bgnbd_features(params)


def sql_feature_list(params: FeaturesParams) -> list[Feature]:
    """Return the features the SQL computes, in output column order."""
    trend = params.trend_days
    return [
        Feature(c.RECENCY_DAYS, "recency", "days", "cutoff - date of the last purchase"),
        Feature(c.TENURE_DAYS, "tenure", "days", "cutoff - date of the first purchase"),
        Feature(
            c.PURCHASES, "frequency", "count", "purchases (rows with amount > 0) dated <= cutoff"
        ),
        Feature(c.PURCHASE_DAYS, "frequency", "count", "distinct purchase dates <= cutoff"),
        Feature(
            c.SPEND_TOTAL, "monetary", "currency", "sum of purchase amounts (refunds excluded)"
        ),
        Feature(c.AOV, "monetary", "currency", "spend_total / purchases (average order value)"),
        Feature(c.SPEND_MAX, "monetary", "currency", "largest single purchase amount"),
        *window_features(params.windows),
        Feature(
            "purchases_trend",
            "trend",
            "ratio in [-1, 1]",
            f"(a - b) / (a + b), a = purchases in the last {trend} days, b = in the {trend} "
            "days before them; null when both are 0",
        ),
        Feature(
            "spend_trend",
            "trend",
            "ratio in [-1, 1]",
            f"as purchases_trend, on purchase spend over the same two {trend}-day windows",
        ),
        Feature(
            c.GAP_MEAN_DAYS,
            "gaps",
            "days",
            "mean days between consecutive distinct purchase dates = (last - first) / "
            "(purchase_days - 1); null with one purchase date",
        ),
        Feature(
            "gap_std_days",
            "gaps",
            "days",
            "sample standard deviation of those gaps; null with fewer than two gaps",
        ),
        Feature("gap_cv", "gaps", "ratio", "gap_std_days / gap_mean_days"),
        Feature(
            "gap_last_days",
            "gaps",
            "days",
            "the most recent gap (last purchase date - the one before)",
        ),
        Feature(
            "overdue_ratio",
            "gaps",
            "ratio",
            "recency_days / gap_mean_days: above 1 = later than this customer usually buys",
        ),
        *rhythm_features(params),
        Feature("refunds", "refunds", "count", "rows with amount < 0 dated <= cutoff"),
        Feature(
            "refund_share",
            "refunds",
            "ratio",
            "refunded amount (sum of -amount over refunds) / spend_total",
        ),
        Feature("zero_amount_count", "refunds", "count", "rows with amount = 0 dated <= cutoff"),
        Feature(
            "purchase_rate_365d",
            "rates",
            "purchases per 30 days",
            "purchase_days in (cutoff - 365, cutoff] * 30 / min(tenure_days + 1, 365): "
            "buying rate over the observed part of the last year",
        ),
        Feature(
            "recency_tenure_ratio",
            "rates",
            "ratio in [0, 1]",
            "recency_days / tenure_days (BG/NBD-style: the share of the customer's life that is "
            "silent); null when tenure_days = 0",
        ),
        Feature(
            "aov_trend",
            "rates",
            "ratio",
            f"average order value in the last {trend} days / aov; null without purchases there",
        ),
        Feature(
            "weekday_count",
            "rates",
            "count (1-7)",
            "distinct days of the week among purchase dates (regularity of habit)",
        ),
        Feature(
            c.CHANNEL,
            "customer",
            "category",
            "acquisition channel from the customers table; null when no customers table, "
            "the customer is missing there, or signup_date is after the cutoff",
            categorical=True,
        ),
        Feature(
            c.REGION, "customer", "category", "region, same rules as channel", categorical=True
        ),
        Feature(
            "signup_tenure_days",
            "customer",
            "days",
            "cutoff - signup_date; null when signup_date is unknown or after the cutoff",
        ),
        Feature(
            "nps_latest",
            "nps",
            "score 0-10",
            "the latest NPS answer with answered_at <= cutoff (lowest score on ties)",
        ),
        Feature(
            "nps_class",
            "nps",
            "category",
            "promoter (9-10), passive (7-8) or detractor (0-6) from nps_latest",
            categorical=True,
        ),
        Feature(
            "nps_trend", "nps", "score points", "nps_latest - the answer before it; null with one"
        ),
        Feature("nps_days_since", "nps", "days", "cutoff - answered_at of the latest answer"),
        Feature(
            "nps_answers", "nps", "count", "NPS answers with answered_at <= cutoff; null with none"
        ),
        *season_features(params),
    ]


def rhythm_features(params: FeaturesParams) -> list[Feature]:
    """Return the silence against the customer's longest gap so far (features.rhythm)."""
    if not params.rhythm:
        return []
    return [
        Feature(
            "gap_max_days",
            "gaps",
            "days",
            "the longest gap between consecutive distinct purchase dates <= cutoff; null with "
            "one purchase date",
        ),
        Feature(
            "recency_gap_max_ratio",
            "gaps",
            "ratio",
            "recency_days / gap_max_days: above 1 = silent for longer than ever before",
        ),
    ]


def season_features(params: FeaturesParams) -> list[Feature]:
    """Return the time-of-year features of the cutoff (features.season)."""
    if not params.season:
        return []
    angle = "2 pi (day of year of the cutoff - 1) / 365.25"
    same = (
        "the same for every customer at a cutoff, so the model can learn seasonal churn; never "
        "a customer's reason, never drift-checked"
    )
    return [
        Feature(c.SEASON_SIN, "season", "in [-1, 1]", f"sin({angle}): {same}"),
        Feature(c.SEASON_COS, "season", "in [-1, 1]", f"cos({angle}): {same}"),
    ]


def feature_names(params: FeaturesParams) -> list[str]:
    """Return the model feature column names in output order."""
    return [feature.name for feature in feature_list(params)]


def feature_groups(params: FeaturesParams) -> dict[str, list[str]]:
    """Return feature names by group, in output order (used by the ablation)."""
    groups: dict[str, list[str]] = {}
    for feature in feature_list(params):
        groups.setdefault(feature.group, []).append(feature.name)
    return groups
