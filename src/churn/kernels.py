"""Pins the numerical kernels (numpy's SIMD dispatch, OpenBLAS's core type and threads) so the same
inputs give the same bytes on any x86-64 CPU with AVX2, with or without AVX-512, and how OpenMP's
idle threads wait.

numpy picks its exp/log/logaddexp loops and OpenBLAS its BLAS kernels from the CPU at import time;
AVX-512 kernels round differently in the last bits, the BG/NBD optimiser amplifies that, and every
stage after `features` moves. The pin must be in the environment before numpy (or any BLAS user) is
imported, and the OpenMP runtime reads its variables once when it loads, so `churn.__main__.main`
applies it first, and child processes (DVC, Spark's Python workers, `retrain`) inherit it. A value
the user has already set is kept.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Mapping, MutableMapping
from pathlib import Path

# numpy >= 2.4 groups its dispatched x86 targets as X86_V3 (AVX2, FMA3), X86_V4 (AVX-512 SKX) and
# the later AVX-512 sets; the baseline (X86_V2) cannot be disabled. Disabling a target the CPU
# lacks is silent; names numpy does not know only raise an ImportWarning (hidden by default).
NUMPY_ABOVE_AVX2 = "X86_V4 AVX512_ICL AVX512_SPR"
# OpenBLAS's AVX2 kernels: what a CPU without AVX-512 (the machine dvc.lock was recorded on) picks.
OPENBLAS_AVX2_CORE = "Haswell"
# CPU flags (Linux /proc/cpuinfo names) OpenBLAS's Haswell kernels execute; forcing a core type
# the CPU cannot run would crash with an illegal instruction.
HASWELL_FLAGS = frozenset({"avx2", "fma"})
# A CPU without them (one that can still run numpy's X86_V2 baseline) gets OpenBLAS's SSE kernels,
# so all such CPUs agree with each other (not with dvc.lock: numpy then runs its baseline loops).
PRE_AVX2_CORE = "Nehalem"
NEHALEM_FLAGS = frozenset({"ssse3", "sse4_1", "sse4_2"})
X86_64 = frozenset({"x86_64", "amd64"})
# LightGBM's OpenMP threads (train.num_threads) sleep when idle instead of spinning, on every
# machine: on a shared one spinning threads steal the cores the other thread waits for (2 threads
# ran 6x slower than 1 beside other jobs; passive: as fast as 1 there, faster on an idle machine;
# benchmarks/results/model_stages_10M.md). It changes speed only, never the trees.
OPENMP_WAIT = {"OMP_WAIT_POLICY": "PASSIVE"}


def read_cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str] | None:
    """Return the CPU's feature flags from /proc/cpuinfo, or None where it cannot be read."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return frozenset(value.split())
    return None


def kernel_env(machine: str, cpu_flags: frozenset[str] | None) -> dict[str, str]:
    """Return the environment variables that pin the kernels on this machine (off x86-64: only
    OpenMP's wait policy)."""
    if machine.lower() not in X86_64:
        return dict(OPENMP_WAIT)
    pinned = {
        **OPENMP_WAIT,
        "NPY_DISABLE_CPU_FEATURES": NUMPY_ABOVE_AVX2,
        # one BLAS thread: the split of a reduction across threads must not depend on the core count
        "OPENBLAS_NUM_THREADS": "1",
    }
    if cpu_flags is not None and cpu_flags >= HASWELL_FLAGS:
        pinned["OPENBLAS_CORETYPE"] = OPENBLAS_AVX2_CORE
    elif cpu_flags is not None and cpu_flags >= NEHALEM_FLAGS:
        pinned["OPENBLAS_CORETYPE"] = PRE_AVX2_CORE
    return pinned


def pin_kernels(environ: MutableMapping[str, str] | None = None) -> Mapping[str, str]:
    """Set the pinning variables that are not already set in `environ` (default: os.environ);
    return the ones set. Effective only before numpy is first imported in this process."""
    environ = os.environ if environ is None else environ
    added = {}
    for name, value in kernel_env(platform.machine(), read_cpu_flags()).items():
        if name not in environ:
            environ[name] = value
            added[name] = value
    return added
