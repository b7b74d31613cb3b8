"""Matplotlib figures of the evaluation tables (ROC, PR, calibration, gains, importance) for MLflow."""

from __future__ import annotations

from typing import Any

import pandas as pd

_TITLES = {
    "roc": ("ROC on the test cutoff", "false positive rate", "true positive rate", "fpr"),
    "pr": ("Precision-recall on the test cutoff", "recall", "precision", "recall"),
    "gains": (
        "Cumulative gains",
        "share of customers contacted",
        "share of churners reached",
        "targeted",
    ),
}


def evaluation_figures(curves: dict[str, pd.DataFrame]) -> dict[str, Any]:
    """Return one matplotlib Figure per plot table (no pyplot, no global backend state)."""
    from matplotlib.figure import Figure

    figures: dict[str, Any] = {}
    for name, (title, xlabel, ylabel, x) in _TITLES.items():
        table = curves[name]
        figure = Figure(figsize=(6, 5), dpi=100)
        axes = figure.subplots()
        for column in table.columns.drop(x):
            axes.plot(
                table[x], table[column], label=column, linewidth=2 if column == "model" else 1
            )
        if name in ("roc", "gains"):
            axes.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1, label="random")
        axes.set(title=title, xlabel=xlabel, ylabel=ylabel, xlim=(0, 1), ylim=(0, 1.02))
        axes.legend(loc="lower right" if name != "pr" else "lower left")
        axes.grid(alpha=0.3)
        figures[name] = figure

    calibration = curves["calibration"]
    figure = Figure(figsize=(6, 5), dpi=100)
    axes = figure.subplots()
    axes.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfect")
    axes.plot(calibration["predicted"], calibration["observed"], marker="o", label="model")
    axes.set(
        title="Calibration on the test cutoff",
        xlabel="mean predicted churn probability",
        ylabel="observed churn rate",
        xlim=(0, 1),
        ylim=(0, 1),
    )
    axes.legend(loc="upper left")
    axes.grid(alpha=0.3)
    figures["calibration"] = figure

    importance = curves["importance"].head(25).iloc[::-1]
    figure = Figure(figsize=(7, max(3, 0.3 * len(importance) + 1)), dpi=100)
    axes = figure.subplots()
    axes.barh(importance["feature"], importance["gain"])
    axes.set(title="Feature importance (share of split gain)", xlabel="share of gain")
    figure.tight_layout()
    figures["importance"] = figure
    return figures
