"""A test needing a missing service skips on a developer's machine and fails in CI
(CHURN_REQUIRE_SERVICES=1), so CI never passes by skipping."""

from __future__ import annotations

import pytest

from support import services


@pytest.fixture
def missing_service(monkeypatch):
    monkeypatch.setitem(services.CHECKS, "fake", lambda: "fake-db is not running")
    return "fake"


def test_a_missing_service_fails_the_test_when_ci_requires_services(missing_service, monkeypatch):
    monkeypatch.setenv(services.REQUIRE_ENV, "1")
    with pytest.raises(
        pytest.fail.Exception, match=r"fake-db is not running; CHURN_REQUIRE_SERVICES=1"
    ):
        services.require(missing_service)


@pytest.mark.parametrize("value", [None, "0", ""])
def test_a_missing_service_skips_the_test_elsewhere(missing_service, monkeypatch, value):
    if value is None:
        monkeypatch.delenv(services.REQUIRE_ENV, raising=False)
    else:
        monkeypatch.setenv(services.REQUIRE_ENV, value)
    with pytest.raises(pytest.skip.Exception, match="fake-db is not running"):
        services.require(missing_service)


def test_an_available_service_neither_skips_nor_fails(monkeypatch):
    monkeypatch.setitem(services.CHECKS, "fake", lambda: None)
    monkeypatch.setenv(services.REQUIRE_ENV, "1")
    assert services.require("fake") is None
