"""docs/features.md lists every snapshot column the features stage writes."""

from __future__ import annotations

from churn.config import FeaturesParams


def test_docs_list_every_snapshot_column(project_root):
    from churn.features.build import snapshot_columns

    docs = (project_root / "docs" / "features.md").read_text(encoding="utf-8")
    missing = [name for name in snapshot_columns(FeaturesParams(), True) if f"`{name}`" not in docs]
    assert missing == []
