"""External services some tests need (PostgreSQL, Java for Spark, Chromium): skip locally, fail in CI."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable

import pytest

# the database the PostgreSQL tests use (the SQL export may point elsewhere through its variable)
POSTGRES_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=test"
CHROMIUM = "/usr/bin/chromium"
# CI sets this: a test whose service is missing fails there instead of skipping silently.
REQUIRE_ENV = "CHURN_REQUIRE_SERVICES"


def _postgres() -> str | None:
    import psycopg

    try:
        psycopg.connect(POSTGRES_DSN, connect_timeout=3).close()
    except Exception as error:  # any failure to connect means: no server here
        return f"PostgreSQL at 127.0.0.1:5432 (database 'test') is not reachable: {error}"
    return None


def _java() -> str | None:
    java = shutil.which("java")
    if java is None:
        return "Spark local mode needs a Java runtime (no `java` on PATH)"
    if subprocess.run([java, "-version"], capture_output=True, timeout=60).returncode != 0:
        return f"{java} -version failed"
    return None


def _chromium() -> str | None:
    if not os.access(CHROMIUM, os.X_OK):
        return f"{CHROMIUM} is not installed (.ci/run installs it with apt)"
    return None


CHECKS: dict[str, Callable[[], str | None]] = {
    "postgres": _postgres,
    "java": _java,
    "chromium": _chromium,
}


def require(service: str) -> None:
    """Return when `service` is usable; else skip the test, or fail it when CI requires services."""
    reason = CHECKS[service]()
    if reason is None:
        return
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{reason}; {REQUIRE_ENV}=1 says this environment must provide it")
    pytest.skip(reason)
