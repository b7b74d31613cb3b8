"""Point-in-time features and churn labels: the `features` stage (DuckDB over Parquet)."""

from churn.cutoffs import Cutoff, plan_training
from churn.features.build import Snapshots, build_snapshots, summarize_snapshots
from churn.features.definitions import feature_groups, feature_list, feature_names

__all__ = [
    "Cutoff",
    "Snapshots",
    "build_snapshots",
    "feature_groups",
    "feature_list",
    "feature_names",
    "plan_training",
    "summarize_snapshots",
]
