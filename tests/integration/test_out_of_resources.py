"""Real out-of-memory and full-disk failures in the DuckDB stages end as one clear line naming the
setting to change; a stage killed by the kernel is reported by `churn retrain` with the same hint.

Memory: a tiny engine.memory_limit on generated data (DuckDB's own, real out-of-memory error).
Disk: DuckDB stops spilling at max_temp_directory_size, which defaults to the free space of the
temp folder's disk; the test sets it to 0 on the stage's connection, the same error a full disk
gives (checked by hand on a 1 MB tmpfs as TMPDIR).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from churn.config import ChurnParams, EngineParams, FeaturesParams
from churn.engine import open_duckdb
from churn.errors import ChurnError
from churn.features.build import build_snapshots
from churn.retrain import killed_hint, run_repro
from support.churn_cli import run_churn
from support.paths import ROOT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def generated(generated_interim) -> Path:
    # the report tests' population (one generation per session): big enough to spill at 16MB
    return generated_interim(1500, 7, days=1095, chunk_customers=1000)


def _churn(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return run_churn(cwd, *args, timeout=180)


def _tiny_memory_params(generated: Path, tmp_path: Path) -> Path:
    params = yaml.safe_load((generated.parent / "params.yaml").read_text())
    params["engine"] = {"threads": 1, "memory_limit": "1MB"}
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def _tables(generated: Path) -> list[str]:
    return [
        "--transactions", str(generated / "transactions.parquet"),
        "--customers", str(generated / "customers.parquet"),
        "--nps", str(generated / "nps.parquet"),
    ]  # fmt: skip


@pytest.mark.parametrize("stage", ["ingest", "features", "report"])
def test_out_of_memory_in_a_duckdb_stage_is_one_line_naming_the_setting(generated, tmp_path, stage):
    params = _tiny_memory_params(generated, tmp_path)
    out = tmp_path / "out"
    arguments = {
        "ingest": [
            "--out", str(out), "--report", str(tmp_path / "ingest.json"),
            "--sql-copies", str(tmp_path), "--state", str(tmp_path / "state.json"),
        ],
        "features": [*_tables(generated), "--out", str(out), "--report", str(tmp_path / "f.json")],
        "report": [*_tables(generated), "--out", str(out)],
    }[stage]  # fmt: skip
    done = _churn(tmp_path, stage, *arguments, "--params", str(params))
    assert done.returncode == 1, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last == (
        f"error: {stage}: DuckDB ran out of memory at engine.memory_limit = 1MB; raise "
        "engine.memory_limit in params.yaml (it spills to disk beyond it) or lower engine.threads"
    )
    assert "Traceback" not in done.stderr
    assert not out.exists() or not any(out.iterdir())


def test_a_full_spill_disk_in_features_names_the_temp_folder(generated, tmp_path):
    engine = EngineParams(threads=1, memory_limit="16MB")
    con = open_duckdb(engine, tmp_path / "spill", ordered=False)
    con.execute("SET max_temp_directory_size = '0KB'")  # no free space left for spilling
    with pytest.raises(ChurnError) as error:
        build_snapshots(
            generated / "transactions.parquet",
            generated / "customers.parquet",
            generated / "nps.parquet",
            ChurnParams(),
            FeaturesParams(),
            engine,
            con=con,
        )
    message = str(error.value)
    assert message.startswith("features: out of disk space (Out of Memory Error: failed to offload")
    assert "TMPDIR" in message and "engine.memory_limit = 16MB" in message


def test_retrain_reports_a_stage_killed_by_the_kernel(tmp_path):
    """A real `dvc repro` whose stage is SIGKILLed (as the kernel's OOM killer does)."""
    from dvc.repo import Repo

    Repo.init(str(tmp_path), no_scm=True).close()
    (tmp_path / "dvc.yaml").write_text(
        'stages:\n  features:\n    cmd: python -c "import os, signal; os.kill(os.getpid(), '
        'signal.SIGKILL)"\n    outs:\n      - out.txt\n'
    )
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = run_repro([sys.executable, "-m", "dvc", "repro"], cwd=tmp_path, env=env)
    assert result.returncode != 0

    hint = killed_hint(result)
    assert hint is not None, result.tail
    assert hint.startswith("stage 'features' was killed by the system (exit")
    assert "engine.memory_limit" in hint


_UNDER_ADDRESS_LIMIT = """
import resource, sys
import duckdb, lightgbm, mlflow, numpy, pandas, pyarrow.parquet, sklearn  # loaded before the cap
from churn import cli, train, tracking, model
usage = int(open("/proc/self/statm").read().split()[0]) * resource.getpagesize()
cap = usage + 256 * 2**20  # room for threads (stacks, TLS), far below the 40x table
resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
sys.argv = ["churn", *sys.argv[1:]]
cli.main()
"""


def test_out_of_memory_in_a_pandas_stage_is_one_line_naming_the_setting(generated, tmp_path):
    """A real MemoryError (or Arrow's / LightGBM's allocation failure) in `churn train`."""
    snapshots = tmp_path / "train.parquet"
    features = _churn(
        tmp_path, "features", *_tables(generated), "--out", str(tmp_path),
        "--report", str(tmp_path / "f.json"), "--params", str(generated.parent / "params.yaml"),
    )  # fmt: skip
    assert features.returncode == 0, features.stderr
    # a bigger table than the cap leaves room for: the same rows many times over
    import pandas as pd

    frame = pd.read_parquet(snapshots)
    big = pd.concat(
        [frame.assign(customer_id=frame["customer_id"] + f"-{i}") for i in range(40)],
        ignore_index=True,
    )
    big.to_parquet(snapshots, index=False)
    # one malloc arena: a thread started under the cap must not reserve its own 64 MB arena
    # (glibc then aborts with "cannot allocate memory for thread-local data", exit 127)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "MALLOC_ARENA_MAX": "1"}
    done = subprocess.run(
        [sys.executable, "-c", _UNDER_ADDRESS_LIMIT, "train", "--snapshots", str(snapshots),
         "--out", str(tmp_path / "m"), "--evaluation-out", str(tmp_path / "e"),
         "--params", str(generated.parent / "params.yaml"), "--no-tracking"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr[-2000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: train: ran out of memory ("), last
    assert "lower train.sample_customers" in last and "engine.memory_limit" in last
    assert "Traceback" not in done.stderr
