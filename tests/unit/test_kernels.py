"""The kernel pin: which variables a machine gets, and a user's own setting wins."""

from __future__ import annotations

import platform

import pytest

from churn.kernels import (
    NUMPY_ABOVE_AVX2,
    OPENBLAS_AVX2_CORE,
    X86_64,
    kernel_env,
    pin_kernels,
    read_cpu_flags,
)

AVX2_CPU = frozenset({"ssse3", "sse4_1", "sse4_2", "avx", "avx2", "fma", "bmi2"})
AVX512_CPU = AVX2_CPU | {"avx512f", "avx512bw", "avx512vl"}
PRE_AVX2_CPU = frozenset({"ssse3", "sse4_1", "sse4_2", "avx"})


def test_x86_with_avx2_pins_numpy_and_openblas_to_the_avx2_kernels():
    for flags in (AVX2_CPU, AVX512_CPU):
        assert kernel_env("x86_64", flags) == {
            "OMP_WAIT_POLICY": "PASSIVE",
            "NPY_DISABLE_CPU_FEATURES": NUMPY_ABOVE_AVX2,
            "OPENBLAS_NUM_THREADS": "1",
            "OPENBLAS_CORETYPE": OPENBLAS_AVX2_CORE,
        }
    assert kernel_env("AMD64", AVX2_CPU)["OPENBLAS_CORETYPE"] == "Haswell"


def test_cpu_without_avx2_gets_openblas_sse_kernels():
    # forcing Haswell kernels on a CPU without AVX2/FMA would die of an illegal instruction
    for flags in (PRE_AVX2_CPU, PRE_AVX2_CPU | {"avx2"}):
        pinned = kernel_env("x86_64", flags)
        assert pinned["OPENBLAS_CORETYPE"] == "Nehalem"
        assert pinned["NPY_DISABLE_CPU_FEATURES"] == NUMPY_ABOVE_AVX2


def test_unknown_cpu_flags_leave_the_openblas_core_to_openblas():
    for flags in (None, frozenset({"fpu", "sse2"})):
        pinned = kernel_env("x86_64", flags)
        assert "OPENBLAS_CORETYPE" not in pinned
        assert pinned["NPY_DISABLE_CPU_FEATURES"] == NUMPY_ABOVE_AVX2


def test_non_x86_machines_get_only_the_openmp_wait_policy():
    assert kernel_env("aarch64", None) == {"OMP_WAIT_POLICY": "PASSIVE"}
    assert kernel_env("arm64", frozenset({"asimd"})) == {"OMP_WAIT_POLICY": "PASSIVE"}


def test_numpy_pin_never_names_a_baseline_feature():
    # numpy refuses to import when asked to disable a baseline feature (X86_V2 for its wheels)
    assert "X86_V2" not in NUMPY_ABOVE_AVX2.split()
    assert "X86_V3" not in NUMPY_ABOVE_AVX2.split()  # AVX2 stays: the level dvc.lock is recorded at


def test_pin_keeps_what_the_user_set(monkeypatch):
    monkeypatch.setattr("churn.kernels.platform.machine", lambda: "x86_64")
    monkeypatch.setattr("churn.kernels.read_cpu_flags", lambda: AVX512_CPU)
    environ = {
        "NPY_DISABLE_CPU_FEATURES": "X86_V3 X86_V4",
        "OPENBLAS_NUM_THREADS": "4",
        "OMP_WAIT_POLICY": "ACTIVE",
    }
    added = pin_kernels(environ)
    assert environ == {
        "NPY_DISABLE_CPU_FEATURES": "X86_V3 X86_V4",
        "OPENBLAS_NUM_THREADS": "4",
        "OMP_WAIT_POLICY": "ACTIVE",
        "OPENBLAS_CORETYPE": "Haswell",
    }
    assert added == {"OPENBLAS_CORETYPE": "Haswell"}


def test_pin_sets_the_openmp_wait_policy_the_user_left_unset(monkeypatch):
    monkeypatch.setattr("churn.kernels.platform.machine", lambda: "aarch64")
    environ = {"OPENBLAS_NUM_THREADS": "4"}
    assert pin_kernels(environ) == {"OMP_WAIT_POLICY": "PASSIVE"}
    assert environ == {"OPENBLAS_NUM_THREADS": "4", "OMP_WAIT_POLICY": "PASSIVE"}


def test_cpu_flags_read_from_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(
        "processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu sse4_2 avx2 fma\n\n"
        "processor\t: 1\nflags\t\t: fpu sse4_2 avx2 fma\n"
    )
    assert read_cpu_flags(cpuinfo) == frozenset({"fpu", "sse4_2", "avx2", "fma"})
    (tmp_path / "empty").write_text("processor\t: 0\n")
    assert read_cpu_flags(tmp_path / "empty") is None
    assert read_cpu_flags(tmp_path / "missing") is None


@pytest.mark.skipif(platform.machine().lower() not in X86_64, reason="numpy's x86 targets")
def test_pin_names_every_numpy_target_above_avx2():
    # a numpy upgrade that adds or renames a dispatched target must update the pin, not silently
    # leave a wider kernel on (numpy only hides an ImportWarning for names it does not know)
    from numpy._core._multiarray_umath import __cpu_dispatch__

    assert set(NUMPY_ABOVE_AVX2.split()) == set(__cpu_dispatch__) - {"X86_V3"}
