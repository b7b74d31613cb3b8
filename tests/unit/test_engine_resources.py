"""Running out of memory or disk is a ChurnError naming the setting; a killed stage gets the hint."""

from __future__ import annotations

import errno
import logging

import duckdb
import pyarrow as pa
import pytest

from churn.config import EngineParams
from churn.engine import is_resource_error, memory_limit_bytes, resource_error, resource_errors
from churn.errors import ChurnError
from churn.retrain import EXIT_ERROR, ReproResult, RetrainSteps, killed_hint, run_retrain

ENGINE = EngineParams(threads=1, memory_limit="64MB")
# DuckDB's words when its spill folder's disk is full (its cap defaults to that disk's free space)
OFFLOAD = (
    "Out of Memory Error: failed to offload data block of size 256.0 KiB (864.0 KiB/921.5 KiB "
    "used).\nThis limit was set by the 'max_temp_directory_size' setting."
)


@pytest.mark.parametrize(
    "error",
    [
        duckdb.OutOfMemoryException(
            "Out of Memory Error: could not allocate block of size 256 KiB"
        ),
        duckdb.InvalidInputException("Out of Memory Error: could not allocate block"),
        MemoryError(),
        pa.ArrowMemoryError("malloc of size 1073741824 failed"),
    ],
    ids=["duckdb", "duckdb-wrapped", "python", "arrow"],
)
def test_out_of_memory_names_engine_memory_limit(error):
    friendly = resource_error(error, ENGINE, "features")
    assert isinstance(friendly, ChurnError)
    assert str(friendly).startswith(
        "features: DuckDB ran out of memory at engine.memory_limit = 64MB"
    )
    assert "raise engine.memory_limit in params.yaml" in str(friendly)


@pytest.mark.parametrize(
    "error",
    [
        duckdb.OutOfMemoryException(OFFLOAD),
        duckdb.IOException(
            'IO Error: Could not write file "/data/x.parquet": No space left on device'
        ),
        OSError(errno.ENOSPC, "No space left on device"),
    ],
    ids=["spill-cap", "duckdb-write", "python-write"],
)
def test_a_full_disk_names_the_spill_folder_and_what_to_do(error, tmp_path):
    friendly = resource_error(error, ENGINE, "ingest", tmp_path / "spill")
    message = str(friendly)
    assert message.startswith("ingest: out of disk space (")
    assert f"to {tmp_path / 'spill'}: free space on that disk" in message
    assert "TMPDIR" in message and "engine.memory_limit" in message


@pytest.mark.parametrize(
    "error",
    [
        duckdb.CatalogException("Catalog Error: Table with name x does not exist"),
        duckdb.ConversionException("Conversion Error: could not convert string 'a' to INT32"),
        FileNotFoundError(errno.ENOENT, "No such file or directory"),
        ValueError("bad"),
    ],
)
def test_other_errors_are_not_resource_errors(error):
    assert not is_resource_error(error)
    assert resource_error(error, ENGINE, "features") is None


def test_the_context_manager_converts_resource_errors_and_passes_others_on():
    with (
        pytest.raises(ChurnError, match="report: DuckDB ran out of memory"),
        resource_errors(ENGINE, "report"),
    ):
        raise duckdb.OutOfMemoryException("Out of Memory Error: could not allocate")
    with pytest.raises(duckdb.CatalogException), resource_errors(ENGINE, "report"):
        raise duckdb.CatalogException("Catalog Error: no table")


DVC_KILLED = (
    "ERROR: failed to reproduce 'features': failed to run: churn features --transactions "
    "data/interim/transactions.parquet --out data/features, exited with {code}"
)


@pytest.mark.parametrize("code", [-9, 137])
def test_a_stage_killed_by_the_kernel_gets_the_memory_hint(code):
    result = ReproResult(255, False, ("Running stage 'features':", DVC_KILLED.format(code=code)))
    hint = killed_hint(result)
    assert hint is not None
    assert hint.startswith(f"stage 'features' was killed by the system (exit {code}, SIGKILL")
    assert "engine.memory_limit" in hint and "TMPDIR" in hint


@pytest.mark.parametrize(
    ("stage", "setting"),
    [
        ("train", "train.sample_customers"),
        ("uplift", "uplift.sample_customers"),
        ("score", "score.reasons.batch_rows"),
    ],
)
def test_a_killed_stage_gets_its_own_setting_first(stage, setting):
    line = DVC_KILLED.format(code=137).replace("'features'", f"'{stage}'")
    hint = killed_hint(ReproResult(255, False, (line,)))
    assert hint is not None and hint.startswith(f"stage '{stage}' was killed by the system")
    # the stage's own bound first, then the engine's limit; not the other stages' settings
    assert hint.index(setting) < hint.index("engine.memory_limit")
    others = {
        "train.sample_customers",
        "uplift.sample_customers",
        "score.reasons.batch_rows",
    }
    assert not [other for other in others - {setting} if other in hint]


def test_a_killed_stage_without_a_setting_of_its_own_names_every_row_bound():
    hint = killed_hint(ReproResult(255, False, (DVC_KILLED.format(code=137),)))
    assert hint is not None
    assert "train.sample_customers" in hint and "uplift.sample_customers" in hint


def test_the_pipeline_command_itself_killed_gets_the_hint():
    hint = killed_hint(ReproResult(-9, False, ("Running stage 'train':",)))
    assert hint is not None and hint.startswith("the pipeline command was killed by the system")


@pytest.mark.parametrize(
    "result",
    [
        ReproResult(255, False, (DVC_KILLED.format(code=1),)),
        ReproResult(255, False, (DVC_KILLED.format(code=1370),)),
        ReproResult(1, False, ("error: features: bad input",)),
    ],
)
def test_other_failures_get_no_kill_hint(result):
    assert killed_hint(result) is None


def test_retrain_logs_the_hint_when_a_stage_was_killed(tmp_path, caplog):
    killed = ReproResult(255, False, (DVC_KILLED.format(code=-9),))
    steps = RetrainSteps(lambda: "1", lambda record_child: killed, lambda: None)
    logger = logging.getLogger("churn")
    before, logger.propagate = logger.propagate, True
    try:
        with caplog.at_level(logging.ERROR, logger="churn"):
            assert run_retrain(steps, tmp_path / "lock") == EXIT_ERROR
    finally:
        logger.propagate = before
    # distinct messages in order (a handler another test left may record each line twice)
    errors = list(
        dict.fromkeys(r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR)
    )
    assert errors[0] == "the pipeline failed (exit 255); nothing was published"
    assert errors[1].startswith("stage 'features' was killed by the system (exit -9")
    assert len(errors) == 2


def test_running_out_of_memory_outside_duckdb_names_the_stage_setting():
    from churn.engine import in_process_out_of_memory, is_in_process_out_of_memory

    class LightGBMError(Exception):  # lightgbm.basic.LightGBMError's name, as main() sees it
        pass

    assert is_in_process_out_of_memory(MemoryError())
    assert is_in_process_out_of_memory(LightGBMError("std::bad_alloc"))
    assert not is_in_process_out_of_memory(LightGBMError("Check failed: num_data > 0"))
    assert not is_in_process_out_of_memory(ValueError("bad input"))
    message = str(in_process_out_of_memory("train", "MemoryError"))
    assert message.startswith(
        "train: ran out of memory (MemoryError); lower train.sample_customers"
    )
    assert "engine.memory_limit" in message
    score = str(in_process_out_of_memory("score"))
    assert "score.reasons.batch_rows" in score and "train.sample_customers" not in score
    assert "engine.memory_limit" in str(in_process_out_of_memory("report"))


@pytest.mark.parametrize(
    ("limit", "expected"),
    [("2GB", 2 * 10**9), ("2GiB", 2 * 2**30), ("512MB", 512 * 10**6), ("1.5 GB", 15 * 10**8)],
)
def test_memory_limit_bytes_reads_the_setting_as_duckdb_does(limit, expected):
    assert memory_limit_bytes(EngineParams(memory_limit=limit)) == expected
