"""Gzip output is byte-identical run after run: no wall-clock time, no temporary file name in the
header (so `make run` leaves `git status` clean and DVC sees the same hash)."""

from __future__ import annotations

import gzip

import pandas as pd
from typer.testing import CliRunner

from churn.cli import app
from churn.files import TableStream
from support.dvc_project import write_params


def _write(path, frame):
    with TableStream(path) as stream:
        stream.write(frame.iloc[:2])
        stream.write(frame.iloc[2:])


def test_the_same_rows_give_byte_identical_gzip_at_another_time_and_name(tmp_path, monkeypatch):
    frame = pd.DataFrame({"customer_id": ["001", "002", "003"], "amount": [1.5, -2.0, 3.25]})
    monkeypatch.setattr(gzip.time, "time", lambda: 1_700_000_000.0)
    _write(tmp_path / "a" / "transactions.csv.gz", frame)
    monkeypatch.setattr(gzip.time, "time", lambda: 1_800_000_000.0)
    _write(tmp_path / "b" / "other.csv.gz", frame)
    first = (tmp_path / "a" / "transactions.csv.gz").read_bytes()
    assert first == (tmp_path / "b" / "other.csv.gz").read_bytes()
    assert first[4:8] == b"\0\0\0\0"  # MTIME field: 0
    assert first[3] & 0x08 == 0  # no FNAME flag: the random temporary name is not stored
    assert pd.read_csv(tmp_path / "a" / "transactions.csv.gz", dtype={"customer_id": "string"})[
        "customer_id"
    ].tolist() == ["001", "002", "003"]


def test_generating_twice_gives_byte_identical_gzip_transactions(tmp_path, monkeypatch):
    write_params(tmp_path, generate={"customers": 120})
    monkeypatch.chdir(tmp_path)
    outputs = []
    for folder, now in (("one", 1_700_000_000.0), ("two", 1_800_000_000.0)):
        monkeypatch.setattr(gzip.time, "time", lambda now=now: now)
        result = CliRunner().invoke(app, ["generate", "--out", folder])
        assert result.exit_code == 0, result.output
        outputs.append((tmp_path / folder / "transactions.csv.gz").read_bytes())
    assert outputs[0] == outputs[1]
