"""Publish test helpers: what a complete published list looks like, and example score tables."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import pandas as pd

from support.score_data import AS_OF, make_scores

LATER = AS_OF + dt.timedelta(days=30)
NOW = dt.datetime(2025, 7, 1, 6, 0, tzinfo=dt.UTC)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def assert_latest_names_a_complete_list(root: Path) -> dict:
    """LATEST.json names a list whose files all exist with the sha256 and rows it states."""
    latest_bytes = (root / "LATEST.json").read_bytes()
    latest = json.loads(latest_bytes)
    listed = (root / latest["path"]).read_bytes()
    assert _sha(listed) == latest["sha256"]
    assert listed.count(b"\n") == latest["rows"] + 1  # header + one line per customer
    folder = (root / latest["path"]).parent
    for name, entry in latest["files"].items():
        assert _sha((folder / name).read_bytes()) == entry["sha256"], name
    assert (folder / "manifest.json").read_bytes() == latest_bytes
    return latest


def assert_visible_folders_are_complete(root: Path) -> None:
    """Every dated folder marketing can see has all the files its manifest lists."""
    for folder in root.iterdir():
        if folder.is_dir() and not folder.name.startswith("."):
            manifest = json.loads((folder / "manifest.json").read_text())
            for name, entry in manifest["files"].items():
                assert _sha((folder / name).read_bytes()) == entry["sha256"]


def example_lists() -> dict[str, pd.DataFrame]:
    """Return three scores tables: two for one date with different content, one for a later date."""
    return {
        "a": make_scores(300, seed=1),
        "b": make_scores(300, seed=2),  # same date, different content
        "c": make_scores(300, seed=3, as_of=LATER),
    }
