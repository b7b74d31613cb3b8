"""Assemble the retention report: per-period figures, cohorts, NPS and risk tables, headline."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd

from churn.columns import (
    CHURN_RATE_PCT,
    COHORT,
    COHORT_SIZE,
    COHORT_START,
    CUSTOMERS_END,
    CUSTOMERS_LOST,
    CUSTOMERS_NEW,
    CUSTOMERS_START,
    CUSTOMERS_WON_BACK,
    PERIOD,
    PERIOD_END,
    PERIOD_START,
    PERIODS_SINCE_FIRST,
    RETENTION_PCT,
    RETENTION_RATE_PCT,
    WARM_UP,
)
from churn.config import ChurnParams, ReportParams
from churn.definition import resolve_as_of
from churn.errors import ChurnError
from churn.report.activity import (
    Aggregates,
    TransactionSpan,
    active_runs,
    check_transactions,
    count_churn_by_nps,
    count_cohorts,
    count_flows,
    summarize_sales,
)
from churn.report.campaigns import (
    CampaignResults,
    UpliftGateView,
    summarize_campaigns,
    summarize_save_rates,
    summarize_uplift_gate,
)
from churn.report.outcomes import ListOutcomes, summarize_list_outcomes
from churn.report.periods import (
    Period,
    last_complete_period,
    period_end,
    period_index,
    period_label,
    period_start,
)
from churn.report.risk import (
    attach_segments,
    check_scores,
    describe_model_quality,
    summarize_risk_by_segment,
    summarize_risk_by_tier,
    summarize_scoring,
)
from churn.report.survey import nps_answers_by_day, pool_churn_by_nps, summarize_nps
from churn.report.training_range import OutOfRangeFeature, summarize_out_of_range

PERIOD_COLUMNS = [
    PERIOD,
    PERIOD_START,
    PERIOD_END,
    WARM_UP,
    CUSTOMERS_START,
    CUSTOMERS_NEW,
    CUSTOMERS_WON_BACK,
    CUSTOMERS_LOST,
    CUSTOMERS_END,
    RETENTION_RATE_PCT,
    CHURN_RATE_PCT,
    "buyers",
    "repeat_buyers",
    "repeat_purchase_rate_pct",
    "orders",
    "aov",
    "gross_sales",
    "refunds",
    "revenue",
    "revenue_new",
    "revenue_returning",
    "nps_answers",
    "promoters",
    "passives",
    "detractors",
    "nps",
]
COHORT_COLUMNS = [
    COHORT,
    COHORT_START,
    WARM_UP,
    COHORT_SIZE,
    PERIODS_SINCE_FIRST,
    "customers",
    RETENTION_PCT,
]


@dataclass(frozen=True)
class RetentionReport:
    """Everything the page, the JSON metrics and the CSV plots show, computed once."""

    settings: ReportParams
    definition: ChurnParams  # the churn definition the page states (params section `churn`)
    as_of: date
    first_date: date
    transactions: int
    periods: pd.DataFrame  # one row per complete period, oldest first (PERIOD_COLUMNS)
    cohorts: pd.DataFrame  # long format (COHORT_COLUMNS)
    nps_given: bool
    churn_by_nps: pd.DataFrame | None  # pooled over non-warm-up periods
    risk_by_tier: pd.DataFrame | None
    risk_by_segment: pd.DataFrame | None
    scoring: dict[str, Any] | None
    model_quality: str
    list_outcomes: ListOutcomes | None = None  # matured published lists (churn backtest)
    # scored features beyond the training range (churn drift); None when no drift report was given
    out_of_range: tuple[OutOfRangeFeature, ...] | None = None
    campaigns: CampaignResults | None = None  # measured campaign effects (churn ledger)
    uplift_gate: UpliftGateView | None = None  # the uplift gate's decision (churn uplift)
    # the save rate per tier the score stage used, its source and interval (reports/score.json)
    save_rates: pd.DataFrame | None = None


def _pct(numerator: pd.Series, denominator: pd.Series) -> pd.Series:
    """Return numerator / denominator x 100 rounded to 2 decimals; empty where the base is 0."""
    return (100.0 * numerator / denominator.where(denominator > 0)).round(2)


def assemble_periods(
    span: TransactionSpan,
    flows: pd.DataFrame,
    sales: pd.DataFrame,
    period: Period,
    active_within_days: int,
    as_of: date,
    nps: pd.DataFrame | None = None,
    source: str = "transactions",
) -> pd.DataFrame:
    """Return one row per complete period from the first data period up to as_of (PERIOD_COLUMNS).

    Active counts are running sums of joins minus losses, so CE = CS + CN - lost exactly.
    """
    first = period_index(period, span.first_date)
    last = last_complete_period(period, as_of)
    if last < first:
        raise ChurnError(
            f"{source}: the data from {span.first_date} to {as_of} holds no complete {period}; "
            "choose a shorter report.period or report on more data"
        )
    index = pd.RangeIndex(first, last + 1, name="period_index")
    moves = flows.set_index("period_index").reindex(index, fill_value=0)
    end = (moves["joined"] - moves["lost"]).cumsum()
    table = pd.DataFrame(index=index)
    table[PERIOD] = [period_label(period, p) for p in index]
    table[PERIOD_START] = [period_start(period, p) for p in index]
    table[PERIOD_END] = [period_end(period, p) for p in index]
    warm_up_until = span.first_date + timedelta(days=active_within_days)
    table[WARM_UP] = [start < warm_up_until for start in table[PERIOD_START]]
    table[CUSTOMERS_START] = end.shift(1, fill_value=0)
    table[CUSTOMERS_NEW] = moves["joined"]
    table[CUSTOMERS_WON_BACK] = moves["joined"] - moves["first_time"]
    table[CUSTOMERS_LOST] = moves["lost"]
    table[CUSTOMERS_END] = end
    start = table[CUSTOMERS_START]
    table[RETENTION_RATE_PCT] = _pct(table[CUSTOMERS_END] - table[CUSTOMERS_NEW], start)
    table[CHURN_RATE_PCT] = _pct(table[CUSTOMERS_LOST], start)

    money = sales.set_index("period_index").reindex(index)
    counts = ["orders", "buyers", "repeat_buyers"]
    table[counts] = money[counts].fillna(0).astype("int64")
    table["repeat_purchase_rate_pct"] = _pct(table["repeat_buyers"], table["buyers"])
    amounts = ["gross_sales", "refunds", "revenue", "revenue_new", "revenue_returning"]
    table[amounts] = money[amounts].fillna(0.0).round(2)
    table["aov"] = (table["gross_sales"] / table["orders"].where(table["orders"] > 0)).round(2)

    nps_columns = ["nps_answers", "promoters", "passives", "detractors"]
    if nps is not None:
        answers = nps.set_index("period_index").reindex(index)
        table[nps_columns] = answers[nps_columns].fillna(0).astype("int64")
        table["nps"] = answers["nps"]
    else:
        table[nps_columns] = 0
        table["nps"] = np.nan
    int_columns = [CUSTOMERS_START, CUSTOMERS_NEW, CUSTOMERS_WON_BACK, CUSTOMERS_LOST]
    table[[*int_columns, CUSTOMERS_END]] = table[[*int_columns, CUSTOMERS_END]].astype("int64")
    return table.reset_index()[["period_index", *PERIOD_COLUMNS]]


def assemble_cohorts(
    counts: pd.DataFrame, period: Period, first_date: date, active_within_days: int, last: int
) -> pd.DataFrame:
    """Return the cohort matrix in long form: every (cohort, k) up to the last complete period.

    A cell is the share of the cohort (customers whose first purchase fell in that period) who
    bought again k periods later; cells with nobody are explicit zeros.
    """
    if counts.empty:
        return pd.DataFrame(columns=COHORT_COLUMNS)
    cohorts = sorted(int(c) for c in counts[COHORT].unique())
    grid = pd.MultiIndex.from_tuples(
        [(c, k) for c in cohorts for k in range(last - c + 1)],
        names=[COHORT, PERIODS_SINCE_FIRST],
    )
    cells = (
        counts.astype({COHORT: "int64", PERIODS_SINCE_FIRST: "int64"})
        .set_index([COHORT, PERIODS_SINCE_FIRST])["customers"]
        .reindex(grid, fill_value=0)
        .astype("int64")
        .reset_index()
    )
    sizes = cells[cells[PERIODS_SINCE_FIRST] == 0].set_index(COHORT)["customers"]
    cells[COHORT_SIZE] = cells[COHORT].map(sizes).astype("int64")
    cells[RETENTION_PCT] = _pct(cells["customers"], cells[COHORT_SIZE])
    starts = {c: period_start(period, c) for c in cohorts}
    warm_up_until = first_date + timedelta(days=active_within_days)
    cells[COHORT_START] = cells[COHORT].map(starts)
    cells[WARM_UP] = cells[COHORT_START].map(lambda start: start < warm_up_until)
    cells[COHORT] = cells[COHORT].map(lambda c: period_label(period, c))
    return cells[COHORT_COLUMNS]


def build_report(
    aggregates: Aggregates,
    transactions: Any,
    settings: ReportParams,
    definition: ChurnParams,
    *,
    nps: pd.DataFrame | None = None,
    customers: pd.DataFrame | None = None,
    scores: pd.DataFrame | None = None,
    metrics: Mapping[str, Any] | None = None,
    backtest: Mapping[str, Any] | None = None,
    drift: Mapping[str, Any] | None = None,
    ledger: Mapping[str, Any] | None = None,
    uplift: Mapping[str, Any] | None = None,
    score_report: Mapping[str, Any] | None = None,
    sources: Mapping[str, str] | None = None,
) -> RetentionReport:
    """Return the full retention report; NPS, scores, metrics, backtest, drift and campaign
    ledger parts are optional.

    `transactions` is a table of the `aggregates` engine (a DuckDB relation on its connection, a
    Spark DataFrame; a Parquet scan in production), so the raw rows are aggregated inside the
    engine and only small frames come back. `sources` names the files in error messages.
    """
    names = {
        "transactions": "transactions",
        "nps": "nps",
        "scores": "scores",
        "backtest": "backtest",
        "drift": "drift",
        "ledger": "ledger",
        "uplift": "uplift",
        "score_report": "score report",
        **(sources or {}),
    }
    span = check_transactions(aggregates, transactions, names["transactions"])
    as_of = resolve_as_of(definition, span.first_date, span.last_date)
    period, window = settings.period, definition.active_within_days
    sales = summarize_sales(aggregates, transactions, period, as_of)
    if int(sales["orders"].sum()) == 0:
        raise ChurnError(
            f"{names['transactions']}: no purchases (amount > 0) on or before {as_of}; "
            "nothing to report"
        )
    answers = None
    nps_summary = None
    first = period_index(period, span.first_date)
    last = last_complete_period(period, as_of)
    if nps is not None and len(nps):
        answers = nps_answers_by_day(nps, as_of, names["nps"])
        nps_summary = summarize_nps(answers, period, pd.RangeIndex(first, max(first, last + 1)))
    churn_by_nps = None
    with active_runs(aggregates, transactions, period, window, as_of) as runs:
        flows = count_flows(aggregates, runs)
        periods = assemble_periods(
            span, flows, sales, period, window, as_of, nps_summary, names["transactions"]
        )
        if answers is not None and len(answers):
            by_period = count_churn_by_nps(aggregates, runs, answers, periods)
            churn_by_nps = pool_churn_by_nps(by_period, periods[~periods[WARM_UP]])

    cohort_period = settings.cohort_period
    cohort_last = last_complete_period(cohort_period, as_of)
    cohorts = assemble_cohorts(
        count_cohorts(aggregates, transactions, cohort_period, as_of, cohort_last),
        cohort_period,
        span.first_date,
        window,
        cohort_last,
    )

    risk_by_tier = risk_by_segment = scoring = None
    if scores is not None:
        check_scores(scores, names["scores"])
        scored = attach_segments(scores, customers)
        risk_by_tier = summarize_risk_by_tier(scored)
        risk_by_segment = summarize_risk_by_segment(scored)
        scoring = summarize_scoring(scored)
    return RetentionReport(
        settings=settings,
        definition=definition,
        as_of=as_of,
        first_date=span.first_date,
        transactions=span.rows,
        periods=periods,
        cohorts=cohorts,
        nps_given=answers is not None and len(answers) > 0,
        churn_by_nps=churn_by_nps,
        risk_by_tier=risk_by_tier,
        risk_by_segment=risk_by_segment,
        scoring=scoring,
        model_quality=describe_model_quality(metrics),
        list_outcomes=None
        if backtest is None
        else summarize_list_outcomes(backtest, names["backtest"]),
        out_of_range=None
        if drift is None
        else tuple(summarize_out_of_range(drift, names["drift"])),
        campaigns=None if ledger is None else summarize_campaigns(ledger, names["ledger"]),
        uplift_gate=None if uplift is None else summarize_uplift_gate(uplift, names["uplift"]),
        save_rates=None
        if score_report is None
        else summarize_save_rates(score_report, names["score_report"]),
    )


def latest_period(periods: pd.DataFrame) -> pd.Series:
    """Return the newest period with full history (or the newest at all if every one warms up)."""
    settled = periods[~periods[WARM_UP]]
    return (settled if len(settled) else periods).iloc[-1]


def _plain(value: Any) -> Any:
    """Return a JSON-friendly scalar: ints stay ints, NaN becomes None, dates become ISO text."""
    if isinstance(value, np.integer | np.bool_):
        return value.item()
    if isinstance(value, float | np.floating):
        return None if np.isnan(value) else round(float(value), 2)
    if isinstance(value, date):
        return value.isoformat()
    return value


def headline_figures(report: RetentionReport) -> dict[str, Any]:
    """Return the headline numbers for reports/retention.json (DVC metrics)."""
    latest = latest_period(report.periods)
    settled = report.periods[~report.periods[WARM_UP]].tail(12)
    figures: dict[str, Any] = {
        "as_of": report.as_of.isoformat(),
        "period": report.settings.period,
        "active_within_days": report.definition.active_within_days,
        "latest_period": latest[PERIOD],
        "latest_period_warm_up": bool(latest[WARM_UP]),
    }
    for column in (
        CUSTOMERS_START,
        CUSTOMERS_NEW,
        CUSTOMERS_WON_BACK,
        CUSTOMERS_LOST,
        CUSTOMERS_END,
        RETENTION_RATE_PCT,
        CHURN_RATE_PCT,
        "repeat_purchase_rate_pct",
        "aov",
        "revenue",
        "revenue_new",
        "revenue_returning",
        "nps",
        "nps_answers",
    ):
        figures[column] = _plain(latest[column])
    figures["retention_rate_pct_mean_last_12"] = (
        _plain(settled[RETENTION_RATE_PCT].mean()) if len(settled) else None
    )
    if report.churn_by_nps is not None:
        figures["churn_rate_pct_by_nps_group"] = {
            row.nps_group.replace(" ", "_"): _plain(row.churn_rate_pct)
            for row in report.churn_by_nps.itertuples(index=False)
        }
    if report.scoring is not None:
        figures["scoring"] = {key: _plain(value) for key, value in report.scoring.items()}
    if report.list_outcomes is not None and len(report.list_outcomes.runs):
        newest = report.list_outcomes.runs.iloc[-1]
        figures["latest_backtested_list"] = {
            key: _plain(newest[key])
            for key in (
                "as_of",
                "flagged",
                "churn_flagged_pct",
                "predicted_flagged_pct",
                "churn_rest_pct",
                "below_predicted",
            )
        }
    return figures
