"""The retention report: the figures marketing already uses, from the same clean data as the model."""

from churn.report.build import RetentionReport, build_report, headline_figures

__all__ = ["RetentionReport", "build_report", "headline_figures"]
