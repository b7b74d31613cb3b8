"""Opening DuckDB, the embedded engine of every stage that aggregates transactions (one place)."""

from __future__ import annotations

import errno
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from churn.config import EngineParams
from churn.errors import ChurnError


def open_duckdb(
    engine: EngineParams, spill_dir: str | Path | None = None, *, ordered: bool = True
) -> duckdb.DuckDBPyConnection:
    """Return an in-memory DuckDB connection with the engine section's threads and memory limit,
    spilling to `spill_dir` (default: a folder in the system temp dir, never the project).

    Sessions run in UTC: timestamps with offsets are converted explicitly by the code, so results
    never depend on the machine's zone. `ordered=False` lets DuckDB stream without keeping
    insertion order (for queries that order their result explicitly).
    """
    config = {"memory_limit": engine.memory_limit, "temp_directory": str(spill_folder(spill_dir))}
    if engine.threads is not None:
        config["threads"] = str(int(engine.threads))
    try:
        con = duckdb.connect(config=config)
    except duckdb.Error as error:
        raise ChurnError(
            f"params.yaml: engine.memory_limit = {engine.memory_limit!r} or engine.threads = "
            f"{engine.threads!r} is not accepted by DuckDB ({error}); use e.g. 2GB and a whole "
            "number of threads"
        ) from None
    con.execute("SET TimeZone = 'UTC'")
    if not ordered:
        con.execute("SET preserve_insertion_order = false")
    return con


def memory_limit_bytes(engine: EngineParams) -> int:
    """Return engine.memory_limit in bytes, as DuckDB reads it (GB = 1000^3, GiB = 1024^3)."""
    found = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMGT])(i?)B", engine.memory_limit.strip())
    if found is None:  # EngineParams checks the pattern: only a hand-built object gets here
        raise ChurnError(f"engine.memory_limit {engine.memory_limit!r}: write it like 2GB or 512MB")
    number, unit, binary = found.groups()
    return int(float(number) * (1024 if binary else 1000) ** ("KMGT".index(unit) + 1))


def spill_folder(spill_dir: str | Path | None = None) -> Path:
    """Return the folder DuckDB spills to: `spill_dir`, else churn-duckdb in the system temp dir."""
    if spill_dir is not None:
        return Path(spill_dir)
    return Path(tempfile.gettempdir()) / "churn-duckdb"


def out_of_memory(engine: EngineParams, stage: str) -> ChurnError:
    """Return the error shown when DuckDB runs out of memory in a stage: the setting to change."""
    return ChurnError(
        f"{stage}: DuckDB ran out of memory at engine.memory_limit = {engine.memory_limit}; raise "
        "engine.memory_limit in params.yaml (it spills to disk beyond it) or lower engine.threads"
    )


def out_of_disk(
    engine: EngineParams, stage: str, spill_dir: str | Path | None, detail: str
) -> ChurnError:
    """Return the error shown when the disk fills while a stage spills or writes: what to free."""
    return ChurnError(
        f"{stage}: out of disk space ({detail}). DuckDB spills what does not fit in "
        f"engine.memory_limit = {engine.memory_limit} to {spill_folder(spill_dir)}: free space "
        "on that disk, or run the stage with TMPDIR set to a folder on a larger disk, or raise "
        "engine.memory_limit in params.yaml so less is spilled"
    )


def _disk_full(error: BaseException) -> bool:
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        return True
    text = str(error)
    # DuckDB caps its spill files at max_temp_directory_size (by default the free space of the
    # temp folder's disk) and reports reaching it as "failed to offload" naming that setting
    return "No space left on device" in text or "max_temp_directory_size" in text


def _out_of_memory(error: BaseException) -> bool:
    return isinstance(error, duckdb.OutOfMemoryException | MemoryError) or (
        isinstance(error, duckdb.Error) and "Out of Memory Error" in str(error)
    )


def is_resource_error(error: BaseException) -> bool:
    """Return True when `error` means the stage ran out of memory or disk (not bad input)."""
    return _disk_full(error) or _out_of_memory(error)


def resource_error(
    error: BaseException, engine: EngineParams, stage: str, spill_dir: str | Path | None = None
) -> ChurnError | None:
    """Return the user-facing error for running out of disk or memory, None for other errors.

    Memory: DuckDB's OutOfMemoryException, and MemoryError from Arrow/pandas/NumPy (the query
    result turned into frames).
    """
    if _disk_full(error):
        return out_of_disk(engine, stage, spill_dir, str(error).strip().splitlines()[0].rstrip("."))
    if _out_of_memory(error):
        return out_of_memory(engine, stage)
    return None


@contextmanager
def resource_errors(
    engine: EngineParams, stage: str, spill_dir: str | Path | None = None
) -> Iterator[None]:
    """Turn running out of memory or disk inside the block into a ChurnError naming the fix."""
    try:
        yield
    except (duckdb.Error, MemoryError, OSError) as error:
        friendly = resource_error(error, engine, stage, spill_dir)
        if friendly is None:
            raise
        raise friendly from None


# the setting that bounds each stage's pandas / NumPy / LightGBM memory, beside DuckDB's limit
IN_PROCESS_MEMORY_SETTINGS = {
    "train": "lower train.sample_customers (the customers whose fit rows are read and fitted)",
    "evaluate": "lower train.sample_customers (the customers whose fit rows the baselines read)",
    "promote": "lower train.sample_customers (the customers whose fit rows the baselines read)",
    "score": "lower score.reasons.batch_rows (rows explained per batch of reason contributions)",
    "uplift": "lower uplift.sample_customers (the customers the baseline risk model learns on)",
}


def in_process_out_of_memory(stage: str, detail: str = "") -> ChurnError:
    """Return the error shown when pandas, NumPy, Arrow or LightGBM (or DuckDB reading a model
    stage's inputs) run out of memory: the setting that bounds that stage's rows, then the
    engine's limit."""
    setting = IN_PROCESS_MEMORY_SETTINGS.get(stage)
    first = f"{setting} in params.yaml, or " if setting else ""
    return ChurnError(
        f"{stage}: ran out of memory{f' ({detail})' if detail else ''}; "
        f"{first}lower engine.memory_limit so DuckDB leaves more of the machine's memory to the "
        "rest of the stage, or give the machine more memory"
    )


def is_in_process_out_of_memory(error: BaseException) -> bool:
    """Return True for MemoryError, LightGBM's / Arrow's allocation failures, and DuckDB running
    out of memory where a model stage reads its inputs with it (no engine section there)."""
    if _out_of_memory(error):
        return True
    name = type(error).__name__
    text = str(error)
    return (name == "LightGBMError" and "bad_alloc" in text) or (
        name == "ArrowMemoryError" or "std::bad_alloc" in text
    )


def killed_by_system(what: str, code: int, stage: str | None = None) -> str:
    """Return the hint shown when the kernel killed a stage (exit 137 / SIGKILL, usually its
    out-of-memory killer): the settings to change, as for DuckDB's own out-of-memory error. With
    the `stage` known, its own setting (IN_PROCESS_MEMORY_SETTINGS) is named first."""
    setting = IN_PROCESS_MEMORY_SETTINGS.get(stage or "")
    rows = (
        f"{setting}; "
        if setting
        else "in train, evaluate and promote lower train.sample_customers (the customers whose "
        "fit rows are read), in uplift uplift.sample_customers; "
    )
    return (
        f"{what} was killed by the system (exit {code}, SIGKILL: usually the machine or container "
        f"ran out of memory). {rows[0].upper()}{rows[1:]}lower engine.memory_limit in params.yaml "
        "below the memory the stage really gets (DuckDB then spills to the temp folder instead; "
        "pandas and the model need memory beside it) or lower engine.threads; or give the machine "
        "more memory; check that the temp folder (TMPDIR) has free disk for the spill"
    )


def release_memory() -> None:
    """Hand memory freed by Arrow and malloc back to the system (between a stage's batches and
    its next step, so freed pages do not count against the memory a container allows)."""
    import ctypes
    import ctypes.util

    import pyarrow as pa

    pa.default_memory_pool().release_unused()
    name = ctypes.util.find_library("c")
    if name is None:
        return
    try:
        libc = ctypes.CDLL(name)
        trim = libc.malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim
        return
    trim(0)
