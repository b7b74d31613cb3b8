"""The HTTP layer of `churn app`: FastAPI routes, Jinja2 pages, uvicorn — nothing else here
decides anything (selection, what-if, history and security live in their own pure modules).

Pages are rendered on the server (no client-side framework); the one script only submits the
filter form when a box is ticked. Every response carries a Content-Security-Policy that allows
nothing from elsewhere. The retention report is served read-only from its fixed path; no request
can name a file.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import jinja2
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.staticfiles import StaticFiles

from churn.app import security
from churn.app.formatting import money_text, percent_text, points_text, reason_list
from churn.app.history import build_history
from churn.app.selection import (
    ACTION,
    CHANCE_MAX,
    CHANCE_MIN,
    REASON,
    SEARCH,
    SEGMENT_PREFIX,
    TIER,
    VALUE_MAX,
    VALUE_MIN,
    column_label,
    group_query,
    reason_label,
    tier_label,
)
from churn.app.service import BUDGET, COST, HOW, PAGE, SIZE, build_download, build_view
from churn.app.store import ListStore, read_backtest, read_ledger
from churn.config import AppParams
from churn.errors import ChurnError
from churn.logs import get_logger
from churn.publish import record

log = get_logger("app")
HERE = Path(__file__).resolve().parent
MAX_FORM_BYTES = 64 * 1024
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
# the retention report is one self-contained file: inline styles and data: images, no scripts
REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'"
DEFAULT_CURRENCY = AppParams().currency
# what a browser sees for a page that does not exist or a method a page does not take
HTTP_PROBLEMS = {
    404: "There is no such page here. The list is at the start page; earlier lists are under "
    "“Earlier lists and results”.",
    405: "This page cannot be used that way; go back to the list and use its buttons.",
}


@dataclass(frozen=True)
class AppConfig:
    """Everything the page needs, fixed when it starts (the CLI fills it from params and dvc.yaml)."""

    exports: Path
    suppression: Path | None
    backtest: Path | None
    report_page: Path | None
    contact_cost: float
    save_rates: dict[str, float]
    save_rate_measured: bool
    horizon_days: int
    expected_value_days: int
    ledger: Path | None = None  # reports/ledger.json (`churn ledger`); absent: no campaign results
    currency: str = DEFAULT_CURRENCY  # app.currency: shown with every amount
    secret: str | None = None
    loopback_only: bool = True
    behind_proxy: bool = False
    key: bytes = field(default_factory=security.new_key, repr=False)


def _templates(currency: str = DEFAULT_CURRENCY) -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,  # every value is escaped: list text can never become markup or script
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters.update(
        count=lambda v: f"{int(v):,}",
        money=lambda v: money_text(v, currency, 2),
        money0=lambda v: money_text(v, currency, 0),
        number0=lambda v: money_text(v, "", 0),
        pct=percent_text,
        points=points_text,
        reasons=reason_list,
        tier=lambda v: tier_label(str(v)),
        reason=reason_label,
        column=column_label,
        blank=lambda v: "" if v is None or (isinstance(v, float) and math.isnan(v)) else v,
        qs=lambda pairs: urlencode(list(pairs)),
    )
    return environment


def _small_body(content_length: str | None) -> bool:
    """Return True when a POST declares a body small enough to read (a form, not an upload)."""
    return (
        content_length is not None
        and content_length.isdigit()
        and (int(content_length) <= MAX_FORM_BYTES)
    )


def _form_pairs(body: bytes) -> list[tuple[str, str]]:
    """Return the fields of a urlencoded form body (bounded in size and number of fields)."""
    if len(body) > MAX_FORM_BYTES:
        raise ChurnError("the form is too large")
    try:
        return parse_qsl(
            body.decode("utf-8"), keep_blank_values=True, strict_parsing=False, max_num_fields=500
        )
    except (UnicodeDecodeError, ValueError):
        raise ChurnError("the form could not be read") from None


def create_app(config: AppConfig) -> FastAPI:
    """Return the page's FastAPI application over the published lists in `config.exports`."""
    store = ListStore(config.exports, config.suppression)

    def warm() -> None:
        try:
            store.latest()  # load the list while the first visitor's browser is still opening
        except ChurnError as error:
            log.warning("%s", error)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        threading.Thread(target=warm, name="churn-app-warm", daemon=True).start()
        yield

    api = FastAPI(
        title="churn: at-risk customers",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
    )
    api.state.store = store
    templates = _templates(config.currency)
    secure_cookie = {"secure": True, "httponly": True, "samesite": "strict", "path": "/"}
    api.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    def host_of(request: Request) -> str | None:
        if config.behind_proxy and request.headers.get("x-forwarded-host"):
            return request.headers["x-forwarded-host"].split(",")[0].strip()
        return request.headers.get("host")

    def render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        cookie = request.cookies.get(security.CSRF_COOKIE) or security.new_csrf_cookie()
        html = templates.get_template(name).render(
            csrf_field=security.CSRF_FIELD,
            csrf_token=security.csrf_token(config.key, cookie),
            login=config.secret is not None,
            report=config.report_page is not None and config.report_page.is_file(),
            **context,
        )
        response = HTMLResponse(html, status_code=status)
        if request.cookies.get(security.CSRF_COOKIE) != cookie:
            response.set_cookie(security.CSRF_COOKIE, cookie, **secure_cookie)
        return response

    def problem(request: Request, message: str, status: int = 400) -> HTMLResponse:
        return render(request, "problem.html", status=status, message=message)

    @api.exception_handler(StarletteHTTPException)
    async def http_problem(request: Request, error: StarletteHTTPException) -> Response:
        # a page that does not exist is a page for a person, not FastAPI's JSON
        message = HTTP_PROBLEMS.get(error.status_code, str(error.detail))
        response = problem(request, message, status=error.status_code)
        for name, value in (error.headers or {}).items():  # e.g. Allow on a 405
            response.headers[name] = value
        return response

    @api.middleware("http")
    async def guard(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if not security.host_allowed(host_of(request), config.loopback_only):
            response: Response = Response("unknown host", status_code=400)
        elif (
            config.secret is not None
            and request.url.path not in ("/login",)
            and not request.url.path.startswith("/static/")
            and not security.session_valid(config.key, request.cookies.get(security.SESSION_COOKIE))
        ):
            response = RedirectResponse("/login", status_code=303)
        elif request.method == "POST" and not _small_body(request.headers.get("content-length")):
            response = Response("the form is too large", status_code=413)
        elif request.method == "POST" and not security.same_origin(
            request.headers.get("origin"), request.headers.get("referer"), host_of(request)
        ):
            response = Response("cross-site request refused", status_code=403)
        else:
            response = await call_next(request)
        response.headers["Content-Security-Policy"] = response.headers.get(
            "Content-Security-Policy", PAGE_CSP
        )
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    @api.get("/login", response_class=HTMLResponse)
    def login_form(request: Request) -> Response:
        if config.secret is None:
            return RedirectResponse("/", status_code=303)
        return render(request, "login.html", failed=False)

    @api.post("/login")
    async def login(request: Request) -> Response:
        if config.secret is None:
            return RedirectResponse("/", status_code=303)
        fields = dict(_form_pairs(await request.body()))
        if not security.secret_matches(config.secret, fields.get("secret", "")):
            return render(request, "login.html", status=401, failed=True)
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(
            security.SESSION_COOKIE,
            security.new_session(config.key),
            max_age=security.SESSION_SECONDS,
            **secure_cookie,
        )
        return response

    @api.post("/logout")
    async def logout(request: Request) -> Response:
        response = RedirectResponse("/login" if config.secret else "/", status_code=303)
        response.delete_cookie(security.SESSION_COOKIE, path="/")
        return response

    def view_of(pairs: list[tuple[str, str]]):  # noqa: ANN202 - service.ListView
        loaded = store.latest()
        suppression = store.suppression()
        return build_view(
            loaded,
            group_query(pairs),
            suppression,
            store.suppressed(loaded, suppression),
            config.contact_cost,
            config.save_rates,
        )

    @api.get("/", response_class=HTMLResponse)
    def list_page(request: Request) -> Response:
        try:
            view = view_of(list(request.query_params.multi_items()))
        except ChurnError as error:
            return problem(request, str(error), status=503)
        return render(
            request,
            "list.html",
            view=view,
            manifest=view.loaded.manifest,
            names=_names(),
            save_rates=config.save_rates,
            save_rate_measured=config.save_rate_measured,
            value_days=config.expected_value_days,
            page_query=view.query,
            page_name=PAGE,
            rows=_records(view.page.frame),
            control_rows=list(
                zip(_records(view.control_page.frame), view.control_ranks.tolist(), strict=True)
            ),
            currency=config.currency,
            control_share=_control_share(view.loaded.manifest),
        )

    @api.post("/download")
    async def download(request: Request) -> Response:
        try:
            pairs = _form_pairs(await request.body())
        except ChurnError as error:
            return problem(request, str(error))
        fields = group_query(pairs)
        if not security.csrf_valid(
            config.key,
            request.cookies.get(security.CSRF_COOKIE),
            (fields.get(security.CSRF_FIELD) or [None])[-1],
        ):
            return problem(
                request, "This page has expired; reload it and download again.", status=403
            )
        file_format = (fields.get("format") or ["csv"])[-1]
        expected = (fields.get("list") or [""])[-1]
        query = [(k, v) for k, v in pairs if k not in (security.CSRF_FIELD, "format", "list")]

        def prepare() -> Response:
            loaded = store.latest()
            if expected and expected != loaded.manifest["sha256"]:
                raise ChurnError(
                    "A newer list was published while this page was open; reload the page, "
                    "check the selection and download again."
                )
            suppression = store.suppression(fresh=True)  # the current list, read again now
            view = build_download_view(loaded, query, suppression)
            if view.errors:
                raise ChurnError(
                    "Nothing was downloaded: fix the selection first. " + " ".join(view.errors)
                )
            prepared = build_download(view, file_format)
            event = record.record_download(
                config.exports, prepared.entry, prepared.customer_ids, prepared.control_ids
            )
            log.info(
                "download: %s rows of the list of %s (%s), recorded as %s",
                prepared.entry["rows"],
                prepared.entry["as_of"],
                prepared.file_name,
                event["record"],
            )
            return Response(
                prepared.content,
                media_type=prepared.media_type,
                headers={"Content-Disposition": f'attachment; filename="{prepared.file_name}"'},
            )

        def build_download_view(loaded, query, suppression):  # noqa: ANN001, ANN202
            return build_view(
                loaded,
                group_query(query),
                suppression,
                store.suppressed(loaded, suppression),
                config.contact_cost,
                config.save_rates,
            )

        try:
            return await run_in_threadpool(prepare)
        except ChurnError as error:
            return problem(request, str(error))

    @api.get("/history", response_class=HTMLResponse)
    def history_page(request: Request) -> Response:
        # a report that cannot be read is named on the page; the lists are still shown
        warnings: list[str] = []
        reports: dict[str, Any] = {}
        for name, read, path in (
            ("backtest", read_backtest, config.backtest),
            ("ledger", read_ledger, config.ledger),
        ):
            try:
                reports[name] = read(path)
            except ChurnError as error:
                reports[name] = None
                warnings.append(str(error))
        try:
            rows = build_history(
                store.manifests(),
                reports["backtest"],
                store.downloads(),
                store.latest_as_of(),
                dt.date.today(),
                config.horizon_days,
                reports["ledger"],
            )
        except ChurnError as error:
            return problem(request, str(error), status=503)
        return render(
            request,
            "history.html",
            rows=rows,
            warnings=warnings,
            ledger_given=reports["ledger"] is not None,
        )

    @api.get("/report")
    def report_page(request: Request) -> Response:
        page = config.report_page
        if page is None or not page.is_file():
            return problem(
                request,
                "The retention report has not been made yet: it is written by `make run` "
                "(the report stage).",
                status=404,
            )
        return Response(
            page.read_bytes(),
            media_type="text/html; charset=utf-8",
            headers={"Content-Security-Policy": REPORT_CSP},
        )

    return api


def _records(frame: Any) -> list[dict[str, Any]]:
    """Return a page of rows as dicts, missing values as None (for the templates)."""
    return frame.astype(object).where(frame.notna(), None).to_dict(orient="records")


def _control_share(manifest: dict[str, Any]) -> float:
    groups = manifest.get("groups") or {}
    total = int(groups.get("treatment", 0)) + int(groups.get("control", 0))
    return int(groups.get("control", 0)) / total if total else 0.0


def _names() -> dict[str, str]:
    """Return the query-string names the templates use (one place: churn.app.selection/service)."""
    return {
        "tier": TIER,
        "segment": SEGMENT_PREFIX,
        "reason": REASON,
        "action": ACTION,
        "value_min": VALUE_MIN,
        "value_max": VALUE_MAX,
        "chance_min": CHANCE_MIN,
        "chance_max": CHANCE_MAX,
        "search": SEARCH,
        "how": HOW,
        "size": SIZE,
        "budget": BUDGET,
        "cost": COST,
    }


def serve(
    config: AppConfig,
    host: str,
    port: int,
    tls_certfile: Path | None = None,
    tls_keyfile: Path | None = None,
) -> None:
    """Run the page with uvicorn until interrupted."""
    import uvicorn

    security.check_bind(
        host,
        secret=config.secret,
        tls=tls_certfile is not None and tls_keyfile is not None,
        behind_proxy=config.behind_proxy,
    )
    uvicorn.run(
        create_app(config),
        host=host,
        port=port,
        ssl_certfile=None if tls_certfile is None else str(tls_certfile),
        ssl_keyfile=None if tls_keyfile is None else str(tls_keyfile),
        proxy_headers=config.behind_proxy,
        server_header=False,
        date_header=False,
        log_level="info",
        access_log=False,
    )
