"""The feature and label definitions, written once as SQL (DuckDB dialect, portable subset).

Why SQL and not Ibis: Ibis 12 runs on DuckDB 2.0, but compiling Ibis to Spark SQL needs pyspark
installed, and its DuckDB SQL does not transpile cleanly (it puts frames on LAG, which Spark
rejects). Plain SQL in a small portable subset (integer day arithmetic, aggregate FILTER clauses,
LAG, MAX_BY via ARG_MAX, BIT_OR/BIT_COUNT, window aggregates over RANGE frames of integer days)
runs on DuckDB as is and is transpiled by sqlglot to Spark SQL (`spark_sql`). See
docs/features.md.

Tables the SQL reads (views or temp tables with these names): `transactions` (clean contract),
`customers`, `nps`, and `cutoffs` (cutoff DATE, cutoff_day INTEGER days since 1970-01-01,
role VARCHAR). Amounts are summed as integers in units of 1/10000 so sums are exact and do not
depend on row order or thread scheduling.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from churn.config import ChurnParams, FeaturesParams

EPOCH = date(1970, 1, 1)
# the first purchase on or before the cutoff (first_day), as an _Aggregate's key
FIRST_PURCHASE = ("MIN", "m.day", "m.amount > 0", ("all",))
SCALE = 10000  # amounts are summed as integers of 1/10000 currency unit


# The BG/NBD summary columns (churn.bgnbd.summarize_histories turns them into x, t_x, T), written
# once: the feature SQL (snapshot_sql) and the summary-only SQL (summary_sql) select these
# expressions over the same `snap` aggregates (SUMMARY_AGGREGATES), so they cannot disagree.
SUMMARY_EXPRESSIONS = {
    "purchase_days": "CAST(s.gaps + 1 AS INTEGER)",
    "tenure_days": "CAST(s.cutoff_day - s.first_day AS INTEGER)",
    "recency_days": "CAST(s.cutoff_day - s.last_day AS INTEGER)",
}
SUMMARY_AGGREGATES = ("last_day", "first_day", "gaps")  # the `snap` columns they read


def day_number(day: date) -> int:
    """Return days since 1970-01-01 (the integer day the SQL compares)."""
    return (day - EPOCH).days


def _day(column: str) -> str:
    return f"CAST(DATE_DIFF('day', DATE '1970-01-01', {column}) AS INTEGER)"


def _divide(numerator: str, denominator: str) -> str:
    # every division by a column goes through here: a zero denominator gives NULL (the feature's
    # documented "undefined"), never inf/NaN on DuckDB nor a DIVIDE_BY_ZERO abort on Spark (ANSI)
    return f"{numerator} / NULLIF({denominator}, 0)"


def _trend(a: str, b: str) -> str:
    return _divide(f"CAST({a} - {b} AS DOUBLE)", f"{a} + {b}")


def snapshot_sql(
    churn: ChurnParams,
    params: FeaturesParams,
    last_cutoff: date,
    with_labels: bool,
    single_cutoff: tuple[date, str] | None = None,
) -> str:
    """Return the query producing one row per eligible (customer, cutoff), features (+ label).

    Reads only transactions dated <= last_cutoff for features; labels (when asked) read
    purchases dated in (cutoff, cutoff + horizon_days]. With `single_cutoff` = (date, role) the
    cutoff is a literal and no `cutoffs` table is joined (the as-of snapshot: one scan, no join).
    """
    horizon = churn.horizon_days
    active = churn.active_within_days
    trend = params.trend_days
    window_cols = []
    for days in params.windows:
        window_cols.append(f"CAST(s.n_{days} AS INTEGER) AS purchases_{days}d")
        window_cols.append(f"CAST(COALESCE(s.s_{days}, 0) AS DOUBLE) / {SCALE} AS spend_{days}d")
    aggregates = _aggregates(params)
    label_col = ""
    if single_cutoff is None:
        # every cutoff in one pass: each transaction is read once, in its customer's timeline
        marked_where = "" if with_labels else f"\n    WHERE day <= {day_number(last_cutoff)}"
        snap = _timeline_snap(
            aggregates,
            last_cutoff,
            active,
            horizon if with_labels else None,
            trend,
            sorted(set(params.windows) | {trend}),
        )
        if with_labels:
            label_col = "CAST(CASE WHEN s.bought = 0 THEN 1 ELSE 0 END AS TINYINT) AS churned,"
    else:
        if with_labels:
            raise ValueError(
                "snapshot_sql: a single literal cutoff is the unlabelled as-of snapshot"
            )
        marked_where = f"\n    WHERE day <= {day_number(last_cutoff)}"
        snap = _scan_snap(aggregates, single_cutoff, active)

    if single_cutoff is None:
        nps_source = "nps n JOIN cutoffs c ON n.answered_at <= c.cutoff"
        nps_cutoff = "c.cutoff"
    else:
        nps_source = f"nps n WHERE n.answered_at <= DATE '{single_cutoff[0].isoformat()}'"
        nps_cutoff = f"DATE '{single_cutoff[0].isoformat()}'"
    # newest date any part of the query may read: the last label window's end, else the cutoff
    label_end = last_cutoff + timedelta(days=horizon if with_labels else 0)
    n_trend, s_trend = f"s.n_{trend}", f"COALESCE(s.s_{trend}, 0)"
    gap_mean = _divide("CAST(s.last_day - s.first_day AS DOUBLE)", "s.gaps")
    gap_std = _divide(
        "(CAST(s.gap_sumsq AS DOUBLE) - "
        + _divide(
            "CAST(s.last_day - s.first_day AS DOUBLE) * CAST(s.last_day - s.first_day AS DOUBLE)",
            "s.gaps",
        )
        + ")",
        "s.gaps - 1",
    )
    aov = _divide(f"CAST(s.spend_e4 AS DOUBLE) / {SCALE}", "s.purchases")
    aov_e4 = _divide("CAST(s.spend_e4 AS DOUBLE)", "s.purchases")  # aov_trend: e4 / e4 units
    newline = ",\n    "
    rhythm_cols = ""
    if params.rhythm:
        ratio = _divide("CAST(s.cutoff_day - s.last_day AS DOUBLE)", "s.gap_max")
        rhythm_cols = (
            f"\n  CAST(s.gap_max AS DOUBLE) AS gap_max_days,\n  {ratio} AS recency_gap_max_ratio,"
        )
    season_cols = ""
    if params.season:
        angle = "2 * PI() * (DAYOFYEAR(s.cutoff) - 1) / 365.25"
        season_cols = f",\n  SIN({angle}) AS season_sin,\n  COS({angle}) AS season_cos"
    summary = SUMMARY_EXPRESSIONS
    return f"""
WITH
{_marked_ctes(label_end, marked_where)}{snap}nps_ranked AS (
  SELECT n.customer_id, {nps_cutoff} AS cutoff, n.nps_score, {_day("n.answered_at")} AS answered_day,
         ROW_NUMBER() OVER (PARTITION BY n.customer_id, {nps_cutoff}
                            ORDER BY n.answered_at DESC, n.nps_score ASC) AS answer_rank
  FROM {nps_source}
),
nps_last AS (
  SELECT customer_id, cutoff,
    MAX(CASE WHEN answer_rank = 1 THEN nps_score END) AS latest,
    MAX(CASE WHEN answer_rank = 2 THEN nps_score END) AS previous,
    MAX(CASE WHEN answer_rank = 1 THEN answered_day END) AS latest_day,
    COUNT(*) AS answers
  FROM nps_ranked
  GROUP BY customer_id, cutoff
)
SELECT
  s.customer_id AS customer_id,
  s.cutoff AS cutoff,
  s.role AS role,
  {label_col}
  {summary["recency_days"]} AS recency_days,
  {summary["tenure_days"]} AS tenure_days,
  CAST(s.purchases AS INTEGER) AS purchases,
  {summary["purchase_days"]} AS purchase_days,
  CAST(s.spend_e4 AS DOUBLE) / {SCALE} AS spend_total,
  {aov} AS aov,
  CAST(s.spend_max_e4 AS DOUBLE) / {SCALE} AS spend_max,
  {newline.join(window_cols)},
  {_trend(n_trend, "s.n_before")} AS purchases_trend,
  {_trend(s_trend, "COALESCE(s.s_before, 0)")} AS spend_trend,
  {gap_mean} AS gap_mean_days,
  CASE WHEN s.gaps >= 2 THEN SQRT(GREATEST({gap_std}, 0)) END AS gap_std_days,
  CASE WHEN s.gaps >= 2 THEN {_divide(f"SQRT(GREATEST({gap_std}, 0))", gap_mean)} END AS gap_cv,
  CAST(s.gap_last AS DOUBLE) AS gap_last_days,
  {_divide("CAST(s.cutoff_day - s.last_day AS DOUBLE)", gap_mean)} AS overdue_ratio,{rhythm_cols}
  CAST(s.refunds AS INTEGER) AS refunds,
  {_divide("CAST(COALESCE(s.refund_e4, 0) AS DOUBLE)", "s.spend_e4")} AS refund_share,
  CAST(s.zeros AS INTEGER) AS zero_amount_count,
  {_divide("CAST(s.purchase_days_365 AS DOUBLE) * 30", "LEAST(s.cutoff_day - s.first_day + 1, 365)")}
    AS purchase_rate_365d,
  {_divide("CAST(s.cutoff_day - s.last_day AS DOUBLE)", "s.cutoff_day - s.first_day")}
    AS recency_tenure_ratio,
  {_divide(_divide(f"CAST(COALESCE(s.s_{trend}, 0) AS DOUBLE)", f"s.n_{trend}"), aov_e4)}
    AS aov_trend,
  CAST(BIT_COUNT(s.weekdays) AS INTEGER) AS weekday_count,
  CASE WHEN cu.signup_date IS NULL OR cu.signup_date <= s.cutoff THEN cu.channel END AS channel,
  CASE WHEN cu.signup_date IS NULL OR cu.signup_date <= s.cutoff THEN cu.region END AS region,
  CAST(CASE WHEN cu.signup_date <= s.cutoff
    THEN s.cutoff_day - {_day("cu.signup_date")} END AS DOUBLE) AS signup_tenure_days,
  CAST(p.latest AS DOUBLE) AS nps_latest,
  CASE WHEN p.latest >= 9 THEN 'promoter' WHEN p.latest >= 7 THEN 'passive'
       WHEN p.latest >= 0 THEN 'detractor' END AS nps_class,
  CAST(p.latest - p.previous AS DOUBLE) AS nps_trend,
  CAST(s.cutoff_day - p.latest_day AS DOUBLE) AS nps_days_since,
  CAST(p.answers AS DOUBLE) AS nps_answers{season_cols}
FROM snap s
LEFT JOIN customers cu ON cu.customer_id = s.customer_id
LEFT JOIN nps_last p ON p.customer_id = s.customer_id AND p.cutoff = s.cutoff
ORDER BY s.cutoff, s.customer_id
"""


def _marked_ctes(label_end: date, marked_where: str) -> str:
    """Return the `base` and `marked` CTEs: transactions dated <= label_end as integer days and
    amounts, each purchase with its gap in days since the customer's previous purchase."""
    return f"""base AS (
  SELECT customer_id, {_day("date")} AS day, amount,
         CAST(ROUND(amount * {SCALE}) AS BIGINT) AS amount_e4
  FROM transactions
  WHERE date <= DATE '{label_end.isoformat()}'
),
marked AS (
  SELECT customer_id, day, amount, amount_e4, gap,
         CASE WHEN amount > 0 AND (gap IS NULL OR gap > 0) THEN 1 ELSE 0 END AS new_day
  FROM (
    SELECT customer_id, day, amount, amount_e4,
           CASE WHEN amount > 0 THEN CAST(day - LAG(day) OVER (
             PARTITION BY customer_id, amount > 0 ORDER BY day) AS BIGINT) END AS gap
    FROM base{marked_where}
  ) lagged
),
"""


def summary_sql(
    churn: ChurnParams,
    params: FeaturesParams,
    last_cutoff: date,
    single_cutoff: tuple[date, str] | None = None,
) -> str:
    """Return the query producing snapshot_sql's (unlabelled) rows with only the BG/NBD summary
    columns: customer_id, cutoff, then SUMMARY_EXPRESSIONS' columns.

    The same rows and values as those columns of snapshot_sql(..., with_labels=False): the same
    CTEs, eligibility and expressions over only the aggregates they read (SUMMARY_AGGREGATES), no
    window features, customers or NPS. For the BG/NBD fits over every customer when the features
    of only some customers are needed (churn.features.build.compute_customer_snapshots): DuckDB
    computes every expression of a query, so selecting these columns from snapshot_sql would run
    the whole feature SQL for every customer.
    """
    active = churn.active_within_days
    trend = params.trend_days
    aggregates = [agg for agg in _aggregates(params) if agg.name in SUMMARY_AGGREGATES]
    marked_where = f"\n    WHERE day <= {day_number(last_cutoff)}"
    if single_cutoff is None:
        windows = sorted(set(params.windows) | {trend})
        snap = _timeline_snap(aggregates, last_cutoff, active, None, trend, windows)
    else:
        snap = _scan_snap(aggregates, single_cutoff, active)
    listed = "".join(f",\n  {sql} AS {name}" for name, sql in SUMMARY_EXPRESSIONS.items())
    return f"""
WITH
{_marked_ctes(last_cutoff, marked_where)}{snap.rstrip().rstrip(",")}
SELECT
  s.customer_id AS customer_id,
  s.cutoff AS cutoff{listed}
FROM snap s
ORDER BY s.cutoff, s.customer_id
"""


@dataclass(frozen=True)
class _Aggregate:
    """One per-(customer, cutoff) aggregate of the snapshot: `func` of `value` over the rows
    meeting `condition` (None: all) dated in the frame: "all" = on or before the cutoff,
    ("last", n) = in (cutoff - n, cutoff], ("between", lo, hi) = in (cutoff - lo, cutoff - hi]."""

    name: str
    func: str  # COUNT (value None: rows), SUM, MIN, MAX, ARG_MAX (value = "arg, by"), BIT_OR
    value: str | None
    condition: str | None
    frame: tuple[Any, ...] = ("all",)


def _aggregates(params: FeaturesParams) -> list[_Aggregate]:
    """Return the snapshot's aggregates, in the order the `snap` CTE lists them."""
    purchase, gap = "m.amount > 0", "m.gap > 0"
    trend = params.trend_days
    out = [
        _Aggregate("last_day", "MAX", "m.day", purchase),
        _Aggregate("first_day", "MIN", "m.day", purchase),
        _Aggregate("purchases", "COUNT", None, purchase),
        _Aggregate("gaps", "COUNT", None, gap),
        _Aggregate("gap_sumsq", "SUM", "m.gap * m.gap", gap),
        _Aggregate("gap_last", "ARG_MAX", "m.gap, m.day", gap),
    ]
    if params.rhythm:
        out.append(_Aggregate("gap_max", "MAX", "m.gap", gap))
    out += [
        _Aggregate("spend_e4", "SUM", "m.amount_e4", purchase),
        _Aggregate("spend_max_e4", "MAX", "m.amount_e4", purchase),
    ]
    for days in sorted(set(params.windows) | {trend}):
        out.append(_Aggregate(f"n_{days}", "COUNT", None, purchase, ("last", days)))
        out.append(_Aggregate(f"s_{days}", "SUM", "m.amount_e4", purchase, ("last", days)))
    before = ("between", 2 * trend, trend)
    out.append(_Aggregate("n_before", "COUNT", None, purchase, before))
    out.append(_Aggregate("s_before", "SUM", "m.amount_e4", purchase, before))
    out.append(_Aggregate("purchase_days_365", "SUM", "m.new_day", None, ("last", 365)))
    weekday = "CAST(1 AS BIGINT) << CAST(((m.day % 7) + 10) % 7 AS INTEGER)"
    out += [
        _Aggregate("refunds", "COUNT", None, "m.amount < 0"),
        _Aggregate("refund_e4", "SUM", "-m.amount_e4", "m.amount < 0"),
        _Aggregate("zeros", "COUNT", None, "m.amount = 0"),
        _Aggregate("weekdays", "BIT_OR", weekday, purchase),
    ]
    return out


def _scan_snap(aggregates: list[_Aggregate], cutoff: tuple[date, str], active: int) -> str:
    """Return the `snap` CTE of one literal cutoff: one filtered scan grouped by customer."""
    when, role = cutoff
    cd = str(day_number(when))
    items = []
    for agg in aggregates:
        conditions = [agg.condition] if agg.condition else []
        if agg.frame[0] == "last":
            conditions.append(f"m.day > {cd} - {agg.frame[1]}")
        elif agg.frame[0] == "between":
            conditions += [f"m.day > {cd} - {agg.frame[1]}", f"m.day <= {cd} - {agg.frame[2]}"]
        value = "*" if agg.value is None else agg.value
        items.append(f"{agg.func}({value}) FILTER (WHERE {' AND '.join(conditions)}) AS {agg.name}")
    listed = ",\n    ".join(items)
    return f"""snap AS (
  SELECT m.customer_id, DATE '{when.isoformat()}' AS cutoff, {cd} AS cutoff_day, '{role}' AS role,
    {listed}
  FROM marked m WHERE m.day <= {cd}
  GROUP BY m.customer_id
  HAVING MAX(m.day) FILTER (WHERE m.amount > 0) > {cd} - {active}
),
"""


def _frame(frame: tuple[Any, ...]) -> str:
    if frame[0] == "all":
        return "RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW"
    if frame[0] == "last":  # day > cutoff - n: the n - 1 days before the cutoff, and its day
        return f"RANGE BETWEEN {frame[1] - 1} PRECEDING AND CURRENT ROW"
    return f"RANGE BETWEEN {frame[1] - 1} PRECEDING AND {frame[2]} PRECEDING"


def _timeline_snap(
    aggregates: list[_Aggregate],
    last_cutoff: date,
    active: int,
    horizon: int | None,
    trend: int,
    windows: list[int],
) -> str:
    """Return the `snap` CTE of every row of the `cutoffs` table in one pass over transactions.

    A join on day <= cutoff copies each transaction once per later cutoff (~8x the transactions
    at 12 cutoffs) before grouping. Instead, the days are cut into segments at every frame edge
    (each cutoff, cutoff - each window, the trend windows' edges, cutoff + horizon): a segment
    lies wholly inside or outside every frame, so the transactions are first aggregated per
    (customer, segment); each transaction finds its segment through its day (an equality join
    on the few distinct days, not a range join of every transaction). Each customer's segments
    and one marker per (customer, cutoff) that may be eligible then form one timeline ordered
    by day, a marker sharing the row of the segment ending on its cutoff when there is one
    (~45% of them at 10M transactions: a fifth fewer rows for every window); at a marker, window
    frames ending on its day combine exactly the transactions the cutoff's filtered scan
    aggregates. Frames that are the difference of two trailing frames of the same integer sum
    (the trend's earlier period) are computed as that difference, and the first purchase day is
    carried by the marker (every marker lies on or after it): fewer window expressions, the same
    integers. With `horizon`, `bought` counts purchases in (cutoff, cutoff + horizon] (the label
    window).
    """
    partials: dict[tuple[str, str | None, str | None], str] = {}
    for agg in aggregates:  # one per-segment column per (function, value, condition)
        partials.setdefault((agg.func, agg.value, agg.condition), f"seg_{agg.name}")
    if horizon is not None:
        partials.setdefault(("COUNT", None, "m.amount > 0"), "seg_bought")
    partial_items = []
    for (func, value, condition), name in partials.items():
        where = f" FILTER (WHERE {condition})" if condition else ""
        partial_items.append(f"{func}({'*' if value is None else value}){where} AS {name}")
        if func == "ARG_MAX":  # the day it was taken at, so segments combine in day order
            by = value.split(",")[1].strip()
            partial_items.append(f"MAX({by}){where} AS {name}_by")
    order = "PARTITION BY m.customer_id ORDER BY m.day"
    items = []
    derived = []
    lasts = {(agg.func, agg.value, agg.condition, agg.frame): agg.name for agg in aggregates}
    for agg in aggregates:
        name = partials[(agg.func, agg.value, agg.condition)]
        if agg.frame[0] == "between" and agg.func in ("COUNT", "SUM"):
            # (cutoff - lo, cutoff - hi] = (cutoff - lo, cutoff] minus (cutoff - hi, cutoff]:
            # integer counts and sums of integer units, so the difference is exact (one window
            # fewer per such aggregate when both trailing windows are computed anyway)
            key = (agg.func, agg.value, agg.condition)
            longer = lasts.get((*key, ("last", agg.frame[1])))
            shorter = lasts.get((*key, ("last", agg.frame[2])))
            if longer and shorter:
                derived.append(f"COALESCE(w.{longer}, 0) - COALESCE(w.{shorter}, 0) AS {agg.name}")
                continue
        over = f"OVER ({order} {_frame(agg.frame)})"
        if (agg.func, agg.value, agg.condition, agg.frame) == FIRST_PURCHASE:
            # every marker lies on or after the customer's first purchase (markers below)
            items.append(f"m.first_purchase AS {agg.name}")
        elif agg.func == "COUNT":
            items.append(f"COALESCE(SUM(m.{name}) {over}, 0) AS {agg.name}")
        elif agg.func == "ARG_MAX":
            items.append(f"ARG_MAX(m.{name}, m.{name}_by) {over} AS {agg.name}")
        else:
            items.append(f"{agg.func}(m.{name}) {over} AS {agg.name}")
    if horizon is not None:
        name = partials[("COUNT", None, "m.amount > 0")]
        items.append(
            f"COALESCE(SUM(m.{name}) OVER ({order} "
            f"RANGE BETWEEN 1 FOLLOWING AND {horizon} FOLLOWING), 0) AS bought"
        )
    edges = {0, -trend, -2 * trend, -365, *(-days for days in windows)}
    if horizon is not None:
        edges.add(horizon)
    shifts = ", ".join(f"({shift})" for shift in sorted(edges))
    columns = ", ".join(f"s.{name}" for name in _partial_columns(partials))
    listed = ",\n    ".join(items)
    partial_listed = ",\n    ".join(partial_items)
    last = day_number(last_cutoff)
    # a customer's first and last purchase days on or before the newest cutoff (an edge, so
    # the segments ending by it hold exactly those days), from the per-segment MIN and MAX
    first = partials[("MIN", "m.day", "m.amount > 0")]
    last_col = partials[("MAX", "m.day", "m.amount > 0")]
    derived_listed = "".join(f",\n    {item}" for item in derived)
    return f"""edges AS (
  SELECT DISTINCT c.cutoff_day + e.shift AS seg_end
  FROM cutoffs c CROSS JOIN (VALUES {shifts}) AS e(shift)
),
segments AS (
  SELECT seg_end, LAG(seg_end) OVER (ORDER BY seg_end) AS seg_start FROM edges
),
day_segments AS (
  SELECT d.day, g.seg_end
  FROM (SELECT DISTINCT day FROM marked) d JOIN segments g
    ON d.day <= g.seg_end AND (g.seg_start IS NULL OR d.day > g.seg_start)
),
segmented AS (
  SELECT m.customer_id, g.seg_end AS day,
    {partial_listed}
  FROM marked m JOIN day_segments g ON m.day = g.day
  GROUP BY m.customer_id, g.seg_end
),
first_last AS (
  SELECT customer_id, MIN({first}) AS first_purchase, MAX({last_col}) AS last_purchase
  FROM segmented WHERE day <= {last}
  GROUP BY customer_id
),
markers AS (
  SELECT f.customer_id, c.cutoff, c.cutoff_day, c.role, f.first_purchase
  FROM first_last f JOIN cutoffs c
    ON c.cutoff_day >= f.first_purchase AND c.cutoff_day < f.last_purchase + {active}
),
timeline AS (
  SELECT COALESCE(s.customer_id, k.customer_id) AS customer_id,
    COALESCE(s.day, k.cutoff_day) AS day, {columns}, k.cutoff, k.role, k.first_purchase
  FROM segmented s FULL OUTER JOIN markers k
    ON s.customer_id = k.customer_id AND s.day = k.cutoff_day
),
windowed AS (
  SELECT m.customer_id, m.cutoff, m.day AS cutoff_day, m.role,
    {listed}
  FROM timeline m
),
snap AS (
  SELECT w.*{derived_listed} FROM windowed w
  WHERE w.cutoff IS NOT NULL AND w.last_day > w.cutoff_day - {active}
),
"""


def _partial_columns(partials: dict[tuple[str, str | None, str | None], str]) -> list[str]:
    out = []
    for (func, _, _), name in partials.items():
        out += [name, f"{name}_by"] if func == "ARG_MAX" else [name]
    return out


def spark_sql(sql: str) -> str:
    """Return the query transpiled from DuckDB SQL to Spark SQL by sqlglot."""
    import sqlglot  # only the Spark path needs it; DuckDB runs the SQL as written

    return sqlglot.transpile(sql, read="duckdb", write="spark", pretty=True)[0]
