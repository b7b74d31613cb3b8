"""Headless Chromium for page tests, driven over the DevTools protocol on a pipe (stdlib only).

`--remote-debugging-pipe` makes Chromium read JSON commands on fd 3 and write replies and events
on fd 4, each message ending in a NUL byte. That gives console messages, uncaught exceptions,
failed resource loads, script evaluation and screenshots without selenium, a driver binary or a
websocket client.
"""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-pipe",
)
# Console/log events that count as a problem on the page.
_ERROR_LEVELS = {"error", "assert"}


@dataclass
class PageVisit:
    """What happened while a page loaded: console problems, evaluated values, a screenshot."""

    problems: list[str] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)


def chromium_available() -> bool:
    """Return True when the Debian chromium binary is installed."""
    return Path(CHROMIUM).exists()


class _Pipe:
    """The DevTools protocol over a pair of pipes: send commands, wait for replies, keep events."""

    def __init__(self, write_fd: int, read_fd: int, timeout: float) -> None:
        self.write_fd, self.read_fd, self.timeout = write_fd, read_fd, timeout
        self.buffer = b""
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        """Send one command and return its result; raise when Chromium reports an error."""
        self.next_id += 1
        message: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self.write_fd, json.dumps(message).encode() + b"\0")
        reply = self.wait(lambda m: m.get("id") == self.next_id)
        if "error" in reply:
            raise RuntimeError(f"chromium: {method} failed: {reply['error']}")
        return reply.get("result", {})

    def wait(self, wanted) -> dict:
        """Return the first message `wanted` accepts, keeping every other one as an event."""
        deadline = time.monotonic() + self.timeout
        while True:
            while b"\0" in self.buffer:
                raw, self.buffer = self.buffer.split(b"\0", 1)
                message = json.loads(raw)
                if wanted(message):
                    return message
                self.events.append(message)
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self.read_fd], [], [], max(0.0, left))
            if not ready:
                raise TimeoutError(f"chromium: no answer within {self.timeout:.0f} s")
            chunk = os.read(self.read_fd, 1 << 20)
            if not chunk:
                raise EOFError("chromium closed the DevTools pipe")
            self.buffer += chunk


def _problems(events: list[dict[str, Any]]) -> list[str]:
    """Return console errors, uncaught exceptions and failed loads as readable lines."""
    found = []
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in _ERROR_LEVELS:
            text = " ".join(str(arg.get("value", arg.get("description"))) for arg in params["args"])
            found.append(f"console.{params['type']}: {text}")
        elif method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            description = details.get("exception", {}).get("description", details.get("text"))
            found.append(f"uncaught exception: {description}")
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            entry = params["entry"]
            found.append(f"{entry.get('source')}: {entry.get('text')} {entry.get('url', '')}")
    return found


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
    profile = tempfile.mkdtemp(prefix="churn-chromium-")
    to_chrome_read, to_chrome_write = os.pipe()
    from_chrome_read, from_chrome_write = os.pipe()

    # Chromium expects the pipes on fds 3 and 4; bash (dash takes single-digit fds only) moves
    # them there before exec, so no preexec_fn runs in this multi-threaded process.
    wire = (
        f'exec "$0" "$@" 3<&{to_chrome_read} 4>&{from_chrome_write} '
        f"{to_chrome_read}<&- {from_chrome_write}>&-"
    )
    process = subprocess.Popen(
        [
            "/bin/bash",
            "-c",
            wire,
            CHROMIUM,
            *FLAGS,
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
            "about:blank",
        ],
        pass_fds=(to_chrome_read, from_chrome_write),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(to_chrome_read)
    os.close(from_chrome_write)
    pipe = _Pipe(to_chrome_write, from_chrome_read, timeout)
    result = PageVisit()
    try:
        target = pipe.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = pipe.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        for domain in ("Runtime", "Log", "Page"):
            pipe.send(f"{domain}.enable", session=session)
        pipe.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            session=session,
        )
        pipe.send("Page.navigate", {"url": page.resolve().as_uri()}, session=session)
        pipe.wait(lambda m: m.get("method") == "Page.loadEventFired")
        for name, expression in (evaluate or {}).items():
            reply = pipe.send(
                "Runtime.evaluate",
                {"expression": expression, "returnByValue": True, "awaitPromise": True},
                session=session,
            )
            if "exceptionDetails" in reply:
                raise RuntimeError(f"chromium: evaluating {name!r} failed: {reply}")
            result.values[name] = reply["result"].get("value")
        if screenshot is not None:
            size = pipe.send("Page.getLayoutMetrics", session=session)["cssContentSize"]
            clip = {"x": 0, "y": 0, "width": width, "height": size["height"], "scale": 1}
            shot = pipe.send(
                "Page.captureScreenshot",
                {"format": "png", "captureBeyondViewport": True, "clip": clip},
                session=session,
            )
            screenshot.write_bytes(base64.b64decode(shot["data"]))
        result.problems = _problems(pipe.events)
        pipe.send("Browser.close")
        process.wait(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(to_chrome_write)
        os.close(from_chrome_read)
        shutil.rmtree(profile, ignore_errors=True)
    return result
