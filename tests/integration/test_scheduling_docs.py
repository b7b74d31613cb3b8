"""docs/scheduling.md: every scheduler example runs as written in a scheduler's bare environment."""

from __future__ import annotations

import fcntl
import os

import pytest
import yaml

from support.paths import ROOT
from support.scheduling_examples import DOC_PROJECT, make_project, read_examples

pytestmark = pytest.mark.integration

EXAMPLES = read_examples()
LOG = "logs/retrain.log"


def test_every_scheduler_in_the_doc_has_an_example_that_is_run():
    names = {example.name.split("-")[0] for example in EXAMPLES}
    assert names == {"cron", "systemd", "airflow", "github"}
    for example in EXAMPLES:
        assert "--log-file logs/retrain.log" in example.script, example.name
        assert ">>" not in example.script, f"{example.name}: a redirection into logs/ may fail"
        assert DOC_PROJECT in example.script + (example.cwd or ""), example.name


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda example: example.name)
def test_a_doc_example_skips_cleanly_in_a_bare_environment_while_another_run_holds_the_lock(
    example, tmp_path
):
    project = tmp_path / "churn"
    home = tmp_path / "home"
    home.mkdir()
    make_project(project, ROOT)
    assert not (project / "logs").exists()  # the example itself must create it
    lock_file = yaml.safe_load((project / "params.yaml").read_text())["retrain"]["lock_file"]
    # hold the lock like a running `churn retrain`: the example must see it and skip at once
    fd = os.open(project / lock_file, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, f"pid {os.getpid()}, started by the test\n".encode())
        result = example.in_project(project).run(home, timeout=120)
    finally:
        os.close(fd)

    output = result.stdout + result.stderr
    assert "command not found" not in output and "not found" not in output, output
    assert result.returncode in example.skipped, (result.returncode, output)
    if example.name.startswith("cron"):
        assert output == ""  # cron mails any output: a skipped run must not wake anyone
    if example.name == "systemd":
        assert result.returncode == 75  # and SuccessExitStatus lists it (example.skipped)
    log_lines = (project / LOG).read_text().splitlines()
    warnings = [line for line in log_lines if " WARNING churn.retrain: " in line]
    assert len(warnings) == 1 and "another `churn retrain` is running (pid" in warnings[0]
    assert not [line for line in log_lines if " ERROR " in line]
