"""The docs say what the checksums protect against and what not, and that is what the code does:
a calibrator changed on its own is caught; changed together with its checksum, it is accepted."""

from __future__ import annotations

import hashlib
import json

import pytest

from churn.errors import ChurnError
from churn.model import CALIBRATOR_FILE, METADATA_FILE, ChurnModel
from support.paths import ROOT
from support.score_data import train_model


def test_the_docs_say_checksums_catch_accidents_not_deliberate_edits():
    page = (ROOT / "docs" / "checksums.md").read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert page.startswith("# Checksums: what they are for")
    section = page
    assert "partial copy" in section and "not signatures" in section
    assert "together with its checksum" in section
    assert "together with its checksum" in " ".join(readme.split())  # README, Publishing


def test_a_calibrator_edited_alone_is_caught_edited_with_its_checksum_is_not(tmp_path):
    folder = tmp_path / "champion"
    train_model(customers=400, trees=5).save(folder)
    path = folder / CALIBRATOR_FILE
    edited = path.read_text().replace("{", '{\n  "note": "edited",', 1)
    path.write_text(edited)
    with pytest.raises(ChurnError, match="sha256 does not match metadata.json"):
        ChurnModel.load(folder)
    metadata = json.loads((folder / METADATA_FILE).read_text())
    metadata["files_sha256"][CALIBRATOR_FILE] = hashlib.sha256(edited.encode()).hexdigest()
    (folder / METADATA_FILE).write_text(json.dumps(metadata))
    ChurnModel.load(folder)  # the documented limit: checksums are not signatures
