"""`publish_lists` killed at random points never leaves LATEST.json naming a partial list."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest

from churn.publish.record import (
    publish_lists,
)
from support.paths import ROOT
from support.publish_checks import (
    NOW,
    assert_latest_names_a_complete_list,
    assert_visible_folders_are_complete,
    example_lists,
)


@pytest.fixture(scope="module")
def lists():
    return example_lists()


# A zygote imports pandas/pyarrow once and forks one publishing child per trial, so 20 kills
# cost 20 forks instead of 20 interpreter start-ups.
ZYGOTE = """
import os, sys
import pandas as pd
from churn.publish.record import publish_lists
root, paths = sys.argv[1], sys.argv[2:]
frames = [pd.read_parquet(path) for path in paths]
print("ready", flush=True)
for line in sys.stdin:
    if line.strip() != "fork":
        break
    pid = os.fork()
    if pid == 0:
        print(f"child {os.getpid()}", flush=True)
        i = 0
        while True:
            publish_lists(frames[i % len(frames)], root, force=True)
            i += 1
            print("done", flush=True)
    os.waitpid(pid, 0)
    print("reaped", flush=True)
"""


def test_a_kill_at_a_random_point_never_leaves_latest_naming_a_partial_list(tmp_path, lists):
    root = tmp_path / "exports"
    paths = []
    for name in ("a", "b", "c"):
        paths.append(tmp_path / f"{name}.parquet")
        lists[name].to_parquet(paths[-1])
    publish_lists(lists["a"], root, now=NOW)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    zygote = subprocess.Popen(
        [sys.executable, "-c", ZYGOTE, str(root), *map(str, paths)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
        text=True,
    )
    assert zygote.stdin is not None and zygote.stdout is not None
    rng = random.Random(20251122)
    completed = 0
    try:
        assert zygote.stdout.readline() == "ready\n"
        for _ in range(20):
            zygote.stdin.write("fork\n")
            zygote.stdin.flush()
            line = zygote.stdout.readline()
            assert line.startswith("child "), line
            for _ in range(rng.randint(0, 2)):  # let it finish 0-2 publishes first
                assert zygote.stdout.readline() == "done\n"
                completed += 1
            time.sleep(rng.uniform(0.0, 0.2))  # then kill it somewhere inside the next (~0.2 s)
            os.kill(int(line.split()[1]), signal.SIGKILL)
            while (line := zygote.stdout.readline()) != "reaped\n":
                assert line == "done\n", line
                completed += 1
            assert_latest_names_a_complete_list(root)
            assert_visible_folders_are_complete(root)
    finally:
        zygote.kill()
        zygote.wait()
    assert completed >= 10
