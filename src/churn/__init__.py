"""churn: point-in-time churn prediction pipeline (importing it has no side effects)."""

__version__ = "0.1.0"
