"""CSV cells a spreadsheet cannot run as a formula ("CSV injection", SPEC §10 Exports).

Excel, LibreOffice and Google Sheets treat a cell whose text starts with ``=``, ``+``, ``-`` or ``@`` as a
formula (``=HYPERLINK(...)``, ``=cmd|' /C calc'!A0``), and some strip a leading tab or carriage return
first. Model answers, test titles and error texts come from users and models, so every CSV we write
goes through :func:`csv_safe_cell`, which prefixes such text with ``'``: the spreadsheet shows it as
text, and a reader of the raw file sees the original after the quote.

Only *text* is neutralised. A value we write as a number (``int``, ``float``, ``Decimal``; ``bool`` and
``None`` too) is left alone even when negative: ``-0.5`` written from a float is data, not a formula,
and prefixing it would turn every negative number into text. Text that merely looks like a number
(a model answering ``-1``) is still text from outside and is prefixed.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import IO, Any

# What a spreadsheet may read as the start of a formula (tab and CR: some strip them, then see "=").
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def csv_safe_cell(value: Any) -> Any:
    """The value as it may go into a CSV cell: text that could start a formula gets a leading ``'``."""
    if isinstance(value, bool | int | float | Decimal) or value is None:
        return value
    text = value if isinstance(value, str) else str(value)
    if text.startswith(FORMULA_PREFIXES):
        return "'" + text
    return text


class SafeDictWriter(csv.DictWriter):
    """``csv.DictWriter`` whose every row goes through :func:`csv_safe_cell` (the header is ours)."""

    def __init__(self, f: IO[str], fieldnames: Iterable[str], **kwargs: Any) -> None:
        super().__init__(f, fieldnames=list(fieldnames), **kwargs)

    def writerow(self, rowdict: Mapping[str, Any]) -> Any:
        return super().writerow({key: csv_safe_cell(value) for key, value in rowdict.items()})

    def writerows(self, rowdicts: Iterable[Mapping[str, Any]]) -> None:
        for row in rowdicts:
            self.writerow(row)
