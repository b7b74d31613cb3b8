"""The published-lists record is read only from inside its own folder: dates must be dates, and
a manifest edited to point elsewhere is refused."""

from __future__ import annotations

import json
import shutil

import pytest

from churn.errors import ChurnError
from churn.publish import record
from churn.publish.record import publish_lists, read_list, read_manifest, read_scored
from support.publish_checks import NOW
from support.score_data import AS_OF, make_scores


@pytest.fixture
def exports(tmp_path):
    """A record with one published list, and a copy of that list outside the record."""
    root = tmp_path / "exports"
    publish_lists(make_scores(300, seed=1), root, now=NOW)
    shutil.copytree(root / str(AS_OF), tmp_path / "outside")
    return root


@pytest.mark.parametrize("date", ["../x", "../outside", "/etc", "2025-13-01", "2025-01-01/..", ""])
def test_a_date_that_is_not_a_date_is_a_clear_error(exports, date):
    with pytest.raises(ChurnError, match=r"--date .*give an ISO date such as"):
        read_manifest(exports, date)


@pytest.mark.parametrize("path", ["../outside/at_risk.csv", "/tmp/x/at_risk.csv", "../at_risk.csv"])
def test_latest_pointing_outside_the_record_is_refused(exports, path):
    latest = json.loads((exports / "LATEST.json").read_text())
    (exports / "LATEST.json").write_text(json.dumps({**latest, "path": path}))
    with pytest.raises(
        ChurnError, match=r"LATEST\.json: names the list folder .* not a dated folder"
    ):
        read_manifest(exports)
    with pytest.raises(ChurnError, match="not a dated folder inside"):
        read_list(exports, {**latest, "path": path})
    with pytest.raises(ChurnError, match="not a dated folder inside"):
        read_scored(exports, {**latest, "path": path})


def test_a_dated_folder_that_is_a_symlink_out_of_the_record_is_refused(exports, tmp_path):
    (exports / "2025-01-01").symlink_to(tmp_path / "outside", target_is_directory=True)
    manifest = json.loads((tmp_path / "outside" / "manifest.json").read_text())
    (tmp_path / "outside" / "manifest.json").write_text(
        json.dumps({**manifest, "path": "2025-01-01/at_risk.csv"})
    )
    with pytest.raises(ChurnError, match="not a dated folder inside"):
        read_manifest(exports, "2025-01-01")


def test_a_manifest_naming_a_file_outside_its_folder_does_not_match(exports, tmp_path):
    (tmp_path / "secret.txt").write_text("secret")
    path = exports / str(AS_OF) / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["files"]["../../secret.txt"] = {
        "sha256": record.sha256_bytes(b"secret"),
        "rows": 0,
        "bytes": 6,
    }
    path.write_text(json.dumps(manifest))
    with pytest.raises(ChurnError, match="do not match their manifest"):
        read_manifest(exports, str(AS_OF))


def test_a_manifest_for_one_date_naming_another_dates_folder_is_refused(exports):
    (exports / "2025-01-01").mkdir()
    manifest = (exports / str(AS_OF) / "manifest.json").read_text()
    (exports / "2025-01-01" / "manifest.json").write_text(manifest)
    with pytest.raises(ChurnError, match=f"names the list folder '{AS_OF}', not '2025-01-01'"):
        read_manifest(exports, "2025-01-01")


def test_published_dates_lists_only_dated_folders(exports):
    (exports / "notes").mkdir()
    (exports / "notes" / "manifest.json").write_text("{}")
    assert record.published_dates(exports) == [str(AS_OF)]
