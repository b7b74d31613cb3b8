"""Charts for the retention page, drawn with matplotlib's object API (no pyplot state) as SVG."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.colors import LinearSegmentedColormap
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator, PercentFormatter

from churn.columns import (
    COHORT,
    COHORT_SIZE,
    CUSTOMERS_LOST,
    CUSTOMERS_NEW,
    CUSTOMERS_WON_BACK,
    PERIOD,
    PERIODS_SINCE_FIRST,
    RETENTION_PCT,
    RETENTION_RATE_PCT,
    WARM_UP,
)

INK = "#1f2933"
MUTED = "#616e7c"
GRID = "#e4e7eb"
BLUE = "#2f6fb3"
LIGHT_BLUE = "#9cc3e6"
GREEN = "#2e8b57"
LIGHT_GREEN = "#8fd1a8"
RED = "#c0392b"
TIER_COLOURS = {"high": "#c0392b", "medium": "#e67e22", "low": "#7f8c8d"}
HEAT = LinearSegmentedColormap.from_list("retention", ["#f7fbff", "#9cc3e6", "#2f6fb3", "#0b2f5b"])
MAX_COHORTS_SHOWN = 36  # rows of the heat map; the CSV has them all

_STYLE = {
    "font.family": "DejaVu Sans",
    "font.size": 11,
    "axes.edgecolor": GRID,
    "axes.labelcolor": MUTED,
    "axes.titlesize": 12,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "xtick.color": MUTED,
    "ytick.color": MUTED,
    "svg.fonttype": "path",  # glyphs as paths: identical on every machine, no font needed
    "svg.hashsalt": "churn-report",  # stable element ids, so the same data gives the same file
}


def _to_data_uri(figure: Figure) -> str:
    """Return the figure as a base64 SVG data URI, byte-identical for identical input."""
    buffer = io.BytesIO()
    with matplotlib.rc_context(_STYLE):
        figure.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _figure(width: float = 9.0, height: float = 3.4) -> Figure:
    with matplotlib.rc_context(_STYLE):
        return Figure(figsize=(width, height), layout="constrained")


def _axes(figure: Figure):
    """Add the one axes of a chart, with the grid drawn behind bars and lines."""
    axes = figure.add_subplot()
    axes.set_axisbelow(True)
    return axes


def _period_axis(axes, labels: Sequence[str]) -> None:
    """Label a categorical period axis with evenly spaced, unrotated labels that do not touch."""
    widest = max((len(label) for label in labels), default=8)
    fits = min(12, max(4, 100 // (widest + 4)))  # ~100 characters fit across a 9-inch chart
    step = max(1, int(np.ceil(len(labels) / fits)))
    positions = list(range(len(labels)))[::-1][::step][::-1]  # always label the newest period
    axes.set_xticks(positions, [labels[p] for p in positions], rotation=0)
    axes.tick_params(axis="x", labelsize=9 if len(positions) > 6 else 10)
    axes.set_xlim(-0.6, len(labels) - 0.4)


def _thousands(value: float, _position: int) -> str:
    return f"{value:,.0f}"


def settled_periods(periods: pd.DataFrame) -> pd.DataFrame:
    """Return the periods with full history (all periods if none has it yet)."""
    settled = periods[~periods[WARM_UP]]
    return settled if len(settled) else periods


def draw_retention_trend(periods: pd.DataFrame, noun: str) -> str:
    """Return the retention-rate line chart (periods with full history only) as a data URI."""
    with matplotlib.rc_context(_STYLE):
        shown = settled_periods(periods)
        figure = _figure()
        axes = _axes(figure)
        x = np.arange(len(shown))
        rate = shown[RETENTION_RATE_PCT].to_numpy(dtype=float)
        axes.plot(
            x, rate, color=BLUE, linewidth=2.2, marker="o", markersize=4, label="retention rate"
        )
        finite = rate[np.isfinite(rate)]
        if finite.size:
            mean = float(finite.mean())
            axes.axhline(
                mean,
                color=MUTED,
                linewidth=1,
                linestyle="--",
                label=f"average of these {finite.size} {noun}s: {mean:.1f}%",
            )
            last = np.flatnonzero(np.isfinite(rate))[-1]
            axes.annotate(
                f"{rate[last]:.1f}%",
                (x[last], rate[last]),
                xytext=(0, 8),
                textcoords="offset points",
                ha="center",
                color=BLUE,
                fontweight="bold",
            )
            low, high = float(finite.min()), float(finite.max())
            pad = max(1.0, (high - low) * 0.25)
            axes.set_ylim(max(0.0, low - pad), min(100.0, high + pad) + 0.5)
        axes.yaxis.set_major_locator(MaxNLocator(nbins=6, steps=[1, 2, 2.5, 5, 10]))
        axes.yaxis.set_major_formatter(PercentFormatter(xmax=100, decimals=None))
        axes.set_ylabel(f"retention rate per {noun}")
        axes.grid(axis="y", color=GRID)
        axes.legend(loc="lower left", bbox_to_anchor=(0, 1.0), frameon=False, ncols=2, fontsize=9)
        _period_axis(axes, list(shown[PERIOD]))
        return _to_data_uri(figure)


def draw_customer_flows(periods: pd.DataFrame, noun: str) -> str:
    """Return bars of customers gained (new, won back) and lost per period as a data URI."""
    with matplotlib.rc_context(_STYLE):
        shown = settled_periods(periods)
        figure = _figure(height=3.0)
        axes = _axes(figure)
        x = np.arange(len(shown))
        won_back = shown[CUSTOMERS_WON_BACK].to_numpy()
        first_time = shown[CUSTOMERS_NEW].to_numpy() - won_back
        lost = shown[CUSTOMERS_LOST].to_numpy()
        axes.bar(x, first_time, color=GREEN, label="new customers")
        axes.bar(x, won_back, bottom=first_time, color=LIGHT_GREEN, label="won back")
        axes.bar(x, -lost, color=RED, label="lost")
        axes.axhline(0, color=MUTED, linewidth=0.8)
        axes.yaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{abs(v):,.0f}"))
        axes.set_ylabel(f"customers per {noun}")
        axes.grid(axis="y", color=GRID)
        axes.legend(loc="lower left", bbox_to_anchor=(0, 1.0), frameon=False, ncols=3, fontsize=9)
        _period_axis(axes, list(shown[PERIOD]))
        return _to_data_uri(figure)


def draw_revenue(periods: pd.DataFrame, noun: str, currency: str = "") -> str:
    """Return stacked bars of revenue from returning and from new customers as a data URI."""
    with matplotlib.rc_context(_STYLE):
        figure = _figure(height=3.0)
        axes = _axes(figure)
        x = np.arange(len(periods))
        returning = periods["revenue_returning"].to_numpy(dtype=float)
        new = periods["revenue_new"].to_numpy(dtype=float)
        axes.bar(x, returning, color=BLUE, label="returning customers")
        axes.bar(x, new, bottom=np.maximum(returning, 0), color=LIGHT_BLUE, label="new customers")
        axes.yaxis.set_major_formatter(FuncFormatter(_thousands))
        axes.set_ylabel(f"revenue per {noun}{f' ({currency})' if currency else ''}")
        axes.grid(axis="y", color=GRID)
        axes.legend(loc="lower left", bbox_to_anchor=(0, 1.0), frameon=False, ncols=2, fontsize=9)
        _period_axis(axes, list(periods[PERIOD]))
        return _to_data_uri(figure)


def draw_cohort_heatmap(cohorts: pd.DataFrame, noun: str) -> str:
    """Return the cohort heat map (rows: first-purchase period, columns: periods later)."""
    with matplotlib.rc_context(_STYLE):
        later = cohorts[cohorts[PERIODS_SINCE_FIRST] > 0]
        order = list(dict.fromkeys(cohorts[COHORT]))[-MAX_COHORTS_SHOWN:]
        matrix = later.pivot(index=COHORT, columns=PERIODS_SINCE_FIRST, values=RETENTION_PCT)
        matrix = matrix.reindex(index=order)
        matrix = matrix.loc[:, matrix.notna().any()]
        sizes = cohorts.drop_duplicates(COHORT).set_index(COHORT)[COHORT_SIZE]
        warm = cohorts.drop_duplicates(COHORT).set_index(COHORT)[WARM_UP]
        rows, columns = matrix.shape
        figure = _figure(width=9.0, height=max(2.4, 0.24 * rows + 1.4))
        axes = _axes(figure)
        if rows == 0 or columns == 0:
            axes.text(0.5, 0.5, "not enough history yet", ha="center", va="center", color=MUTED)
            axes.set_axis_off()
            return _to_data_uri(figure)
        values = matrix.to_numpy(dtype=float)
        top = max(5.0, float(np.nanpercentile(values, 98)))
        image = axes.imshow(
            np.ma.masked_invalid(values), cmap=HEAT, vmin=0, vmax=top, aspect="auto"
        )
        if rows * columns <= 700:
            for (r, c), value in np.ndenumerate(values):
                if np.isfinite(value):
                    axes.text(
                        c,
                        r,
                        f"{value:.0f}",
                        ha="center",
                        va="center",
                        fontsize=6.5 if columns > 18 else 8,
                        color="white" if value > top * 0.55 else INK,
                    )
        axes.set_xticks(range(columns), [str(k) for k in matrix.columns])
        axes.tick_params(
            axis="x", labelsize=8, top=True, labeltop=True, bottom=False, labelbottom=False
        )
        axes.xaxis.set_label_position("top")
        axes.set_xlabel(f"{noun}s after the first purchase")
        labels = [f"{c}{' *' if warm[c] else ''}  ({sizes[c]:,})" for c in matrix.index]
        axes.set_yticks(range(rows), labels)
        axes.tick_params(axis="y", labelsize=8)
        for spine in axes.spines.values():
            spine.set_visible(False)
        bar = figure.colorbar(image, ax=axes, shrink=0.6, pad=0.01)
        bar.set_label("% of the cohort buying", color=MUTED)
        bar.outline.set_visible(False)
        return _to_data_uri(figure)


def draw_value_at_risk(tiers: pd.DataFrame) -> str:
    """Return horizontal bars of value at risk per risk tier as a data URI."""
    with matplotlib.rc_context(_STYLE):
        figure = _figure(height=0.55 * len(tiers) + 1.0)
        axes = _axes(figure)
        names = list(tiers["risk_tier"])[::-1]
        values = tiers["value_at_risk"].to_numpy(dtype=float)[::-1]
        counts = tiers["customers"].to_numpy()[::-1]
        colours = [TIER_COLOURS.get(name, BLUE) for name in names]
        axes.barh(names, values, color=colours)
        for y, (value, count) in enumerate(zip(values, counts, strict=True)):
            axes.annotate(
                f" {value:,.0f}  ({count:,} customers)",
                (value, y),
                va="center",
                fontsize=9,
                color=INK,
            )
        axes.set_xlim(0, max(values.max() if values.size else 1.0, 1.0) * 1.45)
        axes.xaxis.set_major_formatter(FuncFormatter(_thousands))
        axes.xaxis.set_major_locator(MaxNLocator(5))
        axes.set_xlabel("value at risk (sum of churn probability × expected value)")
        axes.grid(axis="x", color=GRID)
        return _to_data_uri(figure)


def draw_nps(periods: pd.DataFrame, noun: str) -> str:
    """Return the NPS per period line chart (periods with answers only) as a data URI."""
    with matplotlib.rc_context(_STYLE):
        shown = periods[periods["nps_answers"] > 0]
        figure = _figure(height=2.8)
        axes = _axes(figure)
        x = np.arange(len(shown))
        axes.plot(x, shown["nps"], color=GREEN, linewidth=2, marker="o", markersize=3.5)
        axes.axhline(0, color=MUTED, linewidth=0.8)
        axes.set_ylim(-100, 100)
        axes.set_ylabel(f"NPS per {noun}")
        axes.grid(axis="y", color=GRID)
        _period_axis(axes, list(shown[PERIOD]))
        return _to_data_uri(figure)
