"""What `churn init` infers from a sample of an export: delimiter, column roles, number and date
formats. Pure functions on text and value lists; each undecidable case is a ChurnError naming the
file, the column, the values and the option that settles it."""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from churn.config import WHITESPACE_DELIMITER
from churn.errors import ChurnError

DELIMITERS = (",", ";", "\t", "|")  # tried in this order; whitespace only when none fits
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe",
                   WHITESPACE_DELIMITER: "runs of spaces (column-aligned text)"}  # fmt: skip
CONSISTENT_SHARE = 0.9  # rows with the header's field count, for a delimiter to fit
CONTENT_SHARE = 0.95  # non-empty values that must fit a type for a column to be that type
ROLES = ("customer_id", "timestamp", "amount", "transaction_id")
OPTION = {"customer_id": "--customer-id", "timestamp": "--timestamp", "amount": "--amount",
          "transaction_id": "--transaction-id"}  # fmt: skip

# Header words by role, in the languages and conventions exports use (normalised: ASCII, lower).
CUSTOMER_WORDS = {
    "customer", "customers", "cust", "client", "clients", "cliente", "clientes", "kunde",
    "kunden", "kundennr", "kundennummer", "kundenid", "klant", "klantnummer", "kund",
    "kundnummer", "user", "userid", "member", "memberid", "account", "accountid", "buyer",
    "shopper", "consumer", "asiakas", "household", "subscriber", "patron", "guest",
    "customerid", "custid", "clientid", "idcliente", "customerno", "contact",
}  # fmt: skip
DATE_WORDS = {
    "date", "datetime", "timestamp", "time", "ts", "day", "datum", "fecha", "data", "dt", "zeit",
    "zeitpunkt", "created", "ordered", "purchased", "placed", "invoicedate", "orderdate",
    "tidspunkt", "dato", "when", "at", "hora", "jour", "giorno", "dia",
}  # fmt: skip
AMOUNT_WORDS = {
    "amount", "amt", "value", "total", "revenue", "sales", "price", "spend", "spent", "sum",
    "net", "gross", "dollar", "dollars", "eur", "euro", "euros", "usd", "gbp", "money", "paid",
    "payment", "betrag", "umsatz", "wert", "preis", "summe", "importe", "monto", "valor",
    "montant", "prix", "importo", "prezzo", "bedrag", "belopp", "summa", "turnover", "subtotal",
    "omzet", "kwota", "cena", "receita", "faturamento",
}  # fmt: skip
TRANSACTION_WORDS = {
    "transaction", "transactions", "txn", "tx", "trans", "order", "orders", "invoice", "invoiceno",
    "receipt", "ticket", "bestellung", "bestellnummer", "rechnung", "rechnungsnummer", "pedido",
    "factura", "commande", "facture", "ordine", "fattura", "bestelling", "factuur", "purchase",
    "basket", "booking", "orderid", "transactionid", "invoiceid", "beleg", "bon", "kvitto",
}  # fmt: skip
SALE_WORDS = {"sale", "sold", "created", "kauf", "compra", "achat", "acquisto", "aankoop"}
ID_WORDS = {"id", "no", "nr", "num", "number", "nummer", "numero", "code", "key", "ref", "nbr"}
COUNT_WORDS = {
    "qty", "quantity", "count", "units", "unit", "items", "menge", "anzahl", "cantidad",
    "quantite", "quantita", "aantal", "antal", "pieces", "cds", "pcs", "stuck", "stueck",
}  # fmt: skip
NOT_ID_WORDS = {
    "name", "first", "last", "firstname", "lastname", "vorname", "nachname", "nombre", "nom",
    "city", "country", "region", "segment", "type", "since", "age", "gender", "status", "group",
}  # fmt: skip

NUMBER = re.compile(r"[+-]?(?:\d+|\d{1,3}(?:[,.' ]\d{3})+)(?:[.,]\d+)?|[+-]?[.,]\d+")
ID_VALUE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_\-./:#@+]*")
ISO = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?)?\s*(Z|[+-]\d{2}(?::?\d{2})?)?",
    re.IGNORECASE,
)
COMPACT = re.compile(r"(\d{4})(\d{2})(\d{2})(\d{6})?")
YMD = re.compile(r"(\d{4})([/.])(\d{1,2})\2(\d{1,2})(?P<time>.*)")
DMY = re.compile(r"(\d{1,2})([/.\-])(\d{1,2})\2(\d{4}|\d{2})(?P<time>.*)")
TIMES = (("", ""), (" %H:%M", r" \d{1,2}:\d{2}"), (" %H:%M:%S", r" \d{1,2}:\d{2}:\d{2}"),
         ("T%H:%M:%S", r"T\d{2}:\d{2}:\d{2}"), ("T%H:%M", r"T\d{2}:\d{2}"),
         (" %I:%M %p", r" \d{1,2}:\d{2} ?[AaPp][Mm]"),
         (" %I:%M:%S %p", r" \d{1,2}:\d{2}:\d{2} ?[AaPp][Mm]"))  # fmt: skip


# --------------------------------------------------------------------------- the CSV dialect
@dataclass(frozen=True)
class Table:
    """A sample of an export split into a header and text rows (typed Parquet columns kept)."""

    label: str
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    delimiter: str | None = None  # None for Parquet
    types: tuple[str, ...] = ()  # Parquet column types ("string", "timestamp", "double", ...)
    has_header: bool = True  # False: the first line is data, columns named column0, column1, ...

    def values(self, column: str) -> list[str]:
        """Return the column's non-empty sample values, stripped."""
        i = self.header.index(column)
        out = []
        for row in self.rows:
            if i < len(row) and row[i] is not None and str(row[i]).strip():
                out.append(str(row[i]).strip())
        return out

    def type_of(self, column: str) -> str:
        """Return the Parquet type of a column, "string" for CSV."""
        return self.types[self.header.index(column)] if self.types else "string"


def split_text(text: str, delimiter: str) -> list[list[str]]:
    """Return the non-blank records of `text` split on `delimiter` (quotes honoured)."""
    if delimiter == WHITESPACE_DELIMITER:
        return [line.split() for line in text.splitlines() if line.strip()]
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quotechar='"')
    return [row for row in reader if any(field.strip() for field in row)]


def _fit(records: list[list[str]]) -> float:
    """Return the share of data records with as many fields as the header (0 if under 2)."""
    if len(records[0]) < 2:
        return 0.0
    data = records[1:]
    return sum(len(r) == len(records[0]) for r in data) / len(data) if data else 1.0


def detect_delimiter(text: str, label: str) -> str:
    """Return the delimiter that splits the header and most rows into the same 2+ columns."""
    fits = []
    for order, delimiter in enumerate(DELIMITERS):
        records = split_text(text, delimiter)
        if records and _fit(records) >= CONSISTENT_SHARE:
            fits.append((len(records[0]), -order, delimiter))
    if fits:
        return max(fits)[2]
    records = split_text(text, WHITESPACE_DELIMITER)
    if records and _fit(records) >= CONSISTENT_SHARE:
        return WHITESPACE_DELIMITER
    first = text.strip().splitlines()[0][:80] if text.strip() else ""
    raise ChurnError(
        f"{label}: cannot tell the delimiter: no candidate (comma, semicolon, tab, pipe, runs of "
        f"spaces) splits the header and the rows into the same number of columns (first line: "
        f"{first!r}); pass --delimiter"
    )


def read_table(text: str, label: str, delimiter: str | None = None) -> Table:
    """Return the sample split with the given or detected delimiter; check the header."""
    if not text.strip():
        raise ChurnError(f"{label}: the file is empty; export it again with a header and rows")
    delimiter = delimiter or detect_delimiter(text, label)
    records = split_text(text, delimiter)
    header = tuple(name.strip().lstrip("\ufeff").strip() for name in records[0])
    if is_data(header):
        # no header line: ingest names the columns (DuckDB's column0, column1, ...)
        names = tuple(f"column{i}" for i in range(len(header)))
        return Table(label, names, tuple(tuple(r) for r in records), delimiter, has_header=False)
    if len(records) < 2:
        raise ChurnError(f"{label}: only a header, no data rows; export it again with its rows")
    check_header(header, label)
    return Table(label, header, tuple(tuple(r) for r in records[1:]), delimiter)


def is_data(first_line: Sequence[str]) -> bool:
    """Return True when every field of a first line is a number or a date: no header."""
    return all(_is_number(h) or guess_date([h]) is not None for h in first_line if h)


def check_header(header: Sequence[str], label: str) -> None:
    """Raise when header names are empty or repeated."""
    if any(not h for h in header):
        raise ChurnError(f"{label}: a column has no name in the header; name it in the export")
    repeated = [name for name, n in Counter(header).items() if n > 1]
    if repeated:
        raise ChurnError(f"{label}: column {repeated[0]!r} appears twice in the header; rename one")


# --------------------------------------------------------------------------- values
def _is_number(value: str) -> bool:
    return NUMBER.fullmatch(value.strip()) is not None


def share(values: Sequence[str], test) -> float:  # noqa: ANN001 - a predicate on str
    """Return the share of values passing `test` (0 for no values)."""
    return sum(bool(test(v)) for v in values) / len(values) if values else 0.0


@dataclass(frozen=True)
class DateGuess:
    """How a text column's dates are written."""

    fmt: str | None  # strptime format for ingest.timestamp_format; None = ISO 8601 (auto)
    kind: str  # iso, compact, ymd, dmy
    share: float  # of values the format reads
    with_offset: int = 0  # ISO values carrying Z or +hh:mm
    dayfirst: bool | None = None  # dmy only: None = the sample cannot tell
    first_max: int = 0  # dmy: largest first and second fields seen
    second_max: int = 0
    example: str = ""

    def describe(self) -> str:
        """Return the format in words for the plan."""
        if self.fmt is None:
            offsets = f", {self.with_offset} values with a UTC offset" if self.with_offset else ""
            return f"ISO 8601{offsets}"
        order = {True: " (day first)", False: " (month first)"}.get(self.dayfirst, "")
        return f"{self.fmt}{order}"


def _time_format(rest: str) -> str | None:
    for fmt, pattern in TIMES:
        if re.fullmatch(pattern, rest):
            return fmt
    return None


def _valid(fmt: str, value: str) -> bool:
    try:
        datetime.strptime(value, fmt)
    except ValueError:
        return False
    return True


def guess_date(values: Sequence[str], dayfirst: bool | None = None) -> DateGuess | None:
    """Return how most values are written as dates, or None when under CONTENT_SHARE parse.

    Day-first against month-first is settled by evidence: a first field above 12 means day
    first, a second field above 12 month first; with neither, `dayfirst` (None: undecided).
    """
    values = [v.strip() for v in values if v.strip()]
    if not values:
        return None
    iso = [ISO.fullmatch(v) for v in values]
    if share(iso, bool) >= CONTENT_SHARE:
        offsets = sum(1 for m in iso if m and m.group(1))
        return DateGuess(None, "iso", share(iso, bool), offsets, example=values[0])
    compact = [COMPACT.fullmatch(v) for v in values]
    if share(compact, bool) >= CONTENT_SHARE:
        fmt = "%Y%m%d%H%M%S" if share(compact, lambda m: m and m.group(4)) > 0.5 else "%Y%m%d"
        ok = share(values, lambda v, f=fmt: _valid(f, v))
        if ok >= CONTENT_SHARE:
            return DateGuess(fmt, "compact", ok, example=values[0])
        return None
    for pattern, kind in ((YMD, "ymd"), (DMY, "dmy")):
        matches = [pattern.fullmatch(v) for v in values]
        if share(matches, bool) < CONTENT_SHARE:
            continue
        times = Counter(_time_format(m.group("time")) for m in matches if m)
        time_fmt = times.most_common(1)[0][0]
        if time_fmt is None:
            continue
        sep = next(m.group(2) for m in matches if m)
        if kind == "ymd":
            fmt = f"%Y{sep}%m{sep}%d{time_fmt}"
            return DateGuess(
                fmt, kind, share(values, lambda v, f=fmt: _valid(f, v)), example=values[0]
            )
        firsts = [int(m.group(1)) for m in matches if m]
        seconds = [int(m.group(3)) for m in matches if m]
        year = "%Y" if len(next(m.group(4) for m in matches if m)) == 4 else "%y"
        first_max, second_max = max(firsts), max(seconds)
        if first_max > 12 and second_max > 12:
            order = None  # both: mixed formats, reported by the caller
        elif first_max > 12:
            order = True
        elif second_max > 12:
            order = False
        else:
            order = dayfirst
        day_month = "%d{s}%m" if order in (True, None) else "%m{s}%d"
        fmt = day_month.format(s=sep) + f"{sep}{year}{time_fmt}"
        return DateGuess(
            fmt,
            kind,
            share(values, lambda v, f=fmt: _valid(f, v)),
            dayfirst=order,
            first_max=first_max,
            second_max=second_max,
            example=values[0],
        )
    return None


def number_format(
    values: Sequence[str], label: str, column: str, decimal: str | None, thousands: str | None
) -> tuple[str, str | None]:
    """Return (decimal mark, thousands separator) of an amount column's values.

    A mark followed by other than three digits, or the last of two marks, is the decimal mark;
    a mark in groups of three before it is the thousands separator. `1,234` alone could be either:
    that is an error unless --decimal says which.
    """
    values = [v.strip() for v in values if v.strip()]
    comma_dec = dot_dec = False
    grouped: Counter[str] = Counter()
    ambiguous = ""
    for v in values:
        body = v.lstrip("+-")
        marks = [c for c in body if c in ".,"]
        if not marks:
            continue
        last = max(body.rfind("."), body.rfind(","))
        tail = body[last + 1 :]
        others = {c for c in body[:last] if c in ".,' "}
        if others:
            grouped.update(others)
            comma_dec |= body[last] == ","
            dot_dec |= body[last] == "."
        elif len(marks) > 1:
            grouped[marks[0]] += 1  # 1,234,567 or 1.234.567: groups, no decimals
        elif len(tail) != 3 or body[0] in ".,":
            comma_dec |= body[last] == ","
            dot_dec |= body[last] == "."
        else:
            ambiguous = ambiguous or v
        grouped.update(c for c in body if c in "' ")
    if decimal is None:
        if comma_dec and dot_dec:
            raise ChurnError(
                f"{label}: column {column!r} mixes decimal commas and points (e.g. "
                f"{_example(values, ',')!r} and {_example(values, '.')!r}); fix the export or "
                "pass --decimal"
            )
        if not comma_dec and not dot_dec and ambiguous and not grouped:
            raise ChurnError(
                f"{label}: column {column!r} has values like {ambiguous!r} that read as "
                "thousands or as decimals; pass --decimal . (and --thousands ,) or --decimal ,"
            )
        if comma_dec:
            decimal = ","
        elif dot_dec:
            decimal = "."
        else:
            decimal = "," if grouped.get(".") else "."
    if thousands is None:
        candidates = [c for c in grouped if c != decimal]
        if ambiguous and not candidates:
            candidates = ["," if decimal == "." else "."]
        thousands = max(candidates, key=lambda c: grouped[c]) if candidates else None
    return decimal, thousands


def _example(values: Sequence[str], mark: str) -> str:
    return next((v for v in values if mark in v), "")


# --------------------------------------------------------------------------- column roles
def name_words(name: str) -> list[str]:
    """Return a header name's words: ASCII, lower case, camelCase and punctuation split."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", ascii_name)
    return [w for w in re.split(r"[^a-z0-9]+", spaced.lower()) if w]


def name_score(name: str, role: str) -> int:
    """Return how strongly a header name says `role`: 0 none, 1 a hint, 2 clear."""
    words = name_words(name)
    joined = "".join(words)
    if role == "customer_id":
        if set(words) & NOT_ID_WORDS:
            return 0
        hit = bool(set(words) & CUSTOMER_WORDS) or joined in CUSTOMER_WORDS
        return 2 if hit and (len(words) == 1 or set(words) & ID_WORDS) else int(hit)
    if role == "timestamp":
        return 2 if set(words) & DATE_WORDS or joined in DATE_WORDS else 0
    if role == "amount":
        if set(words) & COUNT_WORDS:
            return 0
        return 2 if set(words) & AMOUNT_WORDS else 0
    hit = bool(set(words) & TRANSACTION_WORDS) or joined in TRANSACTION_WORDS
    return 2 if hit and (len(words) == 1 or set(words) & ID_WORDS) else int(hit)


@dataclass(frozen=True)
class Mapping:
    """Source columns for each role, how timestamps and amounts are written, and why."""

    columns: dict[str, str | None]
    date: DateGuess | None  # None for typed (Parquet) timestamps
    decimal: str
    thousands: str | None
    reasons: dict[str, str]  # role -> why this column
    notes: tuple[str, ...] = ()


def _is_date_type(type_name: str) -> bool:
    return type_name.startswith(("timestamp", "date"))


def _is_numeric_type(type_name: str) -> bool:
    return type_name.startswith(("double", "float", "int", "uint", "decimal", "halffloat"))


def _date_like(table: Table, column: str, dayfirst: bool | None) -> DateGuess | None:
    if _is_date_type(table.type_of(column)):
        return DateGuess(None, "typed", 1.0)
    if table.type_of(column) != "string":
        return None
    return guess_date(table.values(column)[:5000], dayfirst)


def _numeric_like(table: Table, column: str) -> bool:
    kind = table.type_of(column)
    if kind != "string":
        return _is_numeric_type(kind)
    values = table.values(column)
    return bool(values) and share(values, _is_number) >= CONTENT_SHARE


def _id_like(table: Table, column: str) -> bool:
    kind = table.type_of(column)
    if kind != "string":
        return kind.startswith(("int", "uint"))
    values = table.values(column)
    if not values or share(values, lambda v: ID_VALUE.fullmatch(v)) < CONTENT_SHARE:
        return False
    return not share(values, lambda v: re.fullmatch(r"[+-]?\d*[.,]\d+", v)) > 0.5


def _leading_zeros(table: Table, column: str) -> bool:
    return any(re.fullmatch(r"0\d+", v) for v in table.values(column)[:5000])


def _fractional(table: Table, column: str) -> bool:
    kind = table.type_of(column)
    if kind != "string":
        return kind.startswith(("double", "float", "decimal", "halffloat"))
    return any(re.search(r"[.,]\d{1,2}$", v) for v in table.values(column))


def _distinct_share(table: Table, column: str) -> float:
    values = table.values(column)
    return len(set(values)) / len(values) if values else 0.0


def _check_column(table: Table, column: str, role: str) -> str:
    if column in table.header:
        return column
    import difflib

    close = difflib.get_close_matches(column, table.header, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ChurnError(
        f"{table.label}: {OPTION[role]} {column!r}: no such column{hint}; the file has "
        f"{', '.join(repr(h) for h in table.header)}"
    )


def _pick(
    table: Table, role: str, candidates: list[str], what: str, used: set[str]
) -> tuple[str, str]:
    """Return (column, why) among content candidates, by header name; error when two tie."""
    candidates = [c for c in candidates if c not in used]
    if not candidates:
        raise ChurnError(
            f"{table.label}: no column looks like {what} (columns: "
            f"{', '.join(repr(h) for h in table.header)}); pass {OPTION[role]} COL"
        )
    if len(candidates) == 1:
        score = name_score(candidates[0], role)
        return candidates[0], "header name and values" if score else "values"
    scores = {c: name_score(c, role) for c in candidates}
    best = max(scores.values())
    top = [c for c in candidates if scores[c] == best]
    if len(top) == 1 and best > 0:
        return top[0], "header name and values"
    raise ChurnError(
        f"{table.label}: {len(top)} columns could be {what}: "
        f"{', '.join(repr(c) for c in top)}; pass {OPTION[role]} COL to choose"
    )


def map_columns(
    table: Table,
    overrides: dict[str, str | None],
    no_transaction_id: bool = False,
    date_format: str | None = None,
    dayfirst: bool | None = None,
    decimal: str | None = None,
    thousands: str | None = None,
) -> Mapping:
    """Return the column for each role (overrides win), with the date and number formats."""
    used: set[str] = set()
    columns: dict[str, str | None] = {}
    reasons: dict[str, str] = {}
    notes: list[str] = []

    # timestamp first: dates are the most recognisable content
    if overrides.get("timestamp"):
        column = _check_column(table, overrides["timestamp"], "timestamp")
        reasons["timestamp"] = "given"
    else:
        dated = [c for c in table.header if _date_like(table, c, dayfirst) is not None]
        if not dated:
            named = [c for c in table.header if name_score(c, "timestamp")]
            if named:
                values = table.values(named[0])[:3]
                raise ChurnError(
                    f"{table.label}: column {named[0]!r} is named like a date but its values "
                    f"({', '.join(repr(v) for v in values)}) match no date format churn knows; "
                    "pass --date-format (a strptime format such as '%d.%m.%Y %H:%M')"
                )
            raise ChurnError(
                f"{table.label}: no column holds dates (columns: "
                f"{', '.join(repr(h) for h in table.header)}); pass --timestamp COL and "
                "--date-format"
            )
        # several dates (signup, shipping, ...): the order's own date is the transaction time
        of_order = [c for c in dated if set(name_words(c)) & (TRANSACTION_WORDS | SALE_WORDS)]
        if len(dated) > 1 and len(of_order) == 1:
            column, reasons["timestamp"] = of_order[0], "header name (the order's date) and values"
        else:
            column, reasons["timestamp"] = _pick(table, "timestamp", dated, "the timestamp", used)
    columns["timestamp"] = column
    used.add(column)
    date = _timestamp_format(table, column, date_format, dayfirst)

    # amount: numbers that are not ids (leading zeros) or counts (by name)
    if overrides.get("amount"):
        columns["amount"] = _check_column(table, overrides["amount"], "amount")
        reasons["amount"] = "given"
    else:
        numeric = [
            c
            for c in table.header
            if c not in used and _numeric_like(table, c) and not _leading_zeros(table, c)
        ]
        named = [c for c in numeric if name_score(c, "amount") == 2]
        if len(named) == 1:
            columns["amount"], reasons["amount"] = named[0], "header name and values"
        else:
            counts = {c for c in numeric if set(name_words(c)) & COUNT_WORDS}
            pool = named or [c for c in numeric if c not in counts]
            if not pool:
                _explain_no_amount(table, used)
            fractional = [c for c in pool if _fractional(table, c)]
            pool = fractional if len(fractional) == 1 else pool
            if len(pool) == 1:
                columns["amount"], reasons["amount"] = pool[0], "values (decimal numbers)"
            else:
                columns["amount"], reasons["amount"] = _pick(
                    table, "amount", pool, "the amount", used
                )
    used.add(columns["amount"])

    # customer id: id-like values, by header name, else the one that repeats
    if overrides.get("customer_id"):
        columns["customer_id"] = _check_column(table, overrides["customer_id"], "customer_id")
        reasons["customer_id"] = "given"
    else:
        ids = [c for c in table.header if c not in used and _id_like(table, c)]
        named = [c for c in ids if name_score(c, "customer_id") == 2] or [
            c for c in ids if name_score(c, "customer_id") == 1
        ]
        if len(named) == 1:
            columns["customer_id"], reasons["customer_id"] = named[0], "header name and values"
        else:
            pool = named or [
                c
                for c in ids
                if _distinct_share(table, c) < 0.95 and name_score(c, "transaction_id") == 0
            ]
            distinct = sorted(((len(set(table.values(c))), c) for c in pool), reverse=True)
            if not named and len(distinct) > 1 and distinct[0][0] >= 5 * distinct[1][0]:
                # a handful of repeated values is a count or a code, not the customers
                pool = [distinct[0][1]]
            columns["customer_id"], reasons["customer_id"] = _pick(
                table, "customer_id", pool, "the customer id", used
            )
    used.add(columns["customer_id"])

    # transaction id: optional; never a column that repeats with other amounts (line items)
    columns["transaction_id"] = None
    if no_transaction_id:
        reasons["transaction_id"] = "not mapped (--no-transaction-id)"
    elif overrides.get("transaction_id"):
        columns["transaction_id"] = _check_column(
            table, overrides["transaction_id"], "transaction_id"
        )
        reasons["transaction_id"] = "given"
    else:
        ids = [c for c in table.header if c not in used and _id_like(table, c)]
        named = sorted(
            (c for c in ids if name_score(c, "transaction_id")),
            key=lambda c: -name_score(c, "transaction_id"),
        )
        unique = [
            c for c in ids if _distinct_share(table, c) == 1.0 and set(name_words(c)) & ID_WORDS
        ]
        for column in named + [c for c in unique if c not in named]:
            repeats = _repeats_with_other_amounts(table, column, columns["amount"])
            if repeats:
                notes.append(
                    f"column {column!r} repeats with different amounts (e.g. {repeats!r}: line "
                    "items of one order), so it is not mapped as transaction_id (it does not name "
                    "one row); each line counts as a purchase"
                )
                continue
            columns["transaction_id"] = column
            reasons["transaction_id"] = (
                "header name and values" if column in named else "values (unique ids)"
            )
            break
        else:
            reasons["transaction_id"] = "not mapped (no order or invoice id column found)"
    if table.delimiter is None or table.type_of(columns["amount"]) != "string":
        number = (decimal or ".", thousands)
    else:
        number = number_format(
            table.values(columns["amount"]), table.label, columns["amount"], decimal, thousands
        )
    ordered = {role: columns[role] for role in ROLES}
    return Mapping(ordered, date, number[0], number[1], reasons, tuple(notes))


def _explain_no_amount(table: Table, used: set[str]) -> None:
    """Raise the error for a missing amount, naming a column that has units or currency signs."""
    for column in table.header:
        if column not in used and name_score(column, "amount"):
            values = table.values(column)[:3]
            raise ChurnError(
                f"{table.label}: column {column!r} is named like the amount but its values "
                f"({', '.join(repr(v) for v in values)}) are not plain numbers; ingest reads "
                "numbers with a decimal mark and thousands separator only: export the amounts "
                "without currency signs or units, or pass --amount COL"
            )


def _repeats_with_other_amounts(table: Table, column: str, amount: str) -> str:
    """Return a value of `column` seen twice with different amounts ('' when none)."""
    i, j = table.header.index(column), table.header.index(amount)
    seen: dict[str, str] = {}
    for row in table.rows:
        if max(i, j) >= len(row):
            continue
        key, value = str(row[i]).strip(), str(row[j]).strip()
        if key and seen.setdefault(key, value) != value:
            return key
    return ""


def _timestamp_format(
    table: Table, column: str, date_format: str | None, dayfirst: bool | None
) -> DateGuess | None:
    """Return the timestamp column's format (given, or guessed; errors when it cannot be)."""
    if _is_date_type(table.type_of(column)):
        return None
    values = table.values(column)
    if date_format is not None:
        ok = share(values[:5000], lambda v: _valid(date_format, v))
        if ok < CONTENT_SHARE:
            bad = next((v for v in values if not _valid(date_format, v)), "")
            raise ChurnError(
                f"{table.label}: column {column!r}: --date-format {date_format!r} does not read "
                f"{bad!r} ({ok:.0%} of the sample reads); fix --date-format"
            )
        order = "%d" in date_format and date_format.index("%d") < date_format.find("%m")
        return DateGuess(date_format, "given", ok, dayfirst=order, example=values[0])
    guess = guess_date(values, dayfirst)
    if guess is None:
        raise ChurnError(
            f"{table.label}: column {column!r} values ({', '.join(repr(v) for v in values[:3])}) "
            "match no date format churn knows; pass --date-format (a strptime format such as "
            "'%d.%m.%Y %H:%M')"
        )
    if guess.kind == "dmy" and guess.first_max > 12 and guess.second_max > 12:
        raise ChurnError(
            f"{table.label}: column {column!r} mixes day-first and month-first dates (a first "
            f"field up to {guess.first_max} and a second up to {guess.second_max}); fix the "
            "export so one order is used throughout"
        )
    return guess


def settle_dayfirst(
    guess: DateGuess, label: str, column: str, first_max: int, second_max: int
) -> DateGuess:
    """Return `guess` with day-first settled by the largest first and second fields of the whole
    column; error when every date in the file reads both ways."""
    first_max, second_max = max(first_max, guess.first_max), max(second_max, guess.second_max)
    if first_max > 12 and second_max > 12:
        raise ChurnError(
            f"{label}: column {column!r} mixes day-first and month-first dates (a first field up "
            f"to {first_max} and a second up to {second_max}); fix the export so one order is "
            "used throughout"
        )
    if first_max <= 12 and second_max <= 12:
        raise ChurnError(
            f"{label}: column {column!r}: every date reads both day-first and month-first (e.g. "
            f"{guess.example!r}, no day above 12 in the file); pass --dayfirst or --monthfirst"
        )
    dayfirst = first_max > 12
    sep = guess.fmt[2] if guess.fmt else "/"
    head = f"%d{sep}%m" if dayfirst else f"%m{sep}%d"
    fmt = head + (guess.fmt or "")[5:]
    return DateGuess(
        fmt, guess.kind, guess.share, dayfirst=dayfirst, first_max=first_max,
        second_max=second_max, example=guess.example,
    )  # fmt: skip


# --------------------------------------------------------------------------- side tables
SIDE_WORDS = {
    "signup_date": {"signup", "registered", "registration", "joined", "created", "since",
                    "first", "anmeldung", "registro", "inscription", "alta"},
    "channel": {"channel", "source", "medium", "kanal", "canal", "acquisition"},
    "region": {"region", "country", "state", "area", "land", "pais", "pays", "territory",
               "market", "city"},
    "answered_at": DATE_WORDS | {"answered", "responded", "submitted", "survey"},
    "score": {"score", "nps", "rating", "recommend", "likelihood", "bewertung", "nota",
              "puntuacion", "note"},
}  # fmt: skip


def map_side(
    table: Table, kind: str, dayfirst: bool | None
) -> tuple[dict[str, str | None], DateGuess | None]:
    """Return the columns of a customers or NPS table (by header name, then by values) and the
    format of its date column; dates that read both ways follow `dayfirst` (the transactions')."""
    ids = [c for c in table.header if name_score(c, "customer_id") and _id_like(table, c)]
    if not ids:
        raise ChurnError(
            f"{table.label}: no customer id column in this {kind} table (columns: "
            f"{', '.join(repr(h) for h in table.header)}); name it customer_id in the export"
        )
    columns: dict[str, str | None] = {"customer_id": ids[0]}
    date_key = "signup_date" if kind == "customers" else "answered_at"
    rest = [c for c in table.header if c != ids[0]]
    dated = [c for c in rest if _date_like(table, c, None) is not None]
    named = [c for c in dated if set(name_words(c)) & SIDE_WORDS[date_key]]
    date_column = (named or dated or [None])[0]
    if kind == "customers":
        columns["signup_date"] = date_column
        for key in ("channel", "region"):
            match = [c for c in rest if set(name_words(c)) & SIDE_WORDS[key] and c not in dated]
            columns[key] = match[0] if match else None
    else:
        if date_column is None:
            raise ChurnError(
                f"{table.label}: no date column in the NPS answers (columns: "
                f"{', '.join(repr(h) for h in table.header)}); the answers need a date"
            )
        columns["answered_at"] = date_column
        scores = [
            c
            for c in rest
            if c not in dated
            and share(table.values(c), lambda v: re.fullmatch(r"\d{1,2}", v) and int(v) <= 10)
            >= CONTENT_SHARE
        ]
        named_scores = [c for c in scores if set(name_words(c)) & SIDE_WORDS["score"]]
        if not scores:
            raise ChurnError(
                f"{table.label}: no column of 0-10 scores in the NPS answers (columns: "
                f"{', '.join(repr(h) for h in table.header)})"
            )
        columns["score"] = (named_scores or scores)[0]
    date = None
    if date_column is not None:
        date = _timestamp_format(table, date_column, None, None)
        if date is not None and date.kind == "dmy" and date.dayfirst is None:
            if dayfirst is None:
                raise ChurnError(
                    f"{table.label}: column {date_column!r}: every date reads both day-first "
                    f"and month-first (e.g. {date.example!r}); pass --dayfirst or --monthfirst"
                )
            date = settle_dayfirst(date, table.label, date_column, 13 if dayfirst else 0,
                                   0 if dayfirst else 13)  # fmt: skip
    return columns, date
