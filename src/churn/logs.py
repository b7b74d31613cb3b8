"""Logging and progress for the CLI: rich on a terminal, plain timestamped lines in log files."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

LOGGER_NAME = "churn"
PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
PLAIN_DATEFMT = "%Y-%m-%dT%H:%M:%S"


def is_terminal() -> bool:
    """Return True when stderr is an interactive terminal."""
    return sys.stderr.isatty()


def setup_logging(verbose: bool = False) -> None:
    """Configure the `churn` logger once; called by the CLI only."""
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    logger.handlers.clear()
    logger.propagate = False
    if is_terminal():
        from rich.logging import RichHandler

        handler: logging.Handler = RichHandler(show_path=False, rich_tracebacks=False)
        handler.setFormatter(logging.Formatter("%(message)s", datefmt="%H:%M:%S"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(PLAIN_FORMAT, PLAIN_DATEFMT))
    logger.addHandler(handler)


def add_log_file(path: str | Path) -> logging.FileHandler:
    """Append plain timestamped lines to `path` (its folder is created) and leave only errors on
    the handlers set up before (stderr); called by the CLI only. Returns the new handler.

    A scheduler then gets the whole run in the file and, on stderr, just what needs a human:
    cron mails any output, systemd and Airflow show it, so a skipped run stays silent.
    """
    from churn.files import explain_write_errors

    path = Path(path)
    with explain_write_errors(path, "the run did not start"):
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(path, mode="a", encoding="utf-8")
    logger = logging.getLogger(LOGGER_NAME)
    for existing in logger.handlers:
        existing.setLevel(max(existing.level, logging.ERROR))
    handler.setFormatter(logging.Formatter(PLAIN_FORMAT, PLAIN_DATEFMT))
    logger.addHandler(handler)
    return handler


def get_logger(name: str) -> logging.Logger:
    """Return a child of the `churn` logger (no handlers are added here)."""
    return logging.getLogger(f"{LOGGER_NAME}.{name}" if not name.startswith(LOGGER_NAME) else name)


def track(items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    """Yield items with a progress bar on a terminal, or a log line every ~10% (or 30 s) otherwise."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    if is_terminal():
        from rich.progress import track as rich_track

        yield from rich_track(items, description=description, total=total, transient=True)
        return
    log = get_logger("progress")
    step = max(1, (total or 10) // 10)
    last = time.monotonic()
    for i, item in enumerate(items, start=1):
        yield item
        now = time.monotonic()
        if i % step == 0 or now - last > 30 or (total is not None and i == total):
            log.info("%s: %d/%s", description, i, total if total is not None else "?")
            last = now
