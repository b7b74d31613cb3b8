"""`churn app` over HTTP (uvicorn on a free port): cookies, CSRF, origin, host, paths, login."""

from __future__ import annotations

import http.client
import json
import re
from urllib.parse import urlencode, urlsplit

import pytest

from churn.app import security
from churn.publish import record
from support.app_data import app_config, example_scores, publish_example, running_app

SECRET = "correct-horse-battery-staple"


class Browser:
    """A tiny HTTP client that keeps cookies and lets a test set any header."""

    def __init__(self, base: str) -> None:
        parts = urlsplit(base)
        self.base, self.host, self.port = base, parts.hostname, parts.port
        self.cookies: dict[str, str] = {}
        self.set_cookie_headers: list[str] = []

    def request(self, method: str, path: str, body: dict | list | None = None, **headers):
        connection = http.client.HTTPConnection(self.host, self.port, timeout=30)
        sent = {
            "Host": f"{self.host}:{self.port}",
            **{k.replace("_", "-"): v for k, v in headers.items()},
        }
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        data = None
        if body is not None:
            data = urlencode(body).encode()
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        connection.request(method, path, body=data, headers=sent)
        response = connection.getresponse()
        content = response.read()
        for header in response.headers.get_all("set-cookie") or []:
            self.set_cookie_headers.append(header)
            name, _, rest = header.partition("=")
            self.cookies[name] = rest.split(";", 1)[0].strip('"')
        connection.close()
        return response, content

    def token(self) -> str:
        _, page = self.request("GET", "/")
        return re.search(rb'name="csrf_token" value="([0-9a-f]+)"', page).group(1).decode()


@pytest.fixture
def published(tmp_path):
    exports = tmp_path / "exports"
    return exports, publish_example(exports)


@pytest.fixture
def page(published):
    exports, _ = published
    report = exports.parent / "retention.html"
    report.write_text("<!doctype html><title>Retention</title><p>report</p>")
    with running_app(app_config(exports, report_page=report)) as base:
        yield Browser(base)


def _download(browser, token, origin=None, **fields):
    body = {
        "tier": "high",
        "how": "size",
        "size": "4",
        "csrf_token": token,
        "format": "csv",
        **fields,
    }
    return browser.request("POST", "/download", body, Origin=origin or browser.base)


def test_the_page_sets_secure_httponly_strict_cookies_and_a_strict_csp(page):
    response, content = page.request("GET", "/?tier=high")
    assert response.status == 200 and b'id="count"' in content
    (cookie,) = page.set_cookie_headers
    assert cookie.startswith(f"{security.CSRF_COOKIE}=")
    for flag in ("Secure", "HttpOnly", "SameSite=strict"):
        assert flag.lower() in cookie.lower(), cookie
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp
    assert response.headers["x-frame-options"] == "DENY"


def test_a_download_needs_the_pages_token_and_its_origin(page, published):
    exports, manifest = published
    token = page.token()
    response, content = _download(page, token)
    assert response.status == 200, content[:400]
    name = (
        f'attachment; filename="at_risk_{manifest["as_of"]}_model-7_list-{manifest["sha256"][:12]}'
        r'_sel-[0-9a-f]{8}\.csv"'
    )
    assert re.fullmatch(name, response.headers["content-disposition"])
    assert content.count(b"\n") == 5  # header + the 4 customers asked for
    assert len(record.read_downloads(exports)) == 1

    assert _download(page, token, origin="http://evil.example")[0].status == 403
    assert _download(page, "0" * 64)[0].status == 403
    no_cookie = Browser(page.base)
    assert _download(no_cookie, token)[0].status == 403
    response, _ = page.request(
        "POST", "/download", {"csrf_token": token, "format": "csv"}
    )  # neither Origin nor Referer
    assert response.status == 403
    assert len(record.read_downloads(exports)) == 1  # refused downloads are not recorded
    assert page.request("GET", "/download")[0].status == 405  # downloads are POST only


def test_a_post_larger_than_a_form_is_refused_before_it_is_read(page):
    token = page.token()
    response, _ = page.request(
        "POST", "/download", {"csrf_token": token, "x": "y" * 70_000}, Origin=page.base
    )
    assert response.status == 413


def test_a_selection_with_unusable_values_is_not_downloaded(page, published):
    exports, _ = published
    response, content = _download(page, page.token(), tier="critical")
    assert response.status == 400
    assert b"Nothing was downloaded" in content and b"critical" in content
    assert record.read_downloads(exports) == []


def test_a_download_from_a_page_showing_an_older_list_is_refused(page, published):
    exports, _ = published
    response, content = _download(page, page.token(), list="f" * 64)
    assert response.status == 400 and b"A newer list was published" in content
    assert record.read_downloads(exports) == []


def test_filter_values_are_shown_as_text_never_run(page):
    attack = "<script>alert(1)</script>"
    response, content = page.request("GET", "/?" + urlencode({"customer": attack, "tier": attack}))
    assert response.status == 200
    assert attack.encode() not in content
    assert b"&lt;script&gt;alert(1)&lt;/script&gt;" in content


def test_only_loopback_host_names_are_answered(page):
    assert page.request("GET", "/", Host="evil.example")[0].status == 400
    assert page.request("GET", "/", Host=f"localhost:{page.port}")[0].status == 200


@pytest.mark.parametrize(
    "path",
    [
        "/static/../../../../etc/passwd",
        "/static/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/static/..%2f..%2f..%2fpublish%2frecord.py",
        "/exports/LATEST.json",
        "/report/../../etc/passwd",
    ],
)
def test_no_request_reads_a_file_outside_what_the_page_serves(page, path):
    response, content = page.request("GET", path)
    assert response.status == 404, (path, content[:200])
    assert b"root:" not in content and b"def publish_lists" not in content


def test_a_page_that_does_not_exist_is_an_html_page_for_a_person(page):
    response, content = page.request("GET", "/no-such-page", Accept="text/html")
    assert response.status == 404
    assert response.headers["content-type"].startswith("text/html")
    assert b"There is no such page here" in content and b'href="/"' in content
    assert b'"detail"' not in content  # not FastAPI's JSON
    response, content = page.request("GET", "/download")
    assert response.status == 405 and response.headers["allow"] == "POST"
    assert response.headers["content-type"].startswith("text/html")


def test_amounts_carry_the_configured_currency(published):
    exports, _ = published
    with running_app(app_config(exports, currency="EUR")) as base:
        _, content = Browser(base).request("GET", "/?how=size&size=3&cost=4")
    page = content.decode()
    value = re.search(r'id="value-at-risk">([^<]+)<', page).group(1)
    assert re.fullmatch(r"[0-9,]+ EUR", value), value
    assert re.search(r'id="plan-cost">12 EUR<', page)
    for customers in ("plan-churners", "plan-saves"):  # numbers of customers, not money
        assert re.search(rf'id="{customers}">[0-9,]+<', page), customers
    assert "Cost per contact" in page and "(EUR)" in page


def test_the_retention_report_is_served_read_only_with_its_own_policy(page):
    response, content = page.request("GET", "/report")
    assert response.status == 200 and b"<p>report</p>" in content
    assert response.headers["content-security-policy"].startswith("default-src 'none'")
    assert page.request("POST", "/report", {}, Origin=page.base)[0].status == 405


def test_with_a_login_secret_every_page_needs_a_session(published):
    exports, _ = published
    with running_app(app_config(exports, secret=SECRET)) as base:
        browser = Browser(base)
        response, _ = browser.request("GET", "/")
        assert response.status == 303 and response.headers["location"] == "/login"
        assert browser.request("GET", "/history")[0].status == 303
        response, _ = browser.request("POST", "/login", {"secret": "wrong"}, Origin=base)
        assert response.status == 401 and security.SESSION_COOKIE not in browser.cookies
        response, _ = browser.request("POST", "/login", {"secret": SECRET}, Origin=base)
        assert response.status == 303
        session = next(
            h for h in browser.set_cookie_headers if h.startswith(security.SESSION_COOKIE)
        )
        for flag in ("secure", "httponly", "samesite=strict"):
            assert flag in session.lower(), session
        assert browser.request("GET", "/")[0].status == 200
        forged = Browser(base)
        forged.cookies[security.SESSION_COOKIE] = "1.2.3"
        assert forged.request("GET", "/")[0].status == 303


def test_before_any_publication_the_page_says_what_to_run(tmp_path):
    with running_app(app_config(tmp_path / "exports")) as base:
        response, content = Browser(base).request("GET", "/")
    assert response.status == 503 and b"no list has been published yet" in content
    assert b"make run" in content


def test_history_lists_every_published_list(page, published):
    _, manifest = published
    response, content = page.request("GET", "/history")
    assert response.status == 200
    assert f'id="list-{manifest["as_of"]}"'.encode() in content
    assert json.dumps(manifest["as_of"]).strip('"').encode() in content


@pytest.mark.parametrize(
    "environment, options, message",
    [
        (
            {},
            ["--host", "0.0.0.0"],
            "set a login secret in the environment variable CHURN_APP_SECRET",
        ),
        ({security.SECRET_ENV: SECRET}, ["--host", "0.0.0.0"], "or --behind-proxy"),
    ],
)
def test_churn_app_refuses_to_listen_where_it_should_not(tmp_path, environment, options, message):
    import os
    import subprocess
    import sys
    from pathlib import Path

    churn = Path(sys.executable).parent / "churn"
    env = {k: v for k, v in os.environ.items() if k != security.SECRET_ENV}
    result = subprocess.run(
        [str(churn), "app", *options, "--exports", str(tmp_path / "exports")],
        capture_output=True,
        text=True,
        env={**env, **environment},
        timeout=120,
    )
    assert result.returncode == 1
    assert message in result.stderr


def test_behind_a_proxy_the_public_host_and_origin_are_checked(published):
    exports, _ = published
    config = app_config(exports, secret=SECRET, loopback_only=False, behind_proxy=True)
    with running_app(config) as base:
        browser = Browser(base)
        public = {"X-Forwarded-Host": "churn.example.com", "X-Forwarded-Proto": "https"}
        response, _ = browser.request(
            "POST", "/login", {"secret": SECRET}, Origin="https://churn.example.com", **public
        )
        assert response.status == 303 and security.SESSION_COOKIE in browser.cookies
        response, _ = browser.request(
            "POST", "/logout", {}, Origin="https://evil.example", **public
        )
        assert response.status == 403


def _two_published_lists(exports):
    """Publish two lists (the older one matured) with the record; return them, their scored
    customers by date and transactions in which every other customer buys again."""
    import datetime as dt

    import pandas as pd

    from support.publish_checks import LATER
    from support.score_data import AS_OF

    old = publish_example(exports, seed=1)
    new = record.publish_lists(example_scores(400, seed=2, as_of=LATER), exports).manifest
    published = {
        dt.date.fromisoformat(m["as_of"]): (90, record.read_scored(exports, m)) for m in (old, new)
    }
    customers = published[AS_OF][1]["customer_id"].tolist()
    buyers = customers[::2]  # every other customer buys again within the horizon
    transactions = pd.DataFrame(
        {
            "customer_id": pd.array([*buyers, customers[1]], dtype="string"),
            "date": [AS_OF + dt.timedelta(days=40)] * len(buyers)
            + [AS_OF + dt.timedelta(days=100)],
            "amount": 20.0,
        }
    )
    return old, new, published, transactions


def test_history_shows_last_quarters_outcome_and_when_the_newest_list_matures(tmp_path):
    """Two lists published by the record, judged by the real backtest: the older one matured."""
    import datetime as dt

    from churn.backtest import run_backtest
    from churn.config import BacktestParams
    from churn.files import write_json
    from support.publish_checks import LATER
    from support.score_data import AS_OF

    exports = tmp_path / "exports"
    _, _, published, transactions = _two_published_lists(exports)
    report = run_backtest(published, transactions, BacktestParams())
    write_json(report, tmp_path / "backtest.json")
    with running_app(app_config(exports, backtest=tmp_path / "backtest.json")) as base:
        response, content = Browser(base).request("GET", "/history")
    assert response.status == 200
    page = content.decode()
    older = page[page.index(f'id="list-{AS_OF}"') :]
    newer = page[page.index(f'id="list-{LATER}"') : page.index(f'id="list-{AS_OF}"')]
    flagged = report["runs"][0]["flagged_vs_rest"]["flagged"]
    assert (
        f"<strong>{100 * flagged['churn_rate']:.1f}%</strong> of the customers on the list left"
        in older
    )
    assert "No campaign recorded for this list" in older
    assert f"result is known on <strong>{LATER + dt.timedelta(days=90)}</strong>" in newer
    assert '<span class="badge">current</span>' in newer


def test_history_shows_the_campaign_ledgers_result_of_last_quarters_list(tmp_path):
    """The same two lists, a recorded download of the older one, the real backtest and the real
    campaign ledger written to their files: the page reads both and shows each list's result."""
    import datetime as dt

    from churn.backtest import run_backtest
    from churn.config import BacktestParams
    from churn.files import write_json
    from churn.ledger import PublishedList, build_ledger
    from support.publish_checks import LATER
    from support.score_data import AS_OF

    exports = tmp_path / "exports"
    old, new, published, transactions = _two_published_lists(exports)
    treated = record.read_list(exports, old)["customer_id"].tolist()
    control = record.read_list(exports, old, "control")["customer_id"].tolist()
    entry = {
        "as_of": old["as_of"],
        "list_sha256": old["sha256"],
        "model_version": old["model_version"],
        "filters": {},
        "format": "csv",
        "file_name": "last-quarter.csv",
        "file_sha256": "0" * 64,
        "rows": len(treated),
        "control_rows": len(control),
    }
    event = record.record_download(
        exports, entry, treated, control, now=dt.datetime(2026, 1, 5, 9, tzinfo=dt.UTC)
    )
    lists = [
        PublishedList(m, 90, record.read_scored(exports, m), downloads)
        for m, downloads in (
            (old, [record.read_download_record(exports, event)]),
            (new, []),
        )
    ]
    ledger = build_ledger(lists, transactions, 0.95)
    write_json(ledger, tmp_path / "reports" / "ledger.json")
    write_json(run_backtest(published, transactions, BacktestParams()), tmp_path / "backtest.json")
    config = app_config(
        exports, backtest=tmp_path / "backtest.json", ledger=tmp_path / "reports" / "ledger.json"
    )
    with running_app(config) as base:
        response, content = Browser(base).request("GET", "/history")
    assert response.status == 200
    page = content.decode()
    older = page[page.index(f'id="list-{AS_OF}"') :]
    newer = page[page.index(f'id="list-{LATER}"') : page.index(f'id="list-{AS_OF}"')]
    overall = ledger["lists"][0]["slices"][0]
    assert ledger["lists"][0]["status"] in ("inconclusive", "separated")
    assert "of the customers on the list left" in older  # the backtest, next to the ledger
    assert (
        f"<strong>{100 * overall['treated_retention']:.1f}%</strong> of the "
        f"{overall['treated_customers']:,} customers to contact stayed" in older
    )
    assert (
        f"{100 * overall['control_retention']:.1f}% of the {overall['control_customers']:,} "
        "in the control group" in older
    )
    assert f"95% interval: {100 * overall['ci_low']:+.1f} points to" in older
    assert "Campaign result by suggested action, risk and download" in older
    assert "Download of 2026-01-05 09:00 UTC, last-quarter.csv" in older
    assert "No download or contact log shows a campaign" not in older  # the download says so
    assert "Collecting results" in newer
    assert f"until <strong>{LATER + dt.timedelta(days=90)}</strong>" in newer


def test_a_report_that_cannot_be_read_is_named_and_the_lists_still_shown(published, tmp_path):
    exports, manifest = published
    broken = tmp_path / "ledger.json"
    broken.write_text('{"lists": [')
    with running_app(app_config(exports, ledger=broken)) as base:
        response, content = Browser(base).request("GET", "/history")
    assert response.status == 200
    assert b"ledger.json: not valid JSON" in content and b"churn ledger" in content
    assert f'id="list-{manifest["as_of"]}"'.encode() in content


def test_the_page_says_which_policy_chose_the_list_and_counts_its_money(tmp_path):
    from churn.publish.record import publish_lists
    from support.app_data import example_scores

    scores = example_scores(400, seed=1)
    # an uplift list: each flagged customer's estimate (one customer: none, as if explored)
    flagged = scores["at_risk"].to_numpy(dtype=bool)
    scores["uplift"] = [0.9 if f else float("nan") for f in flagged]
    first = scores.loc[flagged].sort_values("priority").index[0]
    scores.loc[first, "uplift"] = float("nan")
    reason = "the uplift policy keeps more margin than risk x value (test)"
    shown = {}
    for policy in ("uplift", "risk_x_value"):
        exports = tmp_path / policy
        publish_lists(scores, exports, about={"targeting": {"policy": policy, "reason": reason}})
        with running_app(app_config(exports)) as base:
            _, content = Browser(base).request("GET", "/?how=size&size=3&cost=0")
        shown[policy] = page = content.decode()
        saves = float(re.search(r'id="plan-saves">([0-9.,]+)<', page).group(1).replace(",", ""))
        shown[policy + "-saves"] = saves
    assert "chosen by the <strong>uplift policy</strong>" in shown["uplift"]
    assert f"Why: {reason}." in shown["uplift"]
    assert "adds up the uplift model's estimates" in shown["uplift"]
    assert "chosen by <strong>risk × value</strong>" in shown["risk_x_value"]
    # the first three: no estimate, 0.9, 0.9 -> 1.8 kept, shown as 2; risk x save rate keeps
    # well under one of three customers
    assert shown["uplift-saves"] == 2.0 and shown["risk_x_value-saves"] == 0.0
