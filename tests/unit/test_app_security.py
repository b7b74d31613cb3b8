"""The marketing page's security decisions: where it may listen, sessions, CSRF, origin, host."""

from __future__ import annotations

import pytest

from churn.app import security
from churn.errors import ChurnError

SECRET = "a-long-enough-login-secret"


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "127.8.9.1", "localhost", "LOCALHOST", "::1", "[::1]", "app.localhost"]
)
def test_loopback_addresses_are_recognised(host):
    assert security.is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "10.0.0.5", "example.com", ""])
def test_other_addresses_are_not_loopback(host):
    assert not security.is_loopback(host)


def test_loopback_needs_nothing():
    security.check_bind("127.0.0.1", secret=None, tls=False, behind_proxy=False)


def test_a_public_address_without_a_secret_is_refused():
    with pytest.raises(
        ChurnError, match=f"without a login; set a login secret .*{security.SECRET_ENV}"
    ):
        security.check_bind("0.0.0.0", secret=None, tls=True, behind_proxy=False)


def test_a_public_address_with_a_secret_but_no_tls_is_refused():
    with pytest.raises(ChurnError, match="--tls-certfile and --tls-keyfile, or --behind-proxy"):
        security.check_bind("0.0.0.0", secret=SECRET, tls=False, behind_proxy=False)


@pytest.mark.parametrize("tls, proxy", [(True, False), (False, True), (True, True)])
def test_a_public_address_with_a_secret_and_tls_or_a_proxy_is_allowed(tls, proxy):
    security.check_bind("0.0.0.0", secret=SECRET, tls=tls, behind_proxy=proxy)


def test_a_proxy_in_front_needs_a_secret_even_on_loopback():
    with pytest.raises(ChurnError, match="--behind-proxy: a proxy makes the page reachable"):
        security.check_bind("127.0.0.1", secret=None, tls=False, behind_proxy=True)
    security.check_bind("127.0.0.1", secret=SECRET, tls=False, behind_proxy=True)


def test_a_short_secret_is_refused_even_on_loopback():
    with pytest.raises(ChurnError, match="at least 16"):
        security.check_bind("127.0.0.1", secret="short", tls=False, behind_proxy=False)


def test_sessions_are_signed_and_expire():
    key = security.new_key()
    value = security.new_session(key, now=1_000_000)
    assert security.session_valid(key, value, now=1_000_000 + 60)
    assert not security.session_valid(key, value, now=1_000_000 + security.SESSION_SECONDS + 1)
    assert not security.session_valid(security.new_key(), value, now=1_000_060)  # another process
    issued, nonce, signature = value.split(".")
    assert not security.session_valid(key, f"{int(issued) + 5}.{nonce}.{signature}", now=1_000_060)
    for broken in (None, "", "abc", "1.2", "x.y.z"):
        assert not security.session_valid(key, broken, now=1_000_000)


def test_the_secret_must_match_exactly():
    assert security.secret_matches(SECRET, SECRET)
    assert not security.secret_matches(SECRET, SECRET[:-1])
    assert not security.secret_matches(SECRET, "")


def test_the_form_token_belongs_to_the_browsers_cookie():
    key = security.new_key()
    cookie = security.new_csrf_cookie()
    token = security.csrf_token(key, cookie)
    assert security.csrf_valid(key, cookie, token)
    assert not security.csrf_valid(key, security.new_csrf_cookie(), token)
    assert not security.csrf_valid(security.new_key(), cookie, token)
    assert not security.csrf_valid(key, None, token)
    assert not security.csrf_valid(key, cookie, None)


@pytest.mark.parametrize(
    "origin, referer, host, allowed",
    [
        ("http://127.0.0.1:8050", None, "127.0.0.1:8050", True),
        (None, "http://127.0.0.1:8050/?tier=high", "127.0.0.1:8050", True),
        ("https://churn.example.com", None, "churn.example.com", True),
        ("http://evil.example", None, "127.0.0.1:8050", False),
        ("http://127.0.0.1:9999", None, "127.0.0.1:8050", False),
        ("null", None, "127.0.0.1:8050", False),
        ("null", "http://127.0.0.1:8050/", "127.0.0.1:8050", True),
        (None, None, "127.0.0.1:8050", False),
        ("file:///tmp/x.html", None, "127.0.0.1:8050", False),
        ("http://127.0.0.1:8050", None, None, False),
    ],
)
def test_posts_must_come_from_the_page_itself(origin, referer, host, allowed):
    assert security.same_origin(origin, referer, host) is allowed


@pytest.mark.parametrize(
    "host, allowed",
    [
        ("127.0.0.1:8050", True),
        ("localhost:8050", True),
        ("localhost", True),
        ("[::1]:8050", True),
        ("evil.example:8050", False),
        ("127.0.0.1.evil.example", False),
        (None, False),
    ],
)
def test_a_page_on_loopback_answers_only_to_loopback_names(host, allowed):
    assert security.host_allowed(host, loopback_only=True) is allowed


def test_a_page_on_a_public_address_answers_any_host_name():
    assert security.host_allowed("churn.example.com", loopback_only=False)
