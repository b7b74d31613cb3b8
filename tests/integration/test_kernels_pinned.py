"""A fresh `churn` process (console script or `python -m churn`) runs numpy and OpenBLAS on the
pinned AVX2-level kernels, and a user's own setting of the variables wins."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from importlib.metadata import entry_points

import pytest

from churn.kernels import HASWELL_FLAGS, NUMPY_ABOVE_AVX2, X86_64, read_cpu_flags
from support.paths import ROOT

PINNED = (
    "NPY_DISABLE_CPU_FEATURES",
    "OPENBLAS_CORETYPE",
    "OPENBLAS_NUM_THREADS",
    "OMP_WAIT_POLICY",
)

# Runs the churn entry (`python -m churn` or the console script's target) with `--help`, then
# reports what numpy dispatches to and which BLAS kernels OpenBLAS loaded in that same process.
PROBE = """
import json, os, runpy, sys
from importlib.metadata import entry_points
sys.argv = ["churn", "--help"]
try:
    if {how!r} == "module":
        runpy.run_module("churn", run_name="__main__", alter_sys=True)
    else:
        entry_points(group="console_scripts", name="churn")[0].load()()
except SystemExit:
    pass
from numpy._core._multiarray_umath import __cpu_features__
from threadpoolctl import threadpool_info
blas = [p for p in threadpool_info() if p["internal_api"] == "openblas"]
print(json.dumps({{
    "env": {{name: os.environ.get(name) for name in {pinned!r}}},
    "features": {{name: bool(on) for name, on in __cpu_features__.items()}},
    "blas": [(p["architecture"], p["num_threads"]) for p in blas],
}}))
"""

x86_only = pytest.mark.skipif(
    platform.machine().lower() not in X86_64, reason="the pin applies to x86-64 only"
)


def _probe(how: str, **overrides: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in PINNED}
    env.update(overrides, PYTHONPATH=str(ROOT / "src"))
    code = PROBE.format(how=how, pinned=PINNED)
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "NPY_DISABLE_CPU_FEATURES" not in done.stderr  # no warning about the names
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_console_script_enters_through_the_pin():
    (churn,) = entry_points(group="console_scripts", name="churn")
    assert churn.value == "churn.__main__:main"


def test_importing_the_entry_loads_no_numpy():
    code = "import sys, churn.__main__, churn.kernels; print('numpy' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.stdout.strip() == "False", done.stderr


@x86_only
@pytest.mark.parametrize("how", ["module", "console_script"])
def test_fresh_churn_process_runs_the_avx2_kernels(how):
    probe = _probe(how)
    assert probe["env"]["OMP_WAIT_POLICY"] == "PASSIVE"
    assert probe["env"]["NPY_DISABLE_CPU_FEATURES"] == NUMPY_ABOVE_AVX2
    assert probe["env"]["OPENBLAS_NUM_THREADS"] == "1"
    for name in NUMPY_ABOVE_AVX2.split():
        assert not probe["features"].get(name, False), f"numpy still dispatches {name}"
    assert not probe["features"].get("AVX512_SKX", False)
    flags = read_cpu_flags()
    if flags is not None and flags >= HASWELL_FLAGS:
        assert probe["features"]["X86_V3"]  # AVX2 kernels stay on: the recorded level
        assert probe["blas"] and all(blas == ["Haswell", 1] for blas in probe["blas"])


@x86_only
def test_user_setting_of_the_kernel_variables_wins():
    probe = _probe(
        "module",
        NPY_DISABLE_CPU_FEATURES="X86_V3 X86_V4 AVX512_ICL AVX512_SPR",
        OPENBLAS_CORETYPE="Nehalem",
        OPENBLAS_NUM_THREADS="2",
        OMP_WAIT_POLICY="ACTIVE",
    )
    assert probe["env"] == {
        "NPY_DISABLE_CPU_FEATURES": "X86_V3 X86_V4 AVX512_ICL AVX512_SPR",
        "OPENBLAS_CORETYPE": "Nehalem",
        "OPENBLAS_NUM_THREADS": "2",
        "OMP_WAIT_POLICY": "ACTIVE",
    }
    assert not probe["features"]["X86_V3"]
    assert probe["blas"] and all(blas == ["Nehalem", 2] for blas in probe["blas"])


@x86_only
def test_test_process_runs_the_same_kernels_as_churn():
    # in-process stages are compared with `churn` subprocesses (e.g. Spark against DuckDB features)
    from numpy._core._multiarray_umath import __cpu_features__

    disabled = os.environ["NPY_DISABLE_CPU_FEATURES"].split()
    assert disabled, "NPY_DISABLE_CPU_FEATURES is set empty: this process runs numpy's widest loops"
    assert not any(__cpu_features__.get(name, False) for name in disabled)
