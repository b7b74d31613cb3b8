"""How the page writes numbers for people: money with the configured currency, percentages that
never claim 0% or 100% when the value is not exactly that, and a list's reasons as a list.

Pure and framework-free: server.py registers these as Jinja2 filters.
"""

from __future__ import annotations

import math

from churn.columns import REASON_SEPARATOR

DASH = "–"  # shown for a value that is missing


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def money_text(value: float | None, currency: str, digits: int = 2) -> str:
    """Return an amount with its currency: a symbol before it (€1,234.50, -¤12), a code after
    it (1,234.50 EUR); a dash when missing."""
    if _missing(value):
        return DASH
    amount = float(value)  # type: ignore[arg-type]
    number = f"{abs(amount):,.{digits}f}"
    sign = "-" if amount < 0 and float(number.replace(",", "")) != 0 else ""
    if not currency:
        return f"{sign}{number}"
    if currency.isalpha() and len(currency) > 1:  # a code (EUR, USD): after the number
        return f"{sign}{number} {currency}"
    return f"{sign}{currency}{number}"


def percent_text(value: float | None, digits: int = 1) -> str:
    """Return a share (0..1) as a percentage; a share that is not exactly 0 or 1 never reads 0%
    or 100% (0.9996 reads '>99.9%', 0.0004 '<0.1%'); a dash when missing."""
    if _missing(value):
        return DASH
    share = float(value)  # type: ignore[arg-type]
    percent = 100 * share
    step = 10.0**-digits
    shown = round(percent, digits)
    if 0 < percent < 100 and shown >= 100:
        return f">{100 - step:.{digits}f}%"
    if 0 < percent < 100 and shown <= 0:
        return f"<{step:.{digits}f}%"
    if -100 < percent < 0 and shown >= 0:  # a small negative share never reads 0%
        return f">-{step:.{digits}f}%"
    return f"{shown:.{digits}f}%"


def points_text(value: float | None, digits: int = 1) -> str:
    """Return a difference of two shares in percentage points, signed (+2.3 points); one that is
    not exactly 0 never reads +0.0 (it reads 'less than +0.1 points')."""
    if _missing(value):
        return DASH
    points = 100 * float(value)  # type: ignore[arg-type]
    step = 10.0**-digits
    if points != 0 and round(points, digits) == 0:
        return f"less than {'+' if points > 0 else '-'}{step:.{digits}f} points"
    return f"{points:+.{digits}f} points"


def reason_list(text: str | None) -> list[str]:
    """Return a customer's reasons (one published text, separated) as a list of sentences."""
    if _missing(text) or not str(text).strip():
        return []
    return [part.strip() for part in str(text).split(REASON_SEPARATOR) if part.strip()]
