"""Screenshots of the marketing page for the README: docs/img/churn_app*.png.

Run from the repository root after `make run`:  .venv/bin/python docs/screenshots.py
It serves the published list in exports/at_risk/ on a free loopback port (the real `churn app`
code, with the params' contact cost), opens it in the system Chromium (/usr/bin/chromium, through
Playwright), picks a selection and a list size, and saves the viewport as PNG.
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]


def main() -> None:
    import uvicorn
    from playwright.sync_api import sync_playwright

    from churn.app.server import AppConfig, create_app
    from churn.config import load_params
    from churn.files import write_bytes
    from churn.score.targeting import save_rates_by_tier

    settings = load_params(ROOT / "params.yaml")
    config = AppConfig(
        exports=ROOT / "exports" / "at_risk",
        suppression=ROOT / "data" / "suppression.csv",
        backtest=ROOT / "reports" / "backtest.json",
        ledger=ROOT / "reports" / "ledger.json",
        report_page=ROOT / "reports" / "retention.html",
        contact_cost=settings.score.contact_cost,
        save_rates=save_rates_by_tier(settings.score),
        save_rate_measured=False,
        horizon_days=settings.churn.horizon_days,
        expected_value_days=settings.score.expected_value_days,
        currency=settings.app.currency,
    )
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(config), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    shots: dict[str, bytes] = {}
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            tab = browser.new_page(viewport={"width": 1280, "height": 1400})
            tab.goto(f"http://127.0.0.1:{port}/?tier=high&seg_channel=app&how=size&size=500")
            shots["churn_app.png"] = tab.screenshot()
            tab.goto(f"http://127.0.0.1:{port}/history")
            shots["churn_app_history.png"] = tab.screenshot(
                clip={"x": 0, "y": 0, "width": 1280, "height": 900}
            )
            browser.close()
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    for name, data in shots.items():
        write_bytes(ROOT / "docs" / "img" / name, data)
        print(f"docs/img/{name}: {len(data):,} bytes")


if __name__ == "__main__":
    main()
