"""The page's security decisions, as pure functions: where it may listen, who may use it, and
which requests may download.

- It listens on loopback by default; any other address needs a login secret from the environment
  (never params.yaml) and TLS, either its own or a proxy's (`--behind-proxy`).
- Signed tokens (HMAC-SHA256) for the login session and the download form (CSRF); the cookies
  carrying them are Secure, HttpOnly and SameSite=Strict.
- A download is a POST whose Origin (or Referer) is the page itself and whose form token matches
  the browser's cookie; a page served on loopback answers only to loopback host names, so a
  rebinding DNS name cannot reach it.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import time
from urllib.parse import urlsplit

from churn.errors import ChurnError

SECRET_ENV = "CHURN_APP_SECRET"  # the login secret; set in the environment, never in params.yaml
MIN_SECRET_CHARS = 16
SESSION_COOKIE = "churn_session"
CSRF_COOKIE = "churn_csrf"
CSRF_FIELD = "csrf_token"
SESSION_SECONDS = 12 * 3600
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def is_loopback(host: str) -> bool:
    """Return True for names and addresses that only this machine can reach."""
    host = host.strip().strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # another name: it may resolve to any interface


def check_bind(host: str, *, secret: str | None, tls: bool, behind_proxy: bool) -> None:
    """Raise ChurnError unless the page may listen on `host` with this configuration."""
    if secret is not None and len(secret) < MIN_SECRET_CHARS:
        raise ChurnError(
            f"{SECRET_ENV}: the login secret is {len(secret)} characters; give at least "
            f"{MIN_SECRET_CHARS} (e.g. `python -c 'import secrets; print(secrets.token_urlsafe())'`)"
        )
    if behind_proxy and secret is None:
        raise ChurnError(
            "--behind-proxy: a proxy makes the page reachable from other machines; set a login "
            f"secret in the environment variable {SECRET_ENV} (never in params.yaml)"
        )
    if is_loopback(host):
        return
    if secret is None:
        raise ChurnError(
            f"--host {host}: the page would be reachable from other machines without a login; "
            f"set a login secret in the environment variable {SECRET_ENV} (never in params.yaml), "
            "or keep the default --host 127.0.0.1"
        )
    if not (tls or behind_proxy):
        raise ChurnError(
            f"--host {host}: the login and the lists would cross the network unencrypted; give "
            "--tls-certfile and --tls-keyfile, or --behind-proxy when a proxy terminates TLS"
        )


def new_key() -> bytes:
    """Return a fresh signing key (per process: sessions and forms end with it)."""
    return secrets.token_bytes(32)


def sign(key: bytes, message: str) -> str:
    """Return the HMAC-SHA256 of `message` under `key`, as hex."""
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).hexdigest()


def secret_matches(secret: str, given: str) -> bool:
    """Return True when the typed secret is the configured one (constant-time comparison)."""
    return hmac.compare_digest(
        hashlib.sha256(secret.encode("utf-8")).digest(),
        hashlib.sha256(given.encode("utf-8")).digest(),
    )


def new_session(key: bytes, now: float | None = None) -> str:
    """Return a session cookie value: issue time and its signature."""
    issued = str(int(now if now is not None else time.time()))
    nonce = secrets.token_hex(8)
    return f"{issued}.{nonce}.{sign(key, f'session:{issued}.{nonce}')}"


def session_valid(
    key: bytes, value: str | None, now: float | None = None, max_age: int = SESSION_SECONDS
) -> bool:
    """Return True for a session cookie this process signed less than `max_age` seconds ago."""
    if not value or value.count(".") != 2:
        return False
    issued, nonce, signature = value.split(".")
    if not issued.isdigit() or not hmac.compare_digest(
        sign(key, f"session:{issued}.{nonce}"), signature
    ):
        return False
    age = (now if now is not None else time.time()) - int(issued)
    return 0 <= age <= max_age


def new_csrf_cookie() -> str:
    """Return a random value for the browser's CSRF cookie."""
    return secrets.token_urlsafe(24)


def csrf_token(key: bytes, cookie: str) -> str:
    """Return the form token that goes with a CSRF cookie (the page puts it in its forms)."""
    return sign(key, f"csrf:{cookie}")


def csrf_valid(key: bytes, cookie: str | None, submitted: str | None) -> bool:
    """Return True when the submitted form token belongs to the browser's CSRF cookie."""
    if not cookie or not submitted:
        return False
    return hmac.compare_digest(csrf_token(key, cookie), submitted)


def _netloc(url: str) -> str | None:
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return parts.netloc.lower()


def same_origin(origin: str | None, referer: str | None, host: str | None) -> bool:
    """Return True when a POST comes from a page of this site (Origin, else Referer, is `host`).

    A request with neither header is refused: browsers send Origin on every form POST.
    """
    if not host:
        return False
    source = origin if origin and origin != "null" else referer
    if not source:
        return False
    return _netloc(source) == host.strip().lower()


def host_allowed(host: str | None, loopback_only: bool) -> bool:
    """Return True when the Host header may be answered: on loopback, loopback names only."""
    if not host:
        return False
    if not loopback_only:
        return True
    name = host.strip().lower()
    if name.startswith("["):  # [::1]:8050
        name = name[1 : name.find("]")] if "]" in name else name
    else:
        name = name.rsplit(":", 1)[0] if name.count(":") == 1 else name
    return name in LOOPBACK_NAMES or name.endswith(".localhost")
