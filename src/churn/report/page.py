"""The self-contained retention page: inline CSS, charts as SVG data URIs, no script, no network."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from html import escape
from typing import Any

import pandas as pd

from churn.columns import (
    CHURN_RATE_PCT,
    CUSTOMERS_END,
    CUSTOMERS_LOST,
    CUSTOMERS_NEW,
    CUSTOMERS_START,
    PERIOD,
    RETENTION_RATE_PCT,
    WARM_UP,
)
from churn.report import charts
from churn.report.build import RetentionReport, latest_period

SECTIONS = {
    "summary": "At a glance",
    "retention": "Retention trend",
    "figures": "Figures per period",
    "cohorts": "Cohorts",
    "nps": "NPS",
    "at-risk": "At-risk customers",
    "how-to-read": "How to read this",
}
_ADJECTIVE = {"week": "weekly", "month": "monthly", "quarter": "quarterly"}
DASH = "–"
NPS_LABELS = {
    "promoter": "Promoters (9–10)",
    "passive": "Passives (7–8)",
    "detractor": "Detractors (0–6)",
}
RECENT_ROWS = 13  # periods shown before the "show earlier" fold: a year and one

CSS = """
:root { --ink:#1f2933; --muted:#616e7c; --line:#e4e7eb; --bg:#f5f7fa; --blue:#2f6fb3;
  --green:#2e8b57; --red:#c0392b; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--ink);
  font:15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
header, main, footer { max-width:1120px; margin:0 auto; padding:0 24px; }
header { padding-top:28px; }
h1 { font-size:28px; margin:0 0 4px; }
h2 { font-size:21px; margin:0 0 8px; }
h3 { font-size:16px; margin:20px 0 6px; }
.sub, .note, figcaption, footer { color:var(--muted); }
.note { font-size:14px; }
nav { margin:12px 0 8px; font-size:14px; }
nav a { color:var(--blue); margin-right:14px; text-decoration:none; white-space:nowrap; }
section { background:#fff; border:1px solid var(--line); border-radius:10px; padding:20px 24px;
  margin:16px 0; }
.cards { display:grid; grid-template-columns:repeat(auto-fit, minmax(190px, 1fr)); gap:12px;
  margin:8px 0 14px; }
.card { border:1px solid var(--line); border-radius:8px; padding:12px 14px; }
.card .label { color:var(--muted); font-size:13px; }
.card .value { font-size:26px; font-weight:650; line-height:1.2; margin:2px 0; }
.card .detail { font-size:13px; color:var(--muted); }
.model-line { background:#eef4fb; border-left:4px solid var(--blue); padding:10px 14px;
  border-radius:4px; margin:6px 0 0; }
.warning { background:#fff6e5; border-left:4px solid #e67e22; padding:8px 14px; border-radius:4px; }
figure { margin:10px 0 18px; }
figure img { width:100%; height:auto; display:block; }
figcaption { font-size:13px; margin-top:4px; }
.scroll { overflow-x:auto; }
table { border-collapse:collapse; width:100%; font-size:13.5px; font-variant-numeric:tabular-nums; }
th, td { padding:5px 9px; border-bottom:1px solid var(--line); text-align:right; white-space:nowrap; }
th { background:#f0f3f7; color:var(--muted); font-weight:600; vertical-align:bottom;
  white-space:normal; min-width:72px; }
th:first-child, td:first-child { text-align:left; }
tbody tr:nth-child(even) { background:#fafbfc; }
tr.warm td { color:#9aa5b1; }
details { margin-top:6px; }
summary { cursor:pointer; color:var(--blue); font-size:14px; margin:8px 0; }
dl { margin:0; }
dt { font-weight:600; margin-top:10px; }
dd { margin:2px 0 0 0; }
code { background:#f0f3f7; padding:1px 5px; border-radius:4px; font-size:13px; }
footer { padding:8px 24px 28px; font-size:13px; }
"""


# --------------------------------------------------------------------------- formatting
def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or pd.isna(value)


def fmt_int(value: Any) -> str:
    """Return 12,345 (or a dash when missing)."""
    return DASH if _missing(value) else f"{int(value):,}"


def fmt_pct(value: Any, digits: int = 1) -> str:
    """Return 93.4% from a value already in percent (or a dash when missing)."""
    return DASH if _missing(value) else f"{float(value):.{digits}f}%"


def fmt_money(value: Any, digits: int = 0) -> str:
    """Return 12,346 or 45.10 (no currency symbol: the data does not say which)."""
    return DASH if _missing(value) else f"{float(value):,.{digits}f}"


def fmt_signed(value: Any) -> str:
    """Return +12 / -3 for an NPS value (or a dash)."""
    return DASH if _missing(value) else f"{float(value):+.0f}"


# --------------------------------------------------------------------------- building blocks
def _table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    row_classes: Sequence[str] | None = None,
) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = []
    for i, row in enumerate(rows):
        css = f' class="{row_classes[i]}"' if row_classes and row_classes[i] else ""
        body.append(f"<tr{css}>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>")
    return (
        f'<div class="scroll"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def _figure(uri: str, alt: str, caption: str) -> str:
    return (
        f'<figure><img src="{uri}" alt="{escape(alt)}">'
        f"<figcaption>{escape(caption)}</figcaption></figure>"
    )


def _card(label: str, value: str, detail: str = "") -> str:
    return (
        f'<div class="card"><div class="label">{escape(label)}</div>'
        f'<div class="value">{escape(value)}</div><div class="detail">{escape(detail)}</div></div>'
    )


def _section(key: str, body: str, title: str | None = None) -> str:
    return f'<section id="{key}"><h2>{escape(title or SECTIONS[key])}</h2>{body}</section>'


# --------------------------------------------------------------------------- sections
def _summary(report: RetentionReport, noun: str) -> str:
    latest = latest_period(report.periods)
    recent = charts.settled_periods(report.periods).tail(12)
    cards = [
        _card(
            f"Retention rate, {latest[PERIOD]}",
            fmt_pct(latest[RETENTION_RATE_PCT]),
            f"churn rate {fmt_pct(latest[CHURN_RATE_PCT])}; average over the last "
            f"{len(recent)} {noun}s {fmt_pct(recent[RETENTION_RATE_PCT].mean())}",
        ),
        _card(
            f"Active customers at the end of {latest[PERIOD]}",
            fmt_int(latest[CUSTOMERS_END]),
            f"{fmt_int(latest[CUSTOMERS_START])} at start, +{fmt_int(latest[CUSTOMERS_NEW])} "
            f"new, −{fmt_int(latest[CUSTOMERS_LOST])} lost",
        ),
        _card(
            f"Revenue, {latest[PERIOD]}",
            fmt_money(latest["revenue"]),
            f"average order {fmt_money(latest['aov'], 2)}, repeat buyers "
            f"{fmt_pct(latest['repeat_purchase_rate_pct'])}",
        ),
    ]
    if report.nps_given:
        cards.append(
            _card(
                f"NPS, {latest[PERIOD]}",
                fmt_signed(latest["nps"]),
                f"{fmt_int(latest['nps_answers'])} answers",
            )
        )
    if report.scoring is not None:
        cards.append(
            _card(
                "Value at risk of the flagged customers (latest scoring)",
                fmt_money(report.scoring["value_at_risk_of_at_risk"]),
                f"{fmt_int(report.scoring['at_risk_customers'])} customers flagged "
                f"({fmt_money(report.scoring['value_at_risk'])} across all "
                f"{fmt_int(report.scoring['scored_customers'])} scored)",
            )
        )
    warning = ""
    if latest[WARM_UP]:
        warning = (
            '<p class="warning">The data covers less than '
            f"{report.definition.active_within_days} days before every {noun}, so customers at "
            "start and lost are undercounted (see “warm-up” below).</p>"
        )
    return _section(
        "summary",
        f'<div class="cards">{"".join(cards)}</div>{warning}',
        title=f"At a glance: {latest[PERIOD]}",
    )


def _retention(report: RetentionReport, noun: str) -> str:
    periods = report.periods
    hidden = int(periods[WARM_UP].sum()) if (~periods[WARM_UP]).any() else 0
    left_out = (
        f" The first {hidden} {noun}s of data are left out: they are still warming up."
        if hidden
        else ""
    )
    body = _figure(
        charts.draw_retention_trend(periods, noun),
        f"Line chart of the retention rate per {noun}",
        f"Share of the customers active at the start of each {noun} who are still active at its "
        f"end. The dashed line is the average.{left_out}",
    )
    body += _figure(
        charts.draw_customer_flows(periods, noun),
        f"Bar chart of customers gained and lost per {noun}",
        f"Customers who became active (green: first purchase ever; light green: came back after "
        f"more than {report.definition.active_within_days} days) and who were lost (red).",
    )
    return _section("retention", body)


def _split_table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], classes: Sequence[str], noun: str
) -> str:
    """Return the newest RECENT_ROWS rows as a table and the older ones folded away below it."""
    body = _table(headers, rows[:RECENT_ROWS], classes[:RECENT_ROWS])
    if len(rows) > RECENT_ROWS:
        older = len(rows) - RECENT_ROWS
        body += (
            f"<details><summary>Show the {older} earlier {noun}s</summary>"
            f"{_table(headers, rows[RECENT_ROWS:], classes[RECENT_ROWS:])}</details>"
        )
    return body


def _figures(report: RetentionReport, noun: str) -> str:
    periods = report.periods.iloc[::-1]
    classes = ["warm" if warm else "" for warm in periods[WARM_UP]]
    labels = [f"{row.period}{' °' if row.warm_up else ''}" for row in periods.itertuples()]
    customer_rows = [
        [
            label,
            fmt_int(row.customers_start),
            fmt_int(row.customers_new),
            fmt_int(row.customers_won_back),
            fmt_int(row.customers_lost),
            fmt_int(row.customers_end),
            fmt_pct(row.retention_rate_pct),
            fmt_pct(row.churn_rate_pct),
        ]
        for label, row in zip(labels, periods.itertuples(index=False), strict=True)
    ]
    sales_rows = []
    for label, row in zip(labels, periods.itertuples(index=False), strict=True):
        values = [
            label,
            fmt_int(row.buyers),
            fmt_pct(row.repeat_purchase_rate_pct),
            fmt_int(row.orders),
            fmt_money(row.aov, 2),
            fmt_money(row.revenue),
            fmt_money(row.revenue_returning),
            fmt_money(row.revenue_new),
        ]
        if report.nps_given:
            values.append(fmt_signed(row.nps) if row.nps_answers else DASH)
        sales_rows.append(values)
    sales_headers = [
        noun.capitalize(),
        "Buyers",
        "Repeat-purchase rate",
        "Orders",
        "Average order value",
        "Revenue",
        "from returning customers",
        "from new customers",
    ]
    if report.nps_given:
        sales_headers.append("NPS")
    body = (
        f'<p class="note">Newest first. ° = warm-up {noun}: less than '
        f"{report.definition.active_within_days} days of data before it, so its customer counts "
        "are not comparable with later ones.</p>"
    )
    body += "<h3>Customers</h3>"
    body += _split_table(
        [
            noun.capitalize(),
            "Customers at start (CS)",
            "New (CN)",
            "of which won back",
            "Lost",
            "At end (CE)",
            "Retention rate",
            "Churn rate",
        ],
        customer_rows,
        classes,
        noun,
    )
    body += "<h3>Sales</h3>"
    body += _figure(
        charts.draw_revenue(report.periods, noun),
        f"Stacked bar chart of revenue per {noun}",
        f"Revenue per {noun} (purchases minus refunds) from returning customers (dark) and from "
        f"customers whose first purchase was in that {noun} (light).",
    )
    body += _split_table(sales_headers, sales_rows, classes, noun)
    return _section("figures", body, title=f"Figures per {noun}")


def _cohorts(report: RetentionReport) -> str:
    noun = report.settings.cohort_period
    cohorts = report.cohorts
    if cohorts.empty:
        return _section("cohorts", '<p class="note">Not enough history for cohorts yet.</p>')
    shown = min(charts.MAX_COHORTS_SHOWN, cohorts["cohort"].nunique())
    body = _figure(
        charts.draw_cohort_heatmap(cohorts, noun),
        f"Heat map of cohort retention by {noun} of first purchase",
        f"Each row is a cohort: the customers whose first purchase fell in that {noun} (their "
        f"number in brackets). Each cell is the % of them who bought again 1, 2, 3… {noun}s "
        f"later; darker = more. Read across a row to see how a cohort fades, down a column to "
        f"compare cohorts at the same age. * = in the first "
        f"{report.definition.active_within_days} days of data: may include older customers whose "
        f"earlier purchases are not in the data. Showing the newest {shown} cohorts; all are in "
        "reports/cohorts.csv.",
    )
    return _section("cohorts", body, title=f"Cohorts by {noun} of first purchase")


def _nps(report: RetentionReport, noun: str) -> str:
    if not report.nps_given:
        return _section(
            "nps",
            '<p class="note">No NPS survey answers were given, so this section is empty. '
            "Configure the NPS table in the ingest section of params.yaml to fill it.</p>",
        )
    body = _figure(
        charts.draw_nps(report.periods, noun),
        f"Line chart of NPS per {noun}",
        f"NPS per {noun}: % promoters (9–10) − % detractors (0–6) among the answers given in "
        f"that {noun}; from −100 to +100.",
    )
    if report.churn_by_nps is not None:
        rows = [
            [
                NPS_LABELS.get(row.nps_group, row.nps_group.capitalize()),
                fmt_int(row.customers_start),
                fmt_int(row.customers_lost),
                fmt_pct(row.churn_rate_pct, 2),
            ]
            for row in report.churn_by_nps.itertuples(index=False)
        ]
        body += f"<h3>Average {_ADJECTIVE[noun]} churn rate by NPS answer</h3>"
        body += _table(
            [
                "Latest answer before the " + noun,
                f"Customers at start (summed over {noun}s)",
                "Lost",
                "Churn rate",
            ],
            rows,
        )
        body += (
            f'<p class="note">Customers active at the start of a {noun}, grouped by their latest '
            f"answer given before that {noun} began; summed over every {noun} with full history. "
            "If detractors churn more than promoters, the survey is an early warning.</p>"
        )
    return _section("nps", body)


def _at_risk(report: RetentionReport) -> str:
    if report.scoring is None or report.risk_by_tier is None or report.risk_by_segment is None:
        return _section(
            "at-risk",
            '<p class="note">Not available yet: no scoring was found. Once the score stage has '
            "run, this section lists the customers at risk and the value at risk by risk tier "
            f'and segment.</p><p class="model-line">{escape(report.model_quality)}</p>'
            + _list_outcomes(report)
            + _campaign_results(report),
        )
    scoring = report.scoring
    control = scoring.get("at_risk_control_customers")
    facts = (
        f"Scored as of {scoring.get('scored_as_of') or DASH}: "
        f"{fmt_int(scoring['scored_customers'])} active customers, "
        f"{fmt_int(scoring['at_risk_customers'])} flagged at risk, value at risk "
        f"{fmt_money(scoring['value_at_risk'])} "
        f"({fmt_money(scoring['value_at_risk_of_at_risk'])} of it on the flagged customers)."
    )
    if control is not None:
        facts += (
            f" {fmt_int(control)} of the flagged customers are in the control group and must "
            "not be contacted: they show what happens without a campaign."
        )
    body = f'<p>{escape(facts)}</p><p class="model-line">{escape(report.model_quality)}</p>'
    body += _out_of_range(report)
    tiers = report.risk_by_tier
    body += _figure(
        charts.draw_value_at_risk(tiers),
        "Bar chart of value at risk by risk tier",
        "Value at risk per risk tier: for each customer, the chance they stop buying × what "
        "they are expected to spend, summed.",
    )
    body += _table(
        [
            "Risk tier",
            "Customers",
            "At risk",
            "Average churn probability",
            "Value at risk",
            "Share of value at risk",
        ],
        [
            [
                str(row.risk_tier).capitalize(),
                fmt_int(row.customers),
                fmt_int(row.at_risk_customers),
                fmt_pct(row.mean_churn_probability_pct),
                fmt_money(row.value_at_risk),
                fmt_pct(row.share_of_value_at_risk_pct),
            ]
            for row in tiers.itertuples(index=False)
        ],
    )
    for segment_type, rows in report.risk_by_segment.groupby("segment_type", sort=False):
        body += f"<h3>By {escape(str(segment_type))}</h3>"
        body += _table(
            [
                str(segment_type).capitalize(),
                "Customers",
                "At risk",
                "Share at risk",
                "Value at risk",
            ],
            [
                [
                    row.segment,
                    fmt_int(row.customers),
                    fmt_int(row.at_risk_customers),
                    fmt_pct(row.at_risk_share_pct),
                    fmt_money(row.value_at_risk),
                ]
                for row in rows.itertuples(index=False)
            ],
        )
    return _section("at-risk", body + _list_outcomes(report) + _campaign_results(report))


def fmt_number(value: float) -> str:
    """Return 1,004 for a whole number, else three significant digits (0.352)."""
    return f"{int(value):,}" if float(value).is_integer() else f"{value:.3g}"


def _out_of_range(report: RetentionReport) -> str:
    """Return the features whose scored values lie outside the training range, in plain words
    (empty when the drift report names none, or was not given)."""
    if not report.out_of_range:
        return ""
    items = []
    for found in report.out_of_range:
        edges = []
        if found.share_above:
            edges.append(
                f"{fmt_pct(100 * found.share_above)} above the highest value the model learnt "
                f"from ({fmt_number(found.training_max)}; today up to "
                f"{fmt_number(found.current_max)}), scored as if they had "
                f"{fmt_number(found.training_max)}"
            )
        if found.share_below:
            edges.append(
                f"{fmt_pct(100 * found.share_below)} below the lowest value the model learnt "
                f"from ({fmt_number(found.training_min)}; today down to "
                f"{fmt_number(found.current_min)}), scored as if they had "
                f"{fmt_number(found.training_min)}"
            )
        items.append(
            f"<li><code>{escape(found.feature)}</code>: "
            f"{escape(fmt_pct(100 * found.share_outside))} of the scored customers lie outside "
            f"the training range — {escape('; '.join(edges))}.</li>"
        )
    return (
        "<h3>Customers beyond what the model has seen</h3>"
        '<p class="warning">Some scored customers have values the model never saw in training. '
        "It scores them as if their value sat at the edge of what it saw, so differences beyond "
        "that edge do not change their churn probability: for them the score leans on the other "
        "features and is less certain. Retraining on newer data widens the range.</p>"
        f"<ul>{''.join(items)}</ul>"
    )


def _list_outcomes(report: RetentionReport) -> str:
    """Return the earlier published lists against what happened (empty without a backtest)."""
    outcomes = report.list_outcomes
    if outcomes is None:
        return ""
    body = "<h3>Earlier lists against what happened</h3>"
    if not len(outcomes.runs):
        pending = ", ".join(f"{p['as_of']} (on {p['matures_on']})" for p in outcomes.pending)
        return body + (
            '<p class="note">No published list has reached its horizon yet'
            + (f": {escape(pending)}" if pending else "")
            + ".</p>"
        )
    body += (
        f"<p>From <code>churn backtest</code> (data to {escape(outcomes.newest_data_date)}). For "
        "each published list whose horizon has passed: how many of the flagged customers really "
        "stopped buying, with a 95% interval, against what the model predicted for them and "
        "against everyone else. A treated-vs-control effect is shown only when a campaign is "
        "known to have used the list (a contact log); otherwise the control group is no "
        "evidence of an effect.</p>"
    )
    for warning in outcomes.warnings:
        body += f'<p class="warning">Warning: {escape(warning)}</p>'
    body += _table(
        [
            "List of",
            "Flagged",
            "Churned (flagged)",
            "Predicted (flagged)",
            "Churned (rest)",
            "Predicted (rest)",
            "Campaign effect",
        ],
        [
            [
                str(row.as_of),
                fmt_int(row.flagged),
                f"{fmt_pct(row.churn_flagged_pct)} [{fmt_pct(row.churn_flagged_ci_low_pct)}, "
                f"{fmt_pct(row.churn_flagged_ci_high_pct)}]",
                fmt_pct(row.predicted_flagged_pct),
                fmt_pct(row.churn_rest_pct),
                fmt_pct(row.predicted_rest_pct),
                str(row.effect),
            ]
            for row in outcomes.runs.itertuples(index=False)
        ],
        ["warning" if below else "" for below in outcomes.runs["below_predicted"]],
    )
    return body


def _interval(value: Any, low: Any, high: Any, fmt: Callable[[Any], str]) -> str:
    if _missing(value):
        return DASH
    if _missing(low) or _missing(high):
        return fmt(value)
    return f"{fmt(value)} [{fmt(low)}, {fmt(high)}]"


def _signed_points(value: Any) -> str:
    return f"{float(value):+.1f}"


def _signed_money(value: Any) -> str:
    return f"{float(value):+,.0f}"


def _campaign_results(report: RetentionReport) -> str:
    """Return each published list's measured campaign effect and the uplift gate's decision
    (each empty without its report)."""
    return _ledger_results(report) + _uplift_gate(report) + _save_rates(report)


def _save_rates(report: RetentionReport) -> str:
    """Return the save rate per risk tier behind the risk x value rule: its value, whether the
    campaign ledger measured it or it is the assumed score.save_rate, and its interval."""
    rates = report.save_rates
    if rates is None or not len(rates):
        return ""
    rows = []
    for row in rates.itertuples(index=False):
        if row.source == "measured":
            interval = (
                DASH
                if _missing(row.ci_low)
                else f"[{float(row.ci_low):.2f}, {float(row.ci_high):.2f}]"
            )
            origin = f"measured on {row.campaigns} campaign(s) ({row.why or 'pooled'})"
            if not _missing(row.ci_high) and float(row.ci_high) < 0:
                origin += (
                    ": contacts pushed these customers away, so risk x value contacts none "
                    "of them (their net benefit is negative)"
                )
        else:
            interval = DASH
            origin = f"assumed (score.save_rate): {row.why}" if row.why else "assumed"
        rows.append([str(row.tier), f"{float(row.save_rate):.3f}", interval, origin])
    return (
        "<h3>Save rates behind the list</h3>"
        "<p>The share of would-be churners a contact keeps, per risk tier, as the score stage "
        "used it: risk x value ranks by churn probability x save rate x value. Measured rates "
        "come from the randomized control groups of matured campaigns (treated minus control "
        "retention over control churn, with a 95% interval); elsewhere the assumed "
        "score.save_rate stands in.</p>"
        + _table(["Tier", "Save rate", "95% interval", "Source"], rows)
    )


def _gate_level(alpha: float | None) -> str:
    """Return how the gate's bound and level are explained on the page (alpha: one-sided)."""
    rule = (
        "Uplift replaces risk x value only when the difference's lower bound is above zero and "
        "the difference is positive in every held-out campaign."
    )
    if alpha is None:
        return f"a bootstrap interval. {rule}"
    return (
        f"a {1 - 2 * alpha:.1%} bootstrap interval. {rule} The bound is one-sided at "
        f"{1 - alpha:.1%}: the gate decides again each time campaigns mature, so each "
        f"decision's chance of switching without a real gain is kept at {alpha:.1%} "
        f"(uplift.false_switch_rate), at most {min(1.0, 12 * alpha):.0%} over a year of monthly "
        "decisions."
    )


def _uplift_gate(report: RetentionReport) -> str:
    """Return which targeting policy is in use and why (empty without reports/uplift.json)."""
    gate = report.uplift_gate
    if gate is None:
        return ""
    in_use = "uplift (expected incremental profit)" if gate.policy == "uplift" else "risk x value"
    body = (
        "<h3>Targeting policy</h3>"
        f"<p>In use: <strong>{escape(in_use)}</strong>. "
        f"{escape(gate.reason[:1].upper() + gate.reason[1:])}.</p>"
        "<p>From <code>churn uplift</code>. The newest matured campaigns are held out; an uplift "
        "model learnt on the older ones picks a list of the same size as risk x value in each "
        "held-out campaign, and the random split of those campaigns estimates the margin each "
        f"list keeps net of contact cost, with {_gate_level(gate.false_switch_rate)} The Qini "
        "coefficient (1 = perfect ordering by effect, 0 = random) and uplift at k (treated minus "
        "control retention among the top customers) are diagnostics.</p>"
    )
    if not len(gate.rows):
        return body
    if gate.holdout_campaigns:
        body += (
            f"<p>Held-out campaign(s): {escape(', '.join(gate.holdout_campaigns))}; "
            f"{fmt_int(gate.list_size)} contacts per policy.</p>"
        )
    body += _table(
        ["Policy", "Qini", "Uplift at k (points)", "Incremental profit"],
        [
            [
                str(row.policy),
                DASH if _missing(row.qini) else f"{float(row.qini):.3f}",
                DASH if _missing(row.uplift_at_k_pct) else _signed_points(row.uplift_at_k_pct),
                _interval(row.profit, row.profit_ci_low, row.profit_ci_high, _signed_money),
            ]
            for row in gate.rows.itertuples(index=False)
        ],
    )
    if gate.difference is not None:
        difference = gate.difference
        body += (
            "<p>Difference (uplift minus risk x value): "
            + escape(
                _interval(
                    difference["estimate"],
                    difference["ci_low"],
                    difference["ci_high"],
                    _signed_money,
                )
            )
            + ".</p>"
        )
    return body


def _ledger_results(report: RetentionReport) -> str:
    """Return each published list's measured campaign effect (empty without a campaign ledger)."""
    campaigns = report.campaigns
    if campaigns is None:
        return ""
    body = "<h3>Campaign results</h3>"
    waiting = "".join(
        f"<li>List of {escape(str(c['as_of']))}: collecting outcomes until "
        f"{escape(str(c['matures_on']))}"
        + (
            ""
            if c["mde_pct"] is None
            else f" (it can show an effect of {c['mde_pct']:.1f} points or more)"
        )
        + "</li>"
        for c in campaigns.collecting
    )
    if not len(campaigns.rows):
        return body + (
            '<p class="note">No published list has reached its horizon yet.</p>'
            + (f"<ul>{waiting}</ul>" if waiting else "")
        )
    body += (
        f"<p>From <code>churn ledger</code> (data to {escape(campaigns.newest_data_date)}). Each "
        "list's flagged customers were split at random: the treatment group to contact, the "
        "control group left alone. The difference in their retention is the campaign's effect, "
        "in percentage points with a 95% interval, overall and per suggested action, risk tier "
        "and download; customers kept and margin are that difference times the treated "
        "customers and their expected value. <em>Inconclusive</em>: the interval includes no "
        "effect; <em>separated</em>: it does not. A list no campaign is known to have used (no "
        "download, no contact logged) only checks the random split.</p>"
    )
    rows = campaigns.rows
    body += _table(
        [
            "List of",
            "Slice",
            "Treated",
            "Control",
            "Retention treated",
            "Retention control",
            "Effect (points)",
            "Customers kept",
            "Margin",
            "Reached",
            "Status",
        ],
        [
            [
                str(row.as_of),
                str(row.slice),
                fmt_int(row.treated),
                fmt_int(row.control),
                fmt_pct(row.treated_retention_pct),
                fmt_pct(row.control_retention_pct),
                _interval(
                    row.effect_pct, row.effect_ci_low_pct, row.effect_ci_high_pct, _signed_points
                ),
                _interval(row.kept, row.kept_ci_low, row.kept_ci_high, _signed_money),
                _interval(row.margin, row.margin_ci_low, row.margin_ci_high, _signed_money),
                fmt_pct(row.reached_pct),
                str(row.status),
            ]
            for row in rows.itertuples(index=False)
        ],
    )
    return body + (f"<ul>{waiting}</ul>" if waiting else "")


def _how_to_read(report: RetentionReport, noun: str) -> str:
    days = report.definition.active_within_days
    horizon = report.definition.horizon_days
    terms: list[tuple[str, str]] = [
        (
            "Purchase",
            "A transaction with a positive amount. Refunds (negative amounts) lower revenue but "
            "never count as purchases.",
        ),
        (
            "Active customer",
            f"Made at least one purchase in the last {days} days (counting the day itself). "
            f"A customer is lost once their last purchase is more than {days} days old.",
        ),
        (
            "Customers at start (CS) and at end (CE)",
            f"Active at the end of the day before the {noun} began, and on its last day.",
        ),
        (
            "New customers (CN)",
            f"Active at the end of the {noun} but not at its start: first-time buyers plus "
            f"customers who came back after more than {days} days without buying (“won back”). "
            "So CE = CS + CN − lost, always.",
        ),
        (
            "Lost",
            f"Active at the start of the {noun} and no longer active at its end.",
        ),
        (
            "Retention rate",
            "(CE − CN) ÷ CS × 100: the share of the customers at the start who are still active "
            "at the end. Churn rate = lost ÷ CS × 100; the two add up to 100%.",
        ),
        (
            "Repeat-purchase rate",
            f"Of the customers who bought in the {noun}, the share who had bought before or "
            f"bought more than once in it.",
        ),
        (
            "Average order value, revenue",
            "Average order value = purchases ÷ number of purchases (refunds not deducted). "
            f"Revenue = purchases minus refunds dated in the {noun}; “from new” is revenue from "
            f"customers whose first purchase was in that {noun}, “from returning” the rest.",
        ),
        (
            "Cohort retention",
            f"Customers grouped by the {report.settings.cohort_period} of their first purchase; "
            "each cell is the share of them who bought again that many periods later.",
        ),
        (
            "NPS",
            "% promoters (answers 9–10) − % detractors (0–6), from −100 to +100. Churn by NPS "
            f"group uses each customer's latest answer given before the {noun} began.",
        ),
        (
            "Warm-up",
            f"The first {days} days of data: earlier purchases are not in the data yet, so "
            "customers at start and lost are undercounted and some returning customers look new. "
            f"These {noun}s are marked ° and left out of the trend charts and the headline.",
        ),
        (
            "Current period",
            f"Data runs to {report.as_of}. A {noun} appears once it has ended, so the numbers do "
            "not move around while it is still running.",
        ),
        (
            "At risk, value at risk",
            f"From the latest model scoring. Churn probability is the model's estimate that a "
            f"customer makes no purchase in the next {horizon} days (a shorter-term warning than "
            f"“lost” above). Value at risk = churn probability × the customer's expected value. "
            "Customers in the control group are kept out of campaigns on purpose.",
        ),
    ]
    items = "".join(f"<dt>{escape(term)}</dt><dd>{escape(text)}</dd>" for term, text in terms)
    return _section("how-to-read", f"<dl>{items}</dl>")


def render_html(report: RetentionReport) -> str:
    """Return the whole retention page as one self-contained HTML document."""
    noun = report.settings.period
    parts: list[Callable[[], str]] = [
        lambda: _summary(report, noun),
        lambda: _retention(report, noun),
        lambda: _figures(report, noun),
        lambda: _cohorts(report),
        lambda: _nps(report, noun),
        lambda: _at_risk(report),
        lambda: _how_to_read(report, noun),
    ]
    titles = {**SECTIONS, "figures": f"Figures per {noun}"}
    nav = "".join(f'<a href="#{key}">{escape(title)}</a>' for key, title in titles.items())
    subtitle = (
        f"{_ADJECTIVE[noun].capitalize()} figures from {report.first_date} to {report.as_of} · "
        f"{report.transactions:,} transactions · active = bought in the last "
        f"{report.definition.active_within_days} days"
    )
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>Customer retention report</title>"
        f"<style>{CSS}</style></head><body>"
        f'<header><h1>Customer retention</h1><p class="sub">{escape(subtitle)}</p>'
        f"<nav>{nav}</nav></header>"
        f"<main>{''.join(part() for part in parts)}</main>"
        "<footer>Generated by <code>churn report</code> from the pipeline's clean data; the "
        "figures are also in reports/retention.json, reports/retention_monthly.csv and "
        "reports/cohorts.csv.</footer>"
        "</body></html>\n"
    )
