"""Hostile cell values every user-facing writer must survive, and a spreadsheet's view of a CSV.

A new writer (a format, a report table) is added to the parametrized corpus test in
tests/unit/test_output_corpus.py and is then checked against every value here.
"""

from __future__ import annotations

# (case name, text cell): formulas behind whitespace or control characters, row splitters,
# quotes and delimiters, control characters that Excel cannot store
HOSTILE_TEXT = {
    "equals": "=1+1",
    "plus": "+49 30 1234",
    "minus": "-2+3",
    "at": "@SUM(A1:A2)",
    "tab first": "\t=1+1",
    "cr first": "\r=1+1",
    "bare cr splits a row": "a\r=1+1",
    "crlf inside": "a\r\n=1+1",
    "lf inside": "a\n=1+1",
    "leading space": " =1+1",
    "leading nbsp": "\u00a0=1+1",
    "leading lf": "\n=1+1",
    "leading vertical tab": "\x0b=1+1",
    "leading form feed": "\x0c+1",
    "leading zero-width space": "\u200b@x",
    "space then minus": "  -1+2",
    "nbsp then plus": "\u00a0+1",
    "full-width equals": "\uff1d1+1",
    "hyperlink with quotes": '=HYPERLINK("http://x","y")',
    "delimiter and quote": 'a,"b",c',
    "semicolon": "a;b",
    "control char": "a\x01b",
    "leading zeros": "00001",
}
# control characters Excel cannot store in a cell (openpyxl refuses them)
EXCEL_UNSTORABLE = {"control char", "leading vertical tab", "leading form feed"}
FORMULA_STARTS = ("=", "+", "-", "@", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def spreadsheet_rows(text: str, delimiter: str = ",") -> list[list[str]]:
    """Return the rows a spreadsheet sees in CSV text: a quoted field may hold anything; outside
    quotes, CR, LF and CR LF each end a row (as Excel and LibreOffice treat them)."""
    rows: list[list[str]] = []
    row: list[str] = []
    field: list[str] = []
    i, quoted, was_quoted = 0, False, False
    while i < len(text):
        char = text[i]
        if quoted:
            if char == '"' and text[i + 1 : i + 2] == '"':
                field.append('"')
                i += 1
            elif char == '"':
                quoted = False
            else:
                field.append(char)
        elif char == '"' and not field and not was_quoted:
            quoted = was_quoted = True
        elif char == delimiter:
            row.append("".join(field))
            field, was_quoted = [], False
        elif char in "\r\n":
            row.append("".join(field))
            rows.append(row)
            row, field, was_quoted = [], [], False
            if char == "\r" and text[i + 1 : i + 2] == "\n":
                i += 1
        else:
            field.append(char)
        i += 1
    if field or row:
        row.append("".join(field))
        rows.append(row)
    return rows


def would_run_as_formula(cell: str) -> bool:
    """Return True when a spreadsheet could run this cell text as a formula (what the writers
    must prevent): its first character, after whitespace and control characters, starts one."""
    if cell[:1] in ("\t", "\r"):
        return True
    stripped = cell.lstrip("".join(chr(c) for c in range(33)) + "\u00a0\u200b\ufeff\x7f")
    return stripped.startswith(FORMULA_STARTS)
