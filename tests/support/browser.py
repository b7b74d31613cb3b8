"""Headless Chromium for page tests through Playwright, on the system browser (/usr/bin/chromium).

Never `playwright install`: Playwright drives the Debian package that .ci/run installs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from support.services import CHROMIUM

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Console messages that count as a problem on the page.
_ERROR_LEVELS = {"error", "assert"}


@dataclass
class PageVisit:
    """What happened while a page loaded: console problems, evaluated values, a screenshot."""

    problems: list[str] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)


def visit(
    page: Path,
    screenshot: Path | None = None,
    evaluate: dict[str, str] | None = None,
    width: int = 1280,
    height: int = 900,
    timeout: float = 30.0,
) -> PageVisit:
    """Open a local page in headless Chromium; return its console problems and evaluated values.

    `evaluate` maps names to JavaScript expressions run after the load event (returned by value);
    `screenshot` receives a full-page PNG.
    """
    from playwright.sync_api import sync_playwright

    result = PageVisit()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=FLAGS, headless=True, timeout=timeout * 1000
        )
        try:
            tab = browser.new_page(viewport={"width": width, "height": height})
            tab.set_default_timeout(timeout * 1000)
            tab.on(
                "console",
                lambda message: (
                    message.type in _ERROR_LEVELS
                    and result.problems.append(
                        f"console.{message.type}: {message.text} {message.location.get('url', '')}"
                    )
                ),
            )
            tab.on(
                "pageerror", lambda error: result.problems.append(f"uncaught exception: {error}")
            )
            tab.on(
                "requestfailed",
                lambda request: result.problems.append(
                    f"failed load: {request.url} ({request.failure})"
                ),
            )
            tab.goto(page.resolve().as_uri(), wait_until="load")
            for name, expression in (evaluate or {}).items():
                result.values[name] = tab.evaluate(expression)
            if screenshot is not None:
                tab.screenshot(path=screenshot, full_page=True)
        finally:
            browser.close()
    return result
