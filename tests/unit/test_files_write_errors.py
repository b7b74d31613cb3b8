"""Failed writes (disk full, a folder or an unwritable path as the output) are clear errors that
name the path and the fix; the temporary file is removed and the previous file survives."""

from __future__ import annotations

import datetime as dt
import errno
import os
import subprocess
import sys
import textwrap

import pandas as pd
import pytest

from churn import files
from churn.errors import ChurnError
from churn.logs import add_log_file
from churn.publish.record import publish_lists, read_events
from support.publish_checks import NOW
from support.score_data import make_scores


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_a_folder_given_as_the_output_file_is_named_with_the_fix(tmp_path):
    (tmp_path / "out.csv").mkdir()
    with pytest.raises(ChurnError, match=r"out\.csv: cannot write it: it is a folder; give a file"):
        files.write_csv(pd.DataFrame({"a": [1]}), tmp_path / "out.csv")
    assert _leftovers(tmp_path) == []


def test_a_file_where_a_folder_should_be_is_named_with_the_fix(tmp_path):
    (tmp_path / "reports").write_text("not a folder")
    with pytest.raises(ChurnError, match=r"reports/score\.json: .*a part of the path is a file"):
        files.write_json({"a": 1}, tmp_path / "reports" / "score.json")
    assert (tmp_path / "reports").read_text() == "not a folder"


def test_a_full_disk_keeps_the_previous_file_and_removes_the_temporary_one(tmp_path, monkeypatch):
    target = tmp_path / "score.json"
    files.write_json({"version": 1}, target)

    def disk_full(path):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(files, "fsync_file", disk_full)
    with pytest.raises(ChurnError) as caught:
        files.write_json({"version": 2}, target)
    message = str(caught.value)
    assert str(target) in message and "the disk is full" in message
    assert "previous file is unchanged" in message
    assert target.read_text() == '{\n  "version": 1\n}\n'
    assert _leftovers(tmp_path) == []


def test_an_unwritable_folder_is_named_with_the_fix(tmp_path, monkeypatch):
    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(tmp_path))

    monkeypatch.setattr(files.tempfile, "mkstemp", denied)
    with pytest.raises(ChurnError, match=r"list\.csv: cannot write it: permission denied; make"):
        files.write_bytes(tmp_path / "list.csv", b"x")


def test_a_write_the_kernel_refuses_midway_is_a_clear_error(tmp_path):
    """A real failed write(2): the file size limit (EFBIG) stands in for a full disk, which needs
    a mount to simulate; the same path through files.py handles both."""
    target = tmp_path / "big.bin"
    target.write_bytes(b"old")
    script = textwrap.dedent(
        f"""
        import resource, signal
        from churn.errors import ChurnError
        from churn.files import write_bytes
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (65536, resource.RLIM_INFINITY))
        try:
            write_bytes({str(target)!r}, b"x" * 1_000_000)
        except ChurnError as error:
            print(error)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert f"{target}: cannot write it: the file is larger than this system allows" in done.stdout
    assert target.read_bytes() == b"old"
    assert _leftovers(tmp_path) == []


def test_a_stream_that_fails_midway_is_a_clear_error_and_leaves_no_file(tmp_path, monkeypatch):
    target = tmp_path / "transactions.csv"
    frame = pd.DataFrame({"a": range(10)})

    def disk_full(table):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    stream = files.TableStream(target)
    stream.write(frame)
    monkeypatch.setattr(stream, "_write", disk_full)
    expected = r"transactions\.csv: cannot write it: the disk is full"
    with pytest.raises(ChurnError, match=expected), stream:
        stream.write(frame)
    assert not target.exists() and _leftovers(tmp_path) == []


def test_publishing_into_a_file_is_a_clear_error(tmp_path):
    exports = tmp_path / "exports"
    exports.write_text("oops")
    with pytest.raises(ChurnError, match=r"exports: cannot write it: .*LATEST\.json still names"):
        publish_lists(make_scores(50, seed=1), exports, now=NOW)


def test_a_line_torn_by_a_failed_append_is_ended_and_named_when_read(tmp_path):
    log = tmp_path / "events.jsonl"
    log.write_text('{"event": "published"}\n{"event": "pub')  # the disk filled midway
    files.append_line(log, '{"event": "replaced"}')
    lines = log.read_text().splitlines()
    assert lines == ['{"event": "published"}', '{"event": "pub', '{"event": "replaced"}']
    with pytest.raises(ChurnError, match=r"events\.jsonl: line 2 is not a complete event"):
        read_events(tmp_path)


def test_a_log_file_that_cannot_be_created_is_a_clear_error(tmp_path):
    (tmp_path / "logs").write_text("a file, not a folder")
    with pytest.raises(ChurnError, match=r"retrain\.log: cannot write it: .*run did not start"):
        add_log_file(tmp_path / "logs" / "retrain.log")


def test_a_full_disk_during_publish_leaves_latest_and_no_staging_folder(tmp_path, monkeypatch):
    publish_lists(make_scores(300, seed=1), tmp_path, now=NOW)
    latest = (tmp_path / "LATEST.json").read_bytes()
    writes = {"n": 0}
    real_fsync = files.fsync_file

    def full_after_two_files(path):
        writes["n"] += 1
        if writes["n"] > 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        real_fsync(path)

    monkeypatch.setattr(files, "fsync_file", full_after_two_files)
    later = make_scores(300, seed=3, as_of=dt.date(2025, 7, 30))
    with pytest.raises(
        ChurnError, match=r"2025-07-30: not published \(LATEST\.json is unchanged\)"
    ):
        publish_lists(later, tmp_path, now=NOW)
    assert (tmp_path / "LATEST.json").read_bytes() == latest
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".lock",
        "2025-06-30",
        "LATEST.json",
        "events.jsonl",
    ]


def test_at_risk_to_a_full_disk_on_stdout_is_a_clear_error(tmp_path):
    """A real ENOSPC: /dev/full refuses every write, as a full disk behind `> list.csv` does."""
    publish_lists(make_scores(300, seed=1), tmp_path / "exports", now=NOW)
    command = [sys.executable, "-m", "churn", "at-risk", "--exports", str(tmp_path / "exports")]
    with open("/dev/full", "wb") as full:
        done = subprocess.run(command, stdout=full, stderr=subprocess.PIPE, text=True)
    assert done.returncode == 1
    assert "error: standard output: cannot write it: the disk is full" in done.stderr
    assert "Traceback" not in done.stderr


def test_at_risk_stops_quietly_when_the_reader_stops_early(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from churn.cli import app

    publish_lists(make_scores(300, seed=1), tmp_path / "exports", now=NOW)

    def reader_gone(data):
        raise BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))

    monkeypatch.setattr(files, "write_stdout", reader_gone)
    result = CliRunner().invoke(app, ["at-risk", "--exports", str(tmp_path / "exports")])
    assert result.exit_code == 141, result.output  # the shell's status for SIGPIPE, no traceback
    assert not isinstance(result.exception, OSError)
