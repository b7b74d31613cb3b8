"""The feature and label definitions, written once as SQL (DuckDB dialect, portable subset).

Why SQL and not Ibis: Ibis 12 runs on DuckDB 2.0, but compiling Ibis to Spark SQL needs pyspark
installed, and its DuckDB SQL does not transpile cleanly (it puts frames on LAG, which Spark
rejects). Plain SQL in a small portable subset (integer day arithmetic, aggregate FILTER clauses,
LAG, MAX_BY via ARG_MAX, BIT_OR/BIT_COUNT) runs on DuckDB as is and is transpiled by sqlglot to
Spark SQL (`spark_sql`). See docs/features.md.

Tables the SQL reads (views or temp tables with these names): `transactions` (clean contract),
`customers`, `nps`, and `cutoffs` (cutoff DATE, cutoff_day INTEGER days since 1970-01-01,
role VARCHAR). Amounts are summed as integers in units of 1/10000 so sums are exact and do not
depend on row order or thread scheduling.
"""

from __future__ import annotations

from datetime import date, timedelta

from churn.config import ChurnParams, FeaturesParams

EPOCH = date(1970, 1, 1)
SCALE = 10000  # amounts are summed as integers of 1/10000 currency unit


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
    if single_cutoff is None:
        cd = "c.cutoff_day"
        cutoff_cols = "c.cutoff AS cutoff, c.cutoff_day AS cutoff_day, c.role AS role"
        source = "marked m JOIN cutoffs c ON m.day <= c.cutoff_day"
        group = "m.customer_id, c.cutoff, c.cutoff_day, c.role"
    else:
        when, role = single_cutoff
        cd = str(day_number(when))
        cutoff_cols = f"DATE '{when.isoformat()}' AS cutoff, {cd} AS cutoff_day, '{role}' AS role"
        source = f"marked m WHERE m.day <= {cd}"
        group = "m.customer_id"
    purchase = "m.amount > 0"
    windows = sorted(set(params.windows) | {trend})
    window_aggs = []
    for days in windows:
        inside = f"{purchase} AND m.day > {cd} - {days}"
        window_aggs.append(f"COUNT(*) FILTER (WHERE {inside}) AS n_{days}")
        window_aggs.append(f"SUM(m.amount_e4) FILTER (WHERE {inside}) AS s_{days}")
    before = f"{purchase} AND m.day > {cd} - {2 * trend} AND m.day <= {cd} - {trend}"
    window_aggs.append(f"COUNT(*) FILTER (WHERE {before}) AS n_before")
    window_aggs.append(f"SUM(m.amount_e4) FILTER (WHERE {before}) AS s_before")
    window_aggs.append(f"SUM(m.new_day) FILTER (WHERE m.day > {cd} - 365) AS purchase_days_365")
    window_cols = []
    for days in params.windows:
        window_cols.append(f"CAST(s.n_{days} AS INTEGER) AS purchases_{days}d")
        window_cols.append(f"CAST(COALESCE(s.s_{days}, 0) AS DOUBLE) / {SCALE} AS spend_{days}d")

    labels_cte = ""
    label_join = ""
    label_col = ""
    if with_labels:
        labels_cte = f""",
bought AS (
  SELECT b.customer_id, c.cutoff
  FROM base b JOIN cutoffs c ON b.day > c.cutoff_day AND b.day <= c.cutoff_day + {horizon}
  WHERE b.amount > 0
  GROUP BY b.customer_id, c.cutoff
)"""
        label_join = "LEFT JOIN bought l ON l.customer_id = s.customer_id AND l.cutoff = s.cutoff"
        label_col = "CAST(CASE WHEN l.customer_id IS NULL THEN 1 ELSE 0 END AS TINYINT) AS churned,"

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
    gap_max_agg, rhythm_cols = "", ""
    if params.rhythm:
        gap_max_agg = "\n    MAX(m.gap) FILTER (WHERE m.gap > 0) AS gap_max,"
        ratio = _divide("CAST(s.cutoff_day - s.last_day AS DOUBLE)", "s.gap_max")
        rhythm_cols = (
            f"\n  CAST(s.gap_max AS DOUBLE) AS gap_max_days,\n  {ratio} AS recency_gap_max_ratio,"
        )
    season_cols = ""
    if params.season:
        angle = "2 * PI() * (DAYOFYEAR(s.cutoff) - 1) / 365.25"
        season_cols = f",\n  SIN({angle}) AS season_sin,\n  COS({angle}) AS season_cos"
    return f"""
WITH
base AS (
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
    FROM base
    WHERE day <= {day_number(last_cutoff)}
  ) lagged
),
snap AS (
  SELECT m.customer_id, {cutoff_cols},
    MAX(m.day) FILTER (WHERE {purchase}) AS last_day,
    MIN(m.day) FILTER (WHERE {purchase}) AS first_day,
    COUNT(*) FILTER (WHERE {purchase}) AS purchases,
    COUNT(*) FILTER (WHERE m.gap > 0) AS gaps,
    SUM(m.gap * m.gap) FILTER (WHERE m.gap > 0) AS gap_sumsq,
    ARG_MAX(m.gap, m.day) FILTER (WHERE m.gap > 0) AS gap_last,{gap_max_agg}
    SUM(m.amount_e4) FILTER (WHERE {purchase}) AS spend_e4,
    MAX(m.amount_e4) FILTER (WHERE {purchase}) AS spend_max_e4,
    {newline.join(window_aggs)},
    COUNT(*) FILTER (WHERE m.amount < 0) AS refunds,
    SUM(-m.amount_e4) FILTER (WHERE m.amount < 0) AS refund_e4,
    COUNT(*) FILTER (WHERE m.amount = 0) AS zeros,
    BIT_OR(CAST(1 AS BIGINT) << CAST(((m.day % 7) + 10) % 7 AS INTEGER)) FILTER (WHERE {purchase}) AS weekdays
  FROM {source}
  GROUP BY {group}
  HAVING MAX(m.day) FILTER (WHERE {purchase}) > {cd} - {active}
),
nps_ranked AS (
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
){labels_cte}
SELECT
  s.customer_id AS customer_id,
  s.cutoff AS cutoff,
  s.role AS role,
  {label_col}
  CAST(s.cutoff_day - s.last_day AS INTEGER) AS recency_days,
  CAST(s.cutoff_day - s.first_day AS INTEGER) AS tenure_days,
  CAST(s.purchases AS INTEGER) AS purchases,
  CAST(s.gaps + 1 AS INTEGER) AS purchase_days,
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
{label_join}
ORDER BY s.cutoff, s.customer_id
"""


def spark_sql(sql: str) -> str:
    """Return the query transpiled from DuckDB SQL to Spark SQL by sqlglot."""
    import sqlglot  # only the Spark path needs it; DuckDB runs the SQL as written

    return sqlglot.transpile(sql, read="duckdb", write="spark", pretty=True)[0]
