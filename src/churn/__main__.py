"""Entry point for `python -m churn`."""

from churn.cli import main

main()
