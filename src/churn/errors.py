"""The one exception type the CLI shows to users as a plain message, without a traceback."""

# how `churn` prints a DataCheckFailed, so `churn retrain` tells a data check from another error
# in the output of the `dvc repro` it runs
DATA_CHECK_PREFIX = "data check failed: "


class ChurnError(Exception):
    """A problem the user can fix: the message names the file, column, value and fix."""


class DataCheckFailed(ChurnError):
    """A data gate (quarantine share, freshness, volume) refused to let a stage continue."""
